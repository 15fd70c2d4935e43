// SPDX-License-Identifier: Apache-2.0
#include "stores/sqlite/sqlite_history_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>

#include "common/log.h"
#include "stores/rollup.h"

namespace fieldhub::stores {

namespace {

using sqlite::Database;
using sqlite::Result;
using sqlite::Statement;
using sqlite::Status;
using sqlite::StepResult;

// Migration N brings a file from schema version N-1 to N. Append only: a released migration is
// never edited, since files in the field were built by it.
//
// Row layout choices (readings are most of the file):
// - unit, adapter and link live in series; a reading's own column is NULL when it equals the
//   series' value (the normal case), so a row carries no repeated strings.
// - source_ts is NULL when the source time is trusted, since ts then equals it.
// - quality_reason is NULL when empty.
// - value_type says which of value_num / value_text holds the value (booleans as 0/1 in
//   value_num); a number column that reads back NULL is a NaN, which SQLite stores as NULL.
const std::vector<std::vector<std::string_view>>& migrations() {
  static const std::vector<std::vector<std::string_view>> all = {
      // 1: initial schema
      {
          R"sql(CREATE TABLE series(
                  id INTEGER PRIMARY KEY,
                  device_id TEXT NOT NULL,
                  metric TEXT NOT NULL,
                  unit TEXT NOT NULL,
                  adapter TEXT NOT NULL,
                  link TEXT NOT NULL,
                  UNIQUE(device_id, metric)))sql",
          R"sql(CREATE TABLE readings(
                  series_id INTEGER NOT NULL,
                  ts INTEGER NOT NULL,
                  value_num REAL,
                  value_text TEXT,
                  value_type INTEGER NOT NULL CHECK(value_type BETWEEN 0 AND 3),
                  unit TEXT,
                  quality INTEGER NOT NULL CHECK(quality BETWEEN 0 AND 2),
                  quality_reason TEXT,
                  received_ts INTEGER NOT NULL,
                  source_ts INTEGER,
                  source_ts_trusted INTEGER NOT NULL,
                  adapter TEXT,
                  link TEXT,
                  PRIMARY KEY(series_id, ts)) WITHOUT ROWID)sql",
          R"sql(CREATE TABLE events(
                  id INTEGER PRIMARY KEY,
                  device_id TEXT NOT NULL,
                  type TEXT NOT NULL,
                  priority INTEGER NOT NULL,
                  ts INTEGER NOT NULL,
                  received_ts INTEGER NOT NULL,
                  source_ts INTEGER NOT NULL,
                  source_ts_trusted INTEGER NOT NULL,
                  attributes TEXT NOT NULL,
                  adapter TEXT NOT NULL,
                  link TEXT NOT NULL,
                  UNIQUE(device_id, type, ts)))sql",
          "CREATE INDEX events_by_ts ON events(ts)",
          R"sql(CREATE TABLE dead_letters(
                  id INTEGER PRIMARY KEY,
                  received_ts INTEGER NOT NULL,
                  source TEXT NOT NULL,
                  reason TEXT NOT NULL,
                  detail TEXT NOT NULL,
                  payload BLOB NOT NULL))sql",
          "CREATE INDEX dead_letters_by_reason ON dead_letters(reason, id)",
          R"sql(CREATE TABLE replay_digests(
                  digest INTEGER PRIMARY KEY,
                  received_ts INTEGER NOT NULL))sql",
          "CREATE INDEX replay_digests_by_age ON replay_digests(received_ts)",
      },
      // 2: per-minute and per-hour rollups (stores/rollup.h), filled from the readings already
      // stored. bucket is the bucket's start (microseconds, UTC); first/last are the values of the
      // oldest and newest reading in it, kept with their times so late data merges correctly.
      {
          R"sql(CREATE TABLE rollup_1m(
                  series_id INTEGER NOT NULL,
                  bucket INTEGER NOT NULL,
                  value_min REAL NOT NULL,
                  value_max REAL NOT NULL,
                  value_sum REAL NOT NULL,
                  value_count INTEGER NOT NULL,
                  first_ts INTEGER NOT NULL,
                  first_value REAL NOT NULL,
                  last_ts INTEGER NOT NULL,
                  last_value REAL NOT NULL,
                  PRIMARY KEY(series_id, bucket)) WITHOUT ROWID)sql",
          R"sql(CREATE TABLE rollup_1h(
                  series_id INTEGER NOT NULL,
                  bucket INTEGER NOT NULL,
                  value_min REAL NOT NULL,
                  value_max REAL NOT NULL,
                  value_sum REAL NOT NULL,
                  value_count INTEGER NOT NULL,
                  first_ts INTEGER NOT NULL,
                  first_value REAL NOT NULL,
                  last_ts INTEGER NOT NULL,
                  last_value REAL NOT NULL,
                  PRIMARY KEY(series_id, bucket)) WITHOUT ROWID)sql",
          // The same readings rollup_value() takes: finite numbers, not bad, not absurdly old.
          R"sql(INSERT INTO rollup_1m
                SELECT series_id, ts - (((ts % 60000000) + 60000000) % 60000000) AS b,
                       min(value_num), max(value_num), sum(value_num), count(*), min(ts), 0,
                       max(ts), 0
                FROM readings
                WHERE value_type = 1 AND quality < 2 AND ts >= -9000000000000000000
                  AND value_num BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308
                GROUP BY series_id, b)sql",
          R"sql(INSERT INTO rollup_1h
                SELECT series_id, ts - (((ts % 3600000000) + 3600000000) % 3600000000) AS b,
                       min(value_num), max(value_num), sum(value_num), count(*), min(ts), 0,
                       max(ts), 0
                FROM readings
                WHERE value_type = 1 AND quality < 2 AND ts >= -9000000000000000000
                  AND value_num BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308
                GROUP BY series_id, b)sql",
          R"sql(UPDATE rollup_1m SET
                  first_value = (SELECT value_num FROM readings r
                                 WHERE r.series_id = rollup_1m.series_id AND r.ts = first_ts),
                  last_value = (SELECT value_num FROM readings r
                                WHERE r.series_id = rollup_1m.series_id AND r.ts = last_ts))sql",
          R"sql(UPDATE rollup_1h SET
                  first_value = (SELECT value_num FROM readings r
                                 WHERE r.series_id = rollup_1h.series_id AND r.ts = first_ts),
                  last_value = (SELECT value_num FROM readings r
                                WHERE r.series_id = rollup_1h.series_id AND r.ts = last_ts))sql",
      },
  };
  return all;
}

