// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "stores/history_store.h"
#include "stores/rollup.h"
#include "stores/sqlite/sqlite_db.h"
#include "stores/sqlite/wal_checkpointer.h"

namespace fieldhub::stores {

enum class SqliteSynchronous { full, normal };

// "full" or "normal", as in config's sqlite_synchronous.
std::optional<SqliteSynchronous> parse_sqlite_synchronous(std::string_view text);

struct SqliteOptions {
  // full: a commit survives power loss; normal (WAL): it survives a crash of fieldhub, and the
  // last commits may be lost on power loss.
  SqliteSynchronous synchronous = SqliteSynchronous::full;
  // How long a write or query waits for a lock held by another process before failing.
  std::chrono::milliseconds busy_timeout{5000};
  // How long a message's replay digest is remembered to recognise a redelivery.
  std::chrono::seconds replay_digest_retention{3600};
  // How long raw readings and each rollup tier are kept (zero: forever).
  Retention retention;
  // How often write() starts deleting what the retention expired. The deletes run after a
  // committed batch, at most retention_chunk rows per transaction and per batch, so a large
  // backlog never holds the write lock for long or stalls ingest.
  std::chrono::seconds maintenance_interval{3600};
  std::uint64_t retention_chunk = 10000;
  // The WAL is copied back into the database file on a thread of its own each time it has grown
  // by this many pages (4 KiB each), and by the writer itself at four times as many.
  int wal_checkpoint_pages = 4096;
  // Time source for digest ages and pruning; null means the system clock. Must outlive the store.
  const common::Clock* clock = nullptr;
};

// What a failed write was, by its SQLite result code (primary or extended): SQLITE_CONSTRAINT (a
// NOT NULL, UNIQUE or CHECK refused, or a trigger's RAISE(ABORT)), SQLITE_TOOBIG and
// SQLITE_MISMATCH are about the records and are refused_data; everything else (SQLITE_FULL,
// IOERR, READONLY, PERM, BUSY, LOCKED, CANTOPEN, CORRUPT, NOMEM, SQLITE_RANGE, which is a bind
// index and never a value, and codes not known here) is an outage.
// docs/decisions/0015-store-refusals.md.
WriteFailure sqlite_write_failure(int code);

// The embedded history store: one SQLite file in WAL mode.
// Threads: write() on the history writer thread only, through its own connection; the queries
// on one other thread through a second connection (guarded by a mutex), so a query never waits
// for a write transaction and never touches the writer's connection; and checkpoints on a third
// thread and connection (sqlite::WalCheckpointer), so a commit seldom waits for one.
// write() is one transaction per batch: after it returns ok every record is committed (and
// fsync'd when synchronous is full); after !ok nothing of the batch is visible and the same batch
// may simply be retried.
class SqliteHistoryStore final : public HistoryStore {
 public:
  // Opens (creating if needed) and migrates the file. Fails, as a value, if the file cannot be
  // opened, is not a database, or has a newer schema than this build knows.
  static sqlite::Result<std::unique_ptr<SqliteHistoryStore>> open(std::filesystem::path file,
                                                                  SqliteOptions options = {});

  // The schema version this build writes (and migrates older files to).
  static int schema_version();

  WriteResult write(std::span<const pipeline::Envelope> batch) override;
  std::vector<model::Reading> readings(const ReadingQuery& q) override;
  std::vector<RollupBucket> rollups(const RollupQuery& q) override;
  std::vector<model::Event> events(const EventQuery& q) override;
  std::vector<pipeline::DeadLetter> dead_letters(const DeadLetterQuery& q) override;
  // One retention step (at most retention_chunk rows) when due or unfinished.
  void maintain_if_due() override { run_retention_step(); }

  // Deletes everything the retention expired as of `now`, in transactions of at most
  // retention_chunk rows; returns the rows deleted. write() does the same on its own schedule;
  // call from the writer thread only.
  sqlite::Result<std::uint64_t> apply_retention(model::Timestamp now);

  ~SqliteHistoryStore() override;

 private:
  // What is written once per series; a reading's own unit, adapter or link is stored only where
  // it differs, which keeps the row small (units are constant per metric in practice).
  struct Series {
    std::int64_t id = 0;
    std::string unit;
    std::string adapter;
    std::string link;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept;
  };
  struct WriterStatements;

  SqliteHistoryStore(std::filesystem::path file, SqliteOptions options,
                     std::unique_ptr<sqlite::WalCheckpointer> checkpointer, sqlite::Database writer,
                     sqlite::Database reader, std::unique_ptr<WriterStatements> statements);

  sqlite::Status write_batch(std::span<const pipeline::Envelope> batch, WriteResult& result);
  sqlite::Status write_envelope(const pipeline::Envelope& env, model::Timestamp now,
                                WriteResult& result);
  sqlite::Result<const Series*> series_for(const model::Reading& r);
  sqlite::Status prune_digests(model::Timestamp now);
  sqlite::Status write_rollups();
  void run_retention_step();
  sqlite::Result<std::uint64_t> retention_step(model::Timestamp now, std::uint64_t budget);
  model::Timestamp now() const;

  std::filesystem::path file_;
  SqliteOptions options_;
  common::SystemClock system_clock_;

  // Before writer_: the writer's connection reports its commits to it until it is closed.
  std::unique_ptr<sqlite::WalCheckpointer> checkpointer_;
  // Writer side: used by write() only.
  sqlite::Database writer_;
  std::unique_ptr<WriterStatements> statements_;
  std::unordered_map<std::string, Series, KeyHash, std::equal_to<>> series_;
  std::vector<std::string> series_added_in_tx_;  // forgotten again if the transaction fails
  std::string key_buffer_;
  std::chrono::microseconds prune_every_{};
  model::Timestamp last_prune_;
  RollupBatch rollups_;  // of the readings the current transaction stored
  model::Timestamp last_retention_;
  bool retention_pending_ = false;  // the last step hit its chunk limit: more to delete

  // Query side.
  std::mutex reader_mutex_;
  sqlite::Database reader_;
};

}  // namespace fieldhub::stores
