// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_adapter.h"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>

#include "common/hash.h"
#include "common/log.h"

namespace fieldhub::adapters {

namespace {

mqtt::ClientOptions client_options(const config::MqttConfig& c, std::string_view id_suffix = {}) {
  mqtt::ClientOptions o;
  o.host = c.host;
  o.port = c.port;
  o.client_id = c.client_id + std::string(id_suffix);
  o.username = c.username;
  o.password = c.password;
  o.keepalive = c.keepalive;
  o.clean_session = c.clean_session;
  o.reconnect_min = c.reconnect_min;
  o.reconnect_max = c.reconnect_max;
  // Larger than the payload limit, so an oversized message still arrives whole, is refused with
  // the reason "oversized" and is acknowledged, instead of breaking the session on every retry.
  o.max_packet_size = std::max<std::size_t>(c.max_payload * 4 + 64 * 1024, 256 * 1024);
  return o;
}

// An acknowledgement cookie: the session (top bit: the urgent one), the connection generation and
// the packet id, so a PUBACK is never sent on another connection than the one the message came on.
constexpr std::uint64_t urgent_bit = std::uint64_t{1} << 63;
std::uint64_t make_cookie(bool urgent, std::uint64_t generation, std::uint16_t packet_id) {
  return (urgent ? urgent_bit : 0) | ((generation << 16) & ~urgent_bit) | packet_id;
}

// The status topic of fieldhub's own convention: fieldhub/<site>/<device>/status. Returns
// "<site>/<device>" or nullopt.
std::optional<std::string_view> status_key(std::string_view topic) {
  constexpr std::string_view prefix = "fieldhub/";
  constexpr std::string_view suffix = "/status";
  if (!topic.starts_with(prefix) || !topic.ends_with(suffix)) return std::nullopt;
  const std::string_view key =
      topic.substr(prefix.size(), topic.size() - prefix.size() - suffix.size());
  const auto slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == key.size() ||
      key.find('/', slash + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return key;
}

}  // namespace

MqttAdapter::MqttAdapter(boost::asio::any_io_executor io, const config::Config& config,
                         pipeline::Pipeline& pipeline, common::Metrics& metrics,
                         const common::Clock& clock)
    : normalizer_(config),
      client_(io, client_options(config.mqtt), metrics, clock),
      pipeline_(pipeline),
      clock_(clock),
      link_up_(metrics.gauge("fieldhub_link_up", "1 while a link is up", {{"link", "broker"}})),
      urgent_up_(
          metrics.gauge("fieldhub_link_up", "1 while a link is up", {{"link", "broker-urgent"}})),
      status_messages_(metrics.counter("fieldhub_mqtt_status_messages_total",
                                       "Device status messages (offline/online) handled")),
      resubscribes_(metrics.counter("fieldhub_mqtt_resubscribes_total",
                                    "Subscriptions re-sent because the watchdog found the "
                                    "subscribed devices silent")),
      health_(pipeline.health()),
      watchdog_timer_(io) {
  const std::vector<std::string> urgent = normalizer_.event_subscriptions();
  for (auto& topic : normalizer_.subscriptions()) {
    const bool is_urgent = std::find(urgent.begin(), urgent.end(), topic) != urgent.end();
    (is_urgent ? urgent_filters_ : filters_).emplace_back(std::move(topic), 1);
  }
  for (const auto& d : config.devices) {
    if (d.protocol == "mqtt") status_ids_.emplace(d.site + "/" + d.address, d.id);
  }
  if (!status_ids_.empty()) filters_.emplace_back("fieldhub/+/+/status", 1);
  client_.set_subscriptions(filters_);
  if (health_ != nullptr) watchdog_.emplace(std::string(link_name));
  client_.on_message([this](const mqtt::InboundMessage& m) { on_message(m, false); });
  client_.on_link([this](const mqtt::LinkStatus& s) { on_link(s); });
  if (!urgent_filters_.empty()) {
    // Events on their own session: the broker queues and windows each client separately, so a
    // call never waits behind telemetry the bulk session has not acknowledged yet, and the
    // pipeline's backpressure (which pauses the bulk session) never holds it back.
    urgent_ =
        std::make_unique<mqtt::Client>(io, client_options(config.mqtt, "-urgent"), metrics, clock);
    urgent_->set_subscriptions(urgent_filters_);
    urgent_->on_message([this](const mqtt::InboundMessage& m) { on_message(m, true); });
    urgent_->on_link([this](const mqtt::LinkStatus& s) {
      urgent_up_.set(s.event == mqtt::LinkEvent::connected ? 1 : 0);
      if (s.event != mqtt::LinkEvent::connected) {
        common::log(common::LogLevel::warn, "mqtt", "urgent session down: " + s.reason);
      }
    });
  }
  pipeline_.on_saturation([this](bool saturated) {
    if (saturated) {
      client_.pause_reading();
    } else {
      client_.resume_reading();
    }
  });
}

void MqttAdapter::start() {
  client_.start();
  if (urgent_) urgent_->start();
  if (watchdog_) schedule_watchdog();
}

void MqttAdapter::stop() {
  stopped_ = true;
  watchdog_timer_.cancel();
  client_.stop();
  if (urgent_) urgent_->stop();
}

void MqttAdapter::schedule_watchdog() {
  watchdog_timer_.expires_after(watchdog_period);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    if (watchdog_->check(*health_, clock_.now())) {
      // The client re-sends SUBSCRIBE for every filter when they are set on a live session; the
      // broker replaces an existing subscription with the same filter (MQTT 3.1.1 §3.8.4).
      resubscribes_.inc();
      common::log(common::LogLevel::warn, "mqtt",
                  "subscribed devices went silent while the broker session is up: resubscribing");
      client_.set_subscriptions(filters_);
      if (urgent_) urgent_->set_subscriptions(urgent_filters_);
    }
    schedule_watchdog();
  });
}

