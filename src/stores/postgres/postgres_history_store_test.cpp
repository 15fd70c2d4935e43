// SPDX-License-Identifier: Apache-2.0
// PostgresHistoryStore beyond the shared contract: server faults (killed, backend terminated
// mid-COPY, hung), records PostgreSQL cannot hold, schema versions, partitions and retention.
// Runs against one real PostgreSQL for the binary; each test has its own database.

#include "stores/postgres/postgres_history_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "support/postgres_server.h"

namespace fieldhub::stores {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using pipeline::Envelope;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);
const model::Timestamp far_past = model::from_micros(-4'000'000'000'000'000);
const model::Timestamp far_future = model::from_micros(4'000'000'000'000'000);

model::Reading reading(std::string device, std::string metric, model::Timestamp ts, double v) {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = v;
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts + 10ms;
  r.provenance = {"mqtt", "broker"};
  return r;
}

// devices x metrics x per_series readings, one envelope per device and time.
std::vector<Envelope> load(int devices, int metrics, int per_series, model::Timestamp start) {
  std::vector<Envelope> batch;
  for (int i = 0; i < per_series; ++i) {
    for (int d = 0; d < devices; ++d) {
      Envelope e;
      for (int m = 0; m < metrics; ++m) {
        // Appended, not "dev-" + to_string(): GCC 12 warns falsely (-Wrestrict) on the latter.
        std::string device = "dev-";
        device += std::to_string(d);
        std::string metric = "m";
        metric += std::to_string(m);
        e.readings.push_back(reading(device, metric, start + i * 1s, d + m + i));
      }
      batch.push_back(std::move(e));
    }
  }
  return batch;
}

class PostgresHistoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::shared_postgres_server();
    if (server_ == nullptr) GTEST_SKIP() << "PostgreSQL is not available";
    if (!server_->running()) server_->start();
    url_ = server_->create_database();
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->thaw();
      if (!server_->running()) server_->start();
    }
  }

  std::unique_ptr<PostgresHistoryStore> open(PostgresOptions options = {}) {
    auto store = PostgresHistoryStore::open(url_, options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }

  std::int64_t count(const std::string& sql) { return server_->query_int(url_, sql); }

  // Starts `write` on another thread, waits until the writer's session matches `condition` in
  // pg_stat_activity (joined with pg_stat_progress_copy as p), then runs `fault`.
  WriteResult write_with_fault(PostgresHistoryStore& store, const std::vector<Envelope>& batch,
                               const std::string& condition, const std::function<void()>& fault) {
    WriteResult result;
    std::atomic<bool> done{false};
    std::thread writer([&] {
      result = store.write(batch);
      done = true;
    });
    // One monitoring session for the whole wait, so each poll is a query, not a connect.
    auto monitor = pg::Connection::open({server_->url(), "fieldhub-test-monitor", 10s});
    EXPECT_TRUE(monitor.ok()) << monitor.status().message();
    const std::string sql =
        "SELECT count(*) FROM pg_stat_activity a LEFT JOIN pg_stat_progress_copy p USING (pid) "
        "WHERE a.application_name = 'fieldhub-writer' AND " +
        condition;
    const bool caught = monitor.ok() && testing::wait_until(
                                            [&] {
                                              if (done) return true;
                                              auto n = monitor.value().query(sql);
                                              return n.ok() && n.value().int8(0, 0) > 0;
                                            },
                                            30s, 1ms);
    EXPECT_TRUE(caught);
    EXPECT_FALSE(done) << "the write finished before the fault could be injected";
    fault();
    writer.join();
    return result;
  }

  testing::PostgresServer* server_ = nullptr;
  std::string url_;
};

