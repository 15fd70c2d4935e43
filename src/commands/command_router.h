// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "adapters/writable.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "model/event.h"
#include "model/time.h"
#include "model/value.h"

namespace fieldhub::commands {

// An operator's request to set a value on a device: a coil, a setpoint, a lock.
struct Command {
  std::string device_id;
  std::string protocol;  // the device's, which names the adapter that carries it
  std::string metric;
  model::Value value;
  std::string by;       // who asked (required by the API)
  std::string comment;  // optional, kept in the audit
};

struct Outcome {
  std::uint64_t id = 0;
  Command command;
  adapters::WriteResult result;
  model::Timestamp requested_at;
  model::Timestamp completed_at;
};

// The downlink's one door: routes a command to the adapter of the device's protocol (an
// adapters::Writable: write, then read back), and audits every command with its result as a
// "command" event in history (who, what, when, the outcome). Runs on the io executor; `done` is
// called exactly once there, after the adapter answered.
class CommandRouter {
 public:
  // At most this many commands run at once; more are refused (the API answers 503).
  static constexpr std::size_t max_in_flight = 256;

  CommandRouter(const common::Clock& clock, common::Metrics& metrics,
                std::function<void(model::Event&&)> audit);

  // The adapter that carries `protocol`'s writes ("modbus_tcp", "modbus_rtu").
  void add(std::string protocol, adapters::Writable& writable);

  // False when max_in_flight commands are running (nothing happens, done is not called).
  // A protocol without a write path completes at once, inside submit(), with not_writable
  // (audited too).
  bool submit(Command command, std::function<void(const Outcome&)> done);

  std::size_t in_flight() const { return in_flight_; }

 private:
  void finish(Outcome&& outcome, const std::function<void(const Outcome&)>& done);
  model::Event audit_event(const Outcome& o);

  const common::Clock& clock_;
  common::Metrics& metrics_;
  std::function<void(model::Event&&)> audit_;
  std::map<std::string, adapters::Writable*, std::less<>> writables_;
  std::size_t in_flight_ = 0;
  std::uint64_t next_id_ = 1;
  model::Timestamp last_audit_{};
  common::Histogram& seconds_;
};

}  // namespace fieldhub::commands
