// SPDX-License-Identifier: Apache-2.0
// The history writer's upkeep timer, on a real SQLite history store driven by a FakeClock.
#include "pipeline/history_writer.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "pipeline/spool_test_support.h"
#include "stores/sqlite/sqlite_history_store.h"

namespace fieldhub::pipeline {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'514'400'000'000);

TEST(HistoryWriterUpkeep, AnIdleWriterRunsTheStoresRetentionWhenItIsDue) {
  testing::ScratchDir dir;
  common::FakeClock clock(t0);
  stores::SqliteOptions options;
  options.clock = &clock;
  options.retention.raw = 1h;
  options.maintenance_interval = 1h;
  options.retention_chunk = 2;  // several steps, each on its own idle tick
  auto opened = stores::SqliteHistoryStore::open(dir.path() / "history.db", options);
  ASSERT_TRUE(opened.ok());
  stores::SqliteHistoryStore& store = *opened.value();

  boost::asio::io_context io;
  common::Metrics metrics;
  config::PipelineConfig config;
  HistoryWriter writer(io.get_executor(), store, config, metrics, [](auto&&) {});
  writer.start();
  Envelope env;
  for (int i = 0; i < 5; ++i) {
    env.readings.push_back({.device_id = "dev-1",
                            .metric = "energy",
                            .value = 1.0 + i,
                            .source_ts = t0 - 30min + std::chrono::seconds{i},
                            .received_ts = t0});
  }
  writer.push(std::move(env));
  const stores::ReadingQuery all{
      .device_id = "dev-1", .metric = "energy", .from = t0 - 24h, .to = t0 + 24h};
  ASSERT_TRUE(testing::wait_until([&] { return store.readings(all).size() == 5; }, 5s));

  // An hour later the readings are past the retention. No more traffic comes: only the writer's
  // idle timer can run the retention now.
  clock.advance(1h);
  EXPECT_TRUE(testing::wait_until([&] { return store.readings(all).empty(); }, 5s))
      << store.readings(all).size() << " readings left";
  writer.stop();
}

}  // namespace
}  // namespace fieldhub::pipeline
