// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/tcp_link.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "common/log.h"

namespace fieldhub::modbus {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

TcpLink::TcpLink(asio::any_io_executor io, std::string host, std::uint16_t port,
                 TcpLinkOptions options, common::Metrics& metrics)
    : io_(io),
      host_(std::move(host)),
      port_(port),
      target_(host_ + ":" + std::to_string(port_)),
      options_(options),
      socket_(io),
      timer_(io),
      reconnect_timer_(io),
      read_buffer_(4096),
      rng_(static_cast<std::uint32_t>(
          std::hash<std::string>{}(target_) ^
          static_cast<std::size_t>(Clock::now().time_since_epoch().count()))),
      requests_(metrics.counter("fieldhub_modbus_requests_total", "Modbus requests sent",
                                {{"target", target_}})),
      timeouts_(metrics.counter("fieldhub_modbus_timeouts_total",
                                "Modbus requests without a reply within the response timeout",
                                {{"target", target_}})),
      late_replies_(
          metrics.counter("fieldhub_modbus_late_replies_total",
                          "Modbus TCP replies for a transaction no longer waited for, discarded",
                          {{"target", target_}})),
      reconnects_(metrics.counter("fieldhub_modbus_connects_total",
                                  "Modbus TCP connections established", {{"target", target_}})),
      link_up_(metrics.gauge("fieldhub_modbus_link_up", "1 while the Modbus TCP connection is up",
                             {{"target", target_}})),
      rtt_(metrics.histogram("fieldhub_modbus_rtt_seconds", "Modbus request round-trip time")) {
  if (options_.max_in_flight == 0) options_.max_in_flight = 1;
}

void TcpLink::start() {
  if (!stopped_) return;
  stopped_ = false;
  connect();
}

void TcpLink::stop() {
  stopped_ = true;
  reconnect_timer_.cancel();
  fail_all("stopped");
}

void TcpLink::send(Request request, Callback done) {
  Pending p{std::move(request), std::move(done), {}, {}};
  if (!up_) {
    // Not connected: answer at once (but not re-entrantly), so a dead target costs no time.
    asio::post(io_, [done = std::move(p.done)] {
      TcpResult r;
      r.outcome = Outcome::connection_lost;
      done(r);
    });
    return;
  }
  queue_.push_back(std::move(p));
  pump();
}

void TcpLink::connect() {
  if (stopped_) return;
  connecting_ = true;
  const std::uint64_t gen = ++generation_;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host_, ec);
  if (ec) {
    // Host names are resolved synchronously once per attempt: targets are addresses in practice.
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec || results.empty()) {
      connecting_ = false;
      schedule_reconnect("resolve " + host_ + ": " + ec.message());
      return;
    }
    socket_ = tcp::socket(io_);
    connect_deadline_ = Clock::now() + options_.connect_timeout;
    arm_timer();
    socket_.async_connect(results.begin()->endpoint(),
                          [self = shared_from_this(), gen](const boost::system::error_code& e) {
                            if (gen != self->generation_ || self->stopped_) return;
                            self->connecting_ = false;
                            if (e) return self->schedule_reconnect("connect: " + e.message());
                            self->on_connected();
                          });
    return;
  }
  socket_ = tcp::socket(io_);
  connect_deadline_ = Clock::now() + options_.connect_timeout;
  arm_timer();
  socket_.async_connect(tcp::endpoint(address, port_),
                        [self = shared_from_this(), gen](const boost::system::error_code& e) {
                          if (gen != self->generation_ || self->stopped_) return;
                          self->connecting_ = false;
                          if (e) return self->schedule_reconnect("connect: " + e.message());
                          self->on_connected();
                        });
}

void TcpLink::on_connected() {
  boost::system::error_code ec;
  // Requests are a few bytes each: Nagle would hold the second of two pipelined ones for an ACK.
  socket_.set_option(tcp::no_delay(true), ec);
  up_ = true;
  ++connects_;
  reconnects_.inc();
  link_up_.set(1);
  backoff_ = std::chrono::milliseconds{0};
  decoder_.reset();
  arm_timer();
  if (on_link_) on_link_(true, "connected");
  read_more();
  pump();
}

void TcpLink::schedule_reconnect(const std::string& reason) {
  fail_all(reason);
  if (stopped_) return;
  backoff_ = backoff_.count() == 0 ? options_.reconnect_min
                                   : std::min(backoff_ * 2, options_.reconnect_max);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto delay =
      std::chrono::milliseconds(static_cast<std::int64_t>(backoff_.count() * jitter(rng_)));
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->stopped_) return;
    self->connect();
  });
}

