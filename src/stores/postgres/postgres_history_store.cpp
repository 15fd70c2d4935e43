// SPDX-License-Identifier: Apache-2.0
#include "stores/postgres/postgres_history_store.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <deque>
#include <limits>
#include <unordered_set>
#include <utility>

#include "common/log.h"
#include "common/utf8.h"
#include "stores/rollup.h"

namespace fieldhub::stores {

namespace {

using pg::Connection;
using pg::Params;
using pg::Result;
using pg::Rows;
using pg::Status;

struct Migration {
  std::string_view name;
  std::string_view sql;
};

// Generated at build time from migrations/*.sql: migration N brings a database from schema
// version N-1 to N.
constexpr Migration migrations[] = {
#include "stores/postgres/postgres_migrations.inc"
};

constexpr std::int64_t day_us = 86'400'000'000;
// pg_advisory_xact_lock key for schema and partition changes: "fieldhub" in ASCII.
constexpr std::int64_t schema_lock_key = 0x6669656c64687562;
// Partition DDL waits at most this long for its lock on readings: a long query holding readings
// then makes it fail (and be tried again later) instead of queueing every later query behind it.
constexpr std::string_view ddl_lock_timeout = "SET LOCAL lock_timeout = 2000; ";
// PostgreSQL takes at most 65,535 parameters per statement.
constexpr std::size_t max_rows_per_values_list = 4000;

constexpr std::string_view writer_session_setup =
    // Staging tables for one batch, private to the writer's session and emptied by every commit
    // (and by a rollback, since their rows are part of the transaction).
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage("
    "  series_id integer, ts bigint, value_num double precision, value_text bytea,"
    "  value_type smallint, unit text, quality smallint, quality_reason text,"
    "  received_ts bigint, source_ts bigint, source_ts_trusted boolean, adapter text, link text)"
    "  ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS events_stage("
    "  ord integer, device_id text, type text, priority smallint, ts bigint, received_ts bigint,"
    "  source_ts bigint, source_ts_trusted boolean, attributes text, adapter text, link text)"
    "  ON COMMIT DELETE ROWS;"
    // The rollups of a batch with huge sums, merged into the buckets in the batch's transaction.
    "CREATE TEMP TABLE IF NOT EXISTS rollup_stage(LIKE rollup_pending) ON COMMIT DELETE ROWS;";

// The start of the hour holding a minute bucket, in SQL (floor, also before 1970).
constexpr std::string_view hour_of_bucket =
    "bucket - ((bucket % 3600000000) + 3600000000) % 3600000000";

std::string_view rollup_table(Resolution r) {
  return r == Resolution::minute ? "rollup_1m" : "rollup_1h";
}

// The columns of readings and readings_stage, in the order write_readings() encodes them.
constexpr std::string_view reading_columns =
    "series_id, ts, value_num, value_text, value_type, unit, quality, quality_reason, "
    "received_ts, source_ts, source_ts_trusted, adapter, link";

std::int64_t floor_day(std::int64_t us) {
  // Rounds toward minus infinity without negating (-INT64_MIN would overflow).
  std::int64_t q = us / day_us;
  if (us % day_us < 0) --q;
  return q;
}

// A partition's bounds; the first and last day a bigint can hold are open-ended, since their
// exact bounds would not fit.
std::string partition_bounds(std::int64_t day) {
  constexpr std::int64_t first_day = std::numeric_limits<std::int64_t>::min() / day_us - 1;
  constexpr std::int64_t last_day = std::numeric_limits<std::int64_t>::max() / day_us;
  const std::string from = day <= first_day ? "MINVALUE" : std::to_string(day * day_us);
  const std::string to = day >= last_day ? "MAXVALUE" : std::to_string((day + 1) * day_us);
  return "FROM (" + from + ") TO (" + to + ")";
}

// readings_20261124 for the days people look at; readings_day<n> (m for minus) for a device clock
// in a year that does not fit four digits.
std::string partition_name(std::int64_t day) {
  using namespace std::chrono;
  constexpr std::int64_t year_1000 = -354285;  // 1000-01-01
  constexpr std::int64_t year_9999 = 2932896;  // 9999-12-31
  if (day >= year_1000 && day <= year_9999) {
    const year_month_day ymd{sys_days{days{day}}};
    std::array<char, 16> buf{};
    const unsigned y = static_cast<unsigned>(static_cast<int>(ymd.year()));
    const unsigned m = static_cast<unsigned>(ymd.month());
    const unsigned d = static_cast<unsigned>(ymd.day());
    const auto end =
        std::to_chars(buf.data(), buf.data() + buf.size(), y * 10000 + m * 100 + d).ptr;
    return "readings_" + std::string(buf.data(), end);
  }
  return "readings_day" + (day < 0 ? "m" + std::to_string(-day) : std::to_string(day));
}

// PostgreSQL text holds valid UTF-8 without NUL, nothing else.
bool storable_text(std::string_view s) {
  return s.find('\0') == std::string_view::npos && common::is_valid_utf8(s);
}

// For a dead letter's descriptive fields: invalid bytes and NUL become U+FFFD (the raw bytes are
// kept in the payload).
std::string as_storable_text(std::string_view s) {
  if (storable_text(s)) return std::string(s);
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = s[i] == '\0' ? 0 : common::utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string_view unstorable_field(const model::Reading& r) {
  if (!storable_text(r.device_id)) return "device_id";
  if (!storable_text(r.metric)) return "metric";
  if (!storable_text(r.unit)) return "unit";
  if (!storable_text(r.quality_reason)) return "quality_reason";
  if (!storable_text(r.provenance.adapter)) return "adapter";
  if (!storable_text(r.provenance.link)) return "link";
  return {};
}

std::string_view unstorable_field(const model::Event& e) {
  if (!storable_text(e.device_id)) return "device_id";
  if (!storable_text(e.type)) return "type";
  if (!storable_text(e.attributes_json)) return "attributes";
  if (!storable_text(e.provenance.adapter)) return "adapter";
  if (!storable_text(e.provenance.link)) return "link";
  return {};
}

pipeline::DeadLetter unstorable(std::string_view what, std::string_view device,
                                std::string_view name, std::string_view field,
                                model::Timestamp received, const model::Provenance& from) {
  pipeline::DeadLetter d;
  d.received_ts = received;
  d.source = as_storable_text(from.adapter + "/" + from.link);
  d.reason = "unstorable_text";
  d.detail = std::string(what) + " " + as_storable_text(device) + "/" + as_storable_text(name) +
             ": " + std::string(field) + " holds a NUL byte or invalid UTF-8";
  d.payload.append(device).append("\n").append(name);
  return d;
}

// Length-prefixed so that no two (device, metric) pairs share a key. Into a reused buffer, so a
// lookup per reading allocates nothing.
void series_key(std::string& out, std::string_view device, std::string_view metric) {
  std::array<char, 24> len{};
  const auto end = std::to_chars(len.data(), len.data() + len.size(), device.size()).ptr;
  out.assign(len.data(), end);
  out.push_back(':');
  out.append(device);
  out.append(metric);
}

std::string series_key(std::string_view device, std::string_view metric) {
  std::string key;
  series_key(key, device, metric);
  return key;
}

Status migrate(Connection& db) {
  const auto latest = static_cast<std::int32_t>(std::size(migrations));
  if (Status s = db.execute("BEGIN"); !s.ok()) return s;
  // Two fieldhub processes opening an old database at once: one migrates, the other waits and
  // then finds it current.
  if (auto r = db.query("SELECT pg_advisory_xact_lock($1)", Params().int8(schema_lock_key));
      !r.ok()) {
    return r.status();
  }
  if (Status s = db.execute("CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)");
      !s.ok()) {
    return s;
  }
  auto version = db.query("SELECT coalesce(max(version), 0) FROM schema_version");
  if (!version.ok()) return version.status();
  const std::int32_t current = version.value().int4(0, 0);
  if (current > latest) {
    return Status::failure("database schema version " + std::to_string(current) +
                           " is newer than this fieldhub supports (" + std::to_string(latest) +
                           "); upgrade fieldhub");
  }
  for (auto v = current; v < latest; ++v) {
    const Migration& m = migrations[v];
    if (Status s = db.execute(m.sql); !s.ok()) {
      return Status::failure("migration " + std::string(m.name) + ": " + s.message(), s.sqlstate());
    }
  }
  if (current != latest) {
    if (Status s = db.execute("DELETE FROM schema_version; INSERT INTO schema_version VALUES (" +
                              std::to_string(latest) + ")");
        !s.ok()) {
      return s;
    }
  }
  return db.execute("COMMIT");
}

Result<Connection> connect(const std::string& url, const PostgresOptions& options,
                           std::string_view role) {
  return Connection::open({url, "fieldhub-" + std::string(role), options.timeout});
}

}  // namespace

// The records of one batch that go in, after replay digests and text checks.
struct PostgresHistoryStore::Batch {
  std::vector<const model::Reading*> readings;
  std::vector<const model::Event*> events;
  std::vector<const pipeline::DeadLetter*> dead_letters;
  std::deque<pipeline::DeadLetter> unstorable;  // made here; a deque keeps the pointers valid
};

std::size_t PostgresHistoryStore::KeyHash::operator()(std::string_view s) const noexcept {
  return std::hash<std::string_view>{}(s);
}

int PostgresHistoryStore::schema_version() {
  return static_cast<int>(std::size(migrations));
}

pg::Result<std::unique_ptr<PostgresHistoryStore>> PostgresHistoryStore::open(
    std::string url, PostgresOptions options) {
  auto writer = connect(url, options, "writer");
  if (!writer.ok()) return writer.status();
  if (Status s = migrate(writer.value()); !s.ok()) return s;
  if (Status s = writer.value().execute(writer_session_setup); !s.ok()) return s;
  auto reader = connect(url, options, "reader");
  if (!reader.ok()) return reader.status();
  std::unique_ptr<PostgresHistoryStore> store(new PostgresHistoryStore(
      std::move(url), options, std::move(writer.value()), std::move(reader.value())));
  if (Status s = store->load_partitions(); !s.ok()) return s;
  // Folds what a previous run left pending (on the folder's connection), then the folder thread
  // takes over.
  if (Status s = store->maintain(); !s.ok()) return s;
  store->folder_.start();
  return store;
}

PostgresHistoryStore::PostgresHistoryStore(std::string url, PostgresOptions options,
                                           Connection writer, Connection reader)
    : url_(std::move(url)),
      options_(options),
      writer_(std::move(writer)),
      folder_({.url = url_,
               .timeout = options_.timeout,
               .interval = options_.rollup_fold_interval,
               .slice_rows = options_.rollup_fold_rows,
               .maintenance_interval = options_.maintenance_interval,
               .retention = options_.retention,
               .clock = options_.clock,
               .metrics = options_.metrics}),
      reader_(std::move(reader)) {
  prune_every_ = std::clamp<std::chrono::microseconds>(
      options_.replay_digest_retention / 4, std::chrono::seconds{1}, std::chrono::minutes{5});
  // The first write prunes, so that a process restarted often still does.
  last_prune_ = now() - prune_every_;
  last_maintenance_ = now();
}

PostgresHistoryStore::~PostgresHistoryStore() {
  folder_.stop();
}

model::Timestamp PostgresHistoryStore::now() const {
  return options_.clock != nullptr ? options_.clock->now() : system_clock_.now();
}

pg::Status PostgresHistoryStore::connect_writer() {
  auto c = connect(url_, options_, "writer");
  if (!c.ok()) return c.status();
  if (Status s = c.value().execute(writer_session_setup); !s.ok()) return s;
  writer_ = std::move(c.value());
  return {};
}

// ---- partitions ----

pg::Status PostgresHistoryStore::load_partitions() {
  auto rows = writer_.query("SELECT day FROM reading_partitions");
  if (!rows.ok()) return rows.status();
  partition_days_.clear();
  for (int i = 0; i < rows.value().size(); ++i) partition_days_.insert(rows.value().int4(i, 0));
  return {};
}

pg::Status PostgresHistoryStore::ensure_partitions(const std::set<std::int64_t>& days) {
  for (const std::int64_t day : days) {
    if (partition_days_.contains(day)) continue;
    const std::string name = partition_name(day);
    // One implicit transaction: the lock keeps two writers from creating the same partition.
    const std::string sql = std::string(ddl_lock_timeout) + "SELECT pg_advisory_xact_lock(" +
                            std::to_string(schema_lock_key) + "); CREATE TABLE IF NOT EXISTS \"" +
                            name + "\" PARTITION OF readings FOR VALUES " + partition_bounds(day) +
                            "; INSERT INTO reading_partitions(day, name) VALUES (" +
                            std::to_string(day) + ", '" + name + "') ON CONFLICT DO NOTHING";
    if (Status s = writer_.execute(sql); !s.ok()) {
      return Status::failure("create partition " + name + ": " + s.message(), s.sqlstate());
    }
    partition_days_.insert(day);
  }
  return {};
}

pg::Status PostgresHistoryStore::maintain() {
  if (Status s = maintain_partitions(); !s.ok()) return s;
  // Before the retention of the tiers, so no pending row brings back a bucket it deletes.
  if (Status s = folder_.fold(); !s.ok()) return s;
  return folder_.expire();
}

pg::Status PostgresHistoryStore::fold_rollups() {
  return folder_.fold();
}

pg::Status PostgresHistoryStore::maintain_partitions() {
  const std::int64_t now_us = model::to_micros(now());
  const std::int64_t today = floor_day(now_us);
  std::set<std::int64_t> ahead;
  for (int i = 0; i <= options_.partitions_ahead; ++i) ahead.insert(today + i);
  if (Status s = ensure_partitions(ahead); !s.ok()) return s;
  if (options_.retention.raw.count() > 0) {
    // A partition goes once all of its day is older than the retention.
    const auto retention_us = options_.retention.raw.count();
    constexpr std::int64_t min_us = std::numeric_limits<std::int64_t>::min();
    const std::int64_t keep_from_us =
        now_us < min_us + retention_us ? min_us : now_us - retention_us;
    const std::int64_t first_kept_day = floor_day(keep_from_us);
    auto old = writer_.query("SELECT day, name FROM reading_partitions WHERE day < $1 ORDER BY day",
                             Params().int4(static_cast<std::int32_t>(first_kept_day)));
    if (!old.ok()) return old.status();
    for (int i = 0; i < old.value().size(); ++i) {
      const std::int32_t day = old.value().int4(i, 0);
      const std::string name = old.value().text(i, 1);
      const std::string sql =
          std::string(ddl_lock_timeout) + "DROP TABLE IF EXISTS \"" + name +
          "\"; DELETE FROM reading_partitions WHERE day = " + std::to_string(day);
      if (Status s = writer_.execute(sql); !s.ok()) {
        return Status::failure("drop partition " + name + ": " + s.message(), s.sqlstate());
      }
      partition_days_.erase(day);
      common::log(common::LogLevel::info, "postgres_history",
                  "dropped partition " + name + " (retention)");
    }
  }
  last_maintenance_ = now();
  return {};
}

void PostgresHistoryStore::maintain_if_due() {
  const model::Timestamp t = now();
  if (!writer_.healthy()) return;
  if (t - last_maintenance_ >= options_.maintenance_interval) {
    if (Status s = maintain_partitions(); !s.ok()) {
      common::log(common::LogLevel::warn, "postgres_history", "maintenance: " + s.message());
      last_maintenance_ = t;
    }
  }
}

// ---- write ----

WriteFailure postgres_write_failure(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return WriteFailure::outage;
  const std::string_view cls = sqlstate.substr(0, 2);
  if (cls == "22" || cls == "23" || cls == "54") return WriteFailure::refused_data;
  return WriteFailure::outage;
}

WriteResult PostgresHistoryStore::write(std::span<const pipeline::Envelope> batch) {
  WriteResult result;
  if (batch.empty()) {
    result.ok = true;
    return result;
  }
  series_added_in_tx_.clear();
  const Status s = write_batch(batch, result);
  if (!s.ok()) {
    const WriteFailure failure = postgres_write_failure(s.sqlstate());
    if (failure == WriteFailure::outage) {
      // The next attempt opens a fresh session, which sees role and database settings changed
      // meanwhile (ALTER ROLE/DATABASE ... SET reach new sessions only) and, behind a failover
      // address, the new primary.
      writer_.close();
    } else if (writer_.healthy() && writer_.transaction_state() != 'I') {
      if (!writer_.execute("ROLLBACK").ok()) writer_.close();
    }
    // The transaction is gone, and with it any series inserted in it: forget their ids, or a
    // retry would write readings under ids that no longer exist. Partitions may have been dropped
    // by someone else: CREATE ... IF NOT EXISTS again on the next write.
    for (const auto& key : series_added_in_tx_) series_.erase(key);
    series_added_in_tx_.clear();
    partition_days_.clear();
    WriteResult failed;
    failed.error = s.message();
    failed.failure = failure;
    return failed;
  }
  series_added_in_tx_.clear();
  result.ok = true;
  return result;
}

pg::Status PostgresHistoryStore::begin_batch(std::span<const pipeline::Envelope> batch,
                                             model::Timestamp t) {
  // Nothing of the batch has been sent before BEGIN succeeds, so a connection found dead here (the
  // server restarted while we were idle, and only the first statement shows it) is reopened and
  // the start tried once more instead of failing the batch. Not after a timeout: a hung server
  // must fail the write within one timeout.
  const bool was_connected = writer_.healthy();
  Status s = start_transaction(batch, t);
  if (s.ok() || !was_connected || writer_.healthy() || s.timed_out()) return s;
  return start_transaction(batch, t);
}

pg::Status PostgresHistoryStore::start_transaction(std::span<const pipeline::Envelope> batch,
                                                   model::Timestamp t) {
  if (!writer_.healthy()) {
    if (Status s = connect_writer(); !s.ok()) return s;
  }
  if (t - last_maintenance_ >= options_.maintenance_interval) {
    if (Status s = maintain_partitions(); !s.ok()) {
      if (!writer_.healthy()) return s;
      // A retention drop waiting on a long query must not stop history: try again next time.
      common::log(common::LogLevel::warn, "postgres_history", "maintenance: " + s.message());
      last_maintenance_ = t;
    }
  }
  // Partitions are created before the batch's transaction, in their own: a failed batch leaves
  // empty partitions behind, which is harmless.
  std::set<std::int64_t> days;
  for (const auto& env : batch) {
    for (const auto& r : env.readings) days.insert(floor_day(model::to_micros(r.ts())));
  }
  if (Status s = ensure_partitions(days); !s.ok()) return s;
  return writer_.execute("BEGIN");
}

pg::Status PostgresHistoryStore::write_batch(std::span<const pipeline::Envelope> batch,
                                             WriteResult& result) {
  const model::Timestamp t = now();
  if (Status s = begin_batch(batch, t); !s.ok()) return s;
  std::vector<bool> skip(batch.size(), false);
  if (Status s = skip_known_digests(batch, t, skip, result); !s.ok()) return s;

  Batch b;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (skip[i]) continue;
    const auto& env = batch[i];
    for (const auto& r : env.readings) {
      if (const auto field = unstorable_field(r); !field.empty()) {
        b.unstorable.push_back(
            unstorable("reading", r.device_id, r.metric, field, r.received_ts, r.provenance));
        b.dead_letters.push_back(&b.unstorable.back());
      } else {
        b.readings.push_back(&r);
      }
    }
    for (const auto& e : env.events) {
      if (const auto field = unstorable_field(e); !field.empty()) {
        b.unstorable.push_back(
            unstorable("event", e.device_id, e.type, field, e.received_ts, e.provenance));
        b.dead_letters.push_back(&b.unstorable.back());
      } else {
        b.events.push_back(&e);
      }
    }
    for (const auto& d : env.dead_letters) b.dead_letters.push_back(&d);
  }

  if (Status s = resolve_series(b); !s.ok()) return s;
  rollups_.clear();
  if (Status s = write_readings(b, result); !s.ok()) return s;
  if (Status s = write_rollups(); !s.ok()) return s;
  if (Status s = write_events(b, result); !s.ok()) return s;
  if (Status s = write_dead_letters(b, result); !s.ok()) return s;

  // Digests older than the retention cannot recognise a redelivery any more; deleting them a few
  // times per retention period keeps the table small without a DELETE per batch.
  const bool prune = t - last_prune_ >= prune_every_;
  if (prune) {
    const auto cutoff = model::to_micros(t - options_.replay_digest_retention);
    auto r =
        writer_.query("DELETE FROM replay_digests WHERE received_ts < $1", Params().int8(cutoff));
    if (!r.ok()) return r.status();
  }
  if (Status s = writer_.execute("COMMIT"); !s.ok()) return s;
  // COMMIT of a failed transaction answers ROLLBACK, not an error.
  if (writer_.transaction_state() != 'I') return Status::failure("COMMIT did not complete");
  if (prune) last_prune_ = t;
  if (appended_pending_) folder_.nudge();
  return {};
}

pg::Status PostgresHistoryStore::skip_known_digests(std::span<const pipeline::Envelope> batch,
                                                    model::Timestamp t, std::vector<bool>& skip,
                                                    WriteResult& result) {
  std::vector<std::int64_t> digests;
  std::unordered_set<std::uint64_t> seen;
  for (const auto& env : batch) {
    if (env.replay_digest != 0 && seen.insert(env.replay_digest).second) {
      // bigint is signed 64-bit; keep the bit pattern.
      digests.push_back(static_cast<std::int64_t>(env.replay_digest));
    }
  }
  if (digests.empty()) return {};
  // The digests this batch inserts are the ones not seen before; RETURNING names them.
  std::unordered_set<std::uint64_t> inserted;
  for (std::size_t from = 0; from < digests.size(); from += max_rows_per_values_list) {
    const auto n = std::min(max_rows_per_values_list, digests.size() - from);
    Params p;
    p.int8(model::to_micros(t));
    std::string sql = "INSERT INTO replay_digests(digest, received_ts) VALUES ";
    for (std::size_t i = 0; i < n; ++i) {
      sql += (i ? ",($" : "($") + std::to_string(i + 2) + ", $1)";
      p.int8(digests[from + i]);
    }
    sql += " ON CONFLICT (digest) DO NOTHING RETURNING digest";
    auto rows = writer_.query(sql, p);
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < rows.value().size(); ++i) {
      inserted.insert(static_cast<std::uint64_t>(rows.value().int8(i, 0)));
    }
  }
  // As if inserted one by one in batch order: the first occurrence of a new digest is new, every
  // other occurrence found it already there. Seen before and the transport says it may be a
  // repeat: the same message again (e.g. an MQTT QoS 1 redelivery after a restart). Skipping it
  // whole keeps readings without a source timestamp (whose ts is the new receipt time) from being
  // stored twice.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& env = batch[i];
    if (env.replay_digest == 0) continue;
    const bool is_new = inserted.erase(env.replay_digest) > 0;
    if (!is_new && env.redelivered) {
      skip[i] = true;
      ++result.envelopes_duplicate;
    }
  }
  return {};
}

