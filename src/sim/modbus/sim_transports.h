// SPDX-License-Identifier: Apache-2.0
#pragma once

// The simulator's I/O on Asio: a TCP listener per TCP bus (MBAP framing, any number of
// connections), a serial line per RTU bus (frames delimited by 3.5 characters of silence, replies
// paced at the line's baud rate) and the line-based control port. Everything runs on the one
// io_context thread that also owns the Simulator.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/modbus/simulator.h"

namespace fieldhub::sim {

class TcpBusListener;
class RtuBusLine;
class ControlListener;

class SimServer {
 public:
  SimServer(boost::asio::io_context& io, Simulator& sim, std::optional<std::uint16_t> control_port);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds every listener and opens every serial line; throws std::runtime_error naming the bus
  // that failed. After return, Bus::port holds the bound port of each TCP bus.
  void start();
  // "control <port>", "tcp <bus> <port>", "rtu <bus> <device>" lines, then "ready".
  std::string ready_text() const;

 private:
  boost::asio::io_context& io_;
  Simulator& sim_;
  std::optional<std::uint16_t> control_port_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<TcpBusListener>> tcp_;
  std::vector<std::unique_ptr<RtuBusLine>> rtu_;
  std::unique_ptr<ControlListener> control_;
};

}  // namespace fieldhub::sim
