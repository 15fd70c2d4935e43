// SPDX-License-Identifier: Apache-2.0
#pragma once

// fieldhub-modbus-sim's configuration: a TOML file (format in README.md) or the built-in demo
// configuration, plus the command-line overrides. Called once at start-up from main.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sim/modbus/simulator.h"

namespace fieldhub::sim {

// Bad configuration: the message names the source, the line and the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliOverrides {
  std::optional<std::uint16_t> tcp_port;  // the first [[tcp]] listener's port, or a new one
  std::string rtu_device;                 // the first [[rtu]] bus's device, or a new bus
  std::optional<unsigned> baud;           // with rtu_device
  std::optional<std::uint16_t> control_port;
  unsigned fleet = 0;                 // extra sdm630 units, 200 per TCP listener
  std::uint16_t fleet_port_base = 0;  // 0: any free ports
};

struct SimConfig {
  std::optional<std::uint16_t> control_port;  // 0: any free port; none: no control port
  std::vector<Bus> buses;
};

// The built-in demo configuration (TCP 127.0.0.1:5020 with four devices) and device templates.
std::string_view default_config_text();
std::string_view builtin_templates_text();

// Parses `text` (named `source` in errors) over the built-in templates. Throws ConfigError.
SimConfig load_sim_config(std::string_view text, const std::string& source,
                          const CliOverrides& cli = {});

}  // namespace fieldhub::sim