pg::Status PostgresHistoryStore::resolve_series(const Batch& b) {
  std::vector<std::string> keys;
  std::vector<const model::Reading*> firsts;
  {
    std::unordered_set<std::string> wanted;
    for (const model::Reading* r : b.readings) {
      series_key(key_buffer_, r->device_id, r->metric);
      if (series_.contains(key_buffer_) || wanted.contains(key_buffer_)) continue;
      wanted.insert(key_buffer_);
      keys.push_back(key_buffer_);
      firsts.push_back(r);
    }
  }
  if (keys.empty()) return {};

  const auto remember = [this](const Rows& rows, bool inserted) {
    for (int i = 0; i < rows.size(); ++i) {
      Series se;
      se.id = rows.int4(i, 0);
      se.unit = rows.text(i, 3);
      se.adapter = rows.text(i, 4);
      se.link = rows.text(i, 5);
      std::string key = series_key(rows.bytes(i, 1), rows.bytes(i, 2));
      if (inserted) series_added_in_tx_.push_back(key);
      series_.insert_or_assign(std::move(key), std::move(se));
    }
  };
  // Known ones first (a restart, or another fieldhub writing the same database), then the new
  // ones; ON CONFLICT covers a series another writer created in between, which the second SELECT
  // then finds.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!series_.contains(keys[i])) missing.push_back(i);
    }
    for (std::size_t from = 0; from < missing.size(); from += max_rows_per_values_list) {
      const auto n = std::min(max_rows_per_values_list, missing.size() - from);
      Params p;
      std::string sql =
          "SELECT s.id, s.device_id, s.metric, s.unit, s.adapter, s.link FROM series s "
          "JOIN (VALUES ";
      for (std::size_t i = 0; i < n; ++i) {
        const model::Reading& r = *firsts[missing[from + i]];
        sql += (i ? ",($" : "($") + std::to_string(2 * i + 1) + ", $" + std::to_string(2 * i + 2) +
               ")";
        p.text(r.device_id).text(r.metric);
      }
      sql += ") AS k(device_id, metric) ON s.device_id = k.device_id AND s.metric = k.metric";
      auto rows = writer_.query(sql, p);
      if (!rows.ok()) return rows.status();
      remember(rows.value(), false);
    }
    if (pass == 1) break;
    missing.clear();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!series_.contains(keys[i])) missing.push_back(i);
    }
    if (missing.empty()) break;
    for (std::size_t from = 0; from < missing.size(); from += max_rows_per_values_list) {
      const auto n = std::min(max_rows_per_values_list, missing.size() - from);
      Params p;
      std::string sql = "INSERT INTO series(device_id, metric, unit, adapter, link) VALUES ";
      for (std::size_t i = 0; i < n; ++i) {
        const model::Reading& r = *firsts[missing[from + i]];
        sql += i ? ",(" : "(";
        for (int c = 1; c <= 5; ++c) {
          sql += (c > 1 ? ", $" : "$") + std::to_string(5 * i + static_cast<std::size_t>(c));
        }
        sql += ")";
        p.text(r.device_id)
            .text(r.metric)
            .text(r.unit)
            .text(r.provenance.adapter)
            .text(r.provenance.link);
      }
      sql +=
          " ON CONFLICT (device_id, metric) DO NOTHING "
          "RETURNING id, device_id, metric, unit, adapter, link";
      auto rows = writer_.query(sql, p);
      if (!rows.ok()) return rows.status();
      remember(rows.value(), true);
    }
  }
  for (const auto& key : keys) {
    if (!series_.contains(key)) return Status::failure("series not found after insert");
  }
  return {};
}

