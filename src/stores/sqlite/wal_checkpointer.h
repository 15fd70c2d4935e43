// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "stores/sqlite/sqlite_db.h"

namespace fieldhub::sqlite {

// Copies the write-ahead log back into the database file on a thread and connection of its own.
// SQLite's automatic checkpoint runs inside the commit that crosses its threshold: with a large
// database that commit takes hundreds of milliseconds (every page the WAL changed, then an
// fsync of the file), and every message in its batch waits that long for its acknowledgement.
// Here the writer's commit wakes this thread each time the WAL has grown by `threshold_pages`; a
// PASSIVE checkpoint never blocks the writer. At 4 x threshold the writer checkpoints itself, as
// SQLite would have, but finds all but the newest pages copied already: that bounds the WAL
// (a checkpoint on another thread seldom catches up with a writer that keeps committing, and
// the WAL restarts from its beginning only after one has).
class WalCheckpointer final : public WalObserver {
 public:
  // Opens a connection of its own to `file` (in WAL mode already) and starts the thread.
  static Result<std::unique_ptr<WalCheckpointer>> start(const std::filesystem::path& file,
                                                        int threshold_pages,
                                                        std::chrono::milliseconds busy_timeout);
  ~WalCheckpointer() override;  // stops and joins (a checkpoint in progress completes)
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // The writer's connection, after each commit.
  bool committed(int wal_pages) override;

 private:
  WalCheckpointer(Database db, int threshold_pages);
  void run();

  Database db_;
  const int threshold_pages_;
  const int writer_pages_;
  // Writer thread only (committed()).
  int next_at_;
  int last_pages_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool due_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fieldhub::sqlite
