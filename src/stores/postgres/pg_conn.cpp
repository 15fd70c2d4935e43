// SPDX-License-Identifier: Apache-2.0
#include "stores/postgres/pg_conn.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace fieldhub::pg {

namespace {

template <class T>
T from_big_endian(const char* p) {
  T v{};
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) {
    auto* b = reinterpret_cast<unsigned char*>(&v);
    std::reverse(b, b + sizeof v);
  }
  return v;
}

template <class T>
void append_big_endian(std::string& out, T v) {
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) {
    std::reverse(b, b + sizeof v);
  }
  out.append(b, sizeof v);
}

template <class T>
std::string big_endian(T v) {
  std::string s;
  append_big_endian(s, v);
  return s;
}

std::string trimmed(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Server notices ("relation already exists, skipping") are expected on every migration check and
// carry nothing an operator must act on; libpq would print them to stderr.
void ignore_notice(void*, const char*) {}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 1 << 30));
}

}  // namespace

// ---- Params ----

Params& Params::add(Type type, std::string bytes, bool is_null) {
  values_.push_back(std::move(bytes));
  nulls_.push_back(is_null);
  types_.push_back(static_cast<unsigned int>(type));
  return *this;
}
Params& Params::int2(std::int16_t v) {
  return add(Type::int2, big_endian(v));
}
Params& Params::int4(std::int32_t v) {
  return add(Type::int4, big_endian(v));
}
Params& Params::int8(std::int64_t v) {
  return add(Type::int8, big_endian(v));
}
Params& Params::float8(double v) {
  return add(Type::float8, big_endian(std::bit_cast<std::uint64_t>(v)));
}
Params& Params::boolean(bool v) {
  return add(Type::boolean, std::string(1, v ? '\1' : '\0'));
}
Params& Params::text(std::string_view v) {
  return add(Type::text, std::string(v));
}
Params& Params::bytea(std::string_view v) {
  return add(Type::bytea, std::string(v));
}
Params& Params::null(Type type) {
  return add(type, {}, true);
}

// ---- Rows ----

Rows::Rows(Rows&& o) noexcept : result_(std::exchange(o.result_, nullptr)) {}
Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    if (result_ != nullptr) PQclear(result_);
    result_ = std::exchange(o.result_, nullptr);
  }
  return *this;
}
Rows::~Rows() {
  if (result_ != nullptr) PQclear(result_);
}

int Rows::size() const {
  return result_ != nullptr ? PQntuples(result_) : 0;
}
bool Rows::is_null(int row, int col) const {
  return PQgetisnull(result_, row, col) != 0;
}
std::string_view Rows::bytes(int row, int col) const {
  if (is_null(row, col)) return {};
  return {PQgetvalue(result_, row, col), static_cast<std::size_t>(PQgetlength(result_, row, col))};
}
std::int16_t Rows::int2(int row, int col) const {
  return is_null(row, col) ? 0 : from_big_endian<std::int16_t>(PQgetvalue(result_, row, col));
}
std::int32_t Rows::int4(int row, int col) const {
  return is_null(row, col) ? 0 : from_big_endian<std::int32_t>(PQgetvalue(result_, row, col));
}
std::int64_t Rows::int8(int row, int col) const {
  return is_null(row, col) ? 0 : from_big_endian<std::int64_t>(PQgetvalue(result_, row, col));
}
double Rows::float8(int row, int col) const {
  if (is_null(row, col)) return 0;
  return std::bit_cast<double>(from_big_endian<std::uint64_t>(PQgetvalue(result_, row, col)));
}
bool Rows::boolean(int row, int col) const {
  return !is_null(row, col) && PQgetvalue(result_, row, col)[0] != 0;
}
std::uint64_t Rows::affected() const {
  const char* tuples = result_ != nullptr ? PQcmdTuples(result_) : "";
  std::uint64_t n = 0;
  std::from_chars(tuples, tuples + std::strlen(tuples), n);
  return n;
}

// ---- CopyBuffer ----

