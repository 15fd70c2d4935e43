// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "model/device.h"
#include "model/time.h"

namespace fieldhub::sim {

struct Publication {
  std::string topic;
  std::string payload;
  bool event = false;
};

// One simulated device, driven only by its profile: telemetry of every metric at the profile's
// expected interval, in the profile's own payload shape (fieldhub convention, Tasmota,
// Zigbee2MQTT, ...), and now and then one of its events (urgent ones rarely). Sans-I/O: the
// caller passes the time and publishes what comes back.
class DeviceSim {
 public:
  DeviceSim(const model::Device& device, const config::Profile& profile, std::uint32_t seed,
            double rate_scale);

  const model::Device& device() const { return device_; }
  // What is due at `now`; empty if nothing.
  std::vector<Publication> poll(model::Timestamp now);
  // When poll() next has something to say.
  model::Timestamp next_due() const;

 private:
  Publication telemetry(model::Timestamp now);
  Publication event(const config::EventSpec& spec, model::Timestamp now);
  double next_value(const config::MetricSpec& m);
  std::chrono::microseconds event_gap(const config::EventSpec& spec);
  std::string topic(const std::string& pattern, std::string_view fallback_suffix) const;

  model::Device device_;
  const config::Profile& profile_;
  std::mt19937 rng_;
  double rate_scale_;
  std::chrono::microseconds interval_;
  model::Timestamp next_telemetry_{};
  model::Timestamp next_event_{};
  const config::EventSpec* pending_follow_up_ = nullptr;
  std::map<std::string, double, std::less<>> state_;
};

// The WebSocket device protocol's message for a publication's payload (a fieldhub-format JSON
// object): {"id": <id>, "kind": "event" | "telemetry", ...the payload's fields}.
std::string ws_message(std::uint64_t id, bool event, std::string_view payload);

}  // namespace fieldhub::sim
