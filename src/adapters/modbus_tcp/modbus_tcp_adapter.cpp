// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/modbus_tcp_adapter.h"

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
    : PollingAdapter(pipeline) {
  // The composition root registers each Modbus TCP device on link "modbus:host:port".
  attach(std::make_unique<modbus::TcpPoller>(io, targets(config), std::move(options), metrics,
                                             clock, cycle_sink()),
         "modbus:");
}

}  // namespace fieldhub::adapters
