// SPDX-License-Identifier: Apache-2.0
#include "adapters/adapters.h"

#include <algorithm>

#include "adapters/modbus_rtu/modbus_rtu_adapter.h"
#include "adapters/modbus_tcp/modbus_tcp_adapter.h"
#include "adapters/mqtt/mqtt_adapter.h"
#include "adapters/websocket/websocket_adapter.h"

namespace fieldhub::adapters {

std::vector<std::unique_ptr<Adapter>> make_adapters(boost::asio::any_io_executor io,
                                                    const config::Config& config,
                                                    pipeline::Pipeline& pipeline,
                                                    common::Metrics& metrics,
                                                    const common::Clock& clock) {
  std::vector<std::unique_ptr<Adapter>> adapters;
  const auto uses = [&](std::string_view protocol) {
    return std::any_of(config.devices.begin(), config.devices.end(),
                       [&](const model::Device& d) { return d.protocol == protocol; });
  };
  if (uses("mqtt")) {
    adapters.push_back(std::make_unique<MqttAdapter>(io, config, pipeline, metrics, clock));
  }
  if (uses("modbus_tcp")) {
    adapters.push_back(std::make_unique<ModbusTcpAdapter>(io, config, pipeline, metrics, clock));
  }
  if (uses("modbus_rtu")) {
    adapters.push_back(std::make_unique<ModbusRtuAdapter>(io, config, pipeline, metrics, clock));
  }
  if (uses("websocket")) {
    adapters.push_back(std::make_unique<WebSocketAdapter>(io, config, pipeline, metrics, clock));
  }
  return adapters;
}

}  // namespace fieldhub::adapters
