// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_rtu/modbus_rtu_adapter.h"

#include "adapters/modbus/poll_wiring.h"

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
        if (!stopped_) submit_cycle(pipeline_, std::move(readings));
      });
  // The composition root registers each Modbus RTU device on link "serial:<bus>".
  poller_->set_status_hooks(poll_hooks(pipeline_, "serial:", stopped_));
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