TEST_F(PostgresHistoryStoreTest, ServerKilledMidWriteLeavesNothingAndARetryAfterRestartLands) {
  auto store = open();
  ASSERT_TRUE(store);
  const auto batch = load(50, 2, 10, t0);  // 1,000 readings
  // Another session holds a lock on events, so the batch stops there: after its readings went in,
  // inside its transaction. The server is killed at exactly that point.
  auto blocker = pg::Connection::open({url_, "fieldhub-test-blocker", 10s});
  ASSERT_TRUE(blocker.ok()) << blocker.status().message();
  ASSERT_TRUE(blocker.value().execute("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE").ok());
  std::vector<Envelope> with_event = batch;
  with_event[0].events.push_back(
      {"dev-0", "tamper", model::Priority::high, t0, t0, true, "{}", {"mqtt", "broker"}});

  const WriteResult failed =
      write_with_fault(*store, with_event, "a.wait_event_type = 'Lock'", [&] { server_->kill(); });
  EXPECT_FALSE(failed.ok);
  EXPECT_FALSE(failed.error.empty());
  std::cout << "write error after kill: " << failed.error << "\n";

  server_->start();
  EXPECT_EQ(count("SELECT count(*) FROM readings"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM events"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM series"), 0);

  const WriteResult retry = store->write(with_event);
  ASSERT_TRUE(retry.ok) << retry.error;
  EXPECT_EQ(retry.readings_stored, 1000u);
  EXPECT_EQ(retry.readings_duplicate, 0u);
  EXPECT_EQ(retry.events_stored, 1u);
  EXPECT_EQ(count("SELECT count(*) FROM readings"), 1000);
  EXPECT_EQ(store->readings({"dev-7", "m1", t0, t0 + 1h}).size(), 10u);
}

TEST_F(PostgresHistoryStoreTest, BackendTerminatedMidCopyLeavesNothingAndTheRetryLands) {
  auto store = open();
  ASSERT_TRUE(store);
  // Big enough that its COPY takes a while to stream (100k rows, 10 MB).
  const auto batch = load(1000, 2, 50, t0);
  const WriteResult failed =
      write_with_fault(*store, batch, "p.pid IS NOT NULL AND p.tuples_processed > 0",
                       [&] { EXPECT_EQ(server_->terminate_backends("fieldhub-writer"), 1); });
  EXPECT_FALSE(failed.ok);
  std::cout << "write error after terminate: " << failed.error << "\n";
  EXPECT_EQ(count("SELECT count(*) FROM readings"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM series"), 0);

  const WriteResult retry = store->write(batch);
  ASSERT_TRUE(retry.ok) << retry.error;
  EXPECT_EQ(retry.readings_stored, 100'000u);
  EXPECT_EQ(retry.readings_duplicate, 0u);
  EXPECT_EQ(count("SELECT count(*) FROM readings"), 100'000);
}

TEST_F(PostgresHistoryStoreTest, HungServerFailsTheWriteWithinTheTimeout) {
  PostgresOptions options;
  options.timeout = 2s;
  auto store = open(options);
  ASSERT_TRUE(store);
  const auto batch = load(10, 2, 1, t0);
  ASSERT_TRUE(store->write(batch).ok);

  server_->freeze();
  const auto start = std::chrono::steady_clock::now();
  const WriteResult failed = store->write(load(10, 2, 1, t0 + 1s));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(failed.ok);
  EXPECT_GE(took, 1900ms);
  EXPECT_LE(took, 5s);
  std::cout << "hung server detected after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms: " << failed.error << "\n";
  // A query on the other connection is bounded the same way.
  const auto query_start = std::chrono::steady_clock::now();
  EXPECT_TRUE(store->readings({"dev-1", "m0", far_past, far_future}).empty());
  EXPECT_LE(std::chrono::steady_clock::now() - query_start, 9s);

  server_->thaw();
  const WriteResult retry = store->write(load(10, 2, 1, t0 + 1s));
  ASSERT_TRUE(retry.ok) << retry.error;
  EXPECT_EQ(retry.readings_stored, 20u);
  EXPECT_EQ(store->readings({"dev-1", "m0", far_past, far_future}).size(), 2u);
}

TEST_F(PostgresHistoryStoreTest, QueriesReconnectAfterAServerRestart) {
  auto store = open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(load(2, 1, 3, t0)).ok);
  ASSERT_EQ(store->readings({"dev-1", "m0", far_past, far_future}).size(), 3u);
  server_->restart();
  EXPECT_EQ(store->readings({"dev-1", "m0", far_past, far_future}).size(), 3u);
  const WriteResult r = store->write(load(2, 1, 4, t0));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 2u);
  EXPECT_EQ(r.readings_duplicate, 6u);
}

TEST_F(PostgresHistoryStoreTest, TextPostgresCannotHoldIsDeadLetteredAndTheRestFlows) {
  auto store = open();
  ASSERT_TRUE(store);
  Envelope e;
  e.readings = {reading("good", "energy", t0, 1.0), reading("bad\0id"s, "energy", t0, 2.0),
                reading("good", "\xc3\x28", t0, 3.0)};
  e.readings.push_back(reading("good", "power", t0, 4.0));
  e.readings.back().unit = "k\0W"s;
  model::Event ev{"good", "tamper", model::Priority::high, t0,
                  t0,     true,     "{\"a\":\"\xff\"}",    {"mqtt", "broker"}};
  e.events.push_back(ev);
  e.dead_letters.push_back({t0, "topic/\xfe", "invalid_json", "at \0 byte"s, "raw\0\xff"s});
  const WriteResult r = store->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 1u);
  EXPECT_EQ(r.events_stored, 0u);
  EXPECT_EQ(r.dead_letters_stored, 5u);
  EXPECT_EQ(store->readings({"good", "energy", far_past, far_future}).size(), 1u);
  EXPECT_EQ(store->dead_letters({"unstorable_text"}).size(), 4u);
  EXPECT_EQ(count("SELECT count(*) FROM readings_view WHERE device_id = 'good' AND value = 1 "
                  "AND unit = 'kWh' AND quality = 'good' AND time = to_timestamp(1795000000)"),
            1);
  const auto raw = store->dead_letters({"invalid_json"});
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].payload, "raw\0\xff"s);  // the payload keeps its bytes
  EXPECT_EQ(raw[0].source, "topic/\xEF\xBF\xBD");
  EXPECT_EQ(raw[0].detail, "at \xEF\xBF\xBD byte");
}

