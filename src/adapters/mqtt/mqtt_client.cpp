// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_client.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <unordered_map>

#include "adapters/mqtt/mqtt_timing.h"
#include "common/log.h"

namespace fieldhub::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Done = std::function<void(std::error_code)>;

namespace {

constexpr std::string_view component = "mqtt";
constexpr std::size_t read_chunk = 64 * 1024;
// PUBLISHes handled per turn of the io loop before the rest of a read is left for the next turn:
// a 64 KiB read holds hundreds of telemetry messages, and another connection's handler (the
// urgent session's, a dashboard's) must not wait for all of them (about 1.5 ms of work here).
constexpr std::size_t publishes_per_turn = 64;
// Stop moving queued publishes into the socket buffer past this; resumed when a write completes.
constexpr std::size_t max_pending_bytes = 4 * 1024 * 1024;
// After DISCONNECT, how long we wait for the broker to close before closing ourselves.
constexpr std::chrono::milliseconds disconnect_linger{1000};
// 2.3.1: 16-bit packet ids, 0 excluded; keep a few free for SUBSCRIBE.
constexpr std::size_t max_inflight_limit = 65000;

class ClientCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fieldhub.mqtt"; }
  std::string message(int ev) const override {
    switch (static_cast<ClientError>(ev)) {
      case ClientError::stopped:
        return "client stopped before the publish completed";
      case ClientError::queue_full:
        return "outbound queue full";
      case ClientError::invalid_topic:
        return "invalid topic name";
      case ClientError::invalid_qos:
        return "unsupported QoS (0 or 1 only)";
      case ClientError::too_large:
        return "message larger than max_packet_size";
      case ClientError::connection_lost:
        return "connection lost before the message was written";
    }
    return "unknown mqtt client error";
  }
};

std::string_view connack_reason(std::uint8_t rc) {
  switch (rc) {  // 3.2.2.3
    case 1:
      return "connection refused: unacceptable protocol version";
    case 2:
      return "connection refused: identifier rejected";
    case 3:
      return "connection refused: server unavailable";
    case 4:
      return "connection refused: bad user name or password";
    case 5:
      return "connection refused: not authorized";
    default:
      return "connection refused: unknown return code";
  }
}

struct Outbound {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  Done done;
  std::uint64_t seq = 0;  // publish order, kept for resending after reconnect
};

}  // namespace

const std::error_category& client_category() {
  static const ClientCategory category;
  return category;
}

std::error_code make_error_code(ClientError e) {
  return {static_cast<int>(e), client_category()};
}

// One TCP connection and everything that dies with it. Handlers hold it by shared_ptr so its
// buffers outlive any pending operation.
struct Connection {
  Connection(const asio::any_io_executor& ex, std::size_t max_packet_size,
             std::chrono::milliseconds keepalive_ms)
      : resolver(ex),
        socket(ex),
        timer(ex),
        keepalive_timer(ex),
        decoder(max_packet_size),
        keepalive(keepalive_ms) {}

  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;  // connect + CONNACK deadline, then the DISCONNECT linger
  asio::steady_timer keepalive_timer;
  PacketDecoder decoder;
  KeepaliveSchedule keepalive;

  std::string pending;  // encoded packets waiting for the current write to finish
  std::vector<Done> pending_done;
  std::size_t pending_qos0 = 0;
  std::string writing;  // the buffer of the one async_write in flight
  std::vector<Done> writing_done;
  std::size_t writing_qos0 = 0;

  bool open = true;
  bool established = false;  // CONNACK accepted
  bool closing = false;      // DISCONNECT queued by stop()
  bool write_in_flight = false;
  bool read_in_flight = false;
  bool flush_posted = false;
  bool reported_connected = false;
  bool session_present = false;
  std::uint64_t generation = 0;
  std::uint16_t subscribe_id = 0;  // SUBSCRIBE awaiting its SUBACK
  std::vector<std::pair<std::string, std::uint8_t>> subscribed;
};

