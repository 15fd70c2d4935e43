// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace fieldhub::model {

// A place in the site's own terms, most general first: ward/room/bed or line/cell.
using Location = std::vector<std::pair<std::string, std::string>>;

struct Device {
  std::string id;
  std::string kind;  // water_meter, kwh_meter, gas_meter, nurse_call, code_blue, panic_button, ...
  std::string site;
  Location location;
  std::string profile;
  std::string protocol;  // mqtt, modbus_tcp, modbus_rtu, websocket, ble
  std::string address;   // protocol address: the id in the MQTT topic, host:port/unit, ...
  std::chrono::milliseconds expected_interval{0};  // 0: not declared
};

}  // namespace fieldhub::model
