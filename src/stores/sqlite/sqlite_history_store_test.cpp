// SPDX-License-Identifier: Apache-2.0
// What is particular to the SQLite store; what every HistoryStore must do is in
// tests/contract/history_store_contract.cpp.
#include "stores/sqlite/sqlite_history_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include "common/clock.h"

namespace fieldhub::stores {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fieldhub-sqlite-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

model::Reading reading(std::string device, std::string metric, model::Timestamp ts, double v) {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = v;
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts + 5ms;
  r.provenance = {"mqtt", "broker"};
  return r;
}

pipeline::Envelope envelope_of(std::vector<model::Reading> rs) {
  pipeline::Envelope e;
  e.readings = std::move(rs);
  return e;
}

std::int64_t count(const std::filesystem::path& file, const std::string& sql) {
  auto db = sqlite::Database::open(file, sqlite::OpenMode::read_only);
  EXPECT_TRUE(db.ok()) << db.status().message();
  auto n = db.value().query_int64(sql);
  EXPECT_TRUE(n.ok()) << n.status().message();
  return n.ok() ? n.value() : -1;
}

class SqliteHistoryStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteHistoryStore> open_store(SqliteOptions options = {}) {
    auto store = SqliteHistoryStore::open(file_, options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "history.db";
};

TEST_F(SqliteHistoryStoreTest, NewFileGetsTheCurrentSchemaVersionInWalMode) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(count(file_, "SELECT max(version) FROM schema_version"),
            SqliteHistoryStore::schema_version());
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "history.db-wal"));
  store.reset();
  // Reopening a current file migrates nothing and keeps one version row.
  store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM schema_version"), 1);
}

TEST_F(SqliteHistoryStoreTest, NewerSchemaIsRefusedWithAClearError) {
  {
    auto db = sqlite::Database::open(file_, sqlite::OpenMode::read_write_create);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db.value()
                    .exec("CREATE TABLE schema_version(version INTEGER NOT NULL);"
                          "INSERT INTO schema_version VALUES(999)")
                    .ok());
  }
  auto store = SqliteHistoryStore::open(file_);
  ASSERT_FALSE(store.ok());
  const std::string& m = store.status().message();
  EXPECT_NE(m.find("999"), std::string::npos) << m;
  EXPECT_NE(m.find("newer"), std::string::npos) << m;
  EXPECT_NE(m.find(file_.string()), std::string::npos) << m;
}

TEST_F(SqliteHistoryStoreTest, UnopenableOrForeignFilesAreErrorValues) {
  auto missing = SqliteHistoryStore::open(dir_.path() / "no-such-dir" / "h.db");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no-such-dir"), std::string::npos);

  std::ofstream(dir_.path() / "junk.db") << std::string(8192, 'x');
  auto junk = SqliteHistoryStore::open(dir_.path() / "junk.db");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.status().message().find("not a database"), std::string::npos)
      << junk.status().message();
}

TEST_F(SqliteHistoryStoreTest, ParsesSynchronousSetting) {
  EXPECT_EQ(parse_sqlite_synchronous("full"), SqliteSynchronous::full);
  EXPECT_EQ(parse_sqlite_synchronous("normal"), SqliteSynchronous::normal);
  EXPECT_FALSE(parse_sqlite_synchronous("off"));
}

TEST_F(SqliteHistoryStoreTest, LockHeldByAnotherProcessFailsTheWriteThenRetrySucceeds) {
  SqliteOptions options;
  options.busy_timeout = 0ms;  // fail at once instead of waiting out the lock
  auto store = open_store(options);
  ASSERT_TRUE(store);
  auto other = sqlite::Database::open(file_, sqlite::OpenMode::read_write);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other.value().exec("BEGIN IMMEDIATE").ok());

  const std::vector<pipeline::Envelope> batch = {
      envelope_of({reading("m1", "energy", t0, 1.0), reading("m2", "energy", t0, 2.0)})};
  const WriteResult failed = store->write(batch);
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.error.find("locked"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.failure, WriteFailure::outage);  // SQLITE_BUSY: retried, never dead-lettered
  EXPECT_EQ(failed.readings_stored, 0u);

  ASSERT_TRUE(other.value().exec("ROLLBACK").ok());
  const WriteResult ok = store->write(batch);
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.readings_stored, 2u);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings"), 2);
}

