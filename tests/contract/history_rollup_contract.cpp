// SPDX-License-Identifier: Apache-2.0
// The rollup half of the HistoryStore contract: per-minute and per-hour buckets kept with the
// readings, for every implementation.
#include <chrono>
#include <string>
#include <vector>

#include "history_store_contract.h"

namespace fieldhub::contract {
namespace {

using namespace std::chrono_literals;
using model::Quality;
using model::Reading;
using pipeline::Envelope;
using stores::Resolution;
using stores::RollupBucket;
using stores::WriteResult;

// 2026-11-18 18:00:00 UTC: on an hour boundary, so bucket starts are easy to name.
const model::Timestamp h0 = model::from_micros(1'794'999'600'000'000);
const model::Timestamp far_past = model::from_micros(0);

Reading reading(std::string device, std::string metric, model::Timestamp ts, model::Value v) {
  Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = std::move(v);
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts + 15ms;
  r.provenance = {"mqtt", "broker"};
  return r;
}

Envelope with(std::vector<Reading> rs) {
  Envelope e;
  e.readings = std::move(rs);
  return e;
}

void write_ok(stores::HistoryStore& store, std::vector<Reading> rs) {
  const Envelope batch[] = {with(std::move(rs))};
  const WriteResult r = store.write(batch);
  ASSERT_TRUE(r.ok) << r.error;
}

std::vector<RollupBucket> buckets_of(stores::HistoryStore& store, Resolution res,
                                     model::Timestamp from = far_past,
                                     model::Timestamp to = h0 + 24h,
                                     const std::string& metric = "energy") {
  return store.rollups({"m1", metric, res, from, to, 10000});
}

void expect_bucket(const RollupBucket& b, model::Timestamp start, double min, double max,
                   double sum, std::uint64_t count, model::Timestamp first_ts, double first,
                   model::Timestamp last_ts, double last) {
  SCOPED_TRACE(model::format_rfc3339(start));
  EXPECT_EQ(b.start, start);
  EXPECT_EQ(b.min, min);
  EXPECT_EQ(b.max, max);
  EXPECT_EQ(b.sum, sum);
  EXPECT_EQ(b.count, count);
  EXPECT_EQ(b.mean(), sum / static_cast<double>(count));
  EXPECT_EQ(b.first_ts, first_ts);
  EXPECT_EQ(b.first, first);
  EXPECT_EQ(b.last_ts, last_ts);
  EXPECT_EQ(b.last, last);
}

TEST_P(HistoryRollupContract, AggregatesAreExactForAKnownSeries) {
  Reading bad = reading("m1", "energy", h0 + 50s, 1000.0);
  bad.quality = Quality::bad;
  Reading uncertain = reading("m1", "energy", h0 + 70s, 6.0);
  uncertain.quality = Quality::uncertain;
  write_ok(*store_, {reading("m1", "energy", h0 + 0s, 4.0), reading("m1", "energy", h0 + 15s, 1.0),
                     reading("m1", "energy", h0 + 30s, 3.0), reading("m1", "energy", h0 + 45s, 2.0),
                     bad, uncertain, reading("m1", "energy", h0 + 119s, 8.0),
                     reading("m1", "energy", h0 + 2h + 5s, 9.0)});

  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 3u);
  expect_bucket(minutes[0], h0, 1, 4, 10, 4, h0, 4, h0 + 45s, 2);
  expect_bucket(minutes[1], h0 + 1min, 6, 8, 14, 2, h0 + 70s, 6, h0 + 119s, 8);
  expect_bucket(minutes[2], h0 + 2h, 9, 9, 9, 1, h0 + 2h + 5s, 9, h0 + 2h + 5s, 9);

  const auto hours = buckets_of(*store_, Resolution::hour);
  ASSERT_EQ(hours.size(), 2u);
  expect_bucket(hours[0], h0, 1, 8, 24, 6, h0, 4, h0 + 119s, 8);
  expect_bucket(hours[1], h0 + 2h, 9, 9, 9, 1, h0 + 2h + 5s, 9, h0 + 2h + 5s, 9);
}

TEST_P(HistoryRollupContract, OnlyFiniteNumbersOfGoodOrUncertainQualityAreAggregated) {
  Reading no_value = reading("m1", "energy", h0 + 1s, std::monostate{});
  no_value.quality = Quality::bad;
  write_ok(*store_,
           {no_value, reading("m1", "energy", h0 + 2s, std::numeric_limits<double>::quiet_NaN()),
            reading("m1", "door", h0 + 3s, true), reading("m1", "label", h0 + 4s, std::string("x")),
            reading("m1", "energy", h0 + 5s, 7.0)});
  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].count, 1u);
  EXPECT_EQ(minutes[0].sum, 7.0);
  EXPECT_TRUE(buckets_of(*store_, Resolution::minute, far_past, h0 + 24h, "door").empty());
  EXPECT_TRUE(buckets_of(*store_, Resolution::minute, far_past, h0 + 24h, "label").empty());
}

