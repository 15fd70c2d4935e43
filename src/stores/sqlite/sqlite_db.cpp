// SPDX-License-Identifier: Apache-2.0
#include "stores/sqlite/sqlite_db.h"

#include <sqlite3.h>

#include <climits>
#include <string>

namespace fieldhub::sqlite {

namespace {

int to_int_length(std::string_view v) {
  // SQLite lengths are int; the pipeline caps payloads far below this.
  return v.size() > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(v.size());
}

std::string message_of(sqlite3* db, int code) {
  if (db != nullptr && sqlite3_errcode(db) == code) return sqlite3_errmsg(db);
  return sqlite3_errstr(code);
}

int on_wal_commit(void* observer, sqlite3* db, const char* name, int pages) {
  if (static_cast<WalObserver*>(observer)->committed(pages)) {
    // Its result is the next checkpoint's business: the commit has happened either way.
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

}  // namespace

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      db_(std::exchange(other.db_, nullptr)),
      last_code_(other.last_code_),
      bind_message_(std::move(other.bind_message_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    db_ = std::exchange(other.db_, nullptr);
    last_code_ = other.last_code_;
    bind_message_ = std::move(other.bind_message_);
  }
  return *this;
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::note_bind(int rc) {
  if (rc == SQLITE_OK || last_code_ != SQLITE_OK) return;
  last_code_ = rc;
  bind_message_ = "bind: " + message_of(db_, rc);
}

Statement& Statement::bind(int index, std::int64_t v) {
  note_bind(sqlite3_bind_int64(stmt_, index, v));
  return *this;
}

Statement& Statement::bind(int index, double v) {
  note_bind(sqlite3_bind_double(stmt_, index, v));
  return *this;
}

Statement& Statement::bind_text(int index, std::string_view v) {
  // data() of an empty view may be null, which SQLite would store as NULL instead of ''.
  const char* data = v.data() != nullptr ? v.data() : "";
  note_bind(sqlite3_bind_text(stmt_, index, data, to_int_length(v), SQLITE_STATIC));
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view v) {
  if (v.empty()) {
    note_bind(sqlite3_bind_zeroblob(stmt_, index, 0));
  } else {
    note_bind(sqlite3_bind_blob(stmt_, index, v.data(), to_int_length(v), SQLITE_STATIC));
  }
  return *this;
}

Statement& Statement::bind_null(int index) {
  note_bind(sqlite3_bind_null(stmt_, index));
  return *this;
}

StepResult Statement::step() {
  if (last_code_ != SQLITE_OK && !bind_message_.empty()) return StepResult::error;
  last_code_ = sqlite3_step(stmt_);
  if (last_code_ == SQLITE_ROW) return StepResult::row;
  if (last_code_ == SQLITE_DONE) return StepResult::done;
  return StepResult::error;
}

Status Statement::last_error() const {
  if (last_code_ == SQLITE_OK || last_code_ == SQLITE_ROW || last_code_ == SQLITE_DONE) return {};
  if (!bind_message_.empty()) return Status::failure(last_code_, bind_message_);
  return Status::failure(last_code_, message_of(db_, last_code_));
}

Status Statement::run() {
  const StepResult r = step();
  Status status;
  if (r == StepResult::error) {
    status = last_error();
  } else if (r == StepResult::row) {
    status = Status::failure(SQLITE_MISUSE, "statement returned a row where none was expected");
  }
  reset();
  return status;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  last_code_ = SQLITE_OK;
  bind_message_.clear();
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::int64_t Statement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

double Statement::column_double(int index) const {
  return sqlite3_column_double(stmt_, index);
}

std::string Statement::column_text(int index) const {
  const auto* p = sqlite3_column_text(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);  // after the pointer, as SQLite documents
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::string Statement::column_blob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr) return {};  // NULL or a zero-length blob
  return std::string(static_cast<const char*>(p), static_cast<std::size_t>(n));
}

// ---- Database ----

void Database::Closer::operator()(sqlite3* db) const {
  // close_v2: safe even if a Statement outlives its Database; the handle goes when both are gone.
  sqlite3_close_v2(db);
}

Result<Database> Database::open(const std::filesystem::path& file, OpenMode mode) {
  int flags = SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  switch (mode) {
    case OpenMode::read_write_create:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
    case OpenMode::read_write:
      flags |= SQLITE_OPEN_READWRITE;
      break;
    case OpenMode::read_only:
      flags |= SQLITE_OPEN_READONLY;
      break;
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
  Database db(raw);  // owns the handle even on failure
  if (rc != SQLITE_OK) {
    std::string message = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return Status::failure(rc, "cannot open " + file.string() + ": " + message);
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Database::error(int code) const {
  return Status::failure(code, message_of(db_.get(), code));
}

Status Database::exec(std::string_view sql) {
  // sqlite3_exec wants a NUL-terminated string; these are short, fixed statements.
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return {};
  std::string m = message != nullptr ? message : sqlite3_errstr(rc);
  sqlite3_free(message);
  return Status::failure(rc, std::move(m));
}

Result<Statement> Database::prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), to_int_length(sql),
                                    persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error(rc);
  }
  return Statement(stmt, db_.get());
}

Result<std::int64_t> Database::query_int64(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt.ok()) return stmt.status();
  switch (stmt.value().step()) {
    case StepResult::row:
      return stmt.value().column_int64(0);
    case StepResult::done:
      return Status::failure(SQLITE_NOTFOUND, "query returned no row");
    case StepResult::error:
      break;
  }
  return stmt.value().last_error();
}

Status Database::set_busy_timeout(std::chrono::milliseconds timeout) {
  const int rc = sqlite3_busy_timeout(db_.get(), static_cast<int>(timeout.count()));
  return rc == SQLITE_OK ? Status{} : error(rc);
}

void Database::set_wal_observer(WalObserver* observer) {
  sqlite3_wal_hook(db_.get(), observer != nullptr ? on_wal_commit : nullptr, observer);
}

Status Database::checkpoint_passive() {
  const int rc =
      sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  return rc == SQLITE_OK ? Status{} : error(rc);
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}

int Database::changes() const {
  return sqlite3_changes(db_.get());
}

bool Database::in_transaction() const {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

// ---- Transaction ----

Result<Transaction> Transaction::begin(Database& db, TransactionKind kind) {
  Status s = db.exec(kind == TransactionKind::immediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!s.ok()) return s;
  return Transaction(&db);
}

Status Transaction::commit() {
  if (db_ == nullptr) return Status::failure(SQLITE_MISUSE, "transaction already finished");
  Status s = db_->exec("COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;  // on failure the destructor (or rollback()) undoes what is left
}

void Transaction::rollback() {
  if (db_ == nullptr) return;
  if (db_->in_transaction()) db_->exec("ROLLBACK");
  db_ = nullptr;
}

}  // namespace fieldhub::sqlite
