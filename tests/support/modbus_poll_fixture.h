// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the Modbus poller tests (TCP and RTU) share: a register map built in code, running a
// private io_context until a condition holds, and a log of the poller's readings with the checks
// every such test makes. Header-only; include from a GoogleTest file.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "model/reading.h"

namespace fieldhub::testing {

struct TestRegister {
  std::string metric;
  config::ModbusFunction function;
  std::uint16_t address;
  config::ModbusType type;
  config::ByteOrder order = config::ByteOrder::abcd;
  bool writable = false;
};

// A profile "test" whose metrics are `registers`, polled every `interval`.
inline config::Profile make_modbus_profile(const std::vector<TestRegister>& registers,
                                           std::chrono::milliseconds interval) {
  config::Profile p;
  p.name = "test";
  p.modbus.poll_interval = interval;
  for (const auto& r : registers) {
    config::MetricSpec m;
    m.name = r.metric;
    p.metrics.push_back(m);
    config::RegisterSpec s;
    s.metric = r.metric;
    s.metric_index = p.metrics.size() - 1;
    s.function = r.function;
    s.address = r.address;
    s.type = r.type;
    s.order = r.order;
    s.writable = r.writable;
    p.registers.push_back(s);
  }
  return p;
}

// Runs `io` until `condition` holds or `deadline` passes; returns the condition.
inline bool run_io_until(boost::asio::io_context& io, const std::function<bool()>& condition,
                         std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    io.run_for(std::chrono::milliseconds{10});
  }
  return condition();
}

// Every reading a poller emitted, and the newest per "device/metric" and per metric. Keys:
// "device/metric", or a bare metric name for the newest of any device.
class ReadingLog {
 public:
  // One cycle's readings from `adapter` on `link`: the provenance is checked, and a reading that is
  // not good must carry no value (an error is never stored as 0).
  void record(std::string_view adapter, const std::string& link,
              const std::vector<model::Reading>& readings) {
    for (const auto& r : readings) {
      EXPECT_EQ(r.provenance.adapter, adapter);
      EXPECT_EQ(r.provenance.link, link);
      if (r.quality != model::Quality::good) {
        EXPECT_TRUE(std::holds_alternative<std::monostate>(r.value)) << r.metric;
      }
      all.push_back(r);
      latest[r.metric] = r;
      latest[r.device_id + "/" + r.metric] = r;
    }
  }

  bool good(const std::string& key) const {
    auto it = latest.find(key);
    return it != latest.end() && it->second.quality == model::Quality::good;
  }
  bool bad(const std::string& key, const std::string& reason) const {
    auto it = latest.find(key);
    return it != latest.end() && it->second.quality == model::Quality::bad &&
           it->second.quality_reason == reason;
  }
  // The newest value of `key`, or -1e300 when there is none (or it is not a number).
  double number(const std::string& key) const {
    auto it = latest.find(key);
    if (it == latest.end() || !std::holds_alternative<double>(it->second.value)) return -1e300;
    return std::get<double>(it->second.value);
  }

  std::map<std::string, model::Reading> latest;
  std::vector<model::Reading> all;
};

}  // namespace fieldhub::testing
