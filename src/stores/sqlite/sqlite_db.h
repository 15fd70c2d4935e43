// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one RAII wrapper over the sqlite3 C API: the only place a sqlite3* or sqlite3_stmt* exists.
// Failures are values (Status, Result<T>), never exceptions, so the history writer can roll back
// and report instead of unwinding.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fieldhub::sqlite {

// Ok, or an SQLite result code with the connection's message at the time of the failure.
class Status {
 public:
  Status() = default;
  static Status failure(int code, std::string message) { return Status{code, std::move(message)}; }

  bool ok() const { return code_ == 0; }
  int code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}
  int code_ = 0;  // SQLITE_OK
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
using Result = common::Result<T, Status>;

enum class OpenMode { read_write_create, read_write, read_only };

enum class StepResult { row, done, error };

// One prepared statement. Bound text and blobs are NOT copied: the bytes must stay valid until
// reset() (the writer binds, steps and resets inside one call). Indexes are 1-based as in SQL.
// A failed bind (too big, bad index) is remembered and reported by the next step() or run(), so
// binds chain without a check after each. Movable, not copyable; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  bool valid() const { return stmt_ != nullptr; }

  Statement& bind(int index, std::int64_t v);
  Statement& bind(int index, double v);
  Statement& bind_text(int index, std::string_view v);  // explicit length: embedded NULs kept
  Statement& bind_blob(int index, std::string_view v);
  Statement& bind_null(int index);

  // After error, last_error() says why; the statement must be reset before reuse.
  StepResult step();
  Status last_error() const;
  // step() expecting no row (INSERT, UPDATE, DELETE, DDL), then reset().
  Status run();
  // Resets for the next execution and clears the bindings.
  void reset();

  bool column_is_null(int index) const;
  std::int64_t column_int64(int index) const;
  double column_double(int index) const;
  std::string column_text(int index) const;  // full length, embedded NULs included
  std::string column_blob(int index) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
  int last_code_ = 0;  // of the last step(), or of the first failed bind since reset()
  std::string bind_message_;
  void note_bind(int rc);
};

// One connection. Use from one thread at a time (opened without SQLite's own mutex; callers
// guard it). Closed on destruction; statements still alive keep it open until finalized.
// Told after each commit on a connection in WAL mode how many pages the WAL holds
// (sqlite3_wal_hook). Registering one replaces SQLite's automatic checkpoint on that connection.
class WalObserver {
 public:
  virtual ~WalObserver() = default;
  // On the committing thread. True: checkpoint now, on this connection (PASSIVE).
  virtual bool committed(int wal_pages) = 0;
};

class Database {
 public:
  static Result<Database> open(const std::filesystem::path& file, OpenMode mode);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() = default;

  // Runs one or more statements that return no rows of interest (PRAGMA, DDL, BEGIN ...).
  Status exec(std::string_view sql);
  // persistent: the statement is kept for the connection's life (the writer's cached ones).
  Result<Statement> prepare(std::string_view sql, bool persistent = false);
  // The first column of the first row as an integer (PRAGMA user_version, COUNT(*) ...).
  Result<std::int64_t> query_int64(std::string_view sql);

  Status set_busy_timeout(std::chrono::milliseconds timeout);
  // `observer` (null: none) must outlive this connection's writes.
  void set_wal_observer(WalObserver* observer);
  // A PASSIVE checkpoint: copies what WAL it can into the database file without waiting for
  // readers or writers.
  Status checkpoint_passive();
  std::int64_t last_insert_rowid() const;
  // Rows changed by the most recent INSERT/UPDATE/DELETE (0 for an ON CONFLICT DO NOTHING skip).
  int changes() const;
  bool in_transaction() const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  explicit Database(sqlite3* db) : db_(db) {}
  Status error(int code) const;

  std::unique_ptr<sqlite3, Closer> db_;
};

enum class TransactionKind { deferred, immediate };

// BEGIN on begin(), ROLLBACK on destruction unless commit() succeeded. SQLite rolls some failed
// transactions back by itself (SQLITE_FULL, SQLITE_IOERR ...): rollback() copes with that.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db, TransactionKind kind);

  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() { rollback(); }

  Status commit();
  void rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once committed or rolled back
};

}  // namespace fieldhub::sqlite