struct Client::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor, ClientOptions o, common::Metrics& m, const common::Clock& c)
      : ex(std::move(executor)),
        options(std::move(o)),
        metrics(m),
        clock(c),
        labels{{"client", options.client_id}},
        connects(m.counter("fieldhub_mqtt_connects_total", "MQTT connections established", labels)),
        received(m.counter("fieldhub_mqtt_messages_received_total", "MQTT PUBLISH packets received",
                           labels)),
        acks_sent(m.counter("fieldhub_mqtt_acks_sent_total", "PUBACKs sent for received messages",
                            labels)),
        acks_stale(m.counter("fieldhub_mqtt_acks_dropped_stale_total",
                             "Acknowledgements dropped because their connection had ended",
                             labels)),
        published(m.counter("fieldhub_mqtt_published_total",
                            "Publishes completed (QoS 1 PUBACKed, QoS 0 written)", labels)),
        subscribe_failures(m.counter("fieldhub_mqtt_subscribe_failures_total",
                                     "Subscription filters refused by the broker or invalid",
                                     labels)),
        last_message(m.gauge("fieldhub_mqtt_last_message_timestamp_seconds",
                             "Wall-clock time of the last PUBLISH received", labels)),
        reconnect_timer(ex),
        backoff(options.reconnect_min, options.reconnect_max,
                static_cast<std::uint64_t>(SteadyClock::now().time_since_epoch().count()) ^
                    std::hash<std::string>{}(options.client_id)) {
    options.max_outbound_inflight =
        std::clamp<std::size_t>(options.max_outbound_inflight, 1, max_inflight_limit);
    // fieldhub_mqtt_disconnects_total and fieldhub_mqtt_protocol_errors_total carry a reason
    // label as well, so each series is registered when its reason first occurs.
  }

  // ---- Public API (on the executor).

  void start() {
    if (started || stopped) return;
    started = true;
    connect();
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    reconnect_timer.cancel();
    std::vector<Done> failed;
    for (auto& m : queue) failed.push_back(std::move(m.done));
    queue.clear();
    std::vector<std::pair<std::uint64_t, Done>> ordered;
    for (auto& [id, m] : inflight) ordered.emplace_back(m.seq, std::move(m.done));
    inflight.clear();
    std::sort(ordered.begin(), ordered.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [seq, d] : ordered) failed.push_back(std::move(d));
    if (auto c = std::exchange(conn, nullptr)) {
      for (auto& d : c->pending_done) failed.push_back(std::move(d));
      for (auto& d : c->writing_done) failed.push_back(std::move(d));
      c->pending_done.clear();
      c->writing_done.clear();
      c->pending_qos0 = c->writing_qos0 = 0;
      if (c->established && c->open) {
        // Acks already queued go out before DISCONNECT, so the broker does not redeliver them.
        encode_disconnect(c->pending);
        c->closing = true;
        c->keepalive_timer.cancel();
        c->timer.expires_after(disconnect_linger);
        c->timer.async_wait([c](const boost::system::error_code& ec) {
          if (!ec) close_socket(*c);
        });
        kick_write(c);
      } else {
        close_socket(*c);
      }
    }
    const auto error = make_error_code(ClientError::stopped);
    for (auto& d : failed) {
      if (d) d(error);
    }
  }

  void set_subscriptions(std::vector<std::pair<std::string, std::uint8_t>> filters) {
    subscriptions.clear();
    invalid_filters.clear();
    for (auto& [filter, qos] : filters) {
      if (!is_valid_topic_filter(filter)) {
        // Sending it would make the broker drop the connection, on every reconnect.
        common::log(common::LogLevel::error, component,
                    "client " + options.client_id + ": invalid subscription filter '" + filter +
                        "' not subscribed");
        subscribe_failures.inc();
        invalid_filters.push_back(filter);
        continue;
      }
      // Incoming QoS 2 is not supported: asking for at most 1 makes the broker downgrade.
      subscriptions.emplace_back(std::move(filter), std::min<std::uint8_t>(qos, 1));
    }
    if (conn && conn->established && !conn->closing) {
      send_subscribe(conn);
      schedule_flush(conn);
    }
  }

  void acknowledge(std::uint16_t packet_id, std::uint64_t gen) {
    if (stopped || packet_id == 0) return;  // QoS 0 messages carry no id and need no ack
    if (!conn || !conn->established || conn->closing || conn->generation != gen) {
      acks_stale.inc();
      return;
    }
    encode_puback(conn->pending, packet_id);
    acks_sent.inc();
    schedule_flush(conn);
  }

  void publish(std::string topic, std::string payload, std::uint8_t qos, bool retain, Done done) {
    auto fail = [&](ClientError e) {
      if (done) done(make_error_code(e));
    };
    if (stopped) return fail(ClientError::stopped);
    if (qos > 1) return fail(ClientError::invalid_qos);
    if (!is_valid_topic_name(topic)) return fail(ClientError::invalid_topic);
    if (publish_packet_size(topic, payload, qos) > options.max_packet_size) {
      return fail(ClientError::too_large);
    }
    if (queue.size() >= options.max_outbound_queue) return fail(ClientError::queue_full);
    queue.push_back(
        Outbound{std::move(topic), std::move(payload), qos, retain, std::move(done), next_seq++});
    if (conn && conn->established && !conn->closing) pump_queue(conn);
  }

  void pause_reading() { paused = true; }

  void resume_reading() {
    if (!paused) return;
    paused = false;
    if (!conn || !conn->open) return;
    conn->keepalive.on_resume(SteadyClock::now());
    // Posted: resume_reading() may be called from inside on_message, where the dispatch loop
    // simply carries on; from elsewhere this restarts it.
    post_process(conn);
  }

  // Dispatches what `c` has buffered on a later turn of the io loop, unless that connection is
  // gone or a dispatch is running by then (which carries on by itself).
  void post_process(const std::shared_ptr<Connection>& c) {
    asio::post(ex, [self = shared_from_this(), c] {
      if (!self->dispatching && c == self->conn && c->open) self->process(c);
    });
  }

  // ---- Connection life cycle.

  void connect() {
    auto c = std::make_shared<Connection>(ex, options.max_packet_size,
                                          std::chrono::milliseconds{options.keepalive});
    conn = c;
    auto self = shared_from_this();
    c->timer.expires_after(options.connect_timeout);
    c->timer.async_wait([self, c](const boost::system::error_code& ec) {
      if (ec || !c->open || c->established || c->closing) return;
      self->drop(c, "connect_timeout", "no CONNACK within the connect timeout");
    });
    c->resolver.async_resolve(
        options.host, std::to_string(options.port),
        [self, c](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
          if (!c->open) return;
          if (ec) return self->drop(c, "connect_error", "resolve: " + ec.message());
          asio::async_connect(c->socket, results,
                              [self, c](const boost::system::error_code& ec2,
                                        const tcp::endpoint&) { self->on_tcp_connected(c, ec2); });
        });
  }

  void on_tcp_connected(const std::shared_ptr<Connection>& c, const boost::system::error_code& ec) {
    if (!c->open) return;
    if (ec) return drop(c, "connect_error", "connect: " + ec.message());
    boost::system::error_code ignored;
    c->socket.set_option(tcp::no_delay(true), ignored);  // latency: see PERFORMANCE-NOTES
    ConnectOptions co;
    co.client_id = options.client_id;
    co.clean_session = options.clean_session;
    co.keepalive_seconds =
        static_cast<std::uint16_t>(std::clamp<std::int64_t>(options.keepalive.count(), 0, 65535));
    if (!options.username.empty()) co.username = options.username;
    if (!options.password.empty()) co.password = options.password;
    if (options.will) co.will = &*options.will;
    if (!encode_connect(c->pending, co)) {
      stopped_by_config = true;
      return drop(c, "connect_error", "CONNECT cannot be encoded (field over 65535 bytes?)");
    }
    c->keepalive.reset(SteadyClock::now());
    kick_write(c);
    start_read(c);
  }

  void on_connack(const std::shared_ptr<Connection>& c, const Connack& ack) {
    if (ack.return_code != 0) {
      return drop(c, "refused", std::string(connack_reason(ack.return_code)));
    }
    c->timer.cancel();
    c->established = true;
    c->session_present = ack.session_present;
    c->generation = ++generation;
    connects.inc();
    backoff.reset();
    common::log(common::LogLevel::info, component,
                "client " + options.client_id + " connected to " + options.host + ":" +
                    std::to_string(options.port) +
                    (ack.session_present ? " (session present)" : " (new session)"));
    if (!subscriptions.empty()) send_subscribe(c);
    // 4.4: unacknowledged QoS 1 publishes are resent with DUP, in their original order.
    std::vector<std::pair<std::uint64_t, std::uint16_t>> order;
    order.reserve(inflight.size());
    for (const auto& [id, m] : inflight) order.emplace_back(m.seq, id);
    std::sort(order.begin(), order.end());
    for (const auto& [seq, id] : order) {
      const Outbound& m = inflight.at(id);
      (void)encode_publish(c->pending, m.topic, m.payload, m.qos, m.retain, true, id);
    }
    arm_keepalive(c);
    if (subscriptions.empty()) report_connected(c, refused_list({}));
    pump_queue(c);
    schedule_flush(c);
  }

  void report_connected(const std::shared_ptr<Connection>& c, std::string reason) {
    c->reported_connected = true;
    emit_link(LinkStatus{LinkEvent::connected, c->session_present, std::move(reason)});
  }

  // Ends connection `c` (if still the current one) and schedules the next attempt.
  void drop(const std::shared_ptr<Connection>& c, std::string_view reason, std::string detail) {
    if (!c->open || c != conn) return;
    close_socket(*c);
    conn.reset();
    std::vector<Done> lost = std::move(c->pending_done);
    for (auto& d : c->writing_done) lost.push_back(std::move(d));
    c->writing_done.clear();
    const Labels reason_labels{{"client", options.client_id}, {"reason", std::string(reason)}};
    if (c->established) {
      metrics
          .counter("fieldhub_mqtt_disconnects_total", "Established MQTT connections that ended",
                   reason_labels)
          .inc();
      common::log(common::LogLevel::warn, component,
                  "client " + options.client_id + " disconnected: " + detail);
    } else {
      metrics
          .counter("fieldhub_mqtt_connect_failures_total", "MQTT connection attempts that failed",
                   reason_labels)
          .inc();
      common::log(common::LogLevel::warn, component,
                  "client " + options.client_id + " could not connect to " + options.host + ":" +
                      std::to_string(options.port) + ": " + detail);
    }
    schedule_reconnect();
    const auto error = make_error_code(ClientError::connection_lost);
    for (auto& d : lost) {
      if (d && !stopped) d(error);
    }
    emit_link(LinkStatus{LinkEvent::disconnected, c->session_present, std::move(detail)});
  }

  static void close_socket(Connection& c) {
    c.open = false;
    boost::system::error_code ignored;
    c.resolver.cancel();
    c.socket.close(ignored);
    c.timer.cancel();
    c.keepalive_timer.cancel();
  }

  void schedule_reconnect() {
    if (stopped || stopped_by_config) return;
    const auto delay = backoff.next();
    reconnect_timer.expires_after(delay);
    reconnect_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped || self->conn) return;
      self->connect();
    });
  }

  void protocol_error(const std::shared_ptr<Connection>& c, std::string_view reason) {
    metrics
        .counter("fieldhub_mqtt_protocol_errors_total",
                 "Malformed or unsupported packets from the broker",
                 {{"client", options.client_id}, {"reason", std::string(reason)}})
        .inc();
    drop(c, "protocol_error", "protocol error from broker: " + std::string(reason));
  }

  // ---- Reading and dispatch.

  void start_read(const std::shared_ptr<Connection>& c) {
    if (!c->open || c->read_in_flight) return;
    if (paused && c->established && !c->closing) return;
    c->read_in_flight = true;
    auto buffer = c->decoder.prepare(read_chunk);
    c->socket.async_read_some(
        asio::buffer(buffer.data(), buffer.size()),
        [self = shared_from_this(), c](const boost::system::error_code& ec, std::size_t n) {
          c->read_in_flight = false;
          if (!c->open) return;
          if (c->closing) {  // after DISCONNECT: discard until the broker closes
            if (ec) return close_socket(*c);
            c->decoder.reset();
            return self->start_read(c);
          }
          if (ec) {
            return self->drop(c, ec == asio::error::eof ? "eof" : "read_error",
                              "read: " + ec.message());
          }
          c->decoder.commit(n);
          c->keepalive.on_received(SteadyClock::now());
          self->process(c);
        });
  }

  void process(const std::shared_ptr<Connection>& c) {
    dispatching = true;
    bool any_publish = false;
    std::size_t publishes = 0;
    bool more = false;  // the turn's share is used up: the rest of the buffer waits a turn
    while (c->open && c == conn && !(paused && c->established)) {
      if (publishes == publishes_per_turn) {
        more = true;
        break;
      }
      DecodeResult r = c->decoder.next();
      if (r.need_more()) break;
      if (!r.packet) {
        dispatching = false;
        return protocol_error(c, to_string(r.error));
      }
      if (std::holds_alternative<Publish>(*r.packet)) {
        any_publish = true;
        ++publishes;
      }
      handle(c, *r.packet);
    }
    dispatching = false;
    if (any_publish) {
      last_message.set(
          std::chrono::duration_cast<std::chrono::seconds>(clock.now().time_since_epoch()).count());
    }
    if (c->open && c == conn) {
      schedule_flush(c);
      if (!more) return start_read(c);
      // After whatever else is ready; resume_reading() may have posted the same, which then
      // finds nothing to do.
      post_process(c);
    }
  }

  void handle(const std::shared_ptr<Connection>& c, const Packet& packet) {
    if (!c->established) {
      if (const auto* ack = std::get_if<Connack>(&packet)) return on_connack(c, *ack);
      return protocol_error(c, "packet_before_connack");
    }
    if (const auto* p = std::get_if<Publish>(&packet)) {
      if (p->qos == 2) return protocol_error(c, "qos2_unsupported");
      received.inc();
      if (on_message && !stopped) {
        on_message(InboundMessage{p->topic, p->payload, p->qos, p->dup, p->retain, p->packet_id,
                                  c->generation});
      }
    } else if (const auto* a = std::get_if<Puback>(&packet)) {
      auto it = inflight.find(a->packet_id);
      if (it == inflight.end()) return;  // a late duplicate PUBACK for a resent message
      Done d = std::move(it->second.done);
      inflight.erase(it);
      published.inc();
      if (d) d({});
      if (c->open && c == conn) pump_queue(c);
    } else if (const auto* s = std::get_if<Suback>(&packet)) {
      on_suback(c, *s);
    } else if (std::holds_alternative<Connack>(packet)) {
      protocol_error(c, "unexpected_connack");
    }
  }

  void on_suback(const std::shared_ptr<Connection>& c, const Suback& s) {
    if (s.packet_id != c->subscribe_id) return;  // superseded by a later set_subscriptions()
    c->subscribe_id = 0;
    if (s.granted.size() != c->subscribed.size()) return protocol_error(c, "suback_count_mismatch");
    std::vector<std::string> refused;
    for (std::size_t i = 0; i < s.granted.size(); ++i) {
      if (s.granted[i] != 0x80) continue;
      subscribe_failures.inc();
      common::log(common::LogLevel::error, component,
                  "client " + options.client_id + ": broker refused subscription '" +
                      c->subscribed[i].first + "'");
      refused.push_back(c->subscribed[i].first);
    }
    std::string reason = refused_list(refused);
    if (!c->reported_connected || !refused.empty()) report_connected(c, std::move(reason));
  }

  // LinkStatus reason naming refused filters and those set_subscriptions() found invalid.
  std::string refused_list(const std::vector<std::string>& refused) const {
    std::string out;
    for (const auto& f : refused) out += (out.empty() ? "" : ", ") + f;
    for (const auto& f : invalid_filters) out += (out.empty() ? "" : ", ") + f + " (invalid)";
    return out.empty() ? out : "subscriptions refused: " + out;
  }

  void emit_link(const LinkStatus& status) {
    if (on_link && !stopped) on_link(status);
  }

  // ---- Writing.

  void send_subscribe(const std::shared_ptr<Connection>& c) {
    if (subscriptions.empty()) return;
    const std::uint16_t id = allocate_packet_id(c);
    if (!encode_subscribe(c->pending, id, subscriptions)) return;
    c->subscribe_id = id;
    c->subscribed = subscriptions;
  }

  std::uint16_t allocate_packet_id(const std::shared_ptr<Connection>& c) {
    for (std::size_t i = 0; i < 65535; ++i) {
      if (++last_packet_id == 0) last_packet_id = 1;
      if (last_packet_id != c->subscribe_id && !inflight.contains(last_packet_id)) {
        return last_packet_id;
      }
    }
    return 0;  // unreachable: inflight is capped below 65535
  }

  // Moves queued publishes into the connection's buffer while inflight slots and buffer room last.
  void pump_queue(const std::shared_ptr<Connection>& c) {
    bool wrote = false;
    while (!queue.empty() && c->pending.size() < max_pending_bytes) {
      Outbound& m = queue.front();
      if (m.qos == 1) {
        if (inflight.size() >= options.max_outbound_inflight) break;
        const std::uint16_t id = allocate_packet_id(c);
        (void)encode_publish(c->pending, m.topic, m.payload, 1, m.retain, false, id);
        inflight.emplace(id, std::move(m));
      } else {
        (void)encode_publish(c->pending, m.topic, m.payload, 0, m.retain, false, 0);
        if (m.done) c->pending_done.push_back(std::move(m.done));
        ++c->pending_qos0;
      }
      queue.pop_front();
      wrote = true;
    }
    if (wrote) schedule_flush(c);
  }

  // Coalesces every packet produced during one handler run into one write.
  void schedule_flush(const std::shared_ptr<Connection>& c) {
    if (c->flush_posted || c->pending.empty()) return;
    c->flush_posted = true;
    asio::post(ex, [self = shared_from_this(), c] {
      c->flush_posted = false;
      self->kick_write(c);
    });
  }

  void kick_write(const std::shared_ptr<Connection>& c) {
    if (!c->open || c->write_in_flight || c->pending.empty()) return;
    c->writing.clear();
    std::swap(c->writing, c->pending);
    std::swap(c->writing_done, c->pending_done);
    c->writing_qos0 = std::exchange(c->pending_qos0, 0);
    c->write_in_flight = true;
    c->keepalive.on_sent(SteadyClock::now());
    asio::async_write(
        c->socket, asio::buffer(c->writing),
        [self = shared_from_this(), c](const boost::system::error_code& ec, std::size_t) {
          c->write_in_flight = false;
          if (!c->open) return;
          if (ec) return self->drop(c, "write_error", "write: " + ec.message());
          std::vector<Done> done = std::move(c->writing_done);
          c->writing_done.clear();
          if (!self->stopped) self->published.inc(std::exchange(c->writing_qos0, 0));
          if (c->closing && c->pending.empty()) {
            boost::system::error_code ignored;
            c->socket.shutdown(tcp::socket::shutdown_send, ignored);
            self->start_read(c);  // wait for the broker's close, bounded by the linger timer
            return;
          }
          for (auto& d : done) {
            if (d && !self->stopped) d({});
          }
          if (c == self->conn && c->established) self->pump_queue(c);
          self->kick_write(c);
        });
  }

  // ---- Keepalive.

  void arm_keepalive(const std::shared_ptr<Connection>& c) {
    const auto deadline = c->keepalive.next_deadline(paused);
    if (deadline == SteadyClock::time_point::max()) return;
    c->keepalive_timer.expires_at(deadline);
    c->keepalive_timer.async_wait(
        [self = shared_from_this(), c](const boost::system::error_code& ec) {
          if (ec || !c->open || c->closing || c != self->conn) return;
          const auto now = SteadyClock::now();
          switch (c->keepalive.check(now, self->paused)) {
            case KeepaliveSchedule::Action::dead:
              return self->drop(c, "keepalive_timeout",
                                "no packet from the broker within 1.5 x keepalive");
            case KeepaliveSchedule::Action::send_ping:
              encode_pingreq(c->pending);
              c->keepalive.on_sent(now);
              self->schedule_flush(c);
              break;
            case KeepaliveSchedule::Action::none:
              break;
          }
          self->arm_keepalive(c);
        });
  }

  using Labels = common::Labels;

  asio::any_io_executor ex;
  ClientOptions options;
  common::Metrics& metrics;
  const common::Clock& clock;
  common::Labels labels;
  common::Counter& connects;
  common::Counter& received;
  common::Counter& acks_sent;
  common::Counter& acks_stale;
  common::Counter& published;
  common::Counter& subscribe_failures;
  common::Gauge& last_message;
  asio::steady_timer reconnect_timer;
  ReconnectBackoff backoff;

  std::function<void(const InboundMessage&)> on_message;
  std::function<void(const LinkStatus&)> on_link;
  std::vector<std::pair<std::string, std::uint8_t>> subscriptions;
  std::vector<std::string> invalid_filters;

  std::shared_ptr<Connection> conn;  // the current connection or attempt, if any
  std::uint64_t generation = 0;
  bool started = false;
  bool stopped = false;
  bool stopped_by_config = false;  // CONNECT cannot be encoded: retrying cannot help
  bool paused = false;
  bool dispatching = false;

  std::deque<Outbound> queue;                            // not yet given a packet id
  std::unordered_map<std::uint16_t, Outbound> inflight;  // QoS 1 sent, awaiting PUBACK
  std::uint64_t next_seq = 0;
  std::uint16_t last_packet_id = 0;
};

