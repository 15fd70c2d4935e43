// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_rtu/rtu_bus.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "common/log.h"

namespace fieldhub::modbus {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

unsigned bits_per_character(const config::SerialBus& bus) {
  return 1 + bus.data_bits + (bus.parity == 'N' ? 0 : 1) + bus.stop_bits;
}

}  // namespace

std::chrono::microseconds rtu_frame_gap(const config::SerialBus& bus) {
  // Serial line v1.02 §2.5.1.1: fixed 1750 µs above 19200 baud, where 3.5 characters would be
  // too short for UART drivers to honour.
  if (bus.baud > 19200) return std::chrono::microseconds{1750};
  return std::chrono::microseconds{
      static_cast<std::int64_t>(3.5 * bits_per_character(bus) * 1e6 / bus.baud + 0.5)};
}

std::chrono::microseconds rtu_transmit_time(const config::SerialBus& bus, std::size_t bytes) {
  return std::chrono::microseconds{static_cast<std::int64_t>(
      static_cast<double>(bytes) * bits_per_character(bus) * 1e6 / bus.baud + 0.5)};
}

RtuBus::RtuBus(asio::any_io_executor executor, config::SerialBus bus, RtuBusOptions options,
               common::Metrics& metrics)
    : executor_(executor),
      bus_(std::move(bus)),
      options_(options),
      gap_(rtu_frame_gap(bus_)),
      port_(executor),
      timer_(executor),
      reopen_timer_(executor),
      read_buffer_(512),
      rng_(static_cast<std::uint32_t>(
          std::hash<std::string>{}(bus_.name) ^
          static_cast<std::size_t>(Clock::now().time_since_epoch().count()))),
      metrics_(metrics),
      requests_(metrics.counter("fieldhub_modbus_rtu_requests_total",
                                "Modbus RTU requests sent on the serial bus",
                                {{"bus", bus_.name}})),
      opens_total_(metrics.counter("fieldhub_modbus_rtu_opens_total",
                                   "Times the serial bus's port was opened", {{"bus", bus_.name}})),
      bus_up_(metrics.gauge("fieldhub_modbus_rtu_bus_up", "1 while the serial bus's port is open",
                            {{"bus", bus_.name}})),
      rtt_(metrics.histogram("fieldhub_modbus_rtu_rtt_seconds",
                             "Modbus RTU request round-trip time (request sent to reply parsed)",
                             {{"bus", bus_.name}})) {}

void RtuBus::start() {
  if (!stopped_) return;
  stopped_ = false;
  open();
}

void RtuBus::stop() {
  stopped_ = true;
  reopen_timer_.cancel();
  fail_all("stopped");
}

std::uint64_t RtuBus::errors(std::string_view kind) const {
  return metrics_
      .counter("fieldhub_modbus_rtu_errors_total", "Modbus RTU bus errors by kind",
               {{"bus", bus_.name}, {"kind", std::string(kind)}})
      .value();
}

void RtuBus::count(std::string_view kind) {
  metrics_
      .counter("fieldhub_modbus_rtu_errors_total", "Modbus RTU bus errors by kind",
               {{"bus", bus_.name}, {"kind", std::string(kind)}})
      .inc();
  if (on_error_) on_error_(kind);
}

void RtuBus::send(Request request, Callback done) {
  if (!up_) {
    // Port down: answer at once (but not re-entrantly), so a dead bus costs no time.
    asio::post(executor_, [done = std::move(done)] {
      LinkResult r;
      r.outcome = Outcome::connection_lost;
      done(r);
    });
    return;
  }
  queue_.push_back(Pending{std::move(request), std::move(done), {}, {}});
  pump();
}

