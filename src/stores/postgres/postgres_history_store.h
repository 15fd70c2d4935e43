// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "stores/history_store.h"
#include "stores/postgres/pg_conn.h"
#include "stores/postgres/rollup_folder.h"
#include "stores/rollup.h"

namespace fieldhub::stores {

struct PostgresOptions {
  // The most connecting, one statement or one COPY may take. A server that does not answer in
  // time (hung, stopped, unreachable) fails the write after this long, never later.
  std::chrono::milliseconds timeout{5000};
  // How long a message's replay digest is remembered to recognise a redelivery.
  std::chrono::seconds replay_digest_retention{3600};
  // How long each tier is kept (zero: forever). Raw readings go by whole daily partitions (a
  // partition is dropped once all of its day is older than retention.raw); rollup buckets by
  // bounded deletes.
  Retention retention;
  // Daily partitions created ahead of today, so the first write of a day does not create one.
  int partitions_ahead = 2;
  // How often write() creates the partitions ahead and drops raw ones past retention, and the
  // folder thread deletes rollup buckets past theirs.
  std::chrono::seconds maintenance_interval{3600};
  // How often the folder thread folds the rollup rows batches appended to rollup_pending into
  // the minute and hour buckets (on its own connection, so no batch waits for it). Each fold
  // merges a bucket once however many batches touched it since the last; queries include the
  // pending rows, so this changes the cost of writing, not what is read. Zero: after every batch
  // that appended rows.
  std::chrono::milliseconds rollup_fold_interval{5000};
  // Pending rows per fold slice (one statement and one short transaction each).
  std::int64_t rollup_fold_rows = 20000;
  // Time source for digest ages, partitions and retention; null means the system clock. Must
  // outlive the store.
  const common::Clock* clock = nullptr;
  // Where the folder counts its folds and their failures; null: not exported. Must outlive the
  // store.
  common::Metrics* metrics = nullptr;
};

// What a failed write was, by the SQLSTATE the server sent: classes 22 (data exception: a number
// out of range, invalid UTF-8 or NUL in text, a bad date), 23 (integrity constraint violation)
// and 54 (program limit exceeded: a row or index entry too large) are about the records and are
// refused_data; everything else (no SQLSTATE: a lost or timed-out connection; 25 read-only
// transaction, 42 no privilege or missing table, 53 disk full / out of memory / too many
// connections, 57 cancelled or shut down, 58 and XX system errors, P0 a trigger's RAISE, classes
// not known here) is an outage. docs/decisions/0015-store-refusals.md.
WriteFailure postgres_write_failure(std::string_view sqlstate);

// The server-backed history store: PostgreSQL 12 or later through libpq.
// Threads: write() and maintain() on the history writer thread only, through the writer
// connection (application_name fieldhub-writer); the queries on one other thread through the
// reader connection (fieldhub-reader, guarded by a mutex), so a query never waits behind a batch;
// the rollup folds and the rollup tiers' retention on the store's folder thread through its own
// connection (fieldhub-folder, RollupFolder), so no batch waits for a fold.
// write() is one transaction per batch: readings are sorted by (series, time) and sent with binary
// COPY straight into readings (or, after a repeat was met, into a session staging table, then
// moved with INSERT ... ON CONFLICT DO NOTHING so repeats are counted exactly); the rollup
// aggregates of the stored readings are appended to rollup_pending in the same transaction and
// folded into the buckets every few seconds (rollup_fold_interval). After ok every record is
// committed (durable as the server's synchronous_commit says); after !ok nothing of the batch is
// visible and the same batch may be retried. A lost connection is reopened by the next call. The
// one ambiguous case is a connection lost during COMMIT: the batch may have landed, and its retry
// is then counted as duplicates (readings, events, redelivered digests) except for dead letters,
// which are stored again. A record PostgreSQL cannot hold in a text column (NUL byte or invalid
// UTF-8 in a device id, metric, unit, event type, ...) is stored as a dead letter (reason
// "unstorable_text") instead of failing the batch; a text value itself is bytea and round-trips
// byte for byte.
class PostgresHistoryStore final : public HistoryStore {
 public:
  // Connects (writer and reader), migrates the schema under an advisory lock and creates the
  // partitions ahead. Fails, as a value, if the server cannot be reached within the timeout or the
  // database has a newer schema than this build knows.
  static pg::Result<std::unique_ptr<PostgresHistoryStore>> open(std::string url,
                                                                PostgresOptions options = {});

