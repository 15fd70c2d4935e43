// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/poll_wiring.h"

#include <algorithm>

namespace fieldhub::adapters {

void submit_cycle(pipeline::Pipeline& pipeline, std::vector<model::Reading>&& readings) {
  pipeline::Envelope env;
  env.readings = std::move(readings);
  env.device_heard = std::any_of(env.readings.begin(), env.readings.end(),
                                 [](const model::Reading& r) { return r.value.index() != 0; });
  pipeline.submit(std::move(env), 0);
}

modbus::PollHooks poll_hooks(pipeline::Pipeline& pipeline, std::string prefix,
                             const bool& stopped) {
  modbus::PollHooks hooks;
  // A Modbus device keeps its values: a cycle not polled now loses nothing, unlike readings queued
  // without bound.
  hooks.hold = [&pipeline] { return pipeline.saturated(); };
  health::HealthTracker* tracker = pipeline.health();
  if (tracker == nullptr) return hooks;
  health::HealthTracker& health = *tracker;
  hooks.link = [&health, &stopped, prefix](const std::string& link, bool up,
                                           const std::string& reason) {
    if (stopped) return;
    if (up) {
      health.link_up(prefix + link);
    } else {
      health.link_down(prefix + link, reason);
    }
  };
  hooks.cycle = [&health, &stopped](const std::string& device_id, bool failed, bool target_offline,
                                    const std::string& reason) {
    if (stopped) return;
    if (target_offline) {
      health.device_offline(device_id, reason);
    } else if (failed) {
      health.cycle_failed(device_id, reason);
    }
  };
  hooks.rtt = [&health, &stopped, prefix](const std::string& link, std::chrono::microseconds rtt) {
    if (!stopped) health.link_rtt(prefix + link, rtt);
  };
  hooks.error = [&health, &stopped, prefix](const std::string& link, std::string_view kind) {
    if (!stopped) health.link_error(prefix + link, kind);
  };
  return hooks;
}

}  // namespace fieldhub::adapters