void RtuBus::open() {
  if (stopped_) return;
  ++generation_;
  boost::system::error_code ec;
  port_ = asio::serial_port(executor_);
  port_.open(bus_.device, ec);
  if (ec) return schedule_reopen("open " + bus_.device + ": " + ec.message());
  // asio's open() already put the line in raw mode; these are the bus's termios settings.
  using base = asio::serial_port_base;
  const auto parity = bus_.parity == 'E'   ? base::parity::even
                      : bus_.parity == 'O' ? base::parity::odd
                                           : base::parity::none;
  port_.set_option(base::baud_rate(bus_.baud), ec);
  if (!ec) port_.set_option(base::character_size(bus_.data_bits), ec);
  if (!ec) port_.set_option(base::parity(parity), ec);
  if (!ec) {
    port_.set_option(
        base::stop_bits(bus_.stop_bits == 2 ? base::stop_bits::two : base::stop_bits::one), ec);
  }
  if (!ec) port_.set_option(base::flow_control(base::flow_control::none), ec);
  if (ec) return schedule_reopen("configure " + bus_.device + ": " + ec.message());
  up_ = true;
  announced_down_ = false;
  ++opens_;
  opens_total_.inc();
  bus_up_.set(1);
  backoff_ = std::chrono::milliseconds{0};
  rx_.clear();
  last_activity_ = Clock::now();
  common::log(common::LogLevel::info, "modbus_rtu",
              bus_.name + " open on " + bus_.device + " at " + std::to_string(bus_.baud) + " baud");
  if (on_link_) on_link_(true, "opened");
  read_more();
  pump();
}

void RtuBus::schedule_reopen(const std::string& reason) {
  fail_all(reason);
  if (stopped_) return;
  backoff_ =
      backoff_.count() == 0 ? options_.reopen_min : std::min(backoff_ * 2, options_.reopen_max);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto delay =
      std::chrono::milliseconds(static_cast<std::int64_t>(backoff_.count() * jitter(rng_)));
  reopen_timer_.expires_after(delay);
  reopen_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->stopped_) return;
    self->open();
  });
}

void RtuBus::fail_all(const std::string& reason) {
  ++generation_;
  const bool was_up = up_;
  up_ = false;
  bus_up_.set(0);
  boost::system::error_code ec;
  port_.close(ec);
  timer_.cancel();
  rx_.clear();
  writing_ = false;
  std::vector<Pending> failed;
  if (in_flight_) failed.push_back(std::move(*in_flight_));
  in_flight_.reset();
  for (auto& p : queue_) failed.push_back(std::move(p));
  queue_.clear();
  // Reported when it goes down, and once if it never came up (a missing device file at start).
  if (was_up || (!announced_down_ && !stopped_)) {
    announced_down_ = true;
    common::log(common::LogLevel::warn, "modbus_rtu", bus_.name + " bus down: " + reason);
    if (on_link_) on_link_(false, reason);
  }
  for (auto& p : failed) {
    LinkResult r;
    r.outcome = Outcome::connection_lost;
    asio::post(executor_, [done = std::move(p.done), r] { done(r); });
  }
}

void RtuBus::pump() {
  if (!up_ || in_flight_ || writing_ || queue_.empty()) return;
  const auto now = Clock::now();
  // The first queued request whose unit is not waiting out a possible late reply.
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Pending& p) {
    auto q = quiet_until_.find(p.request.unit);
    return q == quiet_until_.end() || q->second <= now;
  });
  if (it == queue_.end()) {
    auto earliest = Clock::time_point::max();
    for (const auto& p : queue_) earliest = std::min(earliest, quiet_until_[p.request.unit]);
    return arm_timer(earliest);
  }
  if (now < last_activity_ + gap_) return arm_timer(last_activity_ + gap_);
  Pending p = std::move(*it);
  queue_.erase(it);
  rx_.clear();  // what came while idle was counted as a late reply
  noise_run_ = false;
  echo_pending_ = bus_.echo;
  tx_ = encode_rtu(p.request);
  const auto on_wire =
      rtu_transmit_time(bus_, tx_.size() + expected_rtu_reply_size(p.request)) + gap_;
  p.sent = now;
  p.deadline = now + on_wire + bus_.response_timeout;
  last_activity_ = now + rtu_transmit_time(bus_, tx_.size());
  in_flight_ = std::move(p);
  requests_.inc();
  writing_ = true;
  asio::async_write(port_, asio::buffer(tx_),
                    [self = shared_from_this(), gen = generation_](
                        const boost::system::error_code& e, std::size_t) {
                      if (gen != self->generation_) return;
                      self->writing_ = false;
                      if (e) return self->schedule_reopen("write: " + e.message());
                      self->pump();
                    });
  arm_timer(in_flight_->deadline);
}