Status migrate(Database& db) {
  if (Status s = db.exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
      !s.ok()) {
    return s;
  }
  auto tx = sqlite::Transaction::begin(db, sqlite::TransactionKind::immediate);
  if (!tx.ok()) return tx.status();
  // Read under the write lock so two processes opening an old file do not both migrate it.
  auto version = db.query_int64("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!version.ok()) return version.status();
  const auto latest = static_cast<std::int64_t>(migrations().size());
  if (version.value() > latest) {
    return Status::failure(SQLITE_ERROR, "database schema version " +
                                             std::to_string(version.value()) +
                                             " is newer than this fieldhub supports (" +
                                             std::to_string(latest) + "); upgrade fieldhub");
  }
  if (version.value() == latest) return tx.value().commit();
  for (auto v = version.value(); v < latest; ++v) {
    for (std::string_view sql : migrations()[static_cast<std::size_t>(v)]) {
      if (Status s = db.exec(sql); !s.ok()) {
        return Status::failure(s.code(), "migration " + std::to_string(v + 1) + ": " + s.message());
      }
    }
  }
  if (Status s = db.exec("DELETE FROM schema_version"); !s.ok()) return s;
  if (Status s =
          db.exec("INSERT INTO schema_version(version) VALUES(" + std::to_string(latest) + ")");
      !s.ok()) {
    return s;
  }
  return tx.value().commit();
}

Status set_wal(Database& db) {
  auto stmt = db.prepare("PRAGMA journal_mode=WAL");
  if (!stmt.ok()) return stmt.status();
  if (stmt.value().step() != StepResult::row) return stmt.value().last_error();
  const std::string mode = stmt.value().column_text(0);
  // WAL is what lets queries run beside a write transaction; some file systems refuse it.
  if (mode != "wal") return Status::failure(SQLITE_ERROR, "cannot use WAL mode (got " + mode + ")");
  return {};
}

// A batch touches the newest leaf page of every series it has rows for (thousands with 1,000
// devices x several metrics). The default 2 MiB page cache cannot hold those, so each batch
// re-reads them from the OS; and the default checkpoint every 1,000 WAL pages would copy the
// same hot pages into the database file after nearly every commit. A larger cache and rarer
// checkpoints (sqlite::WalCheckpointer, on a thread of its own) write each hot page once per
// many batches instead.
constexpr std::string_view writer_tuning =
    "PRAGMA cache_size=-65536;"             // KiB: 64 MiB
    "PRAGMA journal_size_limit=67108864;";  // bytes: a WAL that grew past that shrinks back

std::int64_t digest_as_int(std::uint64_t digest) {
  // SQLite integers are signed 64-bit; keep the bit pattern.
  return static_cast<std::int64_t>(digest);
}

// Merges a batch's aggregate of a bucket into the stored one (Aggregate::merge in SQL): SET sees
// the row as it was before the update, so first/last compare against the stored times.
std::string rollup_upsert(std::string_view table) {
  return std::string("INSERT INTO ")
      .append(table)
      .append(
          "(series_id, bucket, value_min, value_max, value_sum, value_count, first_ts, "
          "first_value, "
          "last_ts, last_value) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
          "ON CONFLICT(series_id, bucket) DO UPDATE SET "
          "value_min = min(value_min, excluded.value_min), "
          "value_max = max(value_max, excluded.value_max), "
          "value_sum = value_sum + excluded.value_sum, "
          "value_count = value_count + excluded.value_count, "
          "first_value = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_value "
          "ELSE first_value END, "
          "first_ts = min(first_ts, excluded.first_ts), "
          "last_value = CASE WHEN excluded.last_ts > last_ts THEN excluded.last_value "
          "ELSE last_value END, "
          "last_ts = max(last_ts, excluded.last_ts)");
}

std::string_view rollup_table(Resolution r) {
  return r == Resolution::minute ? "rollup_1m" : "rollup_1h";
}

Status last_error_or(Statement& stmt) {
  Status s = stmt.last_error();
  stmt.reset();
  return s;
}

}  // namespace

