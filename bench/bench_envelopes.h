// SPDX-License-Identifier: Apache-2.0
#pragma once

// The envelope the benchmarks feed the pipeline and the spool: one MQTT message of `values`
// readings (metrics m0, m1, … in volts) from device dev-<device>, received at `now`.

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

#include "model/time.h"
#include "pipeline/envelope.h"

namespace fieldhub::bench {

inline pipeline::Envelope envelope(int device, int values, model::Timestamp now) {
  pipeline::Envelope env;
  for (int v = 0; v < values; ++v) {
    // Built by snprintf and designated initialisers: assigning short strings here trips GCC 12's
    // false -Wrestrict warning (GCC PR 105651).
    std::array<char, 16> device_id{};
    std::array<char, 16> metric{};
    std::snprintf(device_id.data(), device_id.size(), "dev-%d", device);
    std::snprintf(metric.data(), metric.size(), "m%d", v);
    model::Reading r{.device_id = device_id.data(),
                     .metric = metric.data(),
                     .value = 230.0 + v,
                     .unit = std::string(1, 'V'),
                     .source_ts = now - std::chrono::seconds{1},
                     .received_ts = now,
                     .provenance = {std::string("mqtt"), std::string("broker")}};
    env.readings.push_back(std::move(r));
  }
  return env;
}

}  // namespace fieldhub::bench