pg::Status PostgresHistoryStore::write_readings(const Batch& b, WriteResult& result) {
  if (b.readings.empty()) return {};
  struct Row {
    std::int32_t series;
    std::int64_t ts;
    const model::Reading* r;
    const Series* se;
  };
  std::vector<Row> rows;
  rows.reserve(b.readings.size());
  for (const model::Reading* r : b.readings) {
    series_key(key_buffer_, r->device_id, r->metric);
    const auto it = series_.find(key_buffer_);
    rows.push_back({it->second.id, model::to_micros(r->ts()), r, &it->second});
  }
  // Sorted by the primary key, the index inserts of a batch walk each series' newest leaf page
  // once. Stable: of two equal keys in one batch the first is stored, as a one-by-one insert
  // would.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& c) {
    return a.series != c.series ? a.series < c.series : a.ts < c.ts;
  });

  copy_.clear();
  for (const Row& row : rows) {
    const model::Reading& r = *row.r;
    const Series& se = *row.se;
    copy_.begin_row(13);
    copy_.int4(row.series);
    copy_.int8(row.ts);
    switch (model::type_of(r.value)) {
      case model::ValueType::none:
        copy_.null();
        copy_.null();
        break;
      case model::ValueType::number:
        copy_.float8(std::get<double>(r.value));
        copy_.null();
        break;
      case model::ValueType::boolean:
        copy_.float8(std::get<bool>(r.value) ? 1.0 : 0.0);
        copy_.null();
        break;
      case model::ValueType::text:
        copy_.null();
        copy_.bytea(std::get<std::string>(r.value));
        break;
    }
    copy_.int2(static_cast<std::int16_t>(model::type_of(r.value)));
    if (r.unit != se.unit) {
      copy_.text(r.unit);
    } else {
      copy_.null();
    }
    copy_.int2(static_cast<std::int16_t>(r.quality));
    if (!r.quality_reason.empty()) {
      copy_.text(r.quality_reason);
    } else {
      copy_.null();
    }
    copy_.int8(model::to_micros(r.received_ts));
    if (!r.source_ts_trusted) {
      copy_.int8(model::to_micros(r.source_ts));
    } else {
      copy_.null();
    }
    copy_.boolean(r.source_ts_trusted);
    if (r.provenance.adapter != se.adapter) {
      copy_.text(r.provenance.adapter);
    } else {
      copy_.null();
    }
    if (r.provenance.link != se.link) {
      copy_.text(r.provenance.link);
    } else {
      copy_.null();
    }
  }
  copy_.finish();

  // Straight into readings when no row can be a repeat of another in the batch: a unique
  // violation then means a repeat of a stored row, which is rare (a redelivery, a replay after a
  // crash). The COPY runs under a savepoint; on a unique violation it is undone and the batch
  // goes the staging way, which counts repeats exactly, as do the next batches for a while (a
  // replay tends to come in runs). Half the work of staging when there is nothing to count.
  bool repeats_in_batch = false;
  for (std::size_t i = 1; i < rows.size() && !repeats_in_batch; ++i) {
    repeats_in_batch = rows[i].series == rows[i - 1].series && rows[i].ts == rows[i - 1].ts;
  }
  if (!repeats_in_batch && staged_batches_left_ == 0) {
    if (Status s = writer_.execute("SAVEPOINT direct_copy"); !s.ok()) return s;
    auto direct = writer_.copy_in(std::string("COPY readings(") + std::string(reading_columns) +
                                      ") FROM STDIN (FORMAT binary)",
                                  copy_);
    if (direct.ok()) {
      if (Status s = writer_.execute("RELEASE SAVEPOINT direct_copy"); !s.ok()) return s;
      result.readings_stored += direct.value();
      result.readings_duplicate += rows.size() - direct.value();
      // Every row went in (a repeat would have failed the COPY).
      for (const Row& row : rows) {
        if (const auto v = rollup_value(*row.r)) rollups_.add(row.series, row.ts, *v);
      }
      return {};
    }
    constexpr std::string_view unique_violation = "23505";
    if (!writer_.healthy() || direct.status().sqlstate() != unique_violation) {
      return direct.status();
    }
    if (Status s = writer_.execute("ROLLBACK TO SAVEPOINT direct_copy"); !s.ok()) return s;
    staged_batches_left_ = 16;
  } else if (staged_batches_left_ > 0) {
    --staged_batches_left_;
  }

  auto copied = writer_.copy_in("COPY readings_stage FROM STDIN (FORMAT binary)", copy_);
  if (!copied.ok()) return copied.status();
  // ON CONFLICT names the key, so only a repeat of (series, ts) is skipped: a NOT NULL or CHECK
  // failure still fails the batch instead of passing for a duplicate.
  // RETURNING names the rows actually inserted: only those go into the rollups.
  auto inserted =
      writer_.query(std::string("INSERT INTO readings(") + std::string(reading_columns) +
                    ") SELECT " + std::string(reading_columns) +
                    " FROM readings_stage ON CONFLICT (series_id, ts) DO NOTHING "
                    "RETURNING series_id, ts, value_num, value_type, quality");
  if (!inserted.ok()) return inserted.status();
  const Rows& in = inserted.value();
  const auto stored = static_cast<std::uint64_t>(in.size());
  for (int i = 0; i < in.size(); ++i) {
    if (in.is_null(i, 2)) continue;
    const std::int64_t ts = in.int8(i, 1);
    const auto v = rollup_value(in.float8(i, 2), static_cast<model::ValueType>(in.int2(i, 3)),
                                static_cast<model::Quality>(in.int2(i, 4)), ts);
    if (v) rollups_.add(in.int4(i, 0), ts, *v);
  }
  result.readings_stored += stored;
  result.readings_duplicate += rows.size() - stored;
  return {};
}

