// SPDX-License-Identifier: Apache-2.0
// fieldhub-modbus-sim: simulated Modbus TCP and RTU devices with fault injection, for the demo,
// the integration tests and the Modbus benchmark. See README.md.
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/log.h"
#include "sim/modbus/sim_config.h"
#include "sim/modbus/sim_transports.h"

namespace {

using namespace fieldhub;

struct Options {
  std::filesystem::path config;  // empty: built-in demo configuration
  sim::CliOverrides cli;
  std::filesystem::path ready_file;
  bool print_config = false;
  bool verbose = false;
};

void usage() {
  std::cout <<
      R"(usage: fieldhub-modbus-sim [--config FILE] [--tcp-port P] [--rtu DEVICE [--baud N]]
                           [--control-port P] [--fleet N [--fleet-port-base P]]
                           [--ready-file FILE] [--print-default-config] [--verbose]

Simulated Modbus devices (our own server implementation, independent of fieldhub's client):
  TCP  MBAP framing on 127.0.0.1, any number of connections, unit id -> device.
  RTU  on a serial device (e.g. a pty from socat), CRC-16, frames ended by 3.5 characters of
       silence, many slave ids on one line, replies paced at the baud rate.
Without --config, four demo devices on TCP 127.0.0.1:5020: unit 1 kWh meter (SDM630-like,
input registers float32 ABCD), 2 water meter, 3 gas meter, 4 PLC (--print-default-config).

  --config FILE         TOML: [[unit]] devices (templates sdm630, water_meter, gas_meter, plc),
                        [[tcp]] listeners, [[rtu]] lines, [[fleet]] groups, [control], faults
  --tcp-port P          port of the first [[tcp]] listener (or a new one serving all units);
                        0 = any free port (see --ready-file)
  --rtu DEVICE          serial device of the first [[rtu]] line (or a new one, all units)
  --baud N              baud rate of that line (default 9600)
  --control-port P      line-based control on 127.0.0.1:P (0 = any free port), e.g.
                          fault 1 late delay_ms=800    fault 2/* exception code=2 from=10 to=11
                          clear *   stop 3   start 3   set 1 holding 16 215   stats   help
                        faults: silence late exception wrong_unit wrong_function bad_byte_count
                        truncated bad_crc noise_before noise_after echo duplicate
                        ignore_write
  --fleet N             N more SDM630-like devices, ids 1..200 per TCP listener (10000 -> 50
                        listeners), ports from --fleet-port-base (default: any free ports)
  --ready-file FILE     once everything listens, write "control P", "tcp BUS P", "rtu BUS DEV"
                        lines and "ready" to FILE (atomically); the same goes to stdout
  --print-default-config  print the built-in configuration and device templates, then exit
Stops on SIGINT or SIGTERM.
)";
}

std::uint16_t port_value(const std::string& text) {
  const int p = std::stoi(text);
  if (p < 0 || p > 65535) throw std::invalid_argument("port out of range: " + text);
  return static_cast<std::uint16_t>(p);
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--config") {
      o.config = value();
    } else if (arg == "--tcp-port") {
      o.cli.tcp_port = port_value(value());
    } else if (arg == "--rtu") {
      o.cli.rtu_device = value();
    } else if (arg == "--baud") {
      o.cli.baud = static_cast<unsigned>(std::stoul(value()));
    } else if (arg == "--control-port") {
      o.cli.control_port = port_value(value());
    } else if (arg == "--fleet") {
      o.cli.fleet = static_cast<unsigned>(std::stoul(value()));
    } else if (arg == "--fleet-port-base") {
      o.cli.fleet_port_base = port_value(value());
    } else if (arg == "--ready-file") {
      o.ready_file = value();
    } else if (arg == "--print-default-config") {
      o.print_config = true;
    } else if (arg == "--verbose") {
      o.verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown argument " + std::string(arg));
    }
  }
  return o;
}

void write_ready_file(const std::filesystem::path& path, const std::string& text) {
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "fieldhub-modbus-sim: " << e.what() << " (see --help)\n";
    return 2;
  }
  if (!options) return 0;
  if (options->print_config) {
    std::cout << sim::default_config_text() << "\n# Built-in templates\n"
              << sim::builtin_templates_text();
    return 0;
  }
  common::set_log_level(options->verbose ? common::LogLevel::debug : common::LogLevel::warn);

  try {
    std::string text(sim::default_config_text());
    std::string source = "<built-in config>";
    if (!options->config.empty()) {
      std::ifstream in(options->config, std::ios::binary);
      if (!in) throw sim::ConfigError(options->config.string() + ": cannot open");
      std::ostringstream buffer;
      buffer << in.rdbuf();
      text = buffer.str();
      source = options->config.string();
    }
    auto config = sim::load_sim_config(text, source, options->cli);

    boost::asio::io_context io(1);
    sim::Simulator simulator(std::move(config.buses));
    sim::SimServer server(io, simulator, config.control_port);
    server.start();
    const std::string ready = server.ready_text();
    if (!options->ready_file.empty()) write_ready_file(options->ready_file, ready);
    std::cout << ready << std::flush;

    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    io.run();
    return 0;
  } catch (const sim::ConfigError& e) {
    std::cerr << "fieldhub-modbus-sim: configuration: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fieldhub-modbus-sim: " << e.what() << "\n";
    return 1;
  }
}
