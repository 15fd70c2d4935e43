// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_rtu/modbus_rtu_adapter.h"

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
    : PollingAdapter(pipeline) {
  // The composition root registers each Modbus RTU device on link "serial:<bus>".
  attach(std::make_unique<modbus::RtuPoller>(io, config.serial_buses, targets(config),
                                             std::move(options), metrics, clock, cycle_sink()),
         "serial:");
}

}  // namespace fieldhub::adapters