// decision 0015: what a refusal is about decides what the history writer does with it.
TEST_F(SqliteHistoryStoreTest, AConstraintRefusalIsAboutTheDataAndTheRestOfTheBatchStaysOut) {
  auto store = open_store();
  ASSERT_TRUE(store);
  // A site's own rule, added by another process: no reading of 666 on this meter.
  auto other = sqlite::Database::open(file_, sqlite::OpenMode::read_write);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other.value()
                  .exec("CREATE TRIGGER no_666 BEFORE INSERT ON readings WHEN NEW.value_num = 666 "
                        "BEGIN SELECT RAISE(ABORT, 'reading 666 refused by site rule'); END")
                  .ok());
  const std::vector<pipeline::Envelope> batch = {
      envelope_of({reading("m1", "energy", t0, 1.0), reading("m2", "energy", t0, 666.0)})};
  const WriteResult refused = store->write(batch);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.failure, WriteFailure::refused_data) << refused.error;
  EXPECT_NE(refused.error.find("666 refused"), std::string::npos) << refused.error;
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings"), 0);
  // The other reading alone goes in.
  EXPECT_TRUE(store->write(std::vector{envelope_of({reading("m1", "energy", t0, 1.0)})}).ok);
}

TEST_F(SqliteHistoryStoreTest, ResultCodesAreDataRefusalsOnlyForConstraintsAndValues) {
  for (const int code : {SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_NOTNULL, SQLITE_CONSTRAINT_CHECK,
                         SQLITE_CONSTRAINT_TRIGGER, SQLITE_TOOBIG, SQLITE_MISMATCH}) {
    EXPECT_EQ(sqlite_write_failure(code), WriteFailure::refused_data) << code;
  }
  for (const int code :
       {SQLITE_FULL, SQLITE_IOERR, SQLITE_IOERR_FSYNC, SQLITE_READONLY, SQLITE_READONLY_DBMOVED,
        SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN, SQLITE_CORRUPT, SQLITE_NOMEM,
        SQLITE_RANGE, SQLITE_ERROR, SQLITE_SCHEMA, 999}) {
    EXPECT_EQ(sqlite_write_failure(code), WriteFailure::outage) << code;
  }
}

TEST_F(SqliteHistoryStoreTest, ReplayDigestsAreForgottenAfterTheRetention) {
  common::FakeClock clock(t0);
  SqliteOptions options;
  options.clock = &clock;
  options.replay_digest_retention = 1h;
  auto store = open_store(options);
  ASSERT_TRUE(store);

  pipeline::Envelope first = envelope_of({reading("m1", "energy", t0, 1.0)});
  first.replay_digest = 0xfeedfacecafebeefULL;  // above INT64_MAX: the bit pattern must survive
  ASSERT_TRUE(store->write(std::span(&first, 1)).ok);
  pipeline::Envelope again = first;
  again.redelivered = true;

  clock.advance(59min);
  WriteResult r = store->write(std::span(&again, 1));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.envelopes_duplicate, 1u);

  // Past the retention, a later batch prunes it; the redelivery is then no longer recognised
  // by digest (its reading is still a duplicate by key).
  clock.advance(2h);
  pipeline::Envelope other = envelope_of({reading("m2", "energy", t0, 1.0)});
  ASSERT_TRUE(store->write(std::span(&other, 1)).ok);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM replay_digests"), 0);
  r = store->write(std::span(&again, 1));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.envelopes_duplicate, 0u);
  EXPECT_EQ(r.readings_duplicate, 1u);
}

TEST_F(SqliteHistoryStoreTest, NanIsStoredAsNanNeverAsZero) {
  auto store = open_store();
  ASSERT_TRUE(store);
  pipeline::Envelope e = envelope_of({reading("m1", "energy", t0, std::nan(""))});
  ASSERT_TRUE(store->write(std::span(&e, 1)).ok);
  const auto got = store->readings({"m1", "energy", t0, t0 + 1s});
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<double>(got[0].value));
  EXPECT_TRUE(std::isnan(std::get<double>(got[0].value)));
}

TEST_F(SqliteHistoryStoreTest, RowsRepeatNoSeriesConstants) {
  auto store = open_store();
  ASSERT_TRUE(store);
  std::vector<model::Reading> rs;
  for (int i = 0; i < 10; ++i) rs.push_back(reading("m1", "energy", t0 + i * 1s, i));
  rs[3].unit = "Wh";
  rs[4].provenance.link = "other-broker";
  pipeline::Envelope e = envelope_of(rs);
  ASSERT_TRUE(store->write(std::span(&e, 1)).ok);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings WHERE unit IS NOT NULL"), 1);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings WHERE adapter IS NOT NULL"), 0);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings WHERE link IS NOT NULL"), 1);
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings WHERE source_ts IS NOT NULL"), 0);
  const auto got = store->readings({"m1", "energy", t0, t0 + 1h});
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[3].unit, "Wh");
  EXPECT_EQ(got[4].provenance.link, "other-broker");
  EXPECT_EQ(got[5].unit, "kWh");
  EXPECT_EQ(got[5].provenance.link, "broker");
}

