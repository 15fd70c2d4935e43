// SPDX-License-Identifier: Apache-2.0
#include "stores/redis/redis_connection.h"

#include <hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <string>

namespace fieldhub::redis {

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

Reply take(void* raw) {
  auto* r = static_cast<redisReply*>(raw);
  Reply out = convert(r);
  freeReplyObject(r);
  return out;
}

bool parse_int(std::string_view s, auto& out) {
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return res.ec == std::errc{} && res.ptr == s.data() + s.size();
}

}  // namespace

std::optional<Endpoint> parse_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) return std::nullopt;
  url.remove_prefix(scheme.size());
  Endpoint ep;
  std::string_view authority = url;
  if (const auto slash = url.find('/'); slash != std::string_view::npos) {
    authority = url.substr(0, slash);
    const std::string_view db = url.substr(slash + 1);
    if (!db.empty() && (!parse_int(db, ep.db) || ep.db < 0)) return std::nullopt;
  }
  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    if (!parse_int(authority.substr(colon + 1), ep.port) || ep.port == 0) return std::nullopt;
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return std::nullopt;
  ep.host = std::string(authority);
  return ep;
}

void Connection::Free::operator()(redisContext* c) const {
  redisFree(c);
}

Connection::Connection(redisContext* c) : ctx_(c) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Result<Connection> Connection::connect(const Endpoint& endpoint,
                                       std::chrono::milliseconds connect_timeout,
                                       std::chrono::milliseconds command_timeout) {
  redisContext* raw =
      redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, to_timeval(connect_timeout));
  if (raw == nullptr) return Status::failure("out of memory");
  Connection conn(raw);
  if (raw->err != 0) return conn.error_status("connect");
  if (redisSetTimeout(raw, to_timeval(command_timeout)) != REDIS_OK) {
    return conn.error_status("set timeout");
  }
  // A peer that vanishes without a FIN (power loss, cable) is found by keepalive, not only by
  // the next command's timeout.
  redisEnableKeepAlive(raw);
  if (endpoint.db != 0) {
    const std::string db = std::to_string(endpoint.db);
    auto r = conn.command({"SELECT", db});
    if (!r.ok()) return r.status();
    if (r.value().is_error()) return Status::failure("SELECT " + db + ": " + r.value().str);
  }
  return conn;
}

Status Connection::error_status(std::string_view what) const {
  std::string msg(what);
  msg += ": ";
  msg += ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection broken";
  return Status::failure(std::move(msg));
}

void Connection::append(std::span<const std::string_view> argv) {
  argv_.clear();
  argv_len_.clear();
  for (const auto& a : argv) {
    argv_.push_back(a.data());
    argv_len_.push_back(a.size());
  }
  // Fails only when out of memory; the next get_reply() then reports the broken context.
  redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv_.size()), argv_.data(),
                         argv_len_.data());
}

Result<Reply> Connection::get_reply() {
  if (ctx_->err != 0) return error_status("redis");
  void* raw = nullptr;
  // Sends the whole output buffer first, then blocks on the socket (SO_RCVTIMEO bounds it).
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
    if (ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Status::failure("command timeout");
    }
    return error_status("redis");
  }
  return take(raw);
}

Result<Reply> Connection::command(std::span<const std::string_view> argv) {
  append(argv);
  return get_reply();
}

Status Connection::flush() {
  int done = 0;
  do {
    if (redisBufferWrite(ctx_.get(), &done) != REDIS_OK) return error_status("write");
  } while (done == 0);
  return {};
}

Result<std::optional<Reply>> Connection::poll_reply(std::chrono::milliseconds wait) {
  if (ctx_->err != 0) return error_status("redis");
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_.get(), &raw) != REDIS_OK) return error_status("protocol");
  if (raw != nullptr) return std::optional<Reply>(take(raw));
  if (Status s = flush(); !s.ok()) return s;
  pollfd pfd{};
  pfd.fd = ctx_->fd;
  pfd.events = POLLIN;
  const int n = ::poll(&pfd, 1, static_cast<int>(wait.count()));
  if (n == 0 || (n < 0 && errno == EINTR)) return std::optional<Reply>{};
  if (n < 0) return Status::failure("poll failed");
  // Readable: this read does not block (and a closed peer shows here as an error).
  if (redisBufferRead(ctx_.get()) != REDIS_OK) return error_status("read");
  if (redisGetReplyFromReader(ctx_.get(), &raw) != REDIS_OK) return error_status("protocol");
  if (raw == nullptr) return std::optional<Reply>{};
  return std::optional<Reply>(take(raw));
}

}  // namespace fieldhub::redis