Client::Client(boost::asio::any_io_executor ex, ClientOptions options, common::Metrics& metrics,
               const common::Clock& clock)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(options), metrics, clock)) {}

Client::~Client() {
  impl_->stop();
}

void Client::on_message(std::function<void(const InboundMessage&)> handler) {
  impl_->on_message = std::move(handler);
}
void Client::on_link(std::function<void(const LinkStatus&)> handler) {
  impl_->on_link = std::move(handler);
}
void Client::set_subscriptions(std::vector<std::pair<std::string, std::uint8_t>> filters) {
  impl_->set_subscriptions(std::move(filters));
}
void Client::start() {
  impl_->start();
}
void Client::stop() {
  impl_->stop();
}
void Client::acknowledge(std::uint16_t packet_id, std::uint64_t generation) {
  impl_->acknowledge(packet_id, generation);
}
void Client::publish(std::string topic, std::string payload, std::uint8_t qos, bool retain,
                     std::function<void(std::error_code)> done) {
  impl_->publish(std::move(topic), std::move(payload), qos, retain, std::move(done));
}
void Client::pause_reading() {
  impl_->pause_reading();
}
void Client::resume_reading() {
  impl_->resume_reading();
}
bool Client::connected() const {
  return !impl_->stopped && impl_->conn && impl_->conn->established;
}
std::uint64_t Client::generation() const {
  return impl_->generation;
}

}  // namespace fieldhub::mqtt