pg::Status PostgresHistoryStore::write_rollups() {
  appended_pending_ = false;
  if (rollups_.empty()) return {};
  copy_.clear();
  // A merge can only overflow a double (PostgreSQL refuses: "value out of range") when a sum is
  // this large: below half the spacing of doubles at the largest finite one (2^970, about
  // 9.98e291), adding a sum to any finite bucket rounds to a finite result. A batch holding such
  // a sum merges its own rollups into the buckets inside its transaction instead of leaving them
  // pending, so a reading that would overflow its bucket fails its batch (and is found and
  // dead-lettered alone) instead of leaving a pending row no fold can merge. Only its own rows:
  // the folder's rows are not touched, and both merge buckets in the same order (no deadlock).
  constexpr double overflow_risk = 1e291;
  bool large = false;
  // The minute buckets only: an hour's aggregate is the merge of its minutes' (the fold and the
  // hour queries regroup them).
  for (const RollupBatch::Row& row : rollups_.rows(Resolution::minute)) {
    const Aggregate& a = row.agg;
    large = large || std::abs(a.sum) >= overflow_risk;
    copy_.begin_row(10);
    copy_.int4(static_cast<std::int32_t>(row.series_id));
    copy_.int8(row.bucket);
    copy_.float8(a.min);
    copy_.float8(a.max);
    copy_.float8(a.sum);
    copy_.int8(a.count);
    copy_.int8(a.first_ts);
    copy_.float8(a.first);
    copy_.int8(a.last_ts);
    copy_.float8(a.last);
  }
  copy_.finish();
  if (large) {
    auto staged = writer_.copy_in("COPY rollup_stage FROM STDIN (FORMAT binary)", copy_);
    if (!staged.ok()) return staged.status();
    return writer_.query(rollup_merge_statement("SELECT * FROM rollup_stage")).status();
  }
  auto copied = writer_.copy_in("COPY rollup_pending FROM STDIN (FORMAT binary)", copy_);
  if (!copied.ok()) return copied.status();
  appended_pending_ = true;
  return {};
}