// decision 0015: only classes 22, 23 and 54 are about the records; anything else is an outage.
TEST(PostgresWriteFailure, DataClassesAreRefusalsOfTheDataEverythingElseAnOutage) {
  for (const char* state :
       {"22003", "22021", "22P05", "22001", "23505", "23514", "23502", "54000"}) {
    EXPECT_EQ(postgres_write_failure(state), WriteFailure::refused_data) << state;
  }
  for (const char* state :
       {"", "08006", "25006", "42501", "42P01", "53100", "53200", "53300", "57014", "57P01",
        "58030", "XX000", "P0001", "40001", "55P03", "2", "ZZ999"}) {
    EXPECT_EQ(postgres_write_failure(state), WriteFailure::outage) << state;
  }
}

// decision 0015: the server made read-only under a running writer session (ALTER SYSTEM and a
// reload reach existing sessions; 25006) refuses every write: an outage, never a data refusal.
// Once it is writable again the same batch lands.
TEST_F(PostgresHistoryStoreTest, AServerTurnedReadOnlyIsAnOutageAndTheBatchLandsOnceWritable) {
  auto store = open();
  ASSERT_TRUE(store);
  Envelope first;
  first.readings = {reading("ro", "energy", t0, 1.0)};
  ASSERT_TRUE(store->write({&first, 1}).ok);
  server_->execute(server_->url(), "ALTER SYSTEM SET default_transaction_read_only = on");
  server_->execute(server_->url(), "SELECT pg_reload_conf()");
  Envelope batch;
  batch.readings = {reading("ro", "energy", t0 + 1s, 2.0)};
  WriteResult refused;
  // The reload reaches the writer's session when it next reads a query; retried until it has.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        refused = store->write({&batch, 1});
        return !refused.ok;
      },
      5s, 50ms));
  // ALTER SYSTEM is allowed in a read-only session (as on a standby).
  server_->execute(server_->url(), "ALTER SYSTEM RESET default_transaction_read_only");
  server_->execute(server_->url(), "SELECT pg_reload_conf()");
  EXPECT_NE(refused.error.find("read-only"), std::string::npos) << refused.error;
  EXPECT_EQ(refused.failure, WriteFailure::outage);
  WriteResult landed;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        landed = store->write({&batch, 1});
        return landed.ok;
      },
      5s, 50ms))
      << landed.error;
  EXPECT_EQ(count("SELECT count(*) FROM readings_view WHERE device_id = 'ro'"), 2);
}

