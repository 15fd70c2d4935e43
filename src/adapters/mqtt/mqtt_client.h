// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "adapters/mqtt/mqtt_codec.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace fieldhub::mqtt {

struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::string client_id;
  std::string username, password;  // empty username: none sent
  std::chrono::seconds keepalive{30};
  bool clean_session = false;
  std::chrono::milliseconds reconnect_min{500}, reconnect_max{30000};  // exponential, ±20 % jitter
  // Largest packet accepted from the broker, and largest PUBLISH we send.
  std::size_t max_packet_size = 256 * 1024;
  std::optional<Will> will;
  std::size_t max_outbound_inflight = 1000;  // our own QoS 1 publishes awaiting PUBACK
  // TCP connect plus CONNACK must complete within this.
  std::chrono::milliseconds connect_timeout{10000};
  // Publishes waiting for a connection or for an inflight slot; past it publish() fails at once.
  std::size_t max_outbound_queue = 100000;
};

struct InboundMessage {
  std::string_view topic;
  std::string_view payload;  // valid only during the callback
  std::uint8_t qos;
  bool dup;
  bool retain;
  std::uint16_t packet_id;
  std::uint64_t generation;  // which connection it arrived on (increments on every connect)
};

enum class LinkEvent { connected, disconnected };

// connected: CONNACK accepted and, when subscriptions are set, their SUBACK received; `reason` is
// empty, or names the filters the broker refused. disconnected: an established connection ended
// or an attempt failed (refused CONNACK, timeout, TCP error); `reason` says which.
struct LinkStatus {
  LinkEvent event;
  bool session_present;
  std::string reason;
};

// Failures reported to publish()'s `done`.
enum class ClientError {
  stopped = 1,      // stop() before the publish completed (a QoS 1 message may still arrive)
  queue_full,       // max_outbound_queue reached
  invalid_topic,    // not a valid topic name (empty, wildcard, bad UTF-8, NUL)
  invalid_qos,      // only 0 and 1 are supported
  too_large,        // over max_packet_size
  connection_lost,  // a QoS 0 message was queued for a connection that dropped before writing it
};
const std::error_category& client_category();
std::error_code make_error_code(ClientError e);

// fieldhub's MQTT 3.1.1 client on Asio, written so that a QoS 1 message is acknowledged only when
// the application says so (acknowledge()), after its data is durable: see
// docs/decisions/0001-own-mqtt-client.md.
//
// Threading: every method must be called on `ex` (from a handler running on it, or before the
// executor's io_context runs), and every callback runs on `ex`; the client itself does not lock.
// Callbacks may call back into the client (acknowledge, publish, pause_reading, stop).
// Lifetime: after stop() or destruction no callback runs; pending operations complete on the
// executor without touching the caller's objects.
// Incoming QoS 2 is not supported: a QoS 2 PUBLISH is treated as a protocol error.
class Client {
 public:
  Client(boost::asio::any_io_executor ex, ClientOptions options, common::Metrics& metrics,
         const common::Clock& clock);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void on_message(std::function<void(const InboundMessage&)> handler);
  void on_link(std::function<void(const LinkStatus&)> handler);
  // Filters (topic, qos ≤ 1) subscribed on every (re)connect, and at once if connected; removed
  // filters are not unsubscribed. A SUBACK failure is logged, counted and reported in LinkStatus.
  void set_subscriptions(std::vector<std::pair<std::string, std::uint8_t>> filters);
  void start();  // connects and keeps reconnecting with backoff until stop()
  void stop();   // sends DISCONNECT if connected, closes, cancels timers; no callbacks after it
  // Sends PUBACK for a QoS 1 message received on connection `generation`. If that connection is
  // gone, it does nothing: the broker redelivers the message on the persistent session, and
  // acking the old id on a new connection could acknowledge a different message that reuses it.
  void acknowledge(std::uint16_t packet_id, std::uint64_t generation);
  // QoS 0 or 1. Queued while disconnected (bounded by max_outbound_inflight + max_outbound_queue;
  // when full, done is called with an error at once). QoS 1 is resent with DUP after reconnect
  // until PUBACKed; `done` is called once: on PUBACK (QoS 1) or once written (QoS 0), or with an
  // error (invalid input at once, ClientError::stopped on stop()).
  void publish(std::string topic, std::string payload, std::uint8_t qos, bool retain = false,
               std::function<void(std::error_code)> done = {});
  void pause_reading();  // backpressure: stop reading the socket (TCP pushes back on the broker)
  void resume_reading();
  bool connected() const;
  std::uint64_t generation() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with pending handlers, which may outlive the Client
};

}  // namespace fieldhub::mqtt

template <>
struct std::is_error_code_enum<fieldhub::mqtt::ClientError> : std::true_type {};