std::optional<SqliteSynchronous> parse_sqlite_synchronous(std::string_view text) {
  if (text == "full") return SqliteSynchronous::full;
  if (text == "normal") return SqliteSynchronous::normal;
  return std::nullopt;
}

struct SqliteHistoryStore::WriterStatements {
  Statement insert_digest;
  Statement select_series;
  Statement insert_series;
  Statement insert_reading;
  Statement insert_event;
  Statement insert_dead_letter;
  Statement prune_digests;
  Statement upsert_1m;
  Statement upsert_1h;
};

std::size_t SqliteHistoryStore::KeyHash::operator()(std::string_view s) const noexcept {
  return std::hash<std::string_view>{}(s);
}

int SqliteHistoryStore::schema_version() {
  return static_cast<int>(migrations().size());
}

Result<std::unique_ptr<SqliteHistoryStore>> SqliteHistoryStore::open(std::filesystem::path file,
                                                                     SqliteOptions options) {
  auto writer = Database::open(file, sqlite::OpenMode::read_write_create);
  if (!writer.ok()) return writer.status();
  Database& w = writer.value();
  const auto fail = [&file](const Status& s) {
    return Status::failure(s.code(), file.string() + ": " + s.message());
  };
  if (Status s = w.set_busy_timeout(options.busy_timeout); !s.ok()) return fail(s);
  if (Status s = set_wal(w); !s.ok()) return fail(s);
  const char* sync = options.synchronous == SqliteSynchronous::full ? "PRAGMA synchronous=FULL"
                                                                    : "PRAGMA synchronous=NORMAL";
  if (Status s = w.exec(sync); !s.ok()) return fail(s);
  if (Status s = w.exec(writer_tuning); !s.ok()) return fail(s);
  if (Status s = migrate(w); !s.ok()) return fail(s);

  auto statements = std::make_unique<WriterStatements>();
  const std::array<std::pair<Statement*, std::string_view>, 7> sql = {{
      {&statements->insert_digest,
       "INSERT INTO replay_digests(digest, received_ts) VALUES(?1, ?2) "
       "ON CONFLICT(digest) DO NOTHING"},
      {&statements->select_series,
       "SELECT id, unit, adapter, link FROM series WHERE device_id = ?1 AND metric = ?2"},
      {&statements->insert_series,
       "INSERT INTO series(device_id, metric, unit, adapter, link) VALUES(?1, ?2, ?3, ?4, ?5)"},
      // ON CONFLICT names the key, so only a repeat of (series, ts) is skipped: a NOT NULL or
      // CHECK failure still fails the batch instead of passing for a duplicate (OR IGNORE would).
      {&statements->insert_reading,
       "INSERT INTO readings(series_id, ts, value_num, value_text, value_type, unit, quality, "
       "quality_reason, received_ts, source_ts, source_ts_trusted, adapter, link) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
       "ON CONFLICT(series_id, ts) DO NOTHING"},
      {&statements->insert_event,
       "INSERT INTO events(device_id, type, priority, ts, received_ts, source_ts, "
       "source_ts_trusted, attributes, adapter, link) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
       "ON CONFLICT(device_id, type, ts) DO NOTHING"},
      {&statements->insert_dead_letter,
       "INSERT INTO dead_letters(received_ts, source, reason, detail, payload) "
       "VALUES(?1, ?2, ?3, ?4, ?5)"},
      {&statements->prune_digests, "DELETE FROM replay_digests WHERE received_ts < ?1"},
  }};
  for (const auto& [target, text] : sql) {
    auto stmt = w.prepare(text, /*persistent=*/true);
    if (!stmt.ok()) return fail(stmt.status());
    *target = std::move(stmt.value());
  }
  for (const auto& [target, r] : {std::pair{&statements->upsert_1m, Resolution::minute},
                                  std::pair{&statements->upsert_1h, Resolution::hour}}) {
    auto stmt = w.prepare(rollup_upsert(rollup_table(r)), /*persistent=*/true);
    if (!stmt.ok()) return fail(stmt.status());
    *target = std::move(stmt.value());
  }

  auto reader = Database::open(file, sqlite::OpenMode::read_write);
  if (!reader.ok()) return reader.status();
  if (Status s = reader.value().set_busy_timeout(options.busy_timeout); !s.ok()) return fail(s);
  if (Status s = reader.value().exec("PRAGMA query_only=1"); !s.ok()) return fail(s);

  auto checkpointer =
      sqlite::WalCheckpointer::start(file, options.wal_checkpoint_pages, options.busy_timeout);
  if (!checkpointer.ok()) return fail(checkpointer.status());
  w.set_wal_observer(checkpointer.value().get());

  return std::unique_ptr<SqliteHistoryStore>(new SqliteHistoryStore(
      std::move(file), options, std::move(checkpointer.value()), std::move(writer.value()),
      std::move(reader.value()), std::move(statements)));
}