TEST_F(PostgresHistoryStoreTest, ADatabaseWithANewerSchemaIsRefused) {
  ASSERT_TRUE(open());
  EXPECT_EQ(count("SELECT max(version)::bigint FROM schema_version"),
            PostgresHistoryStore::schema_version());
  server_->execute(url_, "UPDATE schema_version SET version = 999");
  auto store = PostgresHistoryStore::open(url_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();
}

TEST_F(PostgresHistoryStoreTest, DailyPartitionsAreCreatedAheadAndDroppedByRetention) {
  // 2026-11-18 12:00 UTC.
  common::FakeClock clock(model::from_micros(1'795'003'200'000'000));
  PostgresOptions options;
  options.clock = &clock;
  options.retention.raw = std::chrono::days{3};
  options.partitions_ahead = 2;
  auto store = open(options);
  ASSERT_TRUE(store);
  const std::string partitions =
      "SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass";
  EXPECT_EQ(count(partitions), 3);  // today and two ahead
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relname = 'readings_20261120'"), 1);

  const model::Timestamp now = clock.now();
  std::vector<Envelope> batch = {
      Envelope{{reading("m1", "energy", now - 24h * 5, 1.0), reading("m1", "energy", now, 2.0),
                reading("m1", "energy", now - 24h * 2, 3.0)}}};
  ASSERT_TRUE(store->write(batch).ok);
  EXPECT_EQ(count(partitions), 5);
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 3u);

  // Dropped once the whole day is past the retention: 5 days back goes, 2 days back stays.
  ASSERT_TRUE(store->maintain().ok());
  EXPECT_EQ(count(partitions), 4);
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relname = 'readings_20261113'"), 0);
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 2u);

  // Two days later the write itself runs the maintenance: ahead partitions follow the clock.
  clock.advance(48h + 1s);
  const Envelope later{{reading("m1", "energy", clock.now(), 4.0)}};
  ASSERT_TRUE(store->write({&later, 1}).ok);
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relname = 'readings_20261122'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relname = 'readings_20261116'"), 0);
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 2u);
}

TEST_F(PostgresHistoryStoreTest, MaintainIfDueRunsTheRetentionWithoutAWriteOnceItIsDue) {
  // What the history writer calls while idle: an idle system prunes too.
  common::FakeClock clock(model::from_micros(1'795'003'200'000'000));
  PostgresOptions options;
  options.clock = &clock;
  options.retention.raw = std::chrono::days{3};
  auto store = open(options);
  ASSERT_TRUE(store);
  const model::Timestamp now = clock.now();
  const Envelope batch{
      {reading("m1", "energy", now - 24h * 5, 1.0), reading("m1", "energy", now, 2.0)}};
  ASSERT_TRUE(store->write({&batch, 1}).ok);
  store->maintain_if_due();  // not due: the store ran its upkeep when it opened
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 2u);
  clock.advance(options.maintenance_interval);
  store->maintain_if_due();
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 1u);
}

TEST_F(PostgresHistoryStoreTest, DeviceClocksAtTheEndsOfTimeGetPartitionsToo) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  const std::vector<model::Timestamp> times = {
      model::from_micros(min),
      model::from_micros(min + 1),
      model::from_micros(-1),
      model::from_micros(0),
      model::from_micros(-62'135'596'800'000'000),  // 0001-01-01
      model::from_micros(max - 1),
      model::from_micros(max)};
  Envelope e;
  for (const auto t : times) {
    model::Reading r = reading("m1", "energy", model::from_micros(0), 1.0);
    r.source_ts = t;
    r.received_ts = t;  // no arithmetic on these: t + 10 ms would overflow
    e.readings.push_back(std::move(r));
  }
  const WriteResult r = store->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, times.size());
  const auto got =
      store->readings({"m1", "energy", model::from_micros(min), model::from_micros(max), 100});
  ASSERT_EQ(got.size(), times.size() - 1);  // `to` is exclusive
  EXPECT_EQ(got.front().ts(), model::from_micros(min));
  EXPECT_EQ(got.back().ts(), model::from_micros(max - 1));
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relname = 'readings_19691231'"), 1);
}

TEST_F(PostgresHistoryStoreTest, TwoProcessesOpeningANewDatabaseAtOnceBothGetIt) {
  // The advisory lock serialises the migration: one creates the schema, the other finds it.
  std::vector<pg::Result<std::unique_ptr<PostgresHistoryStore>>> opened;
  std::vector<std::thread> threads;
  std::mutex m;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      auto store = PostgresHistoryStore::open(url_);
      std::lock_guard lock(m);
      opened.push_back(std::move(store));
    });
  }
  for (auto& t : threads) t.join();
  for (auto& store : opened) ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(count("SELECT count(*) FROM schema_version"), 1);
  ASSERT_TRUE(opened[0].value()->write(load(2, 1, 1, t0)).ok);
  EXPECT_EQ(opened[1].value()->readings({"dev-1", "m0", far_past, far_future}).size(), 1u);
}

