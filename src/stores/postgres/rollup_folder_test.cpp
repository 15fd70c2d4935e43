// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL rollup folder (its own thread and connection) against a real PostgreSQL: folds
// racing batches of two fieldhub instances lose and double-count nothing, a batch with huge sums
// still fails alone, and a server outage is a counted, retried value.

#include "stores/postgres/rollup_folder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "stores/postgres/postgres_history_store.h"
#include "support/postgres_server.h"

namespace fieldhub::stores {
namespace {

using namespace std::chrono_literals;
using pipeline::Envelope;

const model::Timestamp h0 = model::from_micros(1'794'999'600'000'000);  // an hour boundary
const model::Timestamp far_past = model::from_micros(-4'000'000'000'000'000);
const model::Timestamp far_future = model::from_micros(4'000'000'000'000'000);

model::Reading reading(std::string device, std::string metric, model::Timestamp ts, double v) {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = v;
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts;
  r.provenance = {"mqtt", "broker"};
  return r;
}

std::string name(std::string_view prefix, int i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

// The buckets a user expects from the readings of one series: every aggregate, and the delta
// from the previous bucket's last value (none when the value went down: a counter reset).
std::vector<RollupBucket> expected_buckets(const std::map<model::Timestamp, double>& values,
                                           Resolution r) {
  const std::int64_t width = bucket_width_us(r);
  std::map<std::int64_t, RollupBucket> buckets;
  for (const auto& [ts, v] : values) {
    const std::int64_t us = model::to_micros(ts);
    const std::int64_t start = us - ((us % width) + width) % width;
    auto [it, fresh] = buckets.try_emplace(start);
    RollupBucket& b = it->second;
    if (fresh) {
      b.start = model::from_micros(start);
      b.min = b.max = b.first = v;
      b.first_ts = ts;
    }
    b.min = std::min(b.min, v);
    b.max = std::max(b.max, v);
    b.sum += v;
    ++b.count;
    b.last = v;
    b.last_ts = ts;
  }
  std::vector<RollupBucket> out;
  std::optional<double> previous;
  for (auto& [start, b] : buckets) {
    if (previous && b.last >= *previous) b.delta = b.last - *previous;  // else a reset
    previous = b.last;
    out.push_back(b);
  }
  return out;
}

using Written = std::map<std::pair<int, int>, std::map<model::Timestamp, double>>;

// Every series' minute and hour buckets, read through the store, equal what its readings give.
void expect_buckets(PostgresHistoryStore& store, const Written& written) {
  for (const auto& [key, values] : written) {
    const std::string device = name("dev-", key.first);
    const std::string metric = name("m", key.second);
    for (const Resolution r : {Resolution::minute, Resolution::hour}) {
      const auto want = expected_buckets(values, r);
      const auto got = store.rollups({device, metric, r, far_past, far_future});
      ASSERT_EQ(got.size(), want.size()) << device << " " << metric;
      for (std::size_t i = 0; i < want.size(); ++i) {
        SCOPED_TRACE(device + " " + metric + " bucket " + std::to_string(i));
        EXPECT_EQ(got[i].start, want[i].start);
        EXPECT_EQ(got[i].count, want[i].count);
        EXPECT_EQ(got[i].sum, want[i].sum);
        EXPECT_EQ(got[i].min, want[i].min);
        EXPECT_EQ(got[i].max, want[i].max);
        EXPECT_EQ(got[i].first_ts, want[i].first_ts);
        EXPECT_EQ(got[i].first, want[i].first);
        EXPECT_EQ(got[i].last_ts, want[i].last_ts);
        EXPECT_EQ(got[i].last, want[i].last);
        EXPECT_EQ(got[i].delta, want[i].delta);
      }
    }
  }
}

class RollupFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::shared_postgres_server();
    if (server_ == nullptr) GTEST_SKIP() << "PostgreSQL is not available";
    if (!server_->running()) server_->start();
    url_ = server_->create_database();
  }
  void TearDown() override {
    if (server_ != nullptr && !server_->running()) server_->start();
  }

  std::unique_ptr<PostgresHistoryStore> open(PostgresOptions options) {
    auto store = PostgresHistoryStore::open(url_, options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  std::int64_t count(const std::string& sql) { return server_->query_int(url_, sql); }

  testing::PostgresServer* server_ = nullptr;
  std::string url_;
};

TEST_F(RollupFolderTest, TwoInstancesFoldingBesideTheirBatchesCountEveryReadingOnce) {
  // Two fieldhub instances on one database, each folding after every batch in slices of 64
  // rows, write the same 30 series (one the even seconds, the other the odd ones) in batches
  // that revisit earlier minutes (late data), while a third party folds through both as well.
  common::Metrics metrics_a;
  common::Metrics metrics_b;
  PostgresOptions options;
  options.rollup_fold_interval = 0ms;
  options.rollup_fold_rows = 64;
  options.metrics = &metrics_a;
  auto a = open(options);
  options.metrics = &metrics_b;
  auto b = open(options);
  ASSERT_TRUE(a && b);

  constexpr int devices = 10;
  constexpr int metrics = 3;
  constexpr int batches = 30;
  constexpr int per_batch = 10;  // readings per series per batch, 2 s apart
  // Expected values per series; a counter (m0) grows with time so its deltas are meaningful.
  Written written;
  std::vector<std::vector<Envelope>> work[2];
  for (int instance = 0; instance < 2; ++instance) {
    for (int k = 0; k < batches; ++k) {
      const int slot = (k * 7) % batches;  // a permutation: later batches go back in time
      std::vector<Envelope> batch;
      for (int d = 0; d < devices; ++d) {
        Envelope e;
        for (int i = 0; i < per_batch; ++i) {
          const int second = slot * 2 * per_batch + i * 2 + instance;
          const model::Timestamp ts = h0 + std::chrono::seconds{second};
          for (int m = 0; m < metrics; ++m) {
            const double v = m == 0 ? second * (d + 1.0) : (second * 37 + d * 11 + m) % 1000;
            e.readings.push_back(reading(name("dev-", d), name("m", m), ts, v));
            written[{d, m}][ts] = v;
          }
        }
        batch.push_back(std::move(e));
      }
      work[instance].push_back(std::move(batch));
    }
  }

  std::atomic<bool> writing{true};
  std::atomic<int> failed_folds{0};
  std::thread third([&] {
    while (writing) {
      if (!a->fold_rollups().ok()) ++failed_folds;
      if (!b->fold_rollups().ok()) ++failed_folds;
    }
  });
  std::atomic<std::uint64_t> stored{0};
  const auto write_all = [&](PostgresHistoryStore& store,
                             const std::vector<std::vector<Envelope>>* list) {
    for (const auto& batch : *list) {
      const WriteResult r = store.write(batch);
      EXPECT_TRUE(r.ok) << r.error;
      stored += r.readings_stored;
    }
  };
  std::thread writer_a(write_all, std::ref(*a), &work[0]);
  std::thread writer_b(write_all, std::ref(*b), &work[1]);
  writer_a.join();
  writer_b.join();
  writing = false;
  third.join();
  EXPECT_EQ(failed_folds, 0);
  ASSERT_EQ(stored, 2u * batches * devices * per_batch * metrics);
  // Both folders folded while the batches were written.
  EXPECT_GT(metrics_a.counter_value("fieldhub_history_folded_rows_total"), 0u);
  EXPECT_GT(metrics_b.counter_value("fieldhub_history_folded_rows_total"), 0u);

  ASSERT_TRUE(testing::wait_until(
      [&] {
        return a->fold_rollups().ok() && b->fold_rollups().ok() &&
               count("SELECT count(*) FROM rollup_pending") == 0;
      },
      10s, 10ms));
  // Every row appended (each batch spans one minute: one row per series) was folded exactly
  // once, by one of the two.
  EXPECT_EQ(metrics_a.counter_value("fieldhub_history_folded_rows_total") +
                metrics_b.counter_value("fieldhub_history_folded_rows_total"),
            2u * batches * devices * metrics);

  expect_buckets(*a, written);
  // The same in the tables themselves: one row per (series, minute) and per (series, hour).
  const std::int64_t series = devices * metrics;
  const std::int64_t minutes = batches * 2 * per_batch / 60;  // 600 s of readings
  EXPECT_EQ(count("SELECT count(*) FROM rollup_1m"), series * minutes);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_1h"), series);
  EXPECT_EQ(count("SELECT sum(value_count)::bigint FROM rollup_1m"),
            count("SELECT count(*) FROM readings"));
}

TEST_F(RollupFolderTest, ClosingTheStoreMidFoldLeavesEveryRowFoldedOrPendingAndTheNextOpenFoldsIt) {
  PostgresOptions options;
  options.rollup_fold_interval = 0ms;  // a fold after every batch
  options.rollup_fold_rows = 10;       // in many slices
  constexpr int series = 40;
  constexpr int batches = 25;
  Written written;
  {
    auto store = open(options);
    ASSERT_TRUE(store);
    for (int k = 0; k < batches; ++k) {
      std::vector<Envelope> batch(1);
      for (int d = 0; d < series; ++d) {
        const model::Timestamp ts = h0 + std::chrono::seconds{(k * 11) % batches * 7};
        const double v = k * 100.0 + d;
        batch[0].readings.push_back(reading(name("dev-", d), "m0", ts, v));
        written[{d, 0}][ts] = v;
      }
      ASSERT_TRUE(store->write(batch).ok);
    }
    // Closed while its folder is most likely still folding the last batches: it finishes the
    // slice in flight, then stops.
    const auto start = std::chrono::steady_clock::now();
    store.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - start, options.timeout);
  }
  // Each reading is in a folded bucket or still pending, once; a slice merged both tiers or none.
  const std::int64_t folded = count("SELECT coalesce(sum(value_count), 0)::bigint FROM rollup_1m");
  const std::int64_t pending =
      count("SELECT coalesce(sum(value_count), 0)::bigint FROM rollup_pending");
  std::cout << "closed with " << pending << " of " << series * batches << " readings pending\n";
  EXPECT_EQ(folded + pending, series * batches);
  EXPECT_EQ(count("SELECT coalesce(sum(value_count), 0)::bigint FROM rollup_1h"), folded);

  options.rollup_fold_interval = 1h;
  auto again = open(options);  // folds what the last run left
  ASSERT_TRUE(again);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 0);
  expect_buckets(*again, written);
}

TEST_F(RollupFolderTest, ABatchWithHugeSumsMergesItselfAndAnOverflowFailsOnlyThatBatch) {
  PostgresOptions options;
  options.rollup_fold_interval = 1h;  // the folder thread stays out of this test
  auto store = open(options);
  ASSERT_TRUE(store);
  const auto write = [&](model::Timestamp ts, double v) {
    const Envelope batch[] = {Envelope{{reading("m1", "energy", ts, v)}}};
    return store->write(batch);
  };
  ASSERT_TRUE(write(h0 + 1s, 5.0).ok);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 1);
  // Huge: merged into the buckets in the batch's own transaction; the pending row stays.
  ASSERT_TRUE(write(h0 + 2s, 1e300).ok);
  ASSERT_TRUE(write(h0 + 3s, 1.7e308).ok);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_1m"), 1);
  // Would overflow the bucket's sum: this batch fails, nothing of it is stored.
  const WriteResult overflow = write(h0 + 4s, 1.7e308);
  EXPECT_FALSE(overflow.ok);
  EXPECT_NE(overflow.error.find("out of range"), std::string::npos) << overflow.error;
  EXPECT_EQ(count("SELECT count(*) FROM readings"), 3);
  // The pending row still folds, and the bucket holds the three stored readings.
  ASSERT_TRUE(store->fold_rollups().ok());
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 0);
  const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].count, 3u);
  EXPECT_EQ(minutes[0].min, 5.0);
  EXPECT_EQ(minutes[0].max, 1.7e308);
  EXPECT_EQ(minutes[0].first, 5.0);
  EXPECT_EQ(minutes[0].last, 1.7e308);
  EXPECT_EQ(minutes[0].sum, 5.0 + 1e300 + 1.7e308);
}

