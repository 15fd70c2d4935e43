// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one RAII wrapper over hiredis: the only place a redisContext or redisReply exists.
// Blocking connections with connect and command timeouts, used from one thread each (the live
// store's writer and subscriber threads). Failures are values (Status, Result<T>).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

struct redisContext;

namespace fieldhub::redis {

// Where a Redis server is: redis://host[:port][/db].
struct Endpoint {
  std::string host;
  std::uint16_t port = 6379;
  int db = 0;
};

// nullopt for anything but redis://host[:port][/db] (no credentials, no TLS, no unix sockets).
std::optional<Endpoint> parse_url(std::string_view url);

class Status {
 public:
  Status() = default;
  static Status failure(std::string message) { return Status{std::move(message)}; }
  bool ok() const { return message_.empty(); }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {
    if (message_.empty()) message_ = "error";
  }
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
using Result = common::Result<T, Status>;

// One reply, copied out of hiredis's reply tree.
struct Reply {
  enum class Type { nil, string, status, error, integer, array };
  Type type = Type::nil;
  std::string str;  // string, status and error replies
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::error; }
};

// One blocking connection. After any I/O error or timeout the connection is broken for good
// (hiredis cannot resynchronise a half-read reply): the caller drops it and connects anew.
class Connection {
 public:
  // Connects within connect_timeout, sets command_timeout as the socket's read and write timeout
  // and SELECTs the endpoint's database.
  static Result<Connection> connect(const Endpoint& endpoint,
                                    std::chrono::milliseconds connect_timeout,
                                    std::chrono::milliseconds command_timeout);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Queues a command in the output buffer (pipelining); nothing is sent until get_reply().
  void append(std::span<const std::string_view> argv);
  // Sends what is queued and waits for the next reply (at most the command timeout).
  Result<Reply> get_reply();
  // append() + get_reply().
  Result<Reply> command(std::span<const std::string_view> argv);
  Result<Reply> command(std::initializer_list<std::string_view> argv) {
    return command(std::span<const std::string_view>(argv.begin(), argv.size()));
  }
  // For a subscriber: sends what is queued, then waits up to `wait` for one reply.
  // ok(nullopt) when none arrived in time (the connection stays usable).
  Result<std::optional<Reply>> poll_reply(std::chrono::milliseconds wait);

 private:
  struct Free {
    void operator()(redisContext* c) const;
  };
  explicit Connection(redisContext* c);
  Status flush();
  Status error_status(std::string_view what) const;

  std::unique_ptr<redisContext, Free> ctx_;
  std::vector<const char*> argv_;
  std::vector<std::size_t> argv_len_;
};

}  // namespace fieldhub::redis
