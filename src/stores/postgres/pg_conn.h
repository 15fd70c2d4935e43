// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one RAII wrapper over libpq: the only place a PGconn* or PGresult* exists.
// Failures are values (Status, Result<T>), never exceptions, so the history writer can roll back
// and report instead of unwinding.
//
// Every wait is bounded. The socket is non-blocking and each call polls it against a deadline, so
// a server that stops answering (hung, SIGSTOPped, a silent network) costs at most the timeout;
// the connection is then closed (healthy() turns false) and must be reopened. TCP keepalives and
// tcp_user_timeout are set as well, so the kernel gives up on a dead peer too.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

struct pg_conn;
struct pg_result;

namespace fieldhub::pg {

// Ok, or why not: libpq's or the server's message, and the SQLSTATE when the server sent one.
class Status {
 public:
  Status() = default;
  static Status failure(std::string message, std::string sqlstate = {}) {
    Status s;
    s.ok_ = false;
    s.message_ = std::move(message);
    s.sqlstate_ = std::move(sqlstate);
    return s;
  }

  static Status timeout(std::string message) {
    Status s = failure(std::move(message), "08006");
    s.timed_out_ = true;
    return s;
  }

  bool ok() const { return ok_; }
  // The server did not answer in time (as opposed to answering with an error or hanging up).
  bool timed_out() const { return timed_out_; }
  const std::string& message() const { return message_; }
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  bool ok_ = true;
  bool timed_out_ = false;
  std::string message_;
  std::string sqlstate_;
};

// A value or the Status that explains why there is none.
template <class T>
using Result = common::Result<T, Status>;

// The built-in type OIDs fieldhub binds and reads (pg_type.dat).
enum class Type : unsigned int {
  boolean = 16,
  bytea = 17,
  int8 = 20,
  int2 = 21,
  int4 = 23,
  text = 25,
  float8 = 701,
};

// Query parameters, all sent in binary format: numbers exactly, bytea as raw bytes. Text must be
// valid UTF-8 without NUL (the server refuses anything else). Numbered $1, $2, ... in add order.
class Params {
 public:
  Params& int2(std::int16_t v);
  Params& int4(std::int32_t v);
  Params& int8(std::int64_t v);
  Params& float8(double v);
  Params& boolean(bool v);
  Params& text(std::string_view v);
  Params& bytea(std::string_view v);
  Params& null(Type type);

  std::size_t size() const { return types_.size(); }

 private:
  friend class Connection;
  Params& add(Type type, std::string bytes, bool is_null = false);

  std::vector<std::string> values_;
  std::vector<bool> nulls_;
  std::vector<unsigned int> types_;
};

// The rows of one statement, in binary format. Column accessors take the column's declared type;
// asking for the wrong one is a programming error (the bytes are decoded as asked).
class Rows {
 public:
  Rows() = default;
  Rows(Rows&&) noexcept;
  Rows& operator=(Rows&&) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool is_null(int row, int col) const;
  std::string_view bytes(int row, int col) const;  // text and bytea
  std::string text(int row, int col) const { return std::string(bytes(row, col)); }
  std::int16_t int2(int row, int col) const;
  std::int32_t int4(int row, int col) const;
  std::int64_t int8(int row, int col) const;
  double float8(int row, int col) const;
  bool boolean(int row, int col) const;
  // Rows inserted, updated, deleted or copied, as the command tag says.
  std::uint64_t affected() const;

 private:
  friend class Connection;
  explicit Rows(pg_result* r) : result_(r) {}
  pg_result* result_ = nullptr;
};

// Rows for COPY ... FROM STDIN (FORMAT binary), encoded in memory. Text fields must be valid UTF-8
// without NUL. Usage: begin_row(n), then exactly n fields; finish() before sending.
class CopyBuffer {
 public:
  CopyBuffer();
  void begin_row(std::int16_t fields);
  void int2(std::int16_t v);
  void int4(std::int32_t v);
  void int8(std::int64_t v);
  void float8(double v);
  void boolean(bool v);
  void text(std::string_view v) { bytes(v); }
  void bytea(std::string_view v) { bytes(v); }
  void null();
  void finish();  // appends the trailer
  void clear();   // back to just the header

  std::size_t rows() const { return rows_; }
  std::string_view data() const { return data_; }

 private:
  void bytes(std::string_view v);
  template <class T>
  void fixed(T v);

  std::string data_;
  std::size_t rows_ = 0;
};

struct ConnectOptions {
  std::string url;               // postgresql://... or key=value pairs
  std::string application_name;  // shown in pg_stat_activity
  // The most any one step (connecting, one statement, one COPY) may take before the connection is
  // given up. Also the server's statement_timeout.
  std::chrono::milliseconds timeout{10000};
};

// One connection. Not thread-safe: one thread at a time. Movable; closed on destruction.
class Connection {
 public:
  static Result<Connection> open(const ConnectOptions& options);

  Connection() = default;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // False once the connection failed or timed out; every call then fails until reopened.
  bool healthy() const;

  // One or more statements, no parameters, results dropped (simple query protocol).
  Status execute(std::string_view sql);
  // One statement with parameters; its rows (binary format).
  Result<Rows> query(std::string_view sql, const Params& params = {});
  // Runs `copy_sql` (COPY ... FROM STDIN (FORMAT binary)) and sends the buffer; rows copied.
  Result<std::uint64_t> copy_in(std::string_view copy_sql, const CopyBuffer& rows);
  // 'I'dle, 'T' in a transaction, 'E' in a failed transaction, '?' unknown or closed.
  char transaction_state() const;

  void close();

 private:
  using Clock = std::chrono::steady_clock;
  explicit Connection(pg_conn* conn, std::chrono::milliseconds timeout)
      : conn_(conn), timeout_(timeout) {}

  Status fail(std::string what, bool timed_out = false);
  Status flush(Clock::time_point deadline);
  // Waits for the socket to be readable (or writable too), up to the deadline.
  Status wait_socket(bool for_write, Clock::time_point deadline);
  // Collects every result of the statement sent; keeps the last one with rows or the first error.
  Result<Rows> finish(Clock::time_point deadline);

  pg_conn* conn_ = nullptr;
  std::chrono::milliseconds timeout_{10000};
};

// A URL with its password replaced by "***", for messages and logs.
std::string redact_url(std::string_view url);

}  // namespace fieldhub::pg