void MqttAdapter::acknowledge(std::uint64_t cookie) {
  if (stopped_) return;
  mqtt::Client& client = (cookie & urgent_bit) != 0 && urgent_ ? *urgent_ : client_;
  client.acknowledge(static_cast<std::uint16_t>(cookie & 0xFFFF), (cookie & ~urgent_bit) >> 16);
}

bool MqttAdapter::on_status(const mqtt::InboundMessage& m, bool urgent) {
  const auto key = status_key(m.topic);
  if (!key) return false;
  status_messages_.inc();
  const auto it = status_ids_.find(std::string(*key));
  if (health_ != nullptr && it != status_ids_.end()) {
    if (m.payload == "offline") {
      health_->device_offline(it->second, "status offline");
    } else if (m.payload == "online" && !m.retain) {
      // A retained "online" may be older than fieldhub's last run: only a live one is news.
      health_->device_online(it->second);
    }
  }
  // No data to make durable. Through the pipeline all the same, so PUBACKs keep the order of
  // the PUBLISHes (MQTT 3.1.1 §4.6).
  if (m.qos > 0) {
    pipeline_.acknowledge_in_order({this, make_cookie(urgent, m.generation, m.packet_id)});
  }
  return true;
}

void MqttAdapter::on_message(const mqtt::InboundMessage& m, bool urgent) {
  if (!status_ids_.empty() && on_status(m, urgent)) return;
  pipeline::Envelope env = normalizer_.normalize(m.topic, m.payload, clock_.now());
  env.redelivered = m.dup;
  if (m.qos > 0) env.ack = {this, make_cookie(urgent, m.generation, m.packet_id)};
  const std::uint64_t digest = common::Fnv1a()
                                   .add(m.topic)
                                   .add(std::string_view{"\0", 1})
                                   .add(m.payload)
                                   .add(std::uint64_t{m.packet_id})
                                   .value();
  pipeline_.submit(std::move(env), digest);
}

void MqttAdapter::on_link(const mqtt::LinkStatus& s) {
  if (s.event == mqtt::LinkEvent::connected) {
    link_up_.set(1);
    link_was_up_ = true;
    link_reported_down_ = false;
    if (health_ != nullptr) health_->link_up(link_name);
    common::log(
        common::LogLevel::info, "mqtt",
        std::string("connected to broker, session ") + (s.session_present ? "resumed" : "new"));
  } else {
    link_up_.set(0);
    if (health_ != nullptr) {
      // The first failure after being up (or at start) takes the link down; each failure after
      // that is one more reconnect attempt.
      if (!link_reported_down_) {
        health_->link_down(link_name, link_was_up_ ? "connection lost" : "unreachable");
        link_reported_down_ = true;
      } else {
        health_->link_reconnect_attempt(link_name);
      }
    }
    common::log(common::LogLevel::warn, "mqtt", "broker link down: " + s.reason);
  }
}

}  // namespace fieldhub::adapters