TEST_P(HistoryRollupContract, LateDataMergesIntoStoredBuckets) {
  write_ok(*store_, {reading("m1", "energy", h0 + 20s, 5.0), reading("m1", "energy", h0 + 40s, 6.0),
                     reading("m1", "energy", h0 + 3min, 7.0)});
  // Late: older than the newest bucket, in a separate batch; one point before the stored first,
  // one between first and last, one after the stored last of the same bucket.
  write_ok(*store_,
           {reading("m1", "energy", h0 + 10s, 9.0), reading("m1", "energy", h0 + 30s, 1.0)});
  write_ok(*store_, {reading("m1", "energy", h0 + 50s, 2.0)});

  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 2u);
  expect_bucket(minutes[0], h0, 1, 9, 23, 5, h0 + 10s, 9, h0 + 50s, 2);
  expect_bucket(minutes[1], h0 + 3min, 7, 7, 7, 1, h0 + 3min, 7, h0 + 3min, 7);
  const auto hours = buckets_of(*store_, Resolution::hour);
  ASSERT_EQ(hours.size(), 1u);
  expect_bucket(hours[0], h0, 1, 9, 30, 6, h0 + 10s, 9, h0 + 3min, 7);
}

TEST_P(HistoryRollupContract, RepeatsAreNotCountedTwice) {
  const std::vector<Reading> series = {reading("m1", "energy", h0 + 1s, 1.0),
                                       reading("m1", "energy", h0 + 2s, 2.0)};
  write_ok(*store_, series);
  write_ok(*store_, series);  // a replay of stored rows
  // A repeat inside one batch, and a repeat key with another value: the stored row wins.
  write_ok(*store_, {reading("m1", "energy", h0 + 3s, 3.0), reading("m1", "energy", h0 + 3s, 3.0),
                     reading("m1", "energy", h0 + 1s, 100.0)});

  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 1u);
  expect_bucket(minutes[0], h0, 1, 3, 6, 3, h0 + 1s, 1, h0 + 3s, 3);
  ASSERT_EQ(buckets_of(*store_, Resolution::hour).size(), 1u);
  EXPECT_EQ(buckets_of(*store_, Resolution::hour)[0].count, 3u);
}

TEST_P(HistoryRollupContract, CounterDeltaIsLastMinusPreviousLastAndNullOnReset) {
  // A kWh total: minute lasts 100, 105, 112, then the meter is replaced (3), then 7.
  write_ok(*store_,
           {reading("m1", "energy", h0 + 10s, 99.0), reading("m1", "energy", h0 + 50s, 100.0),
            reading("m1", "energy", h0 + 1min + 30s, 105.0),
            reading("m1", "energy", h0 + 2min + 30s, 112.0),
            reading("m1", "energy", h0 + 3min + 30s, 3.0),
            reading("m1", "energy", h0 + 4min + 30s, 7.0)});
  const auto all = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_FALSE(all[0].delta.has_value());  // nothing before it: unknown
  EXPECT_EQ(all[1].delta, 5.0);
  EXPECT_EQ(all[2].delta, 7.0);
  EXPECT_FALSE(all[3].delta.has_value());  // 3 - 112 < 0: a reset, not -109 kWh
  EXPECT_EQ(all[4].delta, 4.0);

  // A range starting later still knows the bucket before it.
  const auto later = buckets_of(*store_, Resolution::minute, h0 + 2min, h0 + 4min);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].delta, 7.0);
  EXPECT_FALSE(later[1].delta.has_value());

  // A late reading that becomes a bucket's last changes the deltas around it.
  write_ok(*store_, {reading("m1", "energy", h0 + 1min + 59s, 108.0)});
  const auto after = buckets_of(*store_, Resolution::minute);
  EXPECT_EQ(after[1].delta, 8.0);
  EXPECT_EQ(after[2].delta, 4.0);
}

