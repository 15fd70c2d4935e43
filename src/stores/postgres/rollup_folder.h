// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/clock.h"
#include "common/metrics.h"
#include "stores/history_store.h"
#include "stores/postgres/pg_conn.h"

namespace fieldhub::stores {

// The statement that merges per-minute rollup rows into rollup_1m and rollup_1h (an hour is the
// merge of its minutes) and returns how many rows it merged. `source` is a data-modifying or
// plain query yielding rollup_pending's columns, named `moved` in the statement. Both tiers'
// upserts take their rows in (series, bucket) order, so two such statements (two folders, or a
// folder and a batch that merges its own rows) lock buckets in the same order and cannot deadlock
// each other.
std::string rollup_merge_statement(std::string_view source);

struct RollupFolderOptions {
  std::string url;
  std::chrono::milliseconds timeout{5000};  // connect and each slice statement
  // Time between the end of one fold and the start of the next. Zero: fold whenever nudge() is
  // called (after each batch that appended rows).
  std::chrono::milliseconds interval{5000};
  // Pending rows per slice: one statement, one short transaction each.
  std::int64_t slice_rows = 20000;
  // How often the rollup tiers' retention runs (after a fold).
  std::chrono::seconds maintenance_interval{3600};
  Retention retention;
  const common::Clock* clock = nullptr;  // for retention cut-offs; null: the system clock
  common::Metrics* metrics = nullptr;    // null: counted in a registry of the folder's own
};

// Folds rollup_pending into the buckets on a connection (application_name fieldhub-folder) and a
// thread of its own, so no history batch waits for a fold. A fold is a series of slices; each
// slice is one statement: `DELETE` of at most slice_rows pending rows (the ones no other folder
// has locked: FOR UPDATE SKIP LOCKED) whose RETURNING rows are merged into both tiers. A slice
// sees only rows committed before it started; rows committed meanwhile stay for the next slice
// or fold, and a row two folders both see is deleted, hence merged, by one of them only.
// Failures are values: counted (fieldhub_history_fold_errors_total), logged, retried with
// backoff (1 s doubling to 60 s); the pending rows stay, and queries merge them.
class RollupFolder {
 public:
  explicit RollupFolder(RollupFolderOptions options);
  ~RollupFolder();  // stop()
  RollupFolder(const RollupFolder&) = delete;
  RollupFolder& operator=(const RollupFolder&) = delete;

  void start();
  // Ends the thread after the slice in flight (at most one statement timeout); pending rows not
  // folded yet stay for the next start.
  void stop();
  // Wakes the thread now when interval is zero (a batch appended pending rows).
  void nudge();

  // Folds every pending row now, slice by slice, on the folder's connection (reconnecting if
  // needed). Any thread; serialised with the folder thread.
  pg::Status fold();
  // Deletes rollup buckets past their tier's retention, in chunks. Any thread; serialised.
  pg::Status expire();

 private:
  void run();
  pg::Status fold_locked();
  pg::Status expire_locked();
  pg::Status connect_locked();
  model::Timestamp now() const;

  RollupFolderOptions options_;
  common::SystemClock system_clock_;
  common::Metrics own_metrics_;
  common::Histogram& fold_seconds_;
  common::Counter& fold_errors_;
  common::Counter& folded_rows_;
  const std::string slice_sql_;

  std::mutex conn_mutex_;  // the connection and the retention schedule
  pg::Connection conn_;
  model::Timestamp last_expire_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // under wake_mutex_
  bool nudged_ = false;    // under wake_mutex_
  std::thread thread_;
};

}  // namespace fieldhub::stores
