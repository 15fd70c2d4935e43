// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_adapter.h"

#include "common/hash.h"
#include "common/log.h"

namespace fieldhub::adapters {

namespace {

mqtt::ClientOptions client_options(const config::MqttConfig& c) {
  mqtt::ClientOptions o;
  o.host = c.host;
  o.port = c.port;
  o.client_id = c.client_id;
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

// An acknowledgement cookie: the connection generation and the packet id, so a PUBACK is never
// sent on a later connection than the one the message came on.
std::uint64_t make_cookie(std::uint64_t generation, std::uint16_t packet_id) {
  return (generation << 16) | packet_id;
}

}  // namespace

MqttAdapter::MqttAdapter(boost::asio::any_io_executor io, const config::Config& config,
                         pipeline::Pipeline& pipeline, common::Metrics& metrics,
                         const common::Clock& clock)
    : normalizer_(config),
      client_(io, client_options(config.mqtt), metrics, clock),
      pipeline_(pipeline),
      clock_(clock),
      link_up_(metrics.gauge("fieldhub_link_up", "1 while a link is up", {{"link", "broker"}})) {
  std::vector<std::pair<std::string, std::uint8_t>> filters;
  for (auto& topic : normalizer_.subscriptions()) filters.emplace_back(std::move(topic), 1);
  client_.set_subscriptions(std::move(filters));
  client_.on_message([this](const mqtt::InboundMessage& m) { on_message(m); });
  client_.on_link([this](const mqtt::LinkStatus& s) { on_link(s); });
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
}

void MqttAdapter::stop() {
  stopped_ = true;
  client_.stop();
}

void MqttAdapter::acknowledge(std::uint64_t cookie) {
  if (stopped_) return;
  client_.acknowledge(static_cast<std::uint16_t>(cookie & 0xFFFF), cookie >> 16);
}

void MqttAdapter::on_message(const mqtt::InboundMessage& m) {
  pipeline::Envelope env = normalizer_.normalize(m.topic, m.payload, clock_.now());
  env.redelivered = m.dup;
  if (m.qos > 0) env.ack = {this, make_cookie(m.generation, m.packet_id)};
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
    common::log(
        common::LogLevel::info, "mqtt",
        std::string("connected to broker, session ") + (s.session_present ? "resumed" : "new"));
  } else {
    link_up_.set(0);
    common::log(common::LogLevel::warn, "mqtt", "broker link down: " + s.reason);
  }
}

}  // namespace fieldhub::adapters
