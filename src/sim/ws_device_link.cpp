// SPDX-License-Identifier: Apache-2.0
#include "sim/ws_device_link.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <map>
#include <optional>
#include <random>

#include "common/log.h"
#include "sim/device_sim.h"

namespace fieldhub::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t window = 16;          // unanswered telemetry messages (the protocol's window)
constexpr std::size_t max_waiting = 10000;  // a long outage keeps the newest messages
constexpr auto backoff_min = std::chrono::milliseconds{500};
constexpr auto backoff_max = std::chrono::milliseconds{8000};

// A number of the answer frame {"ack": n} or {"nack": n, ...}; nullopt for anything else.
std::optional<std::uint64_t> answered_id(std::string_view frame, std::string_view key) {
  const std::string prefix = "{\"" + std::string(key) + "\":";
  if (!frame.starts_with(prefix)) return std::nullopt;
  std::uint64_t id = 0;
  std::size_t i = prefix.size();
  if (i >= frame.size() || frame[i] < '0' || frame[i] > '9') return std::nullopt;
  for (; i < frame.size() && frame[i] >= '0' && frame[i] <= '9'; ++i)
    id = id * 10 + (frame[i] - '0');
  return id;
}

}  // namespace

struct WsDeviceLink::Impl : std::enable_shared_from_this<Impl> {
  struct Message {
    std::string text;
    bool event = false;
  };

  Impl(asio::any_io_executor executor, Options o)
      : io(executor),
        options(std::move(o)),
        resolver(executor),
        timer(executor),
        rng(std::random_device{}()) {}

  void connect() {
    if (stopped) return;
    ws.emplace(io);
    ws->set_option(
        websocket::stream_base::decorator([token = options.token](websocket::request_type& req) {
          req.set(http::field::authorization, "Bearer " + token);
        }));
    ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    resolver.async_resolve(
        options.host, std::to_string(options.port),
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec) return self->retry("resolve: " + ec.message());
          beast::get_lowest_layer(*self->ws).expires_after(std::chrono::seconds{5});
          beast::get_lowest_layer(*self->ws).async_connect(
              results, [self](beast::error_code connect_ec, const tcp::endpoint&) {
                if (connect_ec) return self->retry("connect: " + connect_ec.message());
                beast::get_lowest_layer(*self->ws).expires_never();
                self->ws->async_handshake(
                    self->options.host + ":" + std::to_string(self->options.port),
                    self->options.path + "/" + self->options.device_id,
                    [self](beast::error_code hs_ec) {
                      if (hs_ec) return self->retry("upgrade: " + hs_ec.message());
                      self->on_open();
                    });
              });
        });
  }

  void on_open() {
    open = true;
    backoff = backoff_min;
    common::log(common::LogLevel::info, "sim", options.device_id + ": connected over WebSocket");
    read();
    pump();
  }

  void retry(const std::string& why) {
    open = false;
    writing = false;
    if (stopped) return;
    common::log(common::LogLevel::warn, "sim", options.device_id + ": " + why);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    timer.expires_after(
        std::chrono::duration_cast<std::chrono::milliseconds>(backoff * jitter(rng)));
    backoff = std::min(backoff * 2, backoff_max);
    // Unanswered messages go back, in their order, to be resent on the next connection.
    for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
      (it->second.event ? events : telemetry).push_front(std::move(it->second));
    }
    in_flight.clear();
    if (ws) {
      beast::error_code ec;
      beast::get_lowest_layer(*ws).socket().close(ec);
    }
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->connect();
    });
  }

  void read() {
    ws->async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->retry("connection lost: " + ec.message());
      const std::string frame = beast::buffers_to_string(self->buffer.data());
      self->buffer.consume(self->buffer.size());
      if (auto id = answered_id(frame, "ack")) {
        if (self->in_flight.erase(*id) > 0) ++self->acked;
      } else if (auto nack = answered_id(frame, "nack")) {
        if (self->in_flight.erase(*nack) > 0) ++self->nacked;
        common::log(common::LogLevel::warn, "sim", self->options.device_id + ": refused: " + frame);
      }
      self->pump();
      self->read();
    });
  }

  std::size_t telemetry_in_flight() const {
    std::size_t n = 0;
    for (const auto& [id, m] : in_flight) n += m.event ? 0 : 1;
    return n;
  }

  void pump() {
    if (!open || writing) return;
    std::deque<Message>* from = nullptr;
    if (!events.empty()) {
      from = &events;
    } else if (!telemetry.empty() && telemetry_in_flight() < window) {
      from = &telemetry;
    }
    if (from == nullptr) return;
    Message m = std::move(from->front());
    from->pop_front();
    const std::uint64_t id = next_id++;
    outgoing = ws_message(id, m.event, m.text);
    in_flight.emplace(id, std::move(m));
    writing = true;
    ws->text(true);
    ws->async_write(asio::buffer(outgoing),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing = false;
                      if (ec) return;  // the read fails too and reconnects
                      self->pump();
                    });
  }

  asio::any_io_executor io;
  Options options;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  std::mt19937 rng;
  std::chrono::milliseconds backoff = backoff_min;
  std::deque<Message> events;
  std::deque<Message> telemetry;
  std::map<std::uint64_t, Message> in_flight;
  std::string outgoing;
  std::uint64_t next_id = 1;
  std::uint64_t acked = 0;
  std::uint64_t nacked = 0;
  bool open = false;
  bool writing = false;
  bool stopped = false;
};

WsDeviceLink::WsDeviceLink(asio::any_io_executor io, Options options)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(options))) {}

WsDeviceLink::~WsDeviceLink() {
  stop();
}

void WsDeviceLink::start() {
  impl_->connect();
}

void WsDeviceLink::stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
  impl_->resolver.cancel();
  if (impl_->ws) {
    beast::error_code ec;
    beast::get_lowest_layer(*impl_->ws).socket().close(ec);
  }
}

void WsDeviceLink::send(const std::string& body, bool event) {
  if (body.size() < 2 || body.front() != '{') return;
  auto& queue = event ? impl_->events : impl_->telemetry;
  if (queue.size() >= max_waiting) queue.pop_front();
  queue.push_back({body, event});
  impl_->pump();
}

std::uint64_t WsDeviceLink::acknowledged() const {
  return impl_->acked;
}

std::uint64_t WsDeviceLink::refused() const {
  return impl_->nacked;
}

}  // namespace fieldhub::sim
