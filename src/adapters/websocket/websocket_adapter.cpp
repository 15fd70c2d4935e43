// SPDX-License-Identifier: Apache-2.0
#include "adapters/websocket/websocket_adapter.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "adapters/websocket/ws_message.h"
#include "common/hash.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "normalize/normalizer.h"

namespace fieldhub::adapters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ws = beast::websocket;
using tcp = asio::ip::tcp;
using websocket::MessageHeader;
using websocket::MessageKind;

namespace {

constexpr auto handshake_timeout = std::chrono::seconds{10};
constexpr std::size_t max_header_bytes = 8 * 1024;
// Answers waiting to be written to one device: a device that never reads them is cut off.
constexpr std::size_t max_queued_frames = 4096;
// After a refused token, that device id is refused (429) without looking for this long: brute
// force is throttled per device.
constexpr auto auth_backoff = std::chrono::seconds{1};
// Messages up to this multiple of websocket.max_message still arrive whole, so they are refused
// as "oversized" with a dead letter and a nack; larger ones are cut off by Beast (close 1009)
// before they are buffered.
constexpr std::size_t hard_limit_factor = 4;

std::string error_body(std::string_view message) {
  std::string out;
  common::JsonWriter(out).begin_object().field("error", message).end_object();
  return out;
}

}  // namespace

class DeviceSession;
namespace {
class Handshake;
}  // namespace

struct WebSocketAdapter::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor, const config::Config& config, pipeline::Pipeline& p,
       common::Metrics& m, const common::Clock& c, pipeline::AckTarget& target)
      : io(executor),
        settings(config.websocket),
        normalizer(config),
        decoder(config.websocket.max_message * hard_limit_factor),
        pipeline(p),
        metrics(m),
        clock(c),
        health(p.health()),
        ack_target(target),
        dead_letter_cap(config.pipeline.dead_letter_payload_cap),
        acceptor(executor),
        accept_retry(executor),
        connections(m.gauge("fieldhub_websocket_connections", "Open WebSocket device connections")),
        messages(m.counter("fieldhub_websocket_messages_total",
                           "Messages read from WebSocket devices")) {
    for (const auto& cred : config.websocket_credentials)
      tokens.emplace(cred.device_id, cred.token);
  }

  void do_accept();
  void stop();
  void count_error(std::string_view link, std::string_view kind) {
    metrics
        .counter("fieldhub_websocket_errors_total", "WebSocket device errors, by kind",
                 {{"kind", std::string(kind)}})
        .inc();
    if (health != nullptr && !link.empty()) health->link_error(link, kind);
  }
  void on_saturation(bool saturated);

  asio::any_io_executor io;
  config::WebSocketConfig settings;
  std::unordered_map<std::string, std::string> tokens;  // device id → token
  normalize::Normalizer normalizer;
  websocket::MessageDecoder decoder;
  pipeline::Pipeline& pipeline;
  common::Metrics& metrics;
  const common::Clock& clock;
  health::HealthTracker* health;
  pipeline::AckTarget& ack_target;
  std::size_t dead_letter_cap;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  common::Gauge& connections;
  common::Counter& messages;
  bool running = false;
  std::uint32_t next_session = 1;
  // Open connections by number, owned here: a connection that is not being read (backpressure)
  // and has nothing to write has no operation outstanding to keep it alive.
  std::unordered_map<std::uint32_t, std::shared_ptr<DeviceSession>> sessions;
  std::unordered_map<std::string, std::weak_ptr<DeviceSession>> by_device;
  std::vector<std::weak_ptr<Handshake>> handshakes;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> auth_failures;
};

// One device's connection after the upgrade. The adapter holds it (Impl::sessions) until end().
class DeviceSession final : public std::enable_shared_from_this<DeviceSession> {
 public:
  DeviceSession(beast::tcp_stream stream, std::shared_ptr<WebSocketAdapter::Impl> impl,
                std::string device_id, std::uint32_t number)
      : ws_(std::move(stream)),
        impl_(std::move(impl)),
        device_id_(std::move(device_id)),
        link_("ws:" + device_id_),
        number_(number),
        ping_timer_(impl_->io) {}

