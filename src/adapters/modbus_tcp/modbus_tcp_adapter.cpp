// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/modbus_tcp_adapter.h"

#include <algorithm>

namespace fieldhub::adapters {

std::vector<modbus::TcpDeviceTarget> ModbusTcpAdapter::targets(const config::Config& config) {
  std::vector<modbus::TcpDeviceTarget> out;
  for (const auto& endpoint : config.modbus_devices) {
    if (endpoint.rtu) continue;
    const model::Device* device = nullptr;
    for (const auto& d : config.devices) {
      if (d.id == endpoint.device_id) device = &d;
    }
    if (device == nullptr) continue;
    const config::Profile* profile = config.profile(device->profile);
    if (profile == nullptr || profile->registers.empty()) continue;
    modbus::TcpDeviceTarget t;
    t.device_id = endpoint.device_id;
    t.profile = profile;
    t.host = endpoint.host;
    t.port = endpoint.port;
    t.unit = endpoint.unit_id;
    t.response_timeout = endpoint.response_timeout;
    t.connect_timeout = endpoint.connect_timeout;
    t.max_in_flight = endpoint.max_in_flight;
    out.push_back(std::move(t));
  }
  return out;
}

ModbusTcpAdapter::ModbusTcpAdapter(boost::asio::any_io_executor io, const config::Config& config,
                                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                                   const common::Clock& clock, modbus::TcpPollerOptions options)
    : pipeline_(pipeline) {
  poller_ = std::make_unique<modbus::TcpPoller>(
      io, targets(config), std::move(options), metrics, clock,
      [this](const std::string&, const std::string&, std::vector<model::Reading>&& readings) {
        if (stopped_) return;
        pipeline::Envelope env;
        env.readings = std::move(readings);
        // A cycle in which no register could be read is the adapter speaking, not the device:
        // health counts it as a failed cycle, never as the device being heard.
        env.device_heard =
            std::any_of(env.readings.begin(), env.readings.end(),
                        [](const model::Reading& r) { return r.value.index() != 0; });
        // Every reading carries its receipt time as timestamp, so a replay is recognised by
        // (device, metric, ts) already: no digest.
        pipeline_.submit(std::move(env), 0);
      });
  if (health::HealthTracker* health = pipeline_.health()) {
    // The composition root registers each Modbus TCP device on link "modbus:host:port".
    modbus::TcpStatusHooks hooks;
    hooks.link = [this, health](const std::string& target, bool up, const std::string& reason) {
      if (stopped_) return;
      if (up) {
        health->link_up("modbus:" + target);
      } else {
        health->link_down("modbus:" + target, reason);
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
    hooks.rtt = [this, health](const std::string& target, std::chrono::microseconds rtt) {
      if (!stopped_) health->link_rtt("modbus:" + target, rtt);
    };
    poller_->set_status_hooks(std::move(hooks));
  }
}

void ModbusTcpAdapter::start() {
  stopped_ = false;
  poller_->start();
}

void ModbusTcpAdapter::stop() {
  stopped_ = true;
  poller_->stop();
}

}  // namespace fieldhub::adapters
