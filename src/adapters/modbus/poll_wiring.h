// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "adapters/modbus/device_poller.h"
#include "health/health_tracker.h"
#include "model/reading.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// What the Modbus adapters (TCP and RTU) share between their poller and the core. Runs on the io
// executor.

// One poll cycle's readings into the pipeline. A cycle in which no register could be read is the
// adapter speaking, not the device: health counts it as a failed cycle, never as the device being
// heard. Every reading carries its receipt time as timestamp, so a replay is recognised by
// (device, metric, ts) already: no digest.
void submit_cycle(pipeline::Pipeline& pipeline, std::vector<model::Reading>&& readings);

// The poller's hooks into the core: its link and cycle reports as health, when the pipeline has a
// health tracker (links are named "<prefix><link>"; the composition root registers devices on the
// same names), and polling held while the pipeline is saturated. Nothing is reported once
// `stopped` is true; it must outlive the poller.
modbus::PollHooks poll_hooks(pipeline::Pipeline& pipeline, std::string prefix, const bool& stopped);

}  // namespace fieldhub::adapters
