// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "adapters/modbus/faults.h"
#include "adapters/modbus/frame.h"
#include "common/metrics.h"

namespace fieldhub::modbus {

struct TcpLinkOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds response_timeout{500};  // RELIABILITY.md, Modbus defaults
  // Requests in flight at once on this connection. Many gateways answer only one at a time (and
  // some drop the second request silently), so 1 is the default; raise it for devices that
  // pipeline (Modbus messaging on TCP/IP v1.0b §4.2 allows it).
  std::size_t max_in_flight = 1;
  // Reconnect backoff 1-2-4-8-16-30 s, each ±20 % jitter (RELIABILITY.md).
  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{30000};
};

using TcpResult = LinkResult;

// One Modbus TCP connection to host:port, shared by every unit id behind it (a gateway).
// Requests are queued and sent up to max_in_flight at a time, each with its own transaction id;
// replies are matched by transaction id through the core's TcpFrameDecoder / check_tcp_reply, so a
// late reply (an id no longer waited for) is discarded and counted, never taken for another
// request. One timer per link watches the earliest response deadline. While the link is down
// every request completes at once with Outcome::connection_lost; the link reconnects on its own
// with jittered backoff.
//
// Single-threaded: every call and every callback runs on the executor given (the io executor or a
// strand). Owned through shared_ptr: pending handlers keep it alive until stop() has finished.
class TcpLink : public std::enable_shared_from_this<TcpLink> {
 public:
  using Callback = std::function<void(const TcpResult&)>;
  using LinkHandler = std::function<void(bool up, const std::string& reason)>;

  TcpLink(boost::asio::any_io_executor io, std::string host, std::uint16_t port,
          TcpLinkOptions options, common::Metrics& metrics);

  void start();
  // Closes the connection; outstanding requests complete with connection_lost. No reconnects.
  void stop();

  // Queues `request`; `done` is called exactly once (never inside send()).
  void send(Request request, Callback done);

  void on_link(LinkHandler handler) { on_link_ = std::move(handler); }

  bool up() const { return up_; }
  const std::string& target() const { return target_; }
  std::uint64_t late_replies() const { return late_replies_.value(); }
  std::uint64_t connects() const { return connects_; }

 private:
  struct Pending {
    Request request;
    Callback done;
    std::chrono::steady_clock::time_point sent;
    std::chrono::steady_clock::time_point deadline;
  };

  void connect();
  void on_connected();
  void schedule_reconnect(const std::string& reason);
  void fail_all(const std::string& reason);
  void pump();
  void write_more();
  void read_more();
  void on_bytes(std::size_t n);
  void arm_timer();
  void on_timer();
  void complete(Pending& p, TcpResult result);

  boost::asio::any_io_executor io_;
  std::string host_;
  std::uint16_t port_;
  std::string target_;
  TcpLinkOptions options_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;  // response deadlines and connect timeout
  boost::asio::steady_timer reconnect_timer_;
  TcpFrameDecoder decoder_;
  std::vector<std::uint8_t> read_buffer_;
  std::vector<std::uint8_t> write_buffer_;   // being written
  std::vector<std::uint8_t> write_pending_;  // queued behind it
  bool writing_ = false;
  bool connecting_ = false;
  bool up_ = false;
  bool stopped_ = true;
  std::uint64_t generation_ = 0;  // bumped on every close, so stale handlers do nothing
  std::uint16_t next_transaction_ = 1;
  std::deque<Pending> queue_;                   // not yet sent
  std::map<std::uint16_t, Pending> in_flight_;  // by transaction id
  std::chrono::steady_clock::time_point connect_deadline_;
  std::chrono::milliseconds backoff_{0};
  std::minstd_rand rng_;
  std::uint64_t connects_ = 0;
  LinkHandler on_link_;

  common::Counter& requests_;
  common::Counter& timeouts_;
  common::Counter& late_replies_;
  common::Counter& reconnects_;
  common::Gauge& link_up_;
  common::Histogram& rtt_;
};

}  // namespace fieldhub::modbus