void RtuBus::read_more() {
  port_.async_read_some(asio::buffer(read_buffer_),
                        [self = shared_from_this(), gen = generation_](
                            const boost::system::error_code& e, std::size_t n) {
                          if (gen != self->generation_) return;
                          if (e) return self->schedule_reopen("read: " + e.message());
                          self->on_bytes(n);
                        });
}

void RtuBus::on_bytes(std::size_t n) {
  last_activity_ = std::max(last_activity_, Clock::now());
  if (!in_flight_) {
    // Nothing asked: a late reply (after its timeout), a duplicate, or noise. Never kept for the
    // next request.
    if (rx_.empty()) count("late_reply");
    rx_.insert(rx_.end(), read_buffer_.begin(), read_buffer_.begin() + static_cast<long>(n));
    if (rx_.size() > 4096) rx_.clear();
    return read_more();
  }
  rx_.insert(rx_.end(), read_buffer_.begin(), read_buffer_.begin() + static_cast<long>(n));
  const std::uint64_t gen = generation_;
  parse();
  if (gen != generation_) return;  // a callback stopped the bus
  read_more();
}

void RtuBus::parse() {
  while (in_flight_ && !rx_.empty()) {
    Reply r = parse_rtu(in_flight_->request, rx_, echo_pending_);
    const auto drop = [&] {
      rx_.erase(rx_.begin(), rx_.begin() + static_cast<long>(std::min(r.consumed, rx_.size())));
    };
    switch (r.status) {
      case ReplyStatus::truncated:
        return;  // wait for more, until the deadline
      case ReplyStatus::noise:
        if (!noise_run_) count("noise");
        noise_run_ = true;
        drop();
        continue;
      case ReplyStatus::echo:
        echo_pending_ = false;
        noise_run_ = false;
        drop();
        continue;
      case ReplyStatus::wrong_unit:
        // Another slave's frame: most often a late reply to an earlier request. Skipped.
        count("wrong_unit");
        noise_run_ = false;
        drop();
        continue;
      case ReplyStatus::bad_crc:
        count("crc");
        break;
      default:
        break;
    }
    drop();
    if (!rx_.empty()) {
      count("noise");  // trailing bytes after the reply
      rx_.clear();
    }
    LinkResult result;
    result.outcome = Outcome::reply;
    result.reply = std::move(r);
    return complete(std::move(result));
  }
}

void RtuBus::arm_timer(Clock::time_point at) {
  timer_.expires_at(at);
  timer_.async_wait(
      [self = shared_from_this(), gen = generation_](const boost::system::error_code& e) {
        if (e || gen != self->generation_) return;
        self->on_timer();
      });
}

void RtuBus::on_timer() {
  const auto now = Clock::now();
  if (in_flight_) {
    if (now < in_flight_->deadline) return arm_timer(in_flight_->deadline);
    LinkResult result;
    if (!rx_.empty()) {
      // Part of a frame and then silence: the reply was cut.
      count("truncated");
      result.outcome = Outcome::reply;
      result.reply.status = ReplyStatus::truncated;
      rx_.clear();
    } else {
      count("timeout");
      quiet_until_[in_flight_->request.unit] = now + bus_.late_reply_window;
      result.outcome = Outcome::timeout;
    }
    return complete(std::move(result));
  }
  pump();
}

void RtuBus::complete(LinkResult result) {
  Pending p = std::move(*in_flight_);
  in_flight_.reset();
  if (result.outcome == Outcome::reply) {
    result.rtt = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p.sent);
    rtt_.observe(std::chrono::duration<double>(result.rtt).count());
  }
  const std::uint64_t gen = generation_;
  p.done(result);
  if (gen != generation_) return;
  pump();
}

}  // namespace fieldhub::modbus