  void run(http::request<http::string_body> req) {
    beast::get_lowest_layer(ws_).expires_never();
    set_idle_timeout(true);
    ws_.read_message_max(impl_->settings.max_message * hard_limit_factor);
    ws_.set_option(ws::stream_base::decorator(
        [](ws::response_type& res) { res.set(http::field::server, "fieldhub"); }));
    ws_.control_callback([this](ws::frame_type kind, beast::string_view) {
      if (kind == ws::frame_type::pong && ping_outstanding_) on_pong();
    });
    req_ = std::move(req);
    ws_.async_accept(req_,
                     beast::bind_front_handler(&DeviceSession::on_accept, shared_from_this()));
  }

  // The pipeline says message `seq` is durable (or its dead letter is).
  void answer(std::uint32_t seq) {
    const auto it = pending_.find(seq);
    if (it == pending_.end()) return;
    const Pending p = std::move(it->second);
    pending_.erase(it);
    if (!p.id && p.nack_reason.empty()) return;  // a status message: nothing to answer
    queue(p.nack_reason.empty() ? websocket::ack_frame(*p.id)
                                : websocket::nack_frame(p.id, p.nack_reason));
  }

  // Another connection of the same device took over: this one goes without taking the link down.
  void replace() {
    replaced_ = true;
    close(ws::close_reason(ws::close_code::policy_error, "replaced by a new connection"));
  }

  // fieldhub is stopping: the devices are not at fault, their links stay as they are.
  void shutdown() {
    replaced_ = true;
    end("fieldhub stopping");
  }

  // Beast closes a connection from which no frame arrived for idle_timeout (it pings once at half
  // of it; our own pings, more frequent, keep it from needing to). Off while the connection is not
  // read because of backpressure: the device is not at fault.
  void set_idle_timeout(bool on) {
    ws::stream_base::timeout timeout;
    timeout.handshake_timeout = handshake_timeout;
    timeout.idle_timeout = on ? impl_->settings.idle_timeout : ws::stream_base::none();
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
  }

  // The pipeline is relieved: parked telemetry goes first, then reading resumes.
  void relieved() {
    if (ended_) return;
    while (!parked_.empty() && !impl_->pipeline.saturated()) {
      Parked p = std::move(parked_.front());
      parked_.pop_front();
      submit(p.payload, p.header, p.received);
    }
    if (parked_.size() < WebSocketAdapter::max_parked && !reading_ && open_) {
      set_idle_timeout(true);
      do_read();
    }
  }

 private:
  struct Pending {
    std::optional<std::uint64_t> id;
    std::string nack_reason;  // empty: ack
  };
  struct Parked {
    std::string payload;
    MessageHeader header;
    model::Timestamp received;
  };
  struct Out {
    bool ping = false;
    std::string text;
  };

  void on_accept(beast::error_code ec) {
    if (ec) {
      end("handshake failed: " + ec.message());
      return;
    }
    open_ = true;
    impl_->connections.add(1);
    common::log(common::LogLevel::info, "websocket", "device " + device_id_ + " connected");
    if (impl_->health != nullptr) impl_->health->link_up(link_);
    schedule_ping();
    do_read();
  }

