// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/mqtt/mqtt_client.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "health/subscription_watchdog.h"
#include "normalize/normalizer.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// MQTT devices through a broker: subscribes to every configured device's topics with QoS 1 on a
// persistent session, normalizes each message and submits it to the pipeline. A QoS 1 message is
// acknowledged (PUBACK) only when the pipeline says its data is durable; while the pipeline is
// saturated the adapter stops reading, so the broker holds the rest.
//
// Health (docs/decisions/0006-health-model.md), when the pipeline has a tracker: the broker
// session is the link "broker" (up on CONNACK+SUBACK, down on any drop or failed attempt; later
// failed attempts count as reconnect attempts). A device's own status message on
// fieldhub/<site>/<address>/status, payload "offline" or "online" (what devices set as their MQTT
// last will, and publish on connect), moves it to offline or online at once. A watchdog checks
// every few seconds whether most active devices went silent while the session looks up, and
// then re-sends SUBSCRIBE for every filter.
//
// Topics that carry only events (fieldhub/<site>/<device>/event) are read on a second session,
// "<client_id>-urgent", which is never paused by backpressure: a call does not queue at the broker
// behind telemetry waiting for its acknowledgement.
// Runs on the io executor.
class MqttAdapter final : public Adapter, public pipeline::AckTarget {
 public:
  MqttAdapter(boost::asio::any_io_executor io, const config::Config& config,
              pipeline::Pipeline& pipeline, common::Metrics& metrics, const common::Clock& clock);

  std::string_view name() const override { return "mqtt"; }
  void start() override;
  void stop() override;
  void acknowledge(std::uint64_t cookie) override;

 private:
  void on_message(const mqtt::InboundMessage& message, bool urgent);
  void on_link(const mqtt::LinkStatus& status);
  // True if the message was a device status message (handled here, not normalized).
  bool on_status(const mqtt::InboundMessage& message, bool urgent);
  void schedule_watchdog();

  static constexpr std::string_view link_name = "broker";
  static constexpr std::chrono::seconds watchdog_period{5};

  normalize::Normalizer normalizer_;
  mqtt::Client client_;                   // telemetry and status: paused under backpressure
  std::unique_ptr<mqtt::Client> urgent_;  // event-only topics, never paused ("<client_id>-urgent")
  pipeline::Pipeline& pipeline_;
  const common::Clock& clock_;
  common::Gauge& link_up_;
  common::Gauge& urgent_up_;
  common::Counter& status_messages_;
  common::Counter& resubscribes_;
  health::HealthTracker* health_;
  std::vector<std::pair<std::string, std::uint8_t>> filters_;
  std::vector<std::pair<std::string, std::uint8_t>> urgent_filters_;
  // "<site>/<address>" of every MQTT device → its id, for status topics.
  std::unordered_map<std::string, std::string> status_ids_;
  std::optional<health::SubscriptionWatchdog> watchdog_;
  boost::asio::steady_timer watchdog_timer_;
  bool link_was_up_ = false;
  bool link_reported_down_ = false;
  bool stopped_ = false;
};

}  // namespace fieldhub::adapters