SqliteHistoryStore::SqliteHistoryStore(std::filesystem::path file, SqliteOptions options,
                                       std::unique_ptr<sqlite::WalCheckpointer> checkpointer,
                                       Database writer, Database reader,
                                       std::unique_ptr<WriterStatements> statements)
    : file_(std::move(file)),
      options_(options),
      checkpointer_(std::move(checkpointer)),
      writer_(std::move(writer)),
      statements_(std::move(statements)),
      reader_(std::move(reader)) {
  prune_every_ = std::clamp<std::chrono::microseconds>(
      options_.replay_digest_retention / 4, std::chrono::seconds{1}, std::chrono::minutes{5});
  // The first write prunes, so that a process restarted often still does.
  last_prune_ = now() - prune_every_;
  last_retention_ = now() - options_.maintenance_interval;
}

SqliteHistoryStore::~SqliteHistoryStore() = default;

model::Timestamp SqliteHistoryStore::now() const {
  return options_.clock != nullptr ? options_.clock->now() : system_clock_.now();
}

// ---- write ----

WriteFailure sqlite_write_failure(int code) {
  switch (code & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
      return WriteFailure::refused_data;
    default:
      return WriteFailure::outage;
  }
}

WriteResult SqliteHistoryStore::write(std::span<const pipeline::Envelope> batch) {
  WriteResult result;
  if (batch.empty()) {
    result.ok = true;
    return result;
  }
  series_added_in_tx_.clear();
  const Status s = write_batch(batch, result);
  if (!s.ok()) {
    // The transaction is gone, and with it any series inserted in it: forget their ids, or a
    // retry would write readings under ids that no longer exist.
    for (const auto& key : series_added_in_tx_) series_.erase(key);
    series_added_in_tx_.clear();
    WriteResult failed;
    failed.error = s.message();
    failed.failure = sqlite_write_failure(s.code());
    return failed;
  }
  series_added_in_tx_.clear();
  result.ok = true;
  run_retention_step();
  return result;
}

void SqliteHistoryStore::run_retention_step() {
  const model::Timestamp t = now();
  if (!retention_pending_ && t - last_retention_ >= options_.maintenance_interval) {
    retention_pending_ = true;
    last_retention_ = t;
  }
  if (!retention_pending_) return;
  // One chunk per batch: a large backlog of expired rows (retention just shortened) is deleted
  // between batches instead of holding up ingest.
  auto deleted = retention_step(t, options_.retention_chunk);
  if (!deleted.ok()) {
    common::log(common::LogLevel::warn, "sqlite_history",
                "retention: " + deleted.status().message());
    retention_pending_ = false;
    return;
  }
  retention_pending_ = deleted.value() >= options_.retention_chunk;
}

Result<std::uint64_t> SqliteHistoryStore::apply_retention(model::Timestamp t) {
  std::uint64_t total = 0;
  for (;;) {
    auto deleted = retention_step(t, options_.retention_chunk);
    if (!deleted.ok()) return deleted.status();
    total += deleted.value();
    if (deleted.value() < options_.retention_chunk) return total;
  }
}

