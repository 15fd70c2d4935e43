// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/modbus/device_poller.h"
#include "adapters/writable.h"
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

// What the Modbus TCP and RTU adapters have in common: start and stop, the write path, and their
// poller's cycles and status into the core. `Poller` is modbus::TcpPoller or modbus::RtuPoller.
template <class Poller>
class PollingAdapter : public Adapter, public Writable {
 public:
  void start() override {
    stopped_ = false;
    poller_->start();
  }
  void stop() override {
    stopped_ = true;
    poller_->stop();
  }
  void write(std::string_view device_id, std::string_view metric, model::Value value,
             WriteCallback done) override {
    poller_->write(device_id, metric, std::move(value), std::move(done));
  }
  const Poller& poller() const { return *poller_; }

 protected:
  explicit PollingAdapter(pipeline::Pipeline& pipeline) : pipeline_(pipeline) {}

  // The poller's cycle callback: each cycle into the pipeline until the adapter stops.
  auto cycle_sink() {
    return [this](const std::string&, const std::string&, std::vector<model::Reading>&& readings) {
      if (!stopped_) submit_cycle(pipeline_, std::move(readings));
    };
  }
  // Takes the poller; its links report to health as "<link_prefix><link>".
  void attach(std::unique_ptr<Poller> poller, std::string link_prefix) {
    poller_ = std::move(poller);
    poller_->set_status_hooks(poll_hooks(pipeline_, std::move(link_prefix), stopped_));
  }

 private:
  pipeline::Pipeline& pipeline_;
  std::unique_ptr<Poller> poller_;
  bool stopped_ = false;
};

}  // namespace fieldhub::adapters
