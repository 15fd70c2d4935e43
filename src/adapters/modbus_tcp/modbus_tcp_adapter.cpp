// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/modbus_tcp_adapter.h"

#include "adapters/modbus/poll_wiring.h"

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
        if (!stopped_) submit_cycle(pipeline_, std::move(readings));
      });
  // The composition root registers each Modbus TCP device on link "modbus:host:port".
  poller_->set_status_hooks(poll_hooks(pipeline_, "modbus:", stopped_));
}

void ModbusTcpAdapter::start() {
  stopped_ = false;
  poller_->start();
}

void ModbusTcpAdapter::stop() {
  stopped_ = true;
  poller_->stop();
}

void ModbusTcpAdapter::write(std::string_view device_id, std::string_view metric,
                             model::Value value, WriteCallback done) {
  poller_->write(device_id, metric, std::move(value), std::move(done));
}

}  // namespace fieldhub::adapters
