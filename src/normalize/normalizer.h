// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "model/time.h"
#include "pipeline/envelope.h"

namespace fieldhub::normalize {

// Turns one MQTT message (topic + JSON payload) into canonical records, using the configured
// devices and their profiles. Sans-I/O and deterministic: the same input gives the same envelope.
// Thread-compatible: one instance per thread (it owns a reusable JSON parser).
//
// What it guarantees about the returned envelope:
// - records carry device id, metric, unit, value, quality and timestamps from the profile;
//   source_ts_trusted is false when the message had no timestamp;
// - a message that cannot be used at all (oversized, invalid JSON or UTF-8, too deep, unknown
//   topic or device, site mismatch) has no records and one dead letter naming the reason;
// - a bad part of a usable message (unknown metric, wrong type, NUL in a string, duplicate key,
//   unknown event type) becomes a dead letter while the rest of the message is kept;
// - a number outside the profile's [min, max] is kept with quality bad, reason out_of_range.
// It does not check timestamps against the clock: the pipeline's validator does that.
class Normalizer {
 public:
  explicit Normalizer(const config::Config& config);
  ~Normalizer();
  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

  // The MQTT topic filters to subscribe to so that every configured device is heard.
  std::vector<std::string> subscriptions() const;
  // The subset of subscriptions() whose topics carry events only (no profile's telemetry), which
  // the MQTT adapter reads on its own session so urgent calls never queue behind telemetry.
  std::vector<std::string> event_subscriptions() const;

  pipeline::Envelope normalize(std::string_view topic, std::string_view payload,
                               model::Timestamp received_ts);

  // A message on a device's own connection (WebSocket), where the transport has already said
  // which device it is and whether it is telemetry or an event. The payload is the fieldhub
  // format whatever the profile's MQTT mapping; the same checks and reasons as normalize() apply
  // (the size limit is websocket.max_message). Top-level "id" and "kind" belong to the transport
  // and are never event attributes. `source` names the message in dead letters; `adapter` and
  // `link` are the records' provenance. An id that is not a websocket device gives a dead letter
  // unknown_device.
  enum class Kind : std::uint8_t { telemetry, event };
  struct Origin {
    std::string_view source;
    std::string_view adapter;
    std::string_view link;
  };
  pipeline::Envelope normalize_device(std::string_view device_id, Kind kind,
                                      std::string_view payload, model::Timestamp received_ts,
                                      const Origin& origin);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldhub::normalize