namespace {
// COPY BINARY file header: signature, flags, header extension length (PostgreSQL docs, COPY).
constexpr std::string_view copy_header{"PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19};
}  // namespace

CopyBuffer::CopyBuffer() : data_(copy_header) {}

void CopyBuffer::clear() {
  data_.assign(copy_header);
  rows_ = 0;
}

void CopyBuffer::begin_row(std::int16_t fields) {
  append_big_endian(data_, fields);
  ++rows_;
}

template <class T>
void CopyBuffer::fixed(T v) {
  append_big_endian(data_, static_cast<std::int32_t>(sizeof v));
  append_big_endian(data_, v);
}

void CopyBuffer::int2(std::int16_t v) {
  fixed(v);
}
void CopyBuffer::int4(std::int32_t v) {
  fixed(v);
}
void CopyBuffer::int8(std::int64_t v) {
  fixed(v);
}
void CopyBuffer::float8(double v) {
  fixed(std::bit_cast<std::uint64_t>(v));
}
void CopyBuffer::boolean(bool v) {
  append_big_endian(data_, std::int32_t{1});
  data_.push_back(v ? '\1' : '\0');
}
void CopyBuffer::bytes(std::string_view v) {
  append_big_endian(data_, static_cast<std::int32_t>(v.size()));
  data_.append(v);
}
void CopyBuffer::null() {
  append_big_endian(data_, std::int32_t{-1});
}
void CopyBuffer::finish() {
  append_big_endian(data_, std::int16_t{-1});
}

// ---- Connection ----

Result<Connection> Connection::open(const ConnectOptions& options) {
  using namespace std::chrono;
  const auto deadline = steady_clock::now() + options.timeout;
  const std::string timeout_ms = std::to_string(options.timeout.count());
  // Keepalive probes after 5 s idle, every 2 s, 3 missed: a vanished peer is noticed by the kernel
  // even between statements. tcp_user_timeout bounds unacknowledged sends the same way.
  const char* keys[] = {"dbname",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        nullptr};
  const char* values[] = {options.url.c_str(),
                          options.application_name.c_str(),
                          "1",
                          "5",
                          "2",
                          "3",
                          timeout_ms.c_str(),
                          nullptr};
  PGconn* conn = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::failure("libpq: out of memory");
  Connection c(conn, options.timeout);
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  if (PQstatus(conn) == CONNECTION_BAD) {
    return Status::failure("connect to " + redact_url(options.url) + ": " +
                           trimmed(PQerrorMessage(conn)));
  }
  // PQconnectPoll's protocol: wait for what it asks for, call again, until OK or FAILED.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      return Status::failure("connect to " + redact_url(options.url) + ": " +
                             trimmed(PQerrorMessage(conn)));
    }
    pollfd p{PQsocket(conn), static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT),
             0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n == 0) {
      return Status::timeout("connect to " + redact_url(options.url) + ": no answer within " +
                             std::to_string(options.timeout.count()) + " ms");
    }
    if (n < 0 && errno != EINTR) return Status::failure(std::string("poll: ") + strerror(errno));
    state = PQconnectPoll(conn);
  }
  if (PQsetnonblocking(conn, 1) != 0) {
    return Status::failure("libpq: cannot make the connection non-blocking");
  }
  // The server gives up on a statement at the same time we would, so it does not keep working
  // (and holding locks) for a client that went away.
  if (Status s = c.execute("SET statement_timeout = " + timeout_ms); !s.ok()) return s;
  return c;
}

Connection::Connection(Connection&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), timeout_(o.timeout_) {}
Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    conn_ = std::exchange(o.conn_, nullptr);
    timeout_ = o.timeout_;
  }
  return *this;
}
Connection::~Connection() {
  close();
}

void Connection::close() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

bool Connection::healthy() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

char Connection::transaction_state() const {
  if (conn_ == nullptr) return '?';
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE:
      return 'I';
    case PQTRANS_INTRANS:
      return 'T';
    case PQTRANS_INERROR:
      return 'E';
    default:
      return '?';
  }
}

Status Connection::fail(std::string what, bool timed_out) {
  std::string message = std::move(what);
  if (conn_ != nullptr) {
    const std::string detail = trimmed(PQerrorMessage(conn_));
    if (!detail.empty()) message += ": " + detail;
  }
  // A half-done exchange cannot be resumed: the protocol state is unknown. Closing also tells the
  // server (when it wakes) to roll back whatever this connection had open.
  close();
  return timed_out ? Status::timeout(std::move(message))
                   : Status::failure(std::move(message), "08006");
}