// A query on the other thread sees whole batches only, while the writer keeps writing.
TEST_F(SqliteHistoryStoreTest, QueriesBesideWritesSeeWholeBatches) {
  auto store = open_store({SqliteSynchronous::normal});
  ASSERT_TRUE(store);
  constexpr int batches = 40;
  constexpr int per_batch = 50;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      const auto n = store->readings({"m1", "energy", t0, t0 + 24h, 100000}).size();
      if (n % per_batch != 0) ++torn;
    }
  });
  for (int b = 0; b < batches; ++b) {
    std::vector<model::Reading> rs;
    for (int i = 0; i < per_batch; ++i)
      rs.push_back(reading("m1", "energy", t0 + (b * per_batch + i) * 1ms, i));
    pipeline::Envelope e = envelope_of(rs);
    ASSERT_TRUE(store->write(std::span(&e, 1)).ok);
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(store->readings({"m1", "energy", t0, t0 + 24h, 100000}).size(),
            std::size_t{batches * per_batch});
}

// 2026-11-18 18:00 UTC, on an hour boundary.
const model::Timestamp h0 = model::from_micros(1'794'999'600'000'000);

TEST_F(SqliteHistoryStoreTest, RetentionDeletesEachTierPastItsAgeInChunksAndKeepsTheRest) {
  // The store's own clock is long before `now`, so its scheduled retention in write() finds
  // nothing expired; apply_retention(now) below does the work.
  common::FakeClock clock(h0 - 24h * 100);
  SqliteOptions options;
  options.clock = &clock;
  options.retention = {.raw = 48h, .minute = 24h * 5, .hour = 24h * 30};
  options.retention_chunk = 3;  // several transactions for the 7 rows that go
  auto store = open_store(options);
  ASSERT_TRUE(store);
  const model::Timestamp now = h0;
  std::vector<model::Reading> rs;
  const std::chrono::microseconds ages[] = {24h * 40, 24h * 10, 24h * 3, 48h + 1us, 48h, 24h};
  for (const auto age : ages) {
    rs.push_back(reading("m1", "energy", now - age, 1.0));
  }
  const pipeline::Envelope batch[] = {envelope_of(rs)};
  ASSERT_TRUE(store->write(batch).ok);
  ASSERT_EQ(count(file_, "SELECT count(*) FROM rollup_1m"), 6);
  ASSERT_EQ(count(file_, "SELECT count(*) FROM rollup_1h"), 6);

  auto deleted = store->apply_retention(now);
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(deleted.value(), 7u);
  // Raw: what is at most 2 days old stays (2 days exactly included).
  const auto raw = store->readings({"m1", "energy", model::from_micros(0), now + 1h});
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw[0].ts(), now - 48h);
  EXPECT_EQ(raw[1].ts(), now - 24h);
  const auto minutes =
      store->rollups({"m1", "energy", Resolution::minute, model::from_micros(0), now + 1h});
  ASSERT_EQ(minutes.size(), 4u);
  EXPECT_EQ(minutes[0].start, now - 24h * 3);
  const auto hours =
      store->rollups({"m1", "energy", Resolution::hour, model::from_micros(0), now + 1h});
  ASSERT_EQ(hours.size(), 5u);
  EXPECT_EQ(hours[0].start, now - 24h * 10);
  // Nothing more to do until time moves on.
  deleted = store->apply_retention(now);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted.value(), 0u);
}

TEST_F(SqliteHistoryStoreTest, WritesRunTheRetentionOneChunkPerBatchOnItsSchedule) {
  common::FakeClock clock(h0);
  SqliteOptions options;
  options.clock = &clock;
  options.retention.raw = 1h;
  options.maintenance_interval = 1h;
  options.retention_chunk = 2;
  auto store = open_store(options);
  ASSERT_TRUE(store);
  std::vector<model::Reading> old;
  for (int i = 1; i <= 5; ++i) old.push_back(reading("m1", "energy", h0 - 2h - i * 1s, 1.0));
  const std::string raw = "SELECT count(*) FROM readings";
  int n = 0;
  const auto write_new = [&] {
    const pipeline::Envelope e[] = {envelope_of({reading("m1", "energy", h0 + ++n * 1s, 2.0)})};
    ASSERT_TRUE(store->write(e).ok);
  };
  const pipeline::Envelope first[] = {envelope_of(old)};
  ASSERT_TRUE(store->write(first).ok);  // the first write is due: 2 of the 5 old rows go
  EXPECT_EQ(count(file_, raw), 3);
  write_new();
  EXPECT_EQ(count(file_, raw), 1 + 1);
  write_new();
  EXPECT_EQ(count(file_, raw), 0 + 2);  // the backlog is gone: the step found less than a chunk
  const pipeline::Envelope again[] = {envelope_of({reading("m1", "energy", h0 - 3h, 1.0)})};
  ASSERT_TRUE(store->write(again).ok);  // not due again before an hour
  write_new();
  EXPECT_EQ(count(file_, raw), 1 + 3);
  clock.advance(1h);
  write_new();
  EXPECT_EQ(count(file_, raw), 4);  // the old one went, the new ones are within the hour
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings WHERE ts < " +
                             std::to_string(model::to_micros(h0))),
            0);
}