Result<std::uint64_t> SqliteHistoryStore::retention_step(model::Timestamp t, std::uint64_t budget) {
  struct Tier {
    std::string_view table;
    std::string_view time_column;
    std::chrono::microseconds keep;
    std::int64_t width_us;  // a bucket goes once all of it is older than the retention
  };
  const std::array<Tier, 3> tiers = {{
      {"readings", "ts", options_.retention.raw, 1},
      {"rollup_1m", "bucket", options_.retention.minute, minute_us},
      {"rollup_1h", "bucket", options_.retention.hour, hour_us},
  }};
  if (std::all_of(tiers.begin(), tiers.end(), [](const Tier& x) { return x.keep.count() <= 0; })) {
    return std::uint64_t{0};
  }
  // One short transaction of at most `budget` rows: the write lock is never held for long.
  auto tx = sqlite::Transaction::begin(writer_, sqlite::TransactionKind::immediate);
  if (!tx.ok()) return tx.status();
  std::vector<std::int64_t> series_ids;
  {
    auto ids = writer_.prepare("SELECT id FROM series ORDER BY id");
    if (!ids.ok()) return ids.status();
    while (ids.value().step() == StepResult::row) series_ids.push_back(ids.value().column_int64(0));
    if (Status s = ids.value().last_error(); !s.ok()) return s;
  }
  std::uint64_t deleted = 0;
  const std::int64_t now_us = model::to_micros(t);
  for (const Tier& tier : tiers) {
    if (tier.keep.count() <= 0 || deleted >= budget) continue;
    const std::int64_t cutoff = now_us - tier.keep.count() - tier.width_us + 1;
    const std::string col(tier.time_column);
    // Through the primary key (series_id, time) of each series: no scan of the table.
    auto del = writer_.prepare(
        std::string("DELETE FROM ")
            .append(tier.table)
            .append(" WHERE series_id = ?1 AND " + col + " IN (SELECT " + col + " FROM ")
            .append(tier.table)
            .append(" WHERE series_id = ?1 AND " + col + " < ?2 ORDER BY " + col + " LIMIT ?3)"));
    if (!del.ok()) return del.status();
    for (const std::int64_t id : series_ids) {
      if (deleted >= budget) break;
      del.value().bind(1, id).bind(2, cutoff).bind(3, static_cast<std::int64_t>(budget - deleted));
      if (Status s = del.value().run(); !s.ok()) return s;
      deleted += static_cast<std::uint64_t>(writer_.changes());
    }
  }
  if (Status s = tx.value().commit(); !s.ok()) return s;
  return deleted;
}

Status SqliteHistoryStore::write_rollups() {
  for (const auto& [stmt, r] : {std::pair{&statements_->upsert_1m, Resolution::minute},
                                std::pair{&statements_->upsert_1h, Resolution::hour}}) {
    for (const RollupBatch::Row& row : rollups_.rows(r)) {
      const Aggregate& a = row.agg;
      stmt->bind(1, row.series_id)
          .bind(2, row.bucket)
          .bind(3, a.min)
          .bind(4, a.max)
          .bind(5, a.sum)
          .bind(6, a.count)
          .bind(7, a.first_ts)
          .bind(8, a.first)
          .bind(9, a.last_ts)
          .bind(10, a.last);
      if (Status s = stmt->run(); !s.ok()) return s;
    }
  }
  return {};
}

Status SqliteHistoryStore::write_batch(std::span<const pipeline::Envelope> batch,
                                       WriteResult& result) {
  // IMMEDIATE takes the write lock up front, so a busy database fails here, before any work.
  auto tx = sqlite::Transaction::begin(writer_, sqlite::TransactionKind::immediate);
  if (!tx.ok()) return tx.status();
  const model::Timestamp t = now();
  rollups_.clear();
  for (const auto& env : batch) {
    if (Status s = write_envelope(env, t, result); !s.ok()) return s;  // ~Transaction rolls back
  }
  if (Status s = write_rollups(); !s.ok()) return s;
  // Digests older than the retention cannot recognise a redelivery any more; deleting them a few
  // times per retention period keeps the table small without a DELETE per batch.
  const bool prune = t - last_prune_ >= prune_every_;
  if (prune) {
    if (Status s = prune_digests(t); !s.ok()) return s;
  }
  if (Status s = tx.value().commit(); !s.ok()) return s;
  if (prune) last_prune_ = t;
  return {};
}

Status SqliteHistoryStore::prune_digests(model::Timestamp t) {
  auto& stmt = statements_->prune_digests;
  stmt.bind(1, model::to_micros(t - options_.replay_digest_retention));
  return stmt.run();
}