pg::Status PostgresHistoryStore::write_events(const Batch& b, WriteResult& result) {
  if (b.events.empty()) return {};
  copy_.clear();
  std::int32_t ord = 0;
  for (const model::Event* e : b.events) {
    copy_.begin_row(11);
    copy_.int4(ord++);
    copy_.text(e->device_id);
    copy_.text(e->type);
    copy_.int2(static_cast<std::int16_t>(e->priority));
    copy_.int8(model::to_micros(e->ts()));
    copy_.int8(model::to_micros(e->received_ts));
    copy_.int8(model::to_micros(e->source_ts));
    copy_.boolean(e->source_ts_trusted);
    copy_.text(e->attributes_json);
    copy_.text(e->provenance.adapter);
    copy_.text(e->provenance.link);
  }
  copy_.finish();
  auto copied = writer_.copy_in("COPY events_stage FROM STDIN (FORMAT binary)", copy_);
  if (!copied.ok()) return copied.status();
  // In batch order, so ids (the tie-break of "newest first") follow arrival.
  auto inserted = writer_.query(
      "INSERT INTO events(device_id, type, priority, ts, received_ts, source_ts, "
      "source_ts_trusted, attributes, adapter, link) "
      "SELECT device_id, type, priority, ts, received_ts, source_ts, source_ts_trusted, "
      "attributes, adapter, link FROM events_stage ORDER BY ord "
      "ON CONFLICT (device_id, type, ts) DO NOTHING");
  if (!inserted.ok()) return inserted.status();
  const std::uint64_t stored = inserted.value().affected();
  result.events_stored += stored;
  result.events_duplicate += b.events.size() - stored;
  return {};
}