  void do_read() {
    reading_ = true;
    ws_.async_read(buffer_, beast::bind_front_handler(&DeviceSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ended_) return;
    if (ec) {
      if (ec == ws::error::closed) {
        end("closed by device");
      } else if (ec == ws::error::message_too_big || ec == ws::error::buffer_overflow) {
        impl_->count_error(link_, "too_big");
        end("message too big");
      } else if (ec == beast::error::timeout) {
        impl_->count_error(link_, "timeout");
        end("idle timeout");
      } else if (ec == ws::condition::protocol_violation) {
        impl_->count_error(link_, "bad_frame");  // a protocol violation Beast detected
        end("bad frame: " + ec.message());
      } else {
        end("connection lost: " + ec.message());
      }
      return;
    }
    if (!ws_.got_text()) {
      impl_->count_error(link_, "bad_frame");
      buffer_.consume(buffer_.size());
      close(ws::close_reason(ws::close_code::unknown_data, "text messages only"));
      return;
    }
    impl_->messages.inc();
    std::string payload = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    handle(std::move(payload), impl_->clock.now());
    if (parked_.size() < WebSocketAdapter::max_parked) {
      do_read();
    } else {
      set_idle_timeout(false);  // TCP holds the rest until relieved()
    }
  }

  void handle(std::string payload, model::Timestamp received) {
    MessageHeader h = impl_->decoder.decode(payload);
    if (h.outcome == MessageHeader::Outcome::ok && h.kind == MessageKind::status) {
      if (impl_->health != nullptr) {
        if (h.online) {
          impl_->health->device_online(device_id_);
        } else {
          impl_->health->device_offline(device_id_, "status offline");
        }
      }
      // Nothing to store; answered in order with the messages before it.
      const std::uint32_t seq = next_seq_++;
      pending_[seq] = {h.id, {}};
      impl_->pipeline.acknowledge_in_order({&impl_->ack_target, cookie(seq)});
      return;
    }
    if (h.outcome == MessageHeader::Outcome::ok && h.kind == MessageKind::telemetry &&
        (impl_->pipeline.saturated() || !parked_.empty())) {
      // Parked, not refused: submitted in order once the pipeline is relieved. Reading goes on
      // (up to max_parked) so an event behind it is not held up.
      parked_.push_back({std::move(payload), std::move(h), received});
      return;
    }
    submit(payload, h, received);
  }

  void submit(const std::string& payload, const MessageHeader& h, model::Timestamp received) {
    pipeline::Envelope env;
    if (h.outcome == MessageHeader::Outcome::invalid) {
      pipeline::DeadLetter d;
      d.received_ts = received;
      d.source = link_;
      d.reason = "invalid_envelope";
      d.detail = h.detail;
      d.payload = payload.substr(0, impl_->dead_letter_cap);
      env.dead_letters.push_back(std::move(d));
    } else {
      // Not JSON at all: the Normalizer names the reason (invalid_json, invalid_utf8, ...).
      const auto kind = h.outcome == MessageHeader::Outcome::ok && h.kind == MessageKind::event
                            ? normalize::Normalizer::Kind::event
                            : normalize::Normalizer::Kind::telemetry;
      env = impl_->normalizer.normalize_device(device_id_, kind, payload, received,
                                               {link_, "websocket", link_});
    }
    std::string nack_reason;
    if (env.readings.empty() && env.events.empty() && !env.dead_letters.empty()) {
      nack_reason = env.dead_letters.front().reason;
      impl_->count_error(link_, nack_reason == "oversized" ? "too_big" : "bad_json");
    }
    const std::uint32_t seq = next_seq_++;
    pending_[seq] = {h.id, std::move(nack_reason)};
    env.ack = {&impl_->ack_target, cookie(seq)};
    // The id is in the payload, so the same bytes again are a resend of the same message.
    const std::uint64_t digest =
        common::Fnv1a().add(device_id_).add(std::string_view{"\0", 1}).add(payload).value();
    impl_->pipeline.submit(std::move(env), digest);
  }

  std::uint64_t cookie(std::uint32_t seq) const { return (std::uint64_t{number_} << 32) | seq; }

  void queue(std::string text) {
    if (ended_) return;
    if (out_.size() >= max_queued_frames) {
      impl_->count_error(link_, "timeout");
      end("device does not read its acknowledgements");
      return;
    }
    out_.push_back({false, std::move(text)});
    do_write();
  }

  void do_write() {
    if (writing_ || out_.empty() || !open_ || ended_) return;
    writing_ = true;
    if (out_.front().ping) {
      ping_sent_ = std::chrono::steady_clock::now();
      ping_outstanding_ = true;
      ws_.async_ping({}, beast::bind_front_handler(&DeviceSession::on_write, shared_from_this()));
      return;
    }
    ws_.text(true);
    ws_.async_write(
        asio::buffer(out_.front().text),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (!out_.empty()) out_.pop_front();
    if (ec) {
      if (!ended_) end("connection lost: " + ec.message());
      return;
    }
    do_write();
  }

  void schedule_ping() {
    ping_timer_.expires_after(impl_->settings.ping_interval);
    ping_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->ended_) return;
      if (!self->ping_outstanding_ && self->out_.size() < max_queued_frames) {
        self->out_.push_back({true, {}});
        self->do_write();
      }
      self->schedule_ping();
    });
  }

  void on_pong() {
    ping_outstanding_ = false;
    const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - ping_sent_);
    if (impl_->health != nullptr) impl_->health->link_rtt(link_, rtt);
  }

  void close(const ws::close_reason& reason) {
    if (ended_ || closing_) return;
    closing_ = true;
    if (!open_) {
      end(std::string(reason.reason.c_str()));
      return;
    }
    ws_.async_close(reason, [self = shared_from_this(), why = std::string(reason.reason.c_str())](
                                beast::error_code) { self->end(why); });
  }

  // The connection is over: the link goes down (the device offline "link down"), unanswered
  // messages stay unanswered (the device resends them on its next connection).
  void end(const std::string& why) {
    if (ended_) return;
    ended_ = true;
    const auto self = shared_from_this();  // erasing it from the adapter must not destroy it here
    ping_timer_.cancel();
    pending_.clear();
    parked_.clear();
    impl_->sessions.erase(number_);
    const auto it = impl_->by_device.find(device_id_);
    if (it != impl_->by_device.end() && it->second.lock().get() == this) {
      impl_->by_device.erase(it);
    }
    if (open_) {
      impl_->connections.add(-1);
      common::log(common::LogLevel::info, "websocket",
                  "device " + device_id_ + " disconnected: " + why);
      if (!replaced_ && impl_->health != nullptr) impl_->health->link_down(link_, why);
    }
    open_ = false;
    beast::error_code ec;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  ws::stream<beast::tcp_stream> ws_;
  std::shared_ptr<WebSocketAdapter::Impl> impl_;
  std::string device_id_;
  std::string link_;
  std::uint32_t number_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  std::uint32_t next_seq_ = 1;
  std::unordered_map<std::uint32_t, Pending> pending_;
  std::deque<Parked> parked_;
  std::deque<Out> out_;
  asio::steady_timer ping_timer_;
  std::chrono::steady_clock::time_point ping_sent_;
  bool ping_outstanding_ = false;
  bool writing_ = false;
  bool reading_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool ended_ = false;
  bool replaced_ = false;
};