Status SqliteHistoryStore::write_envelope(const pipeline::Envelope& env, model::Timestamp t,
                                          WriteResult& result) {
  WriterStatements& st = *statements_;
  if (env.replay_digest != 0) {
    st.insert_digest.bind(1, digest_as_int(env.replay_digest)).bind(2, model::to_micros(t));
    if (Status s = st.insert_digest.run(); !s.ok()) return s;
    // Seen before and the transport says it may be a repeat: the same message again (e.g. an MQTT
    // QoS 1 redelivery after a restart). Skipping it whole keeps readings without a source
    // timestamp (whose ts is the new receipt time) from being stored twice.
    if (writer_.changes() == 0 && env.redelivered) {
      ++result.envelopes_duplicate;
      return {};
    }
  }

  for (const auto& r : env.readings) {
    auto series = series_for(r);
    if (!series.ok()) return series.status();
    const Series& se = *series.value();
    Statement& ins = st.insert_reading;
    const model::Timestamp ts = r.ts();
    ins.bind(1, se.id).bind(2, model::to_micros(ts));
    switch (model::type_of(r.value)) {
      case model::ValueType::none:
        break;
      case model::ValueType::number:
        ins.bind(3, std::get<double>(r.value));
        break;
      case model::ValueType::boolean:
        ins.bind(3, std::int64_t{std::get<bool>(r.value) ? 1 : 0});
        break;
      case model::ValueType::text:
        ins.bind_text(4, std::get<std::string>(r.value));
        break;
    }
    ins.bind(5, static_cast<std::int64_t>(model::type_of(r.value)));
    if (r.unit != se.unit) ins.bind_text(6, r.unit);
    ins.bind(7, static_cast<std::int64_t>(r.quality));
    if (!r.quality_reason.empty()) ins.bind_text(8, r.quality_reason);
    ins.bind(9, model::to_micros(r.received_ts));
    if (!r.source_ts_trusted) ins.bind(10, model::to_micros(r.source_ts));
    ins.bind(11, std::int64_t{r.source_ts_trusted ? 1 : 0});
    if (r.provenance.adapter != se.adapter) ins.bind_text(12, r.provenance.adapter);
    if (r.provenance.link != se.link) ins.bind_text(13, r.provenance.link);
    if (Status s = ins.run(); !s.ok()) return s;
    if (writer_.changes() > 0) {
      ++result.readings_stored;
      if (const auto v = rollup_value(r)) rollups_.add(se.id, model::to_micros(ts), *v);
    } else {
      ++result.readings_duplicate;
    }
  }

  for (const auto& e : env.events) {
    Statement& ins = st.insert_event;
    ins.bind_text(1, e.device_id)
        .bind_text(2, e.type)
        .bind(3, static_cast<std::int64_t>(e.priority))
        .bind(4, model::to_micros(e.ts()))
        .bind(5, model::to_micros(e.received_ts))
        .bind(6, model::to_micros(e.source_ts))
        .bind(7, std::int64_t{e.source_ts_trusted ? 1 : 0})
        .bind_text(8, e.attributes_json)
        .bind_text(9, e.provenance.adapter)
        .bind_text(10, e.provenance.link);
    if (Status s = ins.run(); !s.ok()) return s;
    if (writer_.changes() > 0) {
      ++result.events_stored;
    } else {
      ++result.events_duplicate;
    }
  }

  for (const auto& d : env.dead_letters) {
    Statement& ins = st.insert_dead_letter;
    ins.bind(1, model::to_micros(d.received_ts))
        .bind_text(2, d.source)
        .bind_text(3, d.reason)
        .bind_text(4, d.detail)
        .bind_blob(5, d.payload);  // raw bytes: NULs and invalid UTF-8 are expected here
    if (Status s = ins.run(); !s.ok()) return s;
    ++result.dead_letters_stored;
  }
  return {};
}