pg::Status PostgresHistoryStore::write_dead_letters(const Batch& b, WriteResult& result) {
  if (b.dead_letters.empty()) return {};
  copy_.clear();
  for (const pipeline::DeadLetter* d : b.dead_letters) {
    copy_.begin_row(5);
    copy_.int8(model::to_micros(d->received_ts));
    copy_.text(as_storable_text(d->source));
    copy_.text(as_storable_text(d->reason));
    copy_.text(as_storable_text(d->detail));
    copy_.bytea(d->payload);  // raw bytes: NULs and invalid UTF-8 are expected here
  }
  copy_.finish();
  auto copied = writer_.copy_in(
      "COPY dead_letters(received_ts, source, reason, detail, payload) FROM STDIN (FORMAT binary)",
      copy_);
  if (!copied.ok()) return copied.status();
  result.dead_letters_stored += copied.value();
  return {};
}

// ---- queries ----

namespace {

model::Value value_from(const Rows& rows, int i, int num_col, int text_col, int type_col) {
  switch (static_cast<model::ValueType>(rows.int2(i, type_col))) {
    case model::ValueType::none:
      return std::monostate{};
    case model::ValueType::number:
      if (rows.is_null(i, num_col)) return std::numeric_limits<double>::quiet_NaN();
      return rows.float8(i, num_col);
    case model::ValueType::boolean:
      return rows.float8(i, num_col) != 0;
    case model::ValueType::text:
      return rows.text(i, text_col);
  }
  return std::monostate{};
}

std::int64_t limit_of(std::size_t limit) {
  return limit > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(limit);
}

// The query interface has no error slot: a failed query returns no rows and says why in the log.
void log_query_error(const Status& s) {
  common::log(common::LogLevel::warn, "postgres_history", "query: " + s.message());
}

}  // namespace