namespace {

// Reads the upgrade request, checks device and token, and hands the stream to a DeviceSession;
// refuses with an HTTP status and a JSON reason otherwise.
class Handshake final : public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(tcp::socket socket, std::shared_ptr<WebSocketAdapter::Impl> impl)
      : stream_(std::move(socket)), impl_(std::move(impl)) {}

  void run() {
    parser_.header_limit(max_header_bytes);
    parser_.body_limit(0);
    stream_.expires_after(handshake_timeout);
    http::async_read(stream_, buffer_, parser_,
                     beast::bind_front_handler(&Handshake::on_read, shared_from_this()));
  }

  void shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == beast::error::timeout) impl_->count_error({}, "timeout");
      if (ec == http::error::header_limit || ec == http::error::body_limit) {
        impl_->count_error({}, "too_big");
      } else if (ec != beast::error::timeout && ec != http::error::end_of_stream &&
                 ec != asio::error::operation_aborted) {
        impl_->count_error({}, "bad_frame");  // not HTTP
      }
      return;
    }
    auto req = parser_.release();
    const auto id = websocket::device_from_target(req.target(), impl_->settings.path);
    const auto token = id ? impl_->tokens.find(std::string(*id)) : impl_->tokens.end();
    if (token == impl_->tokens.end()) {
      impl_->count_error({}, "unknown_device");
      return refuse(http::status::not_found, id ? "unknown device"
                                                : "not a device endpoint: connect to " +
                                                      impl_->settings.path + "/<device id>");
    }
    const std::string device_id = token->first;
    const std::string link = "ws:" + device_id;
    if (!ws::is_upgrade(req)) {
      impl_->count_error(link, "bad_frame");
      return refuse(http::status::upgrade_required, "this endpoint is a WebSocket");
    }
    if (!req[http::field::origin].empty()) {
      // A browser page must never act as a device.
      impl_->count_error(link, "auth");
      return refuse(http::status::forbidden, "origin not allowed");
    }
    const auto now = std::chrono::steady_clock::now();
    const auto failed = impl_->auth_failures.find(device_id);
    if (failed != impl_->auth_failures.end() && now - failed->second < auth_backoff) {
      impl_->count_error(link, "auth");
      return refuse(http::status::too_many_requests, "too many attempts: retry later");
    }
    const auto presented = websocket::bearer_token(req[http::field::authorization]);
    if (!presented || !websocket::token_equals(*presented, token->second)) {
      impl_->count_error(link, "auth");
      impl_->auth_failures[device_id] = now;
      common::log(common::LogLevel::warn, "websocket",
                  "device " + device_id + " refused: " + (presented ? "bad token" : "no token"));
      return refuse(http::status::unauthorized, presented ? "bad token" : "no token");
    }
    impl_->auth_failures.erase(device_id);
    const std::uint32_t number = impl_->next_session++;
    auto session = std::make_shared<DeviceSession>(std::move(stream_), impl_, device_id, number);
    const auto previous = impl_->by_device.find(device_id);
    if (previous != impl_->by_device.end()) {
      if (auto old = previous->second.lock()) old->replace();
    }
    impl_->by_device[device_id] = session;
    impl_->sessions[number] = session;
    session->run(std::move(req));
  }

  void refuse(http::status status, std::string_view reason) {
    res_.result(status);
    res_.version(11);
    res_.set(http::field::server, "fieldhub");
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(false);
    res_.body() = error_body(reason);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<WebSocketAdapter::Impl> impl_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  http::response<http::string_body> res_;
};

}  // namespace

