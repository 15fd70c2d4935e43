// SPDX-License-Identifier: Apache-2.0
#include "pipeline/validate.h"

#include <gtest/gtest.h>

#include <limits>

namespace fieldhub::pipeline {
namespace {

using namespace std::chrono_literals;

const model::Timestamp now = model::from_micros(1'795'514'400'000'000);  // 2026-11-24T10:00Z

model::Reading reading(model::Value v, model::Timestamp ts = now - 1s) {
  model::Reading r;
  r.device_id = "kwh-1";
  r.metric = "energy";
  r.value = std::move(v);
  r.source_ts = ts;
  r.received_ts = now;
  return r;
}

TEST(Validate, KeepsGoodRecordsUntouched) {
  Envelope env;
  env.readings.push_back(reading(12.5));
  const auto notes = validate(env, {}, now);
  ASSERT_EQ(env.readings.size(), 1u);
  EXPECT_EQ(env.readings[0].quality, model::Quality::good);
  EXPECT_TRUE(env.dead_letters.empty());
  EXPECT_EQ(notes.future_timestamps, 0u);
}

TEST(Validate, RejectsNonFiniteNumbersAlone) {
  Envelope env;
  env.readings.push_back(reading(std::numeric_limits<double>::quiet_NaN()));
  env.readings.push_back(reading(std::numeric_limits<double>::infinity()));
  env.readings.push_back(reading(1.0));
  validate(env, {}, now);
  ASSERT_EQ(env.readings.size(), 1u);
  ASSERT_EQ(env.dead_letters.size(), 2u);
  EXPECT_EQ(env.dead_letters[0].reason, "non_finite");
  EXPECT_EQ(env.dead_letters[0].source, "device/kwh-1");
}

TEST(Validate, RejectsNulAndInvalidUtf8InText) {
  Envelope env;
  env.readings.push_back(reading(std::string("a\0b", 3)));
  env.readings.push_back(reading(std::string("\xC3\x28")));
  validate(env, {}, now);
  EXPECT_TRUE(env.readings.empty());
  ASSERT_EQ(env.dead_letters.size(), 2u);
  EXPECT_EQ(env.dead_letters[0].reason, "nul_in_string");
  EXPECT_EQ(env.dead_letters[1].reason, "invalid_utf8");
}

TEST(Validate, FlagsFutureTimestampsInsteadOfTrustingThem) {
  Envelope env;
  env.readings.push_back(reading(1.0, now + 10min));
  const auto notes = validate(env, {.max_future_skew = 5min}, now);
  ASSERT_EQ(env.readings.size(), 1u);
  const auto& r = env.readings[0];
  EXPECT_FALSE(r.source_ts_trusted);
  EXPECT_EQ(r.ts(), now);  // ordered by receipt
  EXPECT_EQ(r.quality, model::Quality::uncertain);
  EXPECT_EQ(r.quality_reason, "future_timestamp");
  EXPECT_EQ(notes.future_timestamps, 1u);
}

TEST(Validate, AllowsSmallFutureSkew) {
  Envelope env;
  env.readings.push_back(reading(1.0, now + 2min));
  validate(env, {.max_future_skew = 5min}, now);
  EXPECT_TRUE(env.readings[0].source_ts_trusted);
}

TEST(Validate, RejectsFarPast) {
  Envelope env;
  env.readings.push_back(reading(1.0, now - 8 * 24h));
  env.events.push_back(
      {.device_id = "nc-1", .type = "call", .source_ts = now - 8 * 24h, .received_ts = now});
  validate(env, {.max_past_age = 7 * 24h}, now);
  EXPECT_TRUE(env.readings.empty());
  EXPECT_TRUE(env.events.empty());
  ASSERT_EQ(env.dead_letters.size(), 2u);
  EXPECT_EQ(env.dead_letters[0].reason, "timestamp_too_old");
  EXPECT_EQ(env.dead_letters[1].reason, "timestamp_too_old");
}

TEST(Validate, CountsMissingTimestamps) {
  Envelope env;
  auto r = reading(1.0);
  r.source_ts_trusted = false;
  env.readings.push_back(r);
  const auto notes = validate(env, {}, now);
  EXPECT_EQ(notes.missing_timestamps, 1u);
  EXPECT_EQ(env.readings.size(), 1u);
}

TEST(Validate, RejectsEmptyIdentity) {
  Envelope env;
  auto r = reading(1.0);
  r.metric.clear();
  env.readings.push_back(r);
  validate(env, {}, now);
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "invalid_record");
}

}  // namespace
}  // namespace fieldhub::pipeline
