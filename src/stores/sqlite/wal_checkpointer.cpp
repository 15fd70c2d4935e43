// SPDX-License-Identifier: Apache-2.0
#include "stores/sqlite/wal_checkpointer.h"

#include <sqlite3.h>

#include "common/log.h"

namespace fieldhub::sqlite {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::start(
    const std::filesystem::path& file, int threshold_pages,
    std::chrono::milliseconds busy_timeout) {
  auto db = Database::open(file, OpenMode::read_write);
  if (!db.ok()) return db.status();
  if (Status s = db.value().set_busy_timeout(busy_timeout); !s.ok()) return s;
  // A checkpoint syncs the WAL before copying it and the database file after (FULL or NORMAL);
  // the connection that runs it is the one that truncates a WAL grown past the limit.
  if (Status s = db.value().exec("PRAGMA synchronous=FULL; PRAGMA journal_size_limit=67108864");
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<WalCheckpointer>(
      new WalCheckpointer(std::move(db.value()), threshold_pages));
}

WalCheckpointer::WalCheckpointer(Database db, int threshold_pages)
    : db_(std::move(db)),
      threshold_pages_(threshold_pages),
      writer_pages_(4 * threshold_pages),
      next_at_(threshold_pages),
      thread_([this] { run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool WalCheckpointer::committed(int wal_pages) {
  // Fewer pages than last time: the WAL was restarted from its beginning.
  if (wal_pages < last_pages_) next_at_ = threshold_pages_;
  last_pages_ = wal_pages;
  // The writer's own checkpoint finds all but the newest threshold's worth copied already, and
  // lets the next commit restart the WAL (a PASSIVE checkpoint on this thread seldom catches a
  // writer that keeps committing, so on its own the WAL would only grow).
  if (wal_pages >= writer_pages_) return true;
  if (wal_pages >= next_at_) {
    next_at_ = wal_pages + threshold_pages_;
    {
      std::lock_guard lock(mutex_);
      due_ = true;
    }
    wake_.notify_one();
  }
  return false;
}

void WalCheckpointer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return due_ || stopping_; });
    if (stopping_) return;
    due_ = false;
    lock.unlock();
    if (Status s = db_.checkpoint_passive(); !s.ok() && s.code() != SQLITE_BUSY) {
      // BUSY: another checkpoint is running (the writer's own); the next commit asks again.
      common::log(common::LogLevel::warn, "sqlite_history", "checkpoint: " + s.message());
    }
    lock.lock();
  }
}

}  // namespace fieldhub::sqlite