Status Connection::wait_socket(bool for_write, Clock::time_point deadline) {
  for (;;) {
    pollfd p{PQsocket(conn_), static_cast<short>(POLLIN | (for_write ? POLLOUT : 0)), 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return {};
    if (n == 0) {
      return fail("no answer from the server within " + std::to_string(timeout_.count()) + " ms",
                  /*timed_out=*/true);
    }
    if (errno != EINTR) return fail(std::string("poll: ") + strerror(errno));
  }
}

Status Connection::flush(Clock::time_point deadline) {
  for (;;) {
    const int f = PQflush(conn_);
    if (f == 0) return {};
    if (f < 0) return fail("send");
    if (Status s = wait_socket(true, deadline); !s.ok()) return s;
    // Reading while the send buffer is full keeps a server that is itself sending from deadlocking.
    if (PQconsumeInput(conn_) == 0) return fail("receive");
  }
}

Result<Rows> Connection::finish(Clock::time_point deadline) {
  if (Status s = flush(deadline); !s.ok()) return s;
  Rows kept;
  Status error;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      if (Status s = wait_socket(false, deadline); !s.ok()) return s;
      if (PQconsumeInput(conn_) == 0) return fail("receive");
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    Rows rows(r);
    switch (PQresultStatus(r)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        kept = std::move(rows);
        break;
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        // Only copy_in starts a COPY, and it handles this state itself.
        return fail("unexpected COPY state");
      default:
        if (error.ok()) {
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          error = Status::failure(trimmed(PQresultErrorMessage(r)), state != nullptr ? state : "");
        }
        break;
    }
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = error.ok() ? std::string("connection lost") : error.message();
    return fail(message);
  }
  if (!error.ok()) return error;
  return kept;
}

Status Connection::execute(std::string_view sql) {
  if (!healthy()) return Status::failure("not connected", "08003");
  const auto deadline = Clock::now() + timeout_;
  const std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return fail("send");
  auto r = finish(deadline);
  return r.ok() ? Status{} : r.status();
}

Result<Rows> Connection::query(std::string_view sql, const Params& params) {
  if (!healthy()) return Status::failure("not connected", "08003");
  const auto deadline = Clock::now() + timeout_;
  const std::string text(sql);
  const auto n = params.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<int> formats(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = params.nulls_[i] ? nullptr : params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  if (PQsendQueryParams(conn_, text.c_str(), static_cast<int>(n), params.types_.data(),
                        values.data(), lengths.data(), formats.data(), /*resultFormat=*/1) == 0) {
    return fail("send");
  }
  return finish(deadline);
}

Result<std::uint64_t> Connection::copy_in(std::string_view copy_sql, const CopyBuffer& rows) {
  if (!healthy()) return Status::failure("not connected", "08003");
  const auto deadline = Clock::now() + timeout_;
  const std::string text(copy_sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) return fail("send");
  if (Status s = flush(deadline); !s.ok()) return s;
  while (PQisBusy(conn_) != 0) {
    if (Status s = wait_socket(false, deadline); !s.ok()) return s;
    if (PQconsumeInput(conn_) == 0) return fail("receive");
  }
  PGresult* start = PQgetResult(conn_);
  if (start == nullptr) return fail("no answer to COPY");
  Rows start_rows(start);
  if (PQresultStatus(start) != PGRES_COPY_IN) {
    const char* state = PQresultErrorField(start, PG_DIAG_SQLSTATE);
    Status error = Status::failure(trimmed(PQresultErrorMessage(start)), state ? state : "");
    // Drain to the end of the statement so the connection stays usable.
    if (auto rest = finish(deadline); !rest.ok() && !healthy()) return rest.status();
    return error;
  }
  // Sent in slices so that a full socket buffer is waited on (with the deadline), not spun on.
  constexpr std::size_t slice = 256 * 1024;
  const std::string_view data = rows.data();
  for (std::size_t off = 0; off < data.size();) {
    const auto len = std::min(slice, data.size() - off);
    const int put = PQputCopyData(conn_, data.data() + off, static_cast<int>(len));
    if (put < 0) return fail("COPY send");
    if (put == 0) {
      if (Status s = wait_socket(true, deadline); !s.ok()) return s;
      if (PQconsumeInput(conn_) == 0) return fail("receive");
      continue;
    }
    off += len;
    if (Status s = flush(deadline); !s.ok()) return s;
  }
  for (;;) {
    const int end = PQputCopyEnd(conn_, nullptr);
    if (end < 0) return fail("COPY end");
    if (end > 0) break;
    if (Status s = wait_socket(true, deadline); !s.ok()) return s;
  }
  auto done = finish(deadline);
  if (!done.ok()) return done.status();
  return done.value().affected();
}

std::string redact_url(std::string_view url) {
  // postgresql://user:password@host/db: hide what is between the first ':' after the scheme and
  // the '@'. key=value strings: hide password=...
  std::string s(url);
  if (const auto scheme = s.find("://"); scheme != std::string::npos) {
    const auto at = s.find('@', scheme + 3);
    const auto colon = s.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      s.replace(colon + 1, at - colon - 1, "***");
    }
  }
  if (const auto pw = s.find("password="); pw != std::string::npos) {
    auto end = s.find_first_of(" &", pw);
    if (end == std::string::npos) end = s.size();
    s.replace(pw + 9, end - pw - 9, "***");
  }
  return s;
}

}  // namespace fieldhub::pg
