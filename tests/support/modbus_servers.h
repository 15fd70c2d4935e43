// SPDX-License-Identifier: Apache-2.0
#pragma once

// Modbus peers for integration tests: our simulator (fieldhub-modbus-sim, with fault control)
// and a reference server (Debian's pymodbus 3.0.0 running scripts/pymodbus_server.py). Each is a
// child process on 127.0.0.1 or on a serial path (one end of a PtyPair), started and ready when
// the constructor returns, killed by the destructor. Not thread-safe.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/serial_port.h"
#include "support/test_support.h"

namespace fieldhub::testing {

// CRC-16/Modbus appended low byte first: the test's own, independent of client and simulator.
Bytes with_modbus_crc(Bytes frame);

struct ModbusSimOptions {
  // A TOML configuration (see src/sim/modbus/README.md); empty: the built-in demo devices
  // (1 kWh meter, 2 water meter, 3 gas meter, 4 PLC). Fixed ports in it are kept, except that
  // the first [[tcp]] listener gets a free port when `tcp` is set.
  std::string config_toml;
  bool tcp = true;                   // the first [[tcp]] listener (or a new one) on a free port
  std::filesystem::path rtu_device;  // non-empty: the first [[rtu]] line (or a new one) there
  unsigned baud = 9600;
  unsigned fleet = 0;  // extra SDM630-like units, 200 per listener, free ports
};

class ModbusSimServer {
 public:
  // Starts fieldhub-modbus-sim from bin_dir() with a control port and waits (10 s) until it
  // reports ready; throws with its log on failure.
  explicit ModbusSimServer(ModbusSimOptions options = {});
  ~ModbusSimServer();
  ModbusSimServer(const ModbusSimServer&) = delete;
  ModbusSimServer& operator=(const ModbusSimServer&) = delete;

  // The bound port of the first TCP bus, or of bus `bus` (the sim's bus index).
  std::uint16_t port() const;
  std::uint16_t port(std::size_t bus) const;
  std::vector<std::uint16_t> tcp_ports() const;  // every TCP bus, in bus order
  std::uint16_t control_port() const { return control_port_; }

  // One control line (e.g. "fault 1 late delay_ms=800") -> the reply line; throws on I/O error.
  std::string command(std::string_view line);
  // command(), throwing std::runtime_error unless the reply starts with "ok".
  void control(std::string_view line);

  ChildProcess& process() { return *process_; }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::map<std::size_t, std::uint16_t> tcp_ports_;  // bus index -> port
  std::uint16_t control_port_ = 0;
};

// pymodbus 3.0.0 (always /usr/bin/python3) serving the datastore described in
// scripts/pymodbus_server.py: unit 1, SDM630 voltage 230.2 (43 66 33 34) at input register 0,
// 123456.0 in holding registers 0/2/4/6 as ABCD/CDAB/BADC/DCBA, integer samples, coils.
class PymodbusServer {
 public:
  // TCP on a free 127.0.0.1 port when rtu_device is empty, else RTU on that serial path.
  // Waits (20 s) until the script reports ready; throws with its log on failure.
  explicit PymodbusServer(std::filesystem::path rtu_device = {}, unsigned baud = 9600);
  ~PymodbusServer();
  PymodbusServer(const PymodbusServer&) = delete;
  PymodbusServer& operator=(const PymodbusServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace fieldhub::testing