TEST_F(SqliteHistoryStoreTest, UpgradeFromVersion1BuildsRollupsFromTheStoredReadings) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    model::Reading bad = reading("m1", "energy", h0 + 30s, 99.0);
    bad.quality = model::Quality::bad;
    const pipeline::Envelope e[] = {
        envelope_of({reading("m1", "energy", h0 + 10s, 3.0), reading("m1", "energy", h0 + 20s, 1.0),
                     bad, reading("m1", "energy", h0 + 2h, 5.0)})};
    ASSERT_TRUE(store->write(e).ok);
  }
  {
    // The file as version 1 left it: readings, no rollup tables.
    auto db = sqlite::Database::open(file_, sqlite::OpenMode::read_write);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db.value()
                    .exec("DROP TABLE rollup_1m; DROP TABLE rollup_1h; "
                          "UPDATE schema_version SET version = 1")
                    .ok());
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  const auto minutes =
      store->rollups({"m1", "energy", Resolution::minute, model::from_micros(0), h0 + 24h});
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[0].start, h0);
  EXPECT_EQ(minutes[0].count, 2u);
  EXPECT_EQ(minutes[0].min, 1.0);
  EXPECT_EQ(minutes[0].first, 3.0);
  EXPECT_EQ(minutes[0].last, 1.0);
  EXPECT_EQ(minutes[0].last_ts, h0 + 20s);
  EXPECT_EQ(minutes[1].delta, 4.0);
  const auto hours =
      store->rollups({"m1", "energy", Resolution::hour, model::from_micros(0), h0 + 24h});
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[0].sum, 4.0);
}

// The WAL is copied back into the database file by the checkpoint thread while the writer keeps
// committing (before the writer's own checkpoint at 4 x the threshold would), and stays bounded.
TEST_F(SqliteHistoryStoreTest, TheCheckpointThreadCopiesTheWalBackAndItStaysBounded) {
  SqliteOptions options;
  options.wal_checkpoint_pages = 32;
  auto store = open_store(options);
  ASSERT_TRUE(store);
  const auto size_of = [](const std::filesystem::path& f) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(f, ec);
    return ec ? std::uintmax_t{0} : n;
  };
  const std::filesystem::path wal = file_.string() + "-wal";
  constexpr std::uintmax_t frame = 4096 + 24;
  int batches = 0;
  const auto write_batch = [&] {
    std::vector<pipeline::Envelope> batch;
    for (int s = 0; s < 50; ++s) {
      batch.push_back(envelope_of({reading("meter-" + std::to_string(s), "energy",
                                           t0 + std::chrono::seconds{batches}, batches * 1.0)}));
    }
    ++batches;
    return store->write(batch).ok;
  };

  // Past the thread's threshold, short of the writer's own checkpoint (4 x 32 pages).
  const std::uintmax_t db_before = size_of(file_);
  while (size_of(wal) < 40 * frame) ASSERT_TRUE(write_batch());
  ASSERT_LT(size_of(wal), 4 * 32 * frame);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (size_of(file_) == db_before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GT(size_of(file_), db_before) << "nothing was checkpointed into the database file";

  // 1,000 commits append at least 1,000 frames (4 MiB), twice the bound: the WAL stays within a
  // small multiple of the writer's threshold (the writer's checkpoint is skipped while the thread
  // runs one, so it may overshoot by what a few commits add).
  std::uintmax_t wal_max = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(write_batch());
    wal_max = std::max(wal_max, size_of(wal));
  }
  EXPECT_LE(wal_max, 4 * 4 * 32 * frame);
  // And nothing is lost on the way: every reading of every batch is there.
  EXPECT_EQ(count(file_, "SELECT count(*) FROM readings"), 50 * batches);
}

}  // namespace
}  // namespace fieldhub::stores