TEST_P(HistoryRollupContract, EmptyBucketsAreAbsent) {
  write_ok(*store_,
           {reading("m1", "energy", h0 + 5s, 10.0), reading("m1", "energy", h0 + 7min, 16.0)});
  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].start, h0);
  EXPECT_EQ(minutes[1].start, h0 + 7min);
  EXPECT_EQ(minutes[1].delta, 6.0);  // since the nearest earlier bucket
}

TEST_P(HistoryRollupContract, BucketsAreAlignedToUtcAndTheRangeIsOnBucketStarts) {
  write_ok(*store_,
           {reading("m1", "energy", h0 - 1us, 1.0), reading("m1", "energy", h0, 2.0),
            reading("m1", "energy", h0 + 1h - 1us, 3.0), reading("m1", "energy", h0 + 1h, 4.0),
            // Before 1970: buckets still start on whole minutes (floor, not truncation).
            reading("m1", "energy", model::from_micros(-90'000'000), 5.0)});
  const auto minutes = buckets_of(*store_, Resolution::minute, model::from_micros(-3'600'000'000));
  ASSERT_EQ(minutes.size(), 5u);
  EXPECT_EQ(minutes[0].start, model::from_micros(-120'000'000));
  EXPECT_EQ(minutes[1].start, h0 - 1min);
  EXPECT_EQ(minutes[2].start, h0);
  EXPECT_EQ(minutes[3].start, h0 + 59min);
  EXPECT_EQ(minutes[4].start, h0 + 1h);
  const auto hours = buckets_of(*store_, Resolution::hour, model::from_micros(-3'600'000'000));
  ASSERT_EQ(hours.size(), 4u);
  EXPECT_EQ(hours[0].start, model::from_micros(-3'600'000'000));
  EXPECT_EQ(hours[1].start, h0 - 1h);
  EXPECT_EQ(hours[2].start, h0);
  EXPECT_EQ(hours[2].count, 2u);
  EXPECT_EQ(hours[3].start, h0 + 1h);
  // from inclusive, to exclusive, on bucket starts.
  const auto range = buckets_of(*store_, Resolution::minute, h0, h0 + 1h);
  ASSERT_EQ(range.size(), 2u);
  EXPECT_EQ(range[0].start, h0);
  EXPECT_EQ(range[1].start, h0 + 59min);
}

TEST_P(HistoryRollupContract, AFailedWriteLeavesNoRollupAndRollupsSurviveReopen) {
  if (!harness_->fail_event_writes(true)) GTEST_SKIP() << "no fault injection";
  Envelope env = with({reading("m1", "energy", h0 + 1s, 1.0)});
  model::Event e;
  e.device_id = "m1";
  e.type = "door";
  e.source_ts = h0;
  e.received_ts = h0;
  env.events.push_back(e);
  const Envelope batch[] = {env};
  EXPECT_FALSE(store_->write(batch).ok);
  EXPECT_TRUE(buckets_of(*store_, Resolution::minute).empty());
  ASSERT_TRUE(harness_->fail_event_writes(false));
  ASSERT_TRUE(store_->write(batch).ok);
  reopen();
  const auto minutes = buckets_of(*store_, Resolution::minute);
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].count, 1u);
}

}  // namespace

}  // namespace fieldhub::contract
