// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/event.h"
#include "model/reading.h"
#include "model/time.h"

namespace fieldhub::pipeline {

// Input that was refused, kept with its raw bytes (capped) so an operator can see what and why.
struct DeadLetter {
  model::Timestamp received_ts;
  std::string source;   // where it came from: the MQTT topic, a WebSocket peer, ...
  std::string reason;   // a stable, countable code: invalid_json, unknown_device, nul_in_string ...
  std::string detail;   // human-readable: which field, what was wrong
  std::string payload;  // raw bytes, truncated to a cap
};

// Who to tell once an envelope is durable. The MQTT adapter sends PUBACK then; adapters without
// acknowledgements leave target null. Called on the io executor.
class AckTarget {
 public:
  virtual ~AckTarget() = default;
  virtual void acknowledge(std::uint64_t cookie) = 0;
};

struct AckToken {
  AckTarget* target = nullptr;
  std::uint64_t cookie = 0;
  // The acknowledgement also waits until the pipeline's DurabilityGate (the alarm journal) has
  // made this mark durable; 0: nothing to wait for.
  std::uint64_t gate_mark = 0;
};

// Everything one inbound message became: the unit the pipeline validates, fans out and makes
// durable. Rejections of parts of a message (one bad field) sit beside the records that were
// kept; a message refused whole has no records and at least one dead letter.
struct Envelope {
  std::vector<model::Reading> readings;
  std::vector<model::Event> events;
  std::vector<DeadLetter> dead_letters;
  // Non-zero when a record of this message has no source timestamp: a stable digest of the
  // message (topic, payload, packet id) so that a redelivery after a restart is recognised.
  std::uint64_t replay_digest = 0;
  bool redelivered = false;  // the transport says this may be a repeat (MQTT DUP flag)
  // False when the device itself said nothing: a polled cycle in which every read failed carries
  // bad readings made by the adapter, which must not count as the device being heard.
  bool device_heard = true;
  AckToken ack;
};

}  // namespace fieldhub::pipeline