TEST_F(RollupFolderTest, WhilePostgresIsDownTheFolderCountsFailuresBacksOffAndFoldsWhenItReturns) {
  common::Metrics metrics;
  PostgresOptions options;
  options.rollup_fold_interval = 200ms;
  options.metrics = &metrics;
  auto store = open(options);
  ASSERT_TRUE(store);
  const Envelope batch[] = {
      Envelope{{reading("m1", "energy", h0 + 1s, 2.0), reading("m1", "energy", h0 + 61s, 3.0)}}};
  ASSERT_TRUE(store->write(batch).ok);

  server_->stop();
  const auto errors = [&] { return metrics.counter_value("fieldhub_history_fold_errors_total"); };
  ASSERT_TRUE(testing::wait_until([&] { return errors() >= 1; }, 10s, 10ms));
  std::this_thread::sleep_for(3s);  // an outage of a few seconds
  // Every 200 ms without a backoff; with it (1 s, then 2 s) at most three attempts failed.
  EXPECT_LE(errors(), 3u);
  server_->start();
  const std::uint64_t folds_before = metrics.histogram("fieldhub_history_fold_seconds", "").count();
  // Back on its own, no write needed: the rows are folded and read the same.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return metrics.histogram("fieldhub_history_fold_seconds", "").count() > folds_before &&
               count("SELECT count(*) FROM rollup_pending") == 0;
      },
      15s, 50ms));
  const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].last, 2.0);
  EXPECT_EQ(minutes[1].delta, 1.0);
  EXPECT_EQ(count("SELECT sum(value_count)::bigint FROM rollup_1h"), 2);
  // The writer was never involved: it still writes.
  const Envelope later[] = {Envelope{{reading("m1", "energy", h0 + 121s, 4.0)}}};
  EXPECT_TRUE(store->write(later).ok);
}

}  // namespace
}  // namespace fieldhub::stores
