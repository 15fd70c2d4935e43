// SPDX-License-Identifier: Apache-2.0
// The README's example configuration loads, and subscribes to what the README says.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"
#include "normalize/normalizer.h"

namespace fieldhub::adapters {
namespace {

TEST(MqttExampleConfig, LoadsAndSubscribesToEveryShape) {
  const auto cfg = config::load_config(FIELDHUB_MQTT_EXAMPLE);
  EXPECT_EQ(cfg.mqtt.client_id, "fieldhub-ward-3b");
  EXPECT_FALSE(cfg.mqtt.clean_session);
  ASSERT_EQ(cfg.devices.size(), 3u);
  normalize::Normalizer normalizer(cfg);
  auto subs = normalizer.subscriptions();
  std::sort(subs.begin(), subs.end());
  EXPECT_EQ(subs, (std::vector<std::string>{"fieldhub/+/+/event", "fieldhub/+/+/telemetry",
                                            "tele/+/SENSOR", "zigbee2mqtt/+"}));
}

}  // namespace
}  // namespace fieldhub::adapters
