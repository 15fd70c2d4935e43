// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "adapters/adapter.h"
#include "adapters/mqtt/mqtt_client.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "normalize/normalizer.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// MQTT devices through a broker: subscribes to every configured device's topics with QoS 1 on a
// persistent session, normalizes each message and submits it to the pipeline. A QoS 1 message is
// acknowledged (PUBACK) only when the pipeline says its data is durable; while the pipeline is
// saturated the adapter stops reading, so the broker holds the rest.
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
  void on_message(const mqtt::InboundMessage& message);
  void on_link(const mqtt::LinkStatus& status);

  normalize::Normalizer normalizer_;
  mqtt::Client client_;
  pipeline::Pipeline& pipeline_;
  const common::Clock& clock_;
  common::Gauge& link_up_;
  bool stopped_ = false;
};

}  // namespace fieldhub::adapters
