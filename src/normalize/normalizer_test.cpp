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

// Scale and offset, and the epoch timestamp formats, which no shipped profile uses.
config::Config json_config(config::TimestampFormat format) {
  config::Config c;
  config::Profile p;
  p.name = "raw";
  p.kind = "thermometer";
  p.mqtt.format = config::PayloadFormat::json;
  p.mqtt.telemetry_topic = "raw/{device}";
  p.mqtt.timestamp_path = "t";
  p.mqtt.timestamp_format = format;
  p.metrics.push_back({.name = "temperature",
                       .unit = "°C",
                       .path = "s.t10",
                       .scale = 0.1,
                       .offset = -40.0,
                       .min = -40.0,
                       .max = 85.0});
  c.profiles = {p};
  c.devices.push_back({.id = "t1",
                       .kind = "thermometer",
                       .site = "s",
                       .profile = "raw",
                       .protocol = "mqtt",
                       .address = "t1"});
  return c;
}

TEST(Normalizer, JsonScaleOffsetAndEpochSeconds) {
  Normalizer n(json_config(config::TimestampFormat::epoch_s));
  const auto env = n.normalize("raw/t1", R"({"t":1795514400.5,"s":{"t10":615}})", received);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(env.readings[0].value), 21.5);
  EXPECT_EQ(model::format_rfc3339(env.readings[0].source_ts), "2026-11-24T10:00:00.500Z");
  EXPECT_EQ(env.readings[0].quality, model::Quality::good);
  EXPECT_EQ(n.subscriptions(), std::vector<std::string>{"raw/+"});
}

TEST(Normalizer, JsonEpochMillisecondsThatAreSeconds) {
  Normalizer n(json_config(config::TimestampFormat::epoch_ms));
  auto env = n.normalize("raw/t1", R"({"t":1795514400123,"s":{"t10":615}})", received);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_EQ(model::format_rfc3339(env.readings[0].source_ts), "2026-11-24T10:00:00.123Z");
  EXPECT_EQ(env.readings[0].quality, model::Quality::good);
  env = n.normalize("raw/t1", R"({"t":1795514400,"s":{"t10":615}})", received);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_EQ(model::format_rfc3339(env.readings[0].source_ts), "2026-11-24T10:00:00.000Z");
  EXPECT_EQ(env.readings[0].quality, model::Quality::uncertain);
  EXPECT_EQ(env.readings[0].quality_reason, "timestamp_in_seconds");
  env = n.normalize("raw/t1", R"({"t":"1795514400","s":{"t10":615}})", received);
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "invalid_timestamp");
}

TEST(Normalizer, ScaledValueOutsideTheRangeIsBad) {
  Normalizer n(json_config(config::TimestampFormat::epoch_s));
  const auto env = n.normalize("raw/t1", R"({"s":{"t10":1300}})", received);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(env.readings[0].value), 90.0);
  EXPECT_EQ(env.readings[0].quality, model::Quality::bad);
  EXPECT_EQ(env.readings[0].quality_reason, "out_of_range");
  EXPECT_FALSE(env.readings[0].source_ts_trusted);
  EXPECT_EQ(env.readings[0].source_ts, received);
}

TEST(Normalizer, ScaledOverflowIsRefused) {
  auto c = json_config(config::TimestampFormat::epoch_s);
  c.profiles[0].metrics[0].scale = 1e300;
  Normalizer big(c);
  const auto env = big.normalize("raw/t1", R"({"s":{"t10":1e300}})", received);
  EXPECT_TRUE(env.readings.empty());
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "invalid_number");
}

}  // namespace
}  // namespace fieldhub::normalize