TEST_F(PostgresHistoryStoreTest, QueriesRunBesideWritesOnTheirOwnConnection) {
  auto store = open();
  ASSERT_TRUE(store);
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> last_seen{0};
  std::atomic<bool> went_back{false};
  std::thread reader([&] {
    while (!stop) {
      const auto n = store->readings({"dev-3", "m1", far_past, far_future, 100'000}).size();
      if (n < last_seen) went_back = true;  // a reader never sees a batch half or undone
      last_seen = n;
    }
  });
  for (int b = 0; b < 20; ++b) {
    const WriteResult r = store->write(load(100, 2, 5, t0 + b * 5s));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.readings_stored, 1000u);
  }
  stop = true;
  reader.join();
  EXPECT_FALSE(went_back);
  EXPECT_EQ(store->readings({"dev-3", "m1", far_past, far_future, 100'000}).size(), 100u);
}

TEST_F(PostgresHistoryStoreTest, AnUnreachableServerFailsOpenWithinTheTimeout) {
  PostgresOptions options;
  options.timeout = 1s;
  const std::string url =
      "postgresql://fieldhub@127.0.0.1:" + std::to_string(testing::free_tcp_port()) + "/nowhere";
  const auto start = std::chrono::steady_clock::now();
  auto store = PostgresHistoryStore::open(url, options);
  EXPECT_FALSE(store.ok());
  EXPECT_LE(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(PostgresHistoryStoreTest, RollupBucketsPastTheirRetentionAreDeletedNewerStay) {
  // 2026-11-18 12:00 UTC, an hour boundary; the writes happen long before, so the maintenance at
  // open and in write() finds nothing expired until the clock is moved.
  const model::Timestamp now = model::from_micros(1'795'003'200'000'000);
  common::FakeClock clock(now - 24h * 100);
  PostgresOptions options;
  options.clock = &clock;
  options.retention = {.raw = 0us, .minute = 24h * 5, .hour = 24h * 30};
  options.rollup_fold_interval = 1h;  // the folder thread stays out of this test
  auto store = open(options);
  ASSERT_TRUE(store);
  std::vector<model::Reading> rs;
  const std::chrono::microseconds ages[] = {24h * 40, 24h * 10, 24h * 5 + 1min, 24h * 5, 24h};
  for (const auto age : ages) rs.push_back(reading("m1", "energy", now - age, 1.0));
  const Envelope batch[] = {Envelope{rs}};
  ASSERT_TRUE(store->write(batch).ok);
  // Pending until a fold; maintain() folds before its retention.
  ASSERT_EQ(count("SELECT count(*) FROM rollup_pending"), 5);
  ASSERT_EQ(count("SELECT count(*) FROM rollup_1m"), 0);

  clock.set(now);
  ASSERT_TRUE(store->maintain().ok());
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 0);
  const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
  ASSERT_EQ(minutes.size(), 2u);  // a bucket goes once all of it is older than 5 days
  EXPECT_EQ(minutes[0].start, now - 24h * 5);
  EXPECT_EQ(minutes[1].start, now - 24h);
  const auto hours = store->rollups({"m1", "energy", Resolution::hour, far_past, far_future});
  ASSERT_EQ(hours.size(), 4u);
  EXPECT_EQ(hours[0].start, now - 24h * 10);
  // Raw retention is off: every reading stays.
  EXPECT_EQ(store->readings({"m1", "energy", far_past, far_future}).size(), 5u);
}

TEST_F(PostgresHistoryStoreTest, PendingRollupsFoldIntoTheBucketsAndReadTheSameBeforeAndAfter) {
  const model::Timestamp h0 = model::from_micros(1'794'999'600'000'000);  // an hour boundary
  common::FakeClock clock(h0 + 1h);
  PostgresOptions options;
  options.clock = &clock;
  options.rollup_fold_interval = 1h;  // folded here by fold_rollups() only
  auto store = open(options);
  ASSERT_TRUE(store);
  // Three batches into the same buckets, the last one late (older than what is stored).
  const Envelope first[] = {
      Envelope{{reading("m1", "energy", h0 + 20s, 5.0), reading("m1", "energy", h0 + 3min, 7.0)}}};
  const Envelope second[] = {Envelope{{reading("m1", "energy", h0 + 40s, 6.0)}}};
  const Envelope late[] = {
      Envelope{{reading("m1", "energy", h0 + 10s, 9.0), reading("m1", "energy", h0 + 50s, 2.0)}}};
  for (const auto& batch : {std::span<const Envelope>(first), std::span<const Envelope>(second),
                            std::span<const Envelope>(late)}) {
    ASSERT_TRUE(store->write(batch).ok);
  }
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 4);  // per batch: its minutes
  const auto check = [&] {
    const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
    ASSERT_EQ(minutes.size(), 2u);
    EXPECT_EQ(minutes[0].start, h0);
    EXPECT_EQ(minutes[0].count, 4u);
    EXPECT_EQ(minutes[0].sum, 22.0);
    EXPECT_EQ(minutes[0].min, 2.0);
    EXPECT_EQ(minutes[0].max, 9.0);
    EXPECT_EQ(minutes[0].first_ts, h0 + 10s);
    EXPECT_EQ(minutes[0].first, 9.0);
    EXPECT_EQ(minutes[0].last_ts, h0 + 50s);
    EXPECT_EQ(minutes[0].last, 2.0);
    EXPECT_EQ(minutes[1].delta, 5.0);  // 7 after the previous bucket's last 2
    // From the second minute on: the bucket before the range still gives the delta.
    const auto later = store->rollups({"m1", "energy", Resolution::minute, h0 + 1min, far_future});
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0].delta, 5.0);
    const auto hours = store->rollups({"m1", "energy", Resolution::hour, far_past, far_future});
    ASSERT_EQ(hours.size(), 1u);
    EXPECT_EQ(hours[0].count, 5u);
    EXPECT_EQ(hours[0].first, 9.0);
    EXPECT_EQ(hours[0].last, 7.0);
  };
  check();  // every row pending
  ASSERT_TRUE(store->fold_rollups().ok());
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_1m"), 2);
  check();  // every row folded
  const Envelope next[] = {Envelope{{reading("m1", "energy", h0 + 30s, 1.0)}}};
  ASSERT_TRUE(store->write(next).ok);
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 1);
  const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].count, 5u);  // stored and pending merged
  EXPECT_EQ(minutes[0].min, 1.0);
  ASSERT_TRUE(store->fold_rollups().ok());
  EXPECT_EQ(count("SELECT count(*) FROM rollup_pending"), 0);
  EXPECT_EQ(store->rollups({"m1", "energy", Resolution::minute, far_past, far_future})[0].count,
            5u);
}

TEST_F(PostgresHistoryStoreTest, UpgradeFromVersion1BuildsRollupsFromTheStoredReadings) {
  const model::Timestamp h0 = model::from_micros(1'794'999'600'000'000);  // an hour boundary
  {
    auto store = open();
    ASSERT_TRUE(store);
    model::Reading bad = reading("m1", "energy", h0 + 30s, 99.0);
    bad.quality = model::Quality::bad;
    const Envelope batch[] = {
        Envelope{{reading("m1", "energy", h0 + 10s, 3.0), reading("m1", "energy", h0 + 20s, 1.0),
                  bad, reading("m1", "energy", h0 + 2h, 5.0)}}};
    ASSERT_TRUE(store->write(batch).ok);
  }
  // The database as version 1 left it: readings, no rollup tables.
  server_->execute(url_,
                   "DROP TABLE rollup_1m, rollup_1h, rollup_pending; "
                   "UPDATE schema_version SET version = 1");
  auto store = open();
  ASSERT_TRUE(store);
  const auto minutes = store->rollups({"m1", "energy", Resolution::minute, far_past, far_future});
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].count, 2u);
  EXPECT_EQ(minutes[0].min, 1.0);
  EXPECT_EQ(minutes[0].first, 3.0);
  EXPECT_EQ(minutes[0].last, 1.0);
  EXPECT_EQ(minutes[0].last_ts, h0 + 20s);
  EXPECT_EQ(minutes[1].delta, 4.0);
  const auto hours = store->rollups({"m1", "energy", Resolution::hour, far_past, far_future});
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[0].sum, 4.0);
}

}  // namespace
}  // namespace fieldhub::stores