  // The schema version this build writes (and migrates older databases to).
  static int schema_version();

  WriteResult write(std::span<const pipeline::Envelope> batch) override;
  std::vector<model::Reading> readings(const ReadingQuery& q) override;
  std::vector<RollupBucket> rollups(const RollupQuery& q) override;
  std::vector<model::Event> events(const EventQuery& q) override;
  std::vector<pipeline::DeadLetter> dead_letters(const DeadLetterQuery& q) override;
  // The partitions ahead and the raw retention when maintenance_interval has passed; on an open
  // writer connection only (an idle writer does not reconnect for upkeep: the next write does,
  // and runs it then).
  void maintain_if_due() override;

  // All upkeep now: creates the partitions from today to partitions_ahead days on, drops those
  // past the raw retention (writer connection), folds every pending rollup row and deletes rollup
  // buckets past their retention in chunks of 10,000 rows (folder connection). open() calls it;
  // write() runs the partition part every maintenance_interval, the folder thread the rest.
  // Writer thread.
  pg::Status maintain();
  // Folds every pending rollup row now, on the folder's connection. Any thread.
  pg::Status fold_rollups();

  ~PostgresHistoryStore() override;

 private:
  struct Series {
    std::int32_t id = 0;
    std::string unit;
    std::string adapter;
    std::string link;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct Batch;

  PostgresHistoryStore(std::string url, PostgresOptions options, pg::Connection writer,
                       pg::Connection reader);

  pg::Status connect_writer();
  pg::Status write_batch(std::span<const pipeline::Envelope> batch, WriteResult& result);
  pg::Status begin_batch(std::span<const pipeline::Envelope> batch, model::Timestamp t);
  pg::Status start_transaction(std::span<const pipeline::Envelope> batch, model::Timestamp t);
  pg::Status skip_known_digests(std::span<const pipeline::Envelope> batch, model::Timestamp t,
                                std::vector<bool>& skip, WriteResult& result);
  pg::Status resolve_series(const Batch& b);
  pg::Status write_readings(const Batch& b, WriteResult& result);
  pg::Status write_rollups();
  pg::Status maintain_partitions();
  pg::Status write_events(const Batch& b, WriteResult& result);
  pg::Status write_dead_letters(const Batch& b, WriteResult& result);
  pg::Status ensure_partitions(const std::set<std::int64_t>& days);
  pg::Status load_partitions();
  pg::Result<pg::Rows> read(std::string_view sql, const pg::Params& params);
  model::Timestamp now() const;

  std::string url_;
  PostgresOptions options_;
  common::SystemClock system_clock_;

  // Writer side: used by write() and maintain() only.
  pg::Connection writer_;
  std::unordered_map<std::string, Series, KeyHash, std::equal_to<>> series_;
  std::vector<std::string> series_added_in_tx_;  // forgotten again if the transaction fails
  std::set<std::int64_t> partition_days_;        // days whose partition exists
  pg::CopyBuffer copy_;
  RollupBatch rollups_;  // of the readings the current transaction stored
  std::string key_buffer_;
  int staged_batches_left_ = 0;  // batches to stage after a direct COPY met a stored repeat
  std::chrono::microseconds prune_every_{};
  model::Timestamp last_prune_;
  model::Timestamp last_maintenance_;
  bool appended_pending_ = false;  // the current transaction appended rows to rollup_pending

  RollupFolder folder_;

  // Query side.
  std::mutex reader_mutex_;
  pg::Connection reader_;
};

}  // namespace fieldhub::stores