void TcpLink::fail_all(const std::string& reason) {
  ++generation_;
  const bool was_up = up_;
  up_ = false;
  connecting_ = false;
  link_up_.set(0);
  boost::system::error_code ec;
  socket_.close(ec);
  timer_.cancel();
  writing_ = false;
  write_buffer_.clear();
  write_pending_.clear();
  decoder_.reset();
  std::vector<Pending> failed;
  for (auto& [id, p] : in_flight_) failed.push_back(std::move(p));
  in_flight_.clear();
  for (auto& p : queue_) failed.push_back(std::move(p));
  queue_.clear();
  if (was_up) {
    common::log(common::LogLevel::warn, "modbus_tcp", target_ + " link down: " + reason);
    if (on_link_) on_link_(false, reason);
  }
  for (auto& p : failed) {
    TcpResult r;
    r.outcome = Outcome::connection_lost;
    asio::post(io_, [done = std::move(p.done), r] { done(r); });
  }
}

void TcpLink::pump() {
  if (!up_) return;
  bool sent = false;
  while (!queue_.empty() && in_flight_.size() < options_.max_in_flight) {
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    // Skip ids still in flight (possible only with a window near 65536).
    while (in_flight_.count(next_transaction_) != 0) ++next_transaction_;
    const std::uint16_t id = next_transaction_++;
    const auto frame = encode_tcp(id, p.request);
    write_pending_.insert(write_pending_.end(), frame.begin(), frame.end());
    p.sent = Clock::now();
    p.deadline = p.sent + options_.response_timeout;
    in_flight_.emplace(id, std::move(p));
    requests_.inc();
    sent = true;
  }
  if (sent) {
    write_more();
    arm_timer();
  }
}

void TcpLink::write_more() {
  if (writing_ || write_pending_.empty() || !up_) return;
  writing_ = true;
  write_buffer_.swap(write_pending_);
  write_pending_.clear();
  asio::async_write(socket_, asio::buffer(write_buffer_),
                    [self = shared_from_this(), gen = generation_](
                        const boost::system::error_code& e, std::size_t) {
                      if (gen != self->generation_) return;
                      self->writing_ = false;
                      if (e) return self->schedule_reconnect("write: " + e.message());
                      self->write_buffer_.clear();
                      self->write_more();
                    });
}

void TcpLink::read_more() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this(), gen = generation_](
                              const boost::system::error_code& e, std::size_t n) {
                            if (gen != self->generation_) return;
                            if (e) return self->schedule_reconnect("read: " + e.message());
                            self->on_bytes(n);
                          });
}

void TcpLink::on_bytes(std::size_t n) {
  decoder_.feed(std::span<const std::uint8_t>(read_buffer_.data(), n));
  const auto now = Clock::now();
  while (auto frame = decoder_.next()) {
    auto it = in_flight_.find(frame->transaction);
    if (it == in_flight_.end()) {
      // A reply to a request that already timed out (or was never sent): never attributed to
      // another request (RELIABILITY.md: libmodbus 255, goburrow/modbus 64, pymodbus 538).
      late_replies_.inc();
      continue;
    }
    Reply reply = check_tcp_reply(frame->transaction, it->second.request, *frame);
    if (reply.status == ReplyStatus::wrong_unit) {
      // Ours by transaction id but for another unit: a confused gateway; treat as malformed.
      reply.status = ReplyStatus::bad_length;
    }
    Pending p = std::move(it->second);
    in_flight_.erase(it);
    TcpResult r;
    r.outcome = Outcome::reply;
    r.reply = std::move(reply);
    r.rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - p.sent);
    rtt_.observe(std::chrono::duration<double>(r.rtt).count());
    complete(p, std::move(r));
    if (!up_) return;  // a callback may have stopped the link
  }
  if (decoder_.failed()) {
    // Modbus TCP has no frame delimiter: after an impossible MBAP header the stream is lost.
    return schedule_reconnect("bad_frame");
  }
  pump();
  read_more();
}

void TcpLink::complete(Pending& p, TcpResult result) {
  auto done = std::move(p.done);
  done(result);
}

void TcpLink::arm_timer() {
  Clock::time_point next = Clock::time_point::max();
  if (connecting_) next = connect_deadline_;
  for (const auto& [id, p] : in_flight_) next = std::min(next, p.deadline);
  if (next == Clock::time_point::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(next);
  timer_.async_wait(
      [self = shared_from_this(), gen = generation_](const boost::system::error_code& e) {
        if (e || gen != self->generation_) return;
        self->on_timer();
      });
}

void TcpLink::on_timer() {
  const auto now = Clock::now();
  if (connecting_) {
    if (now >= connect_deadline_) return schedule_reconnect("connect timeout");
    return arm_timer();
  }
  std::vector<Pending> expired;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second));
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  const std::uint64_t gen = generation_;
  for (auto& p : expired) {
    timeouts_.inc();
    TcpResult r;
    r.outcome = Outcome::timeout;
    complete(p, std::move(r));
    if (gen != generation_) return;
  }
  pump();
  arm_timer();
}

}  // namespace fieldhub::modbus
