// SPDX-License-Identifier: Apache-2.0
#pragma once

// The simulated buses and devices, the fault state and the control commands. Pure: transports
// (sim_transports.h) feed it requests and schedule what it returns; tests drive it directly.
// Not thread-safe: used from the one io_context thread of fieldhub-modbus-sim.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/modbus/sim_device.h"
#include "sim/modbus/sim_faults.h"

namespace fieldhub::sim {

struct SimUnit {
  Unit device;
  std::vector<Fault> faults;  // the first that fires on a request applies
  std::uint64_t requests = 0;
  std::uint64_t replies = 0;  // requests answered (possibly with a mangled reply)
};

// One TCP listener or one serial line, with its own copy of each unit it serves.
struct Bus {
  Framing framing = Framing::tcp;
  // TCP
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port; the bound port after start
  // A gateway answers a unit it does not know with exception 0x0B; false: no reply.
  bool unknown_unit_exception = true;
  // RTU
  std::string device;
  unsigned baud = 9600;
  char parity = 'N';  // N, E, O
  unsigned stop_bits = 1;
  std::chrono::milliseconds turnaround{0};  // slave processing time before replying

  std::vector<SimUnit> units;
  std::array<std::int32_t, 256> index{};  // unit id -> position in units, -1: none
  std::uint64_t bad_frames = 0;           // RTU CRC failures, TCP bad MBAP headers
  std::uint64_t unknown_unit = 0;

  void reindex();
  SimUnit* unit(std::uint8_t id);
  // Bits on the line per character: start + 8 data + parity + stop.
  unsigned bits_per_char() const { return 1 + 8 + (parity == 'N' ? 0 : 1) + stop_bits; }
  // Modbus over serial line V1.02, 2.5.1.1: 3.5 character times, fixed 1.75 ms above 19200 baud.
  std::chrono::microseconds frame_gap() const;
  std::chrono::microseconds transmit_time(std::size_t bytes) const;
};

class Simulator {
 public:
  explicit Simulator(std::vector<Bus> buses);

  std::vector<Bus>& buses() { return buses_; }

  // Answers one complete request frame received on bus `bus` at simulation time t (seconds).
  // `pdu` is the function code and data. Returns what to send, possibly nothing.
  std::vector<Transmission> handle(std::size_t bus, const Request& request,
                                   std::span<const std::uint8_t> pdu, double t);

  // One control command line -> one reply line ("ok ..." or "error ..."). See README.md.
  std::string execute(std::string_view line);

 private:
  // Units picked by a selector: "*", "<unit>", "<bus>/<unit>", "<bus>/*".
  std::vector<SimUnit*> select(std::string_view selector, std::string& error);

  std::vector<Bus> buses_;
};

}  // namespace fieldhub::sim
