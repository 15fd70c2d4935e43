// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_rtu/modbus_rtu_adapter.h"

#include <algorithm>

namespace fieldhub::adapters {

std::vector<modbus::RtuDeviceTarget> ModbusRtuAdapter::targets(const config::Config& config) {
  std::vector<modbus::RtuDeviceTarget> out;
  for (const auto& endpoint : config.modbus_devices) {
    if (!endpoint.rtu) continue;
    const model::Device* device = nullptr;
    for (const auto& d : config.devices) {
      if (d.id == endpoint.device_id) device = &d;
    }
    if (device == nullptr) continue;
    const config::Profile* profile = config.profile(device->profile);
    if (profile == nullptr || profile->registers.empty()) continue;
    modbus::RtuDeviceTarget t;
    t.device_id = endpoint.device_id;
    t.profile = profile;
    t.bus = endpoint.bus;
    t.unit = endpoint.unit_id;
    out.push_back(std::move(t));
  }
  return out;
}

ModbusRtuAdapter::ModbusRtuAdapter(boost::asio::any_io_executor io, const config::Config& config,
                                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                                   const common::Clock& clock, modbus::RtuPollerOptions options)
    : pipeline_(pipeline) {
  poller_ = std::make_unique<modbus::RtuPoller>(
      io, config.serial_buses, targets(config), std::move(options), metrics, clock,
      [this](const std::string&, const std::string&, std::vector<model::Reading>&& readings) {
        if (stopped_) return;
        pipeline::Envelope env;
        env.readings = std::move(readings);
        // A cycle in which no register could be read is the adapter speaking, not the device.
        env.device_heard =
            std::any_of(env.readings.begin(), env.readings.end(),
                        [](const model::Reading& r) { return r.value.index() != 0; });
        pipeline_.submit(std::move(env), 0);
      });
  if (health::HealthTracker* health = pipeline_.health()) {
    // The composition root registers each Modbus RTU device on link "serial:<bus>".
    modbus::PollHooks hooks;
    hooks.link = [this, health](const std::string& bus, bool up, const std::string& reason) {
      if (stopped_) return;
      if (up) {
        health->link_up("serial:" + bus);
      } else {
        health->link_down("serial:" + bus, reason);
      }
    };
    hooks.cycle = [this, health](const std::string& device_id, bool failed, bool target_offline,
                                 const std::string& reason) {
      if (stopped_) return;
      if (target_offline) {
        health->device_offline(device_id, reason);
      } else if (failed) {
        health->cycle_failed(device_id, reason);
      }
    };
    hooks.rtt = [this, health](const std::string& bus, std::chrono::microseconds rtt) {
      if (!stopped_) health->link_rtt("serial:" + bus, rtt);
    };
    hooks.error = [this, health](const std::string& bus, std::string_view kind) {
      if (!stopped_) health->link_error("serial:" + bus, kind);
    };
    poller_->set_status_hooks(std::move(hooks));
  }
}

void ModbusRtuAdapter::start() {
  stopped_ = false;
  poller_->start();
}

void ModbusRtuAdapter::stop() {
  stopped_ = true;
  poller_->stop();
}

void ModbusRtuAdapter::write(std::string_view device_id, std::string_view metric,
                             model::Value value, WriteCallback done) {
  poller_->write(device_id, metric, std::move(value), std::move(done));
}

}  // namespace fieldhub::adapters
