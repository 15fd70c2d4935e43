// SPDX-License-Identifier: Apache-2.0
// What the data cases in testcases/ cannot say: subscriptions, limits, and behaviour across
// messages. Per-payload behaviour lives in testcases/.
#include "normalize/normalizer.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fieldhub::normalize {
namespace {

const model::Timestamp received = *model::parse_rfc3339("2026-11-24T12:00:00Z");

config::Config small_config() {
  config::Config c;
  c.mqtt.max_payload = 100;
  c.pipeline.dead_letter_payload_cap = 10;
  config::Profile meter;
  meter.name = "meter";
  meter.kind = "kwh_meter";
  meter.mqtt.telemetry_topic = "fieldhub/{site}/{device}/telemetry";
  meter.mqtt.event_topic = "fieldhub/{site}/{device}/event";
  meter.metrics.push_back({.name = "energy", .unit = "kWh", .path = "values.energy", .min = 0.0});
  meter.events.push_back({.type = "call", .priority = model::Priority::medium});
  config::Profile polled = meter;
  polled.name = "polled";
  polled.mqtt.telemetry_topic = "polled/{device}";
  polled.mqtt.event_topic.clear();
  c.profiles = {meter, polled};
  c.devices.push_back({.id = "m1",
                       .kind = "kwh_meter",
                       .site = "s",
                       .profile = "meter",
                       .protocol = "mqtt",
                       .address = "m1"});
  c.devices.push_back({.id = "m2",
                       .kind = "kwh_meter",
                       .site = "s",
                       .profile = "polled",
                       .protocol = "modbus_tcp",
                       .address = "10.0.0.1:502/1"});
  return c;
}

TEST(Normalizer, SubscribesToTheTopicsOfMqttDevicesOnly) {
  Normalizer n(small_config());
  EXPECT_EQ(n.subscriptions(),
            (std::vector<std::string>{"fieldhub/+/+/telemetry", "fieldhub/+/+/event"}));
}

TEST(Normalizer, SubscriptionsOfTheShippedProfiles) {
  const auto config =
      config::load_config(std::filesystem::path(FIELDHUB_TESTCASES_DIR) / "fieldhub.toml");
  Normalizer n(config);
  EXPECT_EQ(n.subscriptions(),
            (std::vector<std::string>{"fieldhub/+/+/telemetry", "fieldhub/+/+/event",
                                      "tele/+/SENSOR", "zigbee2mqtt/+"}));
}

TEST(Normalizer, OwnsACopyOfTheConfig) {
  auto config = std::make_unique<config::Config>(small_config());
  Normalizer n(*config);
  config.reset();
  const auto env = n.normalize("fieldhub/s/m1/telemetry", R"({"values":{"energy":1}})", received);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_EQ(env.readings[0].device_id, "m1");
  EXPECT_EQ(env.readings[0].unit, "kWh");
}

TEST(Normalizer, PayloadLimitIsInclusive) {
  Normalizer n(small_config());
  std::string at_limit = R"({"values":{"energy":1}})";
  at_limit.insert(1, std::string(100 - at_limit.size(), ' '));
  ASSERT_EQ(at_limit.size(), 100u);
  EXPECT_EQ(n.normalize("fieldhub/s/m1/telemetry", at_limit, received).readings.size(), 1u);

  const auto env = n.normalize("fieldhub/s/m1/telemetry", at_limit + " ", received);
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "oversized");
  EXPECT_EQ(env.dead_letters[0].payload, at_limit.substr(0, 10)) << "capped at the configured size";
  EXPECT_EQ(env.dead_letters[0].source, "fieldhub/s/m1/telemetry");
  EXPECT_EQ(env.dead_letters[0].received_ts, received);
}

TEST(Normalizer, ParserIsReusableAfterErrors) {
  Normalizer n(small_config());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(n.normalize("fieldhub/s/m1/telemetry", R"({"values":{"energy":)", received)
                  .dead_letters.at(0)
                  .reason,
              "invalid_json");
    EXPECT_EQ(n.normalize("fieldhub/s/m1/telemetry", std::string(40, '[') + std::string(40, ']'),
                          received)
                  .dead_letters.at(0)
                  .reason,
              "too_deep");
    const auto env =
        n.normalize("fieldhub/s/m1/telemetry", R"({"values":{"energy":2.5}})", received);
    ASSERT_EQ(env.readings.size(), 1u);
    EXPECT_EQ(std::get<double>(env.readings[0].value), 2.5);
    EXPECT_TRUE(env.dead_letters.empty());
  }
}

TEST(Normalizer, TheSameInputGivesTheSameRecords) {
  Normalizer n(small_config());
  const auto a = n.normalize("fieldhub/s/m1/telemetry",
                             R"({"ts":1700000000000,"values":{"energy":3}})", received);
  const auto b = n.normalize("fieldhub/s/m1/telemetry",
                             R"({"ts":1700000000000,"values":{"energy":3}})", received);
  ASSERT_EQ(a.readings.size(), 1u);
  ASSERT_EQ(b.readings.size(), 1u);
  EXPECT_EQ(a.readings[0].source_ts, b.readings[0].source_ts);
  EXPECT_EQ(a.readings[0].value, b.readings[0].value);
  EXPECT_EQ(a.readings[0].provenance.adapter, "mqtt");
  EXPECT_EQ(a.readings[0].provenance.link, "broker");
}

TEST(Normalizer, ManyBadFieldsGiveABoundedNumberOfDeadLetters) {
  auto c = small_config();
  c.mqtt.max_payload = 64 * 1024;
  Normalizer n(c);
  std::string payload = R"({"values":{"energy":7)";
  for (int i = 0; i < 1000; ++i) payload += ",\"x" + std::to_string(i) + "\":1";
  payload += "}}";
  const auto env = n.normalize("fieldhub/s/m1/telemetry", payload, received);
  ASSERT_EQ(env.readings.size(), 1u) << "the good field is kept";
  ASSERT_EQ(env.dead_letters.size(), 32u);
  EXPECT_EQ(env.dead_letters.back().reason, "unknown_metric");
  EXPECT_NE(env.dead_letters.back().detail.find("and 968 more fields refused"), std::string::npos)
      << env.dead_letters.back().detail;
}

TEST(Normalizer, ManyKeysAreCheckedForDuplicatesQuickly) {
  auto c = small_config();
  c.mqtt.max_payload = 1024 * 1024;
  Normalizer n(c);
  std::string payload = R"({"ts":1,"type":"call")";
  for (int i = 0; i < 20000; ++i) payload += ",\"a" + std::to_string(i) + "\":1";
  payload += "}";
  // Attribute names are checked for repeats by sorting, not pairwise.
  const auto env = n.normalize("fieldhub/s/m1/event", payload, received);
  ASSERT_EQ(env.events.size(), 1u);
  EXPECT_TRUE(env.dead_letters.empty());
  EXPECT_GT(env.events[0].attributes_json.size(), 20000u * 6);
}

TEST(Normalizer, ModbusDevicesAreNotMqttDevices) {
  Normalizer n(small_config());
  const auto env = n.normalize("polled/10.0.0.1:502", R"({"energy":1})", received);
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "unknown_topic");
}

}  // namespace
}  // namespace fieldhub::normalize