pg::Result<pg::Rows> PostgresHistoryStore::read(std::string_view sql, const Params& params) {
  // A query is safe to repeat: one retry on a fresh connection covers a server restart between
  // two queries without the caller seeing an error.
  for (int attempt = 0;; ++attempt) {
    if (!reader_.healthy()) {
      auto c = connect(url_, options_, "reader");
      if (!c.ok()) return c.status();
      reader_ = std::move(c.value());
    }
    auto rows = reader_.query(sql, params);
    if (rows.ok() || reader_.healthy() || rows.status().timed_out() || attempt == 1) return rows;
  }
}

std::vector<model::Reading> PostgresHistoryStore::readings(const ReadingQuery& q) {
  std::vector<model::Reading> out;
  if (!storable_text(q.device_id) || !storable_text(q.metric)) return out;  // cannot be stored
  std::lock_guard lock(reader_mutex_);
  auto rows = read(
      "SELECT r.ts, r.value_num, r.value_text, r.value_type, coalesce(r.unit, s.unit), "
      "r.quality, r.quality_reason, r.received_ts, r.source_ts, r.source_ts_trusted, "
      "coalesce(r.adapter, s.adapter), coalesce(r.link, s.link) "
      "FROM series s JOIN readings r ON r.series_id = s.id "
      "WHERE s.device_id = $1 AND s.metric = $2 AND r.ts >= $3 AND r.ts < $4 "
      "ORDER BY r.ts LIMIT $5",
      Params()
          .text(q.device_id)
          .text(q.metric)
          .int8(model::to_micros(q.from))
          .int8(model::to_micros(q.to))
          .int8(limit_of(q.limit)));
  if (!rows.ok()) {
    log_query_error(rows.status());
    return out;
  }
  const Rows& s = rows.value();
  out.reserve(static_cast<std::size_t>(s.size()));
  for (int i = 0; i < s.size(); ++i) {
    model::Reading r;
    r.device_id = q.device_id;
    r.metric = q.metric;
    const auto ts = model::from_micros(s.int8(i, 0));
    r.value = value_from(s, i, 1, 2, 3);
    r.unit = s.text(i, 4);
    r.quality = static_cast<model::Quality>(s.int2(i, 5));
    r.quality_reason = s.text(i, 6);
    r.received_ts = model::from_micros(s.int8(i, 7));
    r.source_ts_trusted = s.boolean(i, 9);
    r.source_ts = r.source_ts_trusted ? ts : model::from_micros(s.int8(i, 8));
    r.provenance.adapter = s.text(i, 10);
    r.provenance.link = s.text(i, 11);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<RollupBucket> PostgresHistoryStore::rollups(const RollupQuery& q) {
  std::vector<RollupBucket> out;
  if (!storable_text(q.device_id) || !storable_text(q.metric)) return out;  // cannot be stored
  const std::string table(rollup_table(q.resolution));
  // Pending rows are minute buckets; for hours, each counts in the hour that holds it.
  const std::string_view pending_bucket =
      q.resolution == Resolution::minute ? std::string_view("bucket") : hour_of_bucket;
  // The stored buckets (the one before the range, for the first bucket's delta, and the first
  // `limit` of the range) and the series' rows not folded yet, ordered by bucket; rows of one
  // bucket are merged here. The first `limit` merged buckets of the range are among these: a
  // pending row adds to a stored bucket or is a bucket of its own.
  constexpr std::string_view columns =
      "bucket, value_min, value_max, value_sum, value_count, first_ts, first_value, last_ts, "
      "last_value";
  std::lock_guard lock(reader_mutex_);
  auto rows = read(
      std::string("WITH s AS (SELECT id FROM series WHERE device_id = $1 AND metric = $2) (SELECT ")
          .append(columns)
          .append(" FROM s JOIN ")
          .append(table)
          .append(" r ON r.series_id = s.id WHERE r.bucket < $3 ORDER BY r.bucket DESC LIMIT 1) "
                  "UNION ALL (SELECT ")
          .append(columns)
          .append(" FROM s JOIN ")
          .append(table)
          .append(" r ON r.series_id = s.id WHERE r.bucket >= $3 AND r.bucket < $4 ORDER BY "
                  "r.bucket LIMIT $5) UNION ALL (SELECT ")
          .append(columns)
          .append(" FROM (SELECT ")
          .append(pending_bucket)
          .append(" AS bucket, value_min, value_max, value_sum, value_count, first_ts, "
                  "first_value, last_ts, last_value FROM s JOIN rollup_pending p ON p.series_id = "
                  "s.id) p WHERE p.bucket < $4) ORDER BY bucket"),
      Params()
          .text(q.device_id)
          .text(q.metric)
          .int8(model::to_micros(q.from))
          .int8(model::to_micros(q.to))
          .int8(limit_of(q.limit)));
  if (!rows.ok()) {
    log_query_error(rows.status());
    return out;
  }
  const Rows& s = rows.value();
  std::optional<std::int64_t> bucket;  // of `merged`
  Aggregate merged;
  std::optional<double> previous_last;
  const std::int64_t from_us = model::to_micros(q.from);
  const auto flush = [&] {
    if (!bucket) return;
    if (*bucket < from_us) {
      previous_last = merged.last;  // the newest bucket before the range comes last
    } else if (out.size() < q.limit) {
      RollupBucket b;
      b.start = model::from_micros(*bucket);
      b.min = merged.min;
      b.max = merged.max;
      b.sum = merged.sum;
      b.count = static_cast<std::uint64_t>(merged.count);
      b.first_ts = model::from_micros(merged.first_ts);
      b.first = merged.first;
      b.last_ts = model::from_micros(merged.last_ts);
      b.last = merged.last;
      out.push_back(b);
    }
  };
  for (int i = 0; i < s.size(); ++i) {
    const Aggregate a{s.float8(i, 1), s.float8(i, 2), s.float8(i, 3), s.int8(i, 4),
                      s.int8(i, 5),   s.float8(i, 6), s.int8(i, 7),   s.float8(i, 8)};
    if (bucket && *bucket == s.int8(i, 0)) {
      merged.merge(a);
      continue;
    }
    flush();
    bucket = s.int8(i, 0);
    merged = a;
  }
  flush();
  fill_deltas(out, previous_last);
  return out;
}

std::vector<model::Event> PostgresHistoryStore::events(const EventQuery& q) {
  std::vector<model::Event> out;
  if ((q.device_id && !storable_text(*q.device_id)) || (q.type && !storable_text(*q.type))) {
    return out;
  }
  Params p;
  p.int8(model::to_micros(q.from)).int8(model::to_micros(q.to)).int8(limit_of(q.limit));
  std::string sql =
      "SELECT device_id, type, priority, received_ts, source_ts, source_ts_trusted, attributes, "
      "adapter, link FROM events WHERE ts >= $1 AND ts < $2";
  if (q.device_id) {
    p.text(*q.device_id);
    sql += " AND device_id = $" + std::to_string(p.size());
  }
  if (q.type) {
    p.text(*q.type);
    sql += " AND type = $" + std::to_string(p.size());
  }
  sql += " ORDER BY ts DESC, id DESC LIMIT $3";
  std::lock_guard lock(reader_mutex_);
  auto rows = read(sql, p);
  if (!rows.ok()) {
    log_query_error(rows.status());
    return out;
  }
  const Rows& s = rows.value();
  for (int i = 0; i < s.size(); ++i) {
    model::Event e;
    e.device_id = s.text(i, 0);
    e.type = s.text(i, 1);
    e.priority = static_cast<model::Priority>(s.int2(i, 2));
    e.received_ts = model::from_micros(s.int8(i, 3));
    e.source_ts = model::from_micros(s.int8(i, 4));
    e.source_ts_trusted = s.boolean(i, 5);
    e.attributes_json = s.text(i, 6);
    e.provenance.adapter = s.text(i, 7);
    e.provenance.link = s.text(i, 8);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<pipeline::DeadLetter> PostgresHistoryStore::dead_letters(const DeadLetterQuery& q) {
  std::vector<pipeline::DeadLetter> out;
  Params p;
  p.int8(limit_of(q.limit));
  std::string sql = "SELECT received_ts, source, reason, detail, payload FROM dead_letters";
  if (q.reason) {
    if (!storable_text(*q.reason)) return out;
    p.text(*q.reason);
    sql += " WHERE reason = $2";
  }
  sql += " ORDER BY id DESC LIMIT $1";
  std::lock_guard lock(reader_mutex_);
  auto rows = read(sql, p);
  if (!rows.ok()) {
    log_query_error(rows.status());
    return out;
  }
  const Rows& s = rows.value();
  for (int i = 0; i < s.size(); ++i) {
    pipeline::DeadLetter d;
    d.received_ts = model::from_micros(s.int8(i, 0));
    d.source = s.text(i, 1);
    d.reason = s.text(i, 2);
    d.detail = s.text(i, 3);
    d.payload = s.text(i, 4);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace fieldhub::stores