Result<const SqliteHistoryStore::Series*> SqliteHistoryStore::series_for(const model::Reading& r) {
  // Length-prefixed so that no two (device, metric) pairs share a key; the buffer is reused so a
  // cache hit allocates nothing.
  std::array<char, 24> len{};
  const auto end = std::to_chars(len.data(), len.data() + len.size(), r.device_id.size()).ptr;
  key_buffer_.assign(len.data(), end);
  key_buffer_.push_back(':');
  key_buffer_.append(r.device_id);
  key_buffer_.append(r.metric);
  if (auto it = series_.find(key_buffer_); it != series_.end()) return &it->second;

  Series se;
  Statement& sel = statements_->select_series;
  sel.bind_text(1, r.device_id).bind_text(2, r.metric);
  switch (sel.step()) {
    case StepResult::row:
      se.id = sel.column_int64(0);
      se.unit = sel.column_text(1);
      se.adapter = sel.column_text(2);
      se.link = sel.column_text(3);
      sel.reset();
      break;
    case StepResult::done: {
      sel.reset();
      se.unit = r.unit;
      se.adapter = r.provenance.adapter;
      se.link = r.provenance.link;
      Statement& ins = statements_->insert_series;
      ins.bind_text(1, r.device_id)
          .bind_text(2, r.metric)
          .bind_text(3, se.unit)
          .bind_text(4, se.adapter)
          .bind_text(5, se.link);
      if (Status s = ins.run(); !s.ok()) return s;
      se.id = writer_.last_insert_rowid();
      series_added_in_tx_.push_back(key_buffer_);
      break;
    }
    case StepResult::error:
      return last_error_or(sel);
  }
  auto [it, inserted] = series_.emplace(key_buffer_, std::move(se));
  return &it->second;
}

// ---- queries ----

