// SPDX-License-Identifier: Apache-2.0
#include "support/modbus_servers.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fieldhub::testing {

namespace {

using std::chrono::milliseconds;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Waits until `ready_file` exists (written atomically by the server) or the process exits.
std::string wait_ready(ChildProcess& process, const std::filesystem::path& ready_file,
                       milliseconds deadline, const std::string& what) {
  const bool ok = wait_until(
      [&] { return std::filesystem::exists(ready_file) || !process.running(); }, deadline);
  if (!ok || !std::filesystem::exists(ready_file)) {
    throw std::runtime_error(what + " did not become ready: " + process.log());
  }
  return read_text(ready_file);
}

}  // namespace

Bytes with_modbus_crc(Bytes frame) {
  std::uint16_t crc = 0xFFFF;
  for (const auto b : frame) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) {
      crc = static_cast<std::uint16_t>((crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1);
    }
  }
  frame.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  frame.push_back(static_cast<std::uint8_t>(crc >> 8));
  return frame;
}

ModbusSimServer::ModbusSimServer(ModbusSimOptions options) {
  const auto ready_file = dir_.path() / "ready";
  std::vector<std::string> argv{(bin_dir() / "fieldhub-modbus-sim").string(), "--control-port", "0",
                                "--ready-file", ready_file.string()};
  if (!options.tcp && options.rtu_device.empty() && options.fleet == 0) {
    throw std::invalid_argument("ModbusSimServer: no TCP, RTU or fleet");
  }
  const auto config = dir_.path() / "sim.toml";
  // An empty file, unlike no file, has no listener on the demo's fixed port; without [[unit]] the
  // simulator serves its four demo devices.
  std::ofstream(config) << options.config_toml;
  argv.insert(argv.end(), {"--config", config.string()});
  if (options.tcp) argv.insert(argv.end(), {"--tcp-port", "0"});
  if (!options.rtu_device.empty()) {
    argv.insert(argv.end(),
                {"--rtu", options.rtu_device.string(), "--baud", std::to_string(options.baud)});
  }
  if (options.fleet > 0) argv.insert(argv.end(), {"--fleet", std::to_string(options.fleet)});
  process_ = std::make_unique<ChildProcess>(argv, dir_.path() / "sim.log");

  std::istringstream lines(
      wait_ready(*process_, ready_file, milliseconds{10000}, "fieldhub-modbus-sim"));
  std::string kind;
  while (lines >> kind) {
    if (kind == "control") {
      lines >> control_port_;
    } else if (kind == "tcp") {
      std::size_t bus = 0;
      std::uint16_t port = 0;
      lines >> bus >> port;
      tcp_ports_[bus] = port;
    } else if (kind == "rtu") {
      std::string bus, device;
      lines >> bus >> device;
    }
  }
  if (control_port_ == 0) throw std::runtime_error("fieldhub-modbus-sim: no control port");
}

ModbusSimServer::~ModbusSimServer() = default;

std::uint16_t ModbusSimServer::port() const {
  if (tcp_ports_.empty()) throw std::logic_error("ModbusSimServer: no TCP bus");
  return tcp_ports_.begin()->second;
}

std::uint16_t ModbusSimServer::port(std::size_t bus) const {
  return tcp_ports_.at(bus);
}

std::vector<std::uint16_t> ModbusSimServer::tcp_ports() const {
  std::vector<std::uint16_t> out;
  for (const auto& [bus, port] : tcp_ports_) out.push_back(port);
  return out;
}

std::string ModbusSimServer::command(std::string_view line) {
  auto stream = ByteStream::connect_tcp(control_port_);
  std::string text(line);
  text += '\n';
  stream.write(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + milliseconds{5000};
  while (reply.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    const auto chunk = stream.read_exact(1, milliseconds{1000});
    if (chunk.empty() && stream.peer_closed()) break;
    reply.append(chunk.begin(), chunk.end());
  }
  if (reply.find('\n') == std::string::npos) {
    throw std::runtime_error("modbus sim control: no reply to '" + std::string(line) + "'");
  }
  return reply.substr(0, reply.find('\n'));
}

void ModbusSimServer::control(std::string_view line) {
  const std::string reply = command(line);
  if (!reply.starts_with("ok")) {
    throw std::runtime_error("modbus sim control '" + std::string(line) + "': " + reply);
  }
}

PymodbusServer::PymodbusServer(std::filesystem::path rtu_device, unsigned baud) {
  const auto ready_file = dir_.path() / "ready";
  // Debian's pymodbus is only visible to Debian's interpreter.
  std::vector<std::string> argv{"/usr/bin/python3",
                                (source_dir() / "scripts" / "pymodbus_server.py").string(),
                                "--ready-file", ready_file.string()};
  if (rtu_device.empty()) {
    argv.insert(argv.end(), {"--tcp", "--port", "0"});
  } else {
    argv.insert(argv.end(), {"--rtu", rtu_device.string(), "--baud", std::to_string(baud)});
  }
  process_ = std::make_unique<ChildProcess>(argv, dir_.path() / "pymodbus.log",
                                            std::vector<std::string>{"PYTHONUNBUFFERED=1"});
  std::istringstream lines(wait_ready(*process_, ready_file, milliseconds{20000}, "pymodbus"));
  std::string kind;
  lines >> kind;
  if (kind == "tcp") lines >> port_;
}

PymodbusServer::~PymodbusServer() = default;

}  // namespace fieldhub::testing