void WebSocketAdapter::Impl::do_accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->running) return;
    if (ec) {
      common::log(common::LogLevel::warn, "websocket", "accept failed: " + ec.message());
      self->accept_retry.expires_after(std::chrono::milliseconds{100});
      self->accept_retry.async_wait([self](beast::error_code wait_ec) {
        if (!wait_ec && self->running) self->do_accept();
      });
      return;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);  // acks and alarms: latency over batching
    std::erase_if(self->handshakes, [](const auto& h) { return h.expired(); });
    auto handshake = std::make_shared<Handshake>(std::move(socket), self);
    self->handshakes.push_back(handshake);
    handshake->run();
    self->do_accept();
  });
}

void WebSocketAdapter::Impl::on_saturation(bool saturated) {
  if (saturated) return;  // sessions park telemetry as they read it
  std::vector<std::shared_ptr<DeviceSession>> live;
  for (const auto& [number, session] : sessions) live.push_back(session);
  for (const auto& s : live) s->relieved();
}

void WebSocketAdapter::Impl::stop() {
  if (!running) return;
  running = false;
  beast::error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  for (const auto& weak : handshakes) {
    if (auto h = weak.lock()) h->shutdown();
  }
  handshakes.clear();
  std::vector<std::shared_ptr<DeviceSession>> live;
  for (const auto& [number, session] : sessions) live.push_back(session);
  for (const auto& s : live) s->shutdown();
}

WebSocketAdapter::WebSocketAdapter(boost::asio::any_io_executor io, const config::Config& config,
                                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                                   const common::Clock& clock)
    : impl_(std::make_shared<Impl>(io, config, pipeline, metrics, clock, *this)) {
  pipeline.on_saturation([weak = std::weak_ptr<Impl>(impl_)](bool saturated) {
    if (auto impl = weak.lock()) impl->on_saturation(saturated);
  });
}

WebSocketAdapter::~WebSocketAdapter() {
  impl_->stop();
}

void WebSocketAdapter::start() {
  auto& s = impl_->settings;
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.listen_address, ec);
  const tcp::endpoint endpoint{address, s.listen_port};
  if (!ec) impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code close_ec;
    impl_->acceptor.close(close_ec);
    throw std::runtime_error("websocket: cannot listen on " + s.listen_address + ":" +
                             std::to_string(s.listen_port) + ": " + ec.message());
  }
  impl_->running = true;
  impl_->do_accept();
  common::log(common::LogLevel::info, "websocket",
              "devices connect to ws://" + s.listen_address + ":" + std::to_string(port()) +
                  s.path + "/<device id>");
}

void WebSocketAdapter::stop() {
  impl_->stop();
}

void WebSocketAdapter::acknowledge(std::uint64_t cookie) {
  const auto it = impl_->sessions.find(static_cast<std::uint32_t>(cookie >> 32));
  if (it == impl_->sessions.end()) return;  // that connection is gone: the device resends
  it->second->answer(static_cast<std::uint32_t>(cookie));
}

std::uint16_t WebSocketAdapter::port() const {
  beast::error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace fieldhub::adapters