namespace {

model::Value value_from(const Statement& q, int num_col, int text_col, int type_col) {
  switch (static_cast<model::ValueType>(q.column_int64(type_col))) {
    case model::ValueType::none:
      return std::monostate{};
    case model::ValueType::number:
      // SQLite stores a NaN as NULL; never turn it into 0.
      if (q.column_is_null(num_col)) return std::numeric_limits<double>::quiet_NaN();
      return q.column_double(num_col);
    case model::ValueType::boolean:
      return q.column_int64(num_col) != 0;
    case model::ValueType::text:
      return q.column_text(text_col);
  }
  return std::monostate{};
}

std::int64_t limit_of(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

// The query interface has no error slot: a failed query returns the rows it had and says why in
// the log.
void log_query_error(const Status& s) {
  if (!s.ok()) common::log(common::LogLevel::warn, "sqlite_history", "query: " + s.message());
}

}  // namespace

std::vector<model::Reading> SqliteHistoryStore::readings(const ReadingQuery& q) {
  std::vector<model::Reading> out;
  std::lock_guard lock(reader_mutex_);
  auto stmt = reader_.prepare(
      "SELECT r.ts, r.value_num, r.value_text, r.value_type, coalesce(r.unit, s.unit), "
      "r.quality, r.quality_reason, r.received_ts, r.source_ts, r.source_ts_trusted, "
      "coalesce(r.adapter, s.adapter), coalesce(r.link, s.link) "
      "FROM series s JOIN readings r ON r.series_id = s.id "
      "WHERE s.device_id = ?1 AND s.metric = ?2 AND r.ts >= ?3 AND r.ts < ?4 "
      "ORDER BY r.ts LIMIT ?5");
  if (!stmt.ok()) {
    log_query_error(stmt.status());
    return out;
  }
  Statement& s = stmt.value();
  s.bind_text(1, q.device_id)
      .bind_text(2, q.metric)
      .bind(3, model::to_micros(q.from))
      .bind(4, model::to_micros(q.to))
      .bind(5, limit_of(q.limit));
  while (s.step() == StepResult::row) {
    model::Reading r;
    r.device_id = q.device_id;
    r.metric = q.metric;
    const auto ts = model::from_micros(s.column_int64(0));
    r.value = value_from(s, 1, 2, 3);
    r.unit = s.column_text(4);
    r.quality = static_cast<model::Quality>(s.column_int64(5));
    r.quality_reason = s.column_text(6);
    r.received_ts = model::from_micros(s.column_int64(7));
    r.source_ts_trusted = s.column_int64(9) != 0;
    r.source_ts = r.source_ts_trusted ? ts : model::from_micros(s.column_int64(8));
    r.provenance.adapter = s.column_text(10);
    r.provenance.link = s.column_text(11);
    out.push_back(std::move(r));
  }
  log_query_error(s.last_error());
  return out;
}

std::vector<RollupBucket> SqliteHistoryStore::rollups(const RollupQuery& q) {
  std::vector<RollupBucket> out;
  const std::string table(rollup_table(q.resolution));
  std::lock_guard lock(reader_mutex_);
  // The last of the bucket before the range, for the first bucket's delta.
  std::optional<double> previous_last;
  {
    auto prev = reader_.prepare("SELECT r.last_value FROM series s JOIN " + table +
                                " r ON r.series_id = s.id WHERE s.device_id = ?1 AND "
                                "s.metric = ?2 AND r.bucket < ?3 ORDER BY r.bucket DESC LIMIT 1");
    if (!prev.ok()) {
      log_query_error(prev.status());
      return out;
    }
    Statement& s = prev.value();
    s.bind_text(1, q.device_id).bind_text(2, q.metric).bind(3, model::to_micros(q.from));
    if (s.step() == StepResult::row) previous_last = s.column_double(0);
    log_query_error(s.last_error());
  }
  auto stmt = reader_.prepare(
      "SELECT r.bucket, r.value_min, r.value_max, r.value_sum, r.value_count, r.first_ts, "
      "r.first_value, r.last_ts, r.last_value FROM series s JOIN " +
      table +
      " r ON r.series_id = s.id WHERE s.device_id = ?1 AND s.metric = ?2 AND r.bucket >= ?3 AND "
      "r.bucket < ?4 ORDER BY r.bucket LIMIT ?5");
  if (!stmt.ok()) {
    log_query_error(stmt.status());
    return out;
  }
  Statement& s = stmt.value();
  s.bind_text(1, q.device_id)
      .bind_text(2, q.metric)
      .bind(3, model::to_micros(q.from))
      .bind(4, model::to_micros(q.to))
      .bind(5, limit_of(q.limit));
  while (s.step() == StepResult::row) {
    RollupBucket b;
    b.start = model::from_micros(s.column_int64(0));
    b.min = s.column_double(1);
    b.max = s.column_double(2);
    b.sum = s.column_double(3);
    b.count = static_cast<std::uint64_t>(s.column_int64(4));
    b.first_ts = model::from_micros(s.column_int64(5));
    b.first = s.column_double(6);
    b.last_ts = model::from_micros(s.column_int64(7));
    b.last = s.column_double(8);
    out.push_back(b);
  }
  log_query_error(s.last_error());
  fill_deltas(out, previous_last);
  return out;
}

std::vector<model::Event> SqliteHistoryStore::events(const EventQuery& q) {
  std::vector<model::Event> out;
  // Separate texts per filter so that each can use its index (UNIQUE(device_id, type, ts) or ts).
  std::string sql =
      "SELECT device_id, type, priority, received_ts, source_ts, source_ts_trusted, attributes, "
      "adapter, link FROM events WHERE ts >= ?1 AND ts < ?2";
  if (q.device_id) sql += " AND device_id = ?3";
  if (q.type) sql += " AND type = ?4";
  sql += " ORDER BY ts DESC, id DESC LIMIT ?5";
  std::lock_guard lock(reader_mutex_);
  auto stmt = reader_.prepare(sql);
  if (!stmt.ok()) {
    log_query_error(stmt.status());
    return out;
  }
  Statement& s = stmt.value();
  s.bind(1, model::to_micros(q.from)).bind(2, model::to_micros(q.to)).bind(5, limit_of(q.limit));
  if (q.device_id) s.bind_text(3, *q.device_id);
  if (q.type) s.bind_text(4, *q.type);
  while (s.step() == StepResult::row) {
    model::Event e;
    e.device_id = s.column_text(0);
    e.type = s.column_text(1);
    e.priority = static_cast<model::Priority>(s.column_int64(2));
    e.received_ts = model::from_micros(s.column_int64(3));
    e.source_ts = model::from_micros(s.column_int64(4));
    e.source_ts_trusted = s.column_int64(5) != 0;
    e.attributes_json = s.column_text(6);
    e.provenance.adapter = s.column_text(7);
    e.provenance.link = s.column_text(8);
    out.push_back(std::move(e));
  }
  log_query_error(s.last_error());
  return out;
}

std::vector<pipeline::DeadLetter> SqliteHistoryStore::dead_letters(const DeadLetterQuery& q) {
  std::vector<pipeline::DeadLetter> out;
  std::string sql = "SELECT received_ts, source, reason, detail, payload FROM dead_letters";
  if (q.reason) sql += " WHERE reason = ?1";
  sql += " ORDER BY id DESC LIMIT ?2";
  std::lock_guard lock(reader_mutex_);
  auto stmt = reader_.prepare(sql);
  if (!stmt.ok()) {
    log_query_error(stmt.status());
    return out;
  }
  Statement& s = stmt.value();
  if (q.reason) s.bind_text(1, *q.reason);
  s.bind(2, limit_of(q.limit));
  while (s.step() == StepResult::row) {
    pipeline::DeadLetter d;
    d.received_ts = model::from_micros(s.column_int64(0));
    d.source = s.column_text(1);
    d.reason = s.column_text(2);
    d.detail = s.column_text(3);
    d.payload = s.column_blob(4);
    out.push_back(std::move(d));
  }
  log_query_error(s.last_error());
  return out;
}

}  // namespace fieldhub::stores
