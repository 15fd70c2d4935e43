// SPDX-License-Identifier: Apache-2.0
#include "stores/redis/live_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace fieldhub::stores::redis_codec {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

LatestValue value(model::Value v) {
  return LatestValue{std::move(v), "kWh", t0, t0 + 15ms, model::Quality::good, ""};
}

TEST(LiveCodec, MetricStartsWithTsAndRtsForTheLuaScript) {
  std::string json;
  encode_metric(value(12.5), json);
  EXPECT_EQ(json,
            R"({"ts":1795000000000000,"rts":1795000000015000,"v":12.5,"u":"kWh","q":"good"})");
}

TEST(LiveCodec, EveryValueTypeRoundTrips) {
  for (const model::Value& v :
       {model::Value{12.5}, model::Value{2.0}, model::Value{-1e300}, model::Value{0.1},
        model::Value{true}, model::Value{false}, model::Value{std::string("Füllstand \"ok\"\n")},
        model::Value{std::monostate{}}}) {
    LatestValue in = value(v);
    in.quality = model::Quality::uncertain;
    in.quality_reason = "estimated";
    std::string json;
    encode_metric(in, json);
    const auto out = decode_metric(json);
    ASSERT_TRUE(out) << json;
    EXPECT_EQ(out->value, in.value) << json;
    EXPECT_EQ(out->unit, "kWh");
    EXPECT_EQ(out->ts, in.ts);
    EXPECT_EQ(out->received_ts, in.received_ts);
    EXPECT_EQ(out->quality, model::Quality::uncertain);
    EXPECT_EQ(out->quality_reason, "estimated");
  }
}

TEST(LiveCodec, MalformedMetricIsNothing) {
  EXPECT_FALSE(decode_metric(""));
  EXPECT_FALSE(decode_metric("{"));
  EXPECT_FALSE(decode_metric(R"({"v":1})"));                          // no ts
  EXPECT_FALSE(decode_metric(R"({"ts":"x","rts":1})"));               // wrong type
  EXPECT_FALSE(decode_metric(R"({"ts":1,"rts":1,"q":"splendid"})"));  // unknown quality
  EXPECT_TRUE(decode_metric(R"({"ts":1,"rts":1})"));
}

TEST(LiveCodec, HashDecodesLastSeenAndMetricsAndSkipsTheRest) {
  std::string energy;
  encode_metric(value(3.0), energy);
  std::size_t skipped = 0;
  const DeviceUpdate u = decode_hash(
      "meter-1",
      {{"last_seen", "1795000000020000"}, {"m:energy", energy}, {"m:broken", "{"}, {"stray", "1"}},
      &skipped);
  EXPECT_EQ(u.device_id, "meter-1");
  EXPECT_EQ(u.last_seen, t0 + 20ms);
  ASSERT_EQ(u.metrics.size(), 1u);
  EXPECT_EQ(u.metrics[0].first, "energy");
  EXPECT_EQ(u.metrics[0].second.value, model::Value{3.0});
  EXPECT_EQ(skipped, 2u);
}

TEST(LiveCodec, FrameRoundTrips) {
  std::string a;
  std::string b;
  encode_metric(value(1.0), a);
  encode_metric(value(true), b);
  FrameWriter w("inst-1", 64 * 1024);
  const std::pair<std::string_view, std::string_view> m1[] = {{"energy", a}, {"door", b}};
  w.device("meter-1", t0 + 20ms, m1);
  w.device("door-3", t0, {});
  const auto frames = w.take();
  ASSERT_EQ(frames.size(), 1u);
  const auto f = decode_frame(frames[0]);
  ASSERT_TRUE(f) << frames[0];
  EXPECT_EQ(f->source, "inst-1");
  ASSERT_EQ(f->devices.size(), 2u);
  EXPECT_EQ(f->devices[0].device_id, "meter-1");
  EXPECT_EQ(f->devices[0].last_seen, t0 + 20ms);
  ASSERT_EQ(f->devices[0].metrics.size(), 2u);
  EXPECT_EQ(f->devices[0].metrics[1].first, "door");
  EXPECT_EQ(f->devices[0].metrics[1].second.value, model::Value{true});
  EXPECT_EQ(f->devices[1].device_id, "door-3");
  EXPECT_TRUE(f->devices[1].metrics.empty());
}

TEST(LiveCodec, FramesAreSplitPastTheLimitAndEachIsValid) {
  std::string m;
  encode_metric(value(1.0), m);
  FrameWriter w("i", 1024);
  const std::pair<std::string_view, std::string_view> one[] = {{"energy", m}};
  for (int i = 0; i < 100; ++i) w.device("meter-" + std::to_string(i), std::nullopt, one);
  const auto frames = w.take();
  EXPECT_GT(frames.size(), 5u);
  std::size_t devices = 0;
  for (const auto& f : frames) {
    EXPECT_LT(f.size(), 1024u + 200u);
    const auto d = decode_frame(f);
    ASSERT_TRUE(d) << f;
    devices += d->devices.size();
  }
  EXPECT_EQ(devices, 100u);
  EXPECT_TRUE(w.take().empty());
}

TEST(LiveCodec, MalformedFrameIsNothing) {
  EXPECT_FALSE(decode_frame(""));
  EXPECT_FALSE(decode_frame("hello"));
  EXPECT_FALSE(decode_frame(R"({"dev":[]})"));
  EXPECT_FALSE(decode_frame(R"({"src":"x","dev":[{"m":{}}]})"));
  EXPECT_FALSE(decode_frame(R"({"src":"x","dev":[{"id":"a","m":{"e":{"v":1}}}]})"));
}

}  // namespace
}  // namespace fieldhub::stores::redis_codec
