// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/serial_port.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/modbus/faults.h"
#include "adapters/modbus/frame.h"
#include "common/metrics.h"
#include "config/config.h"

namespace fieldhub::modbus {

// The response timeout and late-reply window are per bus (config::SerialBus).
struct RtuBusOptions {
  // Reopen backoff after the port failed to open or failed: 1-2-4-8-16-30 s, each ±20 % jitter.
  std::chrono::milliseconds reopen_min{1000};
  std::chrono::milliseconds reopen_max{30000};
};

// Modbus over serial line v1.02 §2.5.1.1: frames are separated by at least 3.5 character times of
// silence; above 19200 baud a fixed 1.75 ms. A character is start + data + parity + stop bits.
std::chrono::microseconds rtu_frame_gap(const config::SerialBus& bus);
// How long `bytes` characters take on the wire.
std::chrono::microseconds rtu_transmit_time(const config::SerialBus& bus, std::size_t bytes);

// One RS-485 line (a config::SerialBus) on a boost::asio::serial_port: one transaction at a time,
// each request sent only after the inter-frame gap of silence. What arrives is parsed by the
// core's parse_rtu() against the request in flight: the reply completes it (CRC checked), while
// frames for another unit, noise and our own echo are skipped and counted and the request keeps
// waiting for its own answer until the response timeout (plus the time the request and the reply
// take on the wire). Bytes arriving with no request in flight (a late or duplicated reply) are
// dropped and counted. RTU has no transaction id, so a unit whose request timed out is not asked
// again until SerialBus::late_reply_window has passed; the other units' requests go first.
//
// The port is opened with the bus's baud, parity, data and stop bits (termios, raw). If it cannot
// be opened, or a read or write fails (the adapter is unplugged, the pty's other end closed), the
// bus is down: every request completes at once with Outcome::connection_lost, and the bus reopens
// on its own with capped, jittered backoff.
//
// Single-threaded: every call and every callback runs on the executor given (the bus's strand).
// Owned through shared_ptr: pending handlers keep it alive until stop() has finished.
class RtuBus : public std::enable_shared_from_this<RtuBus> {
 public:
  using Callback = std::function<void(const LinkResult&)>;
  using LinkHandler = std::function<void(bool up, const std::string& reason)>;
  // kind: "crc", "wrong_unit", "timeout", "noise", "late_reply", "truncated".
  using ErrorHandler = std::function<void(std::string_view kind)>;

  RtuBus(boost::asio::any_io_executor executor, config::SerialBus bus, RtuBusOptions options,
         common::Metrics& metrics);

  void start();
  // Closes the port; outstanding requests complete with connection_lost. No reopens.
  void stop();

  // Queues `request`; `done` is called exactly once (never inside send()).
  void send(Request request, Callback done);

  void on_link(LinkHandler handler) { on_link_ = std::move(handler); }
  void on_error(ErrorHandler handler) { on_error_ = std::move(handler); }

  bool up() const { return up_; }
  const std::string& name() const { return bus_.name; }
  std::uint64_t errors(std::string_view kind) const;
  std::uint64_t opens() const { return opens_; }

 private:
  struct Pending {
    Request request;
    Callback done;
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point deadline;
  };

  void open();
  void schedule_reopen(const std::string& reason);
  void fail_all(const std::string& reason);
  void pump();
  void read_more();
  void on_bytes(std::size_t n);
  void parse();
  void arm_timer(std::chrono::steady_clock::time_point at);
  void on_timer();
  void complete(LinkResult result);
  void count(std::string_view kind);

  boost::asio::any_io_executor executor_;
  config::SerialBus bus_;
  RtuBusOptions options_;
  std::chrono::microseconds gap_;
  boost::asio::serial_port port_;
  boost::asio::steady_timer timer_;  // response deadline, frame gap, late-reply window
  boost::asio::steady_timer reopen_timer_;
  std::vector<std::uint8_t> read_buffer_;
  std::vector<std::uint8_t> rx_;      // bytes since the request in flight was sent
  std::vector<std::uint8_t> tx_;      // the frame being written
  std::optional<Pending> in_flight_;  // at most one transaction per bus
  bool echo_pending_ = false;         // SerialBus::echo: our request's copy not yet skipped
  bool noise_run_ = false;            // counting a run of noise bytes once
  std::deque<Pending> queue_;
  std::map<std::uint8_t, std::chrono::steady_clock::time_point> quiet_until_;  // per unit
  std::chrono::steady_clock::time_point last_activity_{};  // last byte sent or received
  bool up_ = false;
  bool writing_ = false;
  bool announced_down_ = false;  // the down state was reported since the last open
  bool stopped_ = true;
  std::uint64_t generation_ = 0;  // bumped on every close, so stale handlers do nothing
  std::chrono::milliseconds backoff_{0};
  std::minstd_rand rng_;
  std::uint64_t opens_ = 0;
  LinkHandler on_link_;
  ErrorHandler on_error_;

  common::Metrics& metrics_;
  common::Counter& requests_;
  common::Counter& opens_total_;
  common::Gauge& bus_up_;
  common::Histogram& rtt_;
};

}  // namespace fieldhub::modbus
