// SPDX-License-Identifier: Apache-2.0
#include "web/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <optional>
#include <vector>

#include "common/json_writer.h"
#include "common/log.h"
#include "web/live_session.h"

namespace fieldhub::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto request_timeout = std::chrono::seconds{30};
constexpr auto drain_timeout = std::chrono::seconds{2};
constexpr std::size_t drain_max_bytes = 1024 * 1024;
constexpr std::string_view live_route = "/api/v1/live";

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Response error_response(int status, std::string_view message) {
  Response r;
  r.status = status;
  common::JsonWriter(r.body).begin_object().field("error", message).end_object();
  return r;
}

}  // namespace

bool same_origin(std::string_view origin, std::string_view host) {
  const auto sep = origin.find("://");
  if (sep == std::string_view::npos || host.empty()) return false;
  const auto scheme = origin.substr(0, sep);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return false;
  // An Origin is scheme://host[:port] with no path (RFC 6454 §7).
  return iequals(origin.substr(sep + 3), host);
}

// The server's shared state; sessions keep it alive while they run.
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(asio::any_io_executor ex, const config::ServerConfig& cfg, Api& a, LiveHub& h)
      : config(cfg),
        api(a),
        hub(h),
        acceptor(ex),
        heartbeat(ex),
        telemetry_tick(ex),
        accept_retry(ex) {}

  void do_accept();
  void schedule_heartbeat();
  void schedule_flush(std::chrono::milliseconds delay);
  void stop();

  config::ServerConfig config;
  Api& api;
  LiveHub& hub;
  tcp::acceptor acceptor;
  asio::steady_timer heartbeat;
  asio::steady_timer telemetry_tick;  // the hub's telemetry batches
  asio::steady_timer accept_retry;
  std::vector<std::weak_ptr<Connection>> connections;
  bool running = false;
};

struct HttpServer::Impl : ServerCore {
  using ServerCore::ServerCore;
};

namespace {

// One HTTP/1.1 connection: read a request, answer it (through Api or by upgrading to the live
// feed), repeat while keep-alive. One request at a time; no pipelining.
class HttpSession final : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<ServerCore> server)
      : stream_(std::move(socket)), server_(std::move(server)) {}

  void run() { do_read(); }

  void shutdown() override {
    if (upgraded_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(HttpServer::max_body_bytes);
    parser_->header_limit(HttpServer::max_header_bytes);
    stream_.expires_after(request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == http::error::body_limit) return fail(413, "request body too large", "413");
    if (ec == http::error::header_limit) return fail(431, "request header too large", "431");
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return fail(400, "malformed HTTP request", "400");
    }
    if (ec) return;  // timeout, reset: nothing to answer

    auto req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    const Target target = parse_target(req.target());
    if (target.ok && target.path == live_route) return upgrade(std::move(req), target);
    // A page on another origin must not act for an operator (acknowledge, shelve): changes are
    // refused unless they come from this server's own pages or from a tool without an Origin.
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      const auto origin = req[http::field::origin];
      if (!origin.empty() && !same_origin(origin, req[http::field::host])) {
        server_->api.count_request("cross-origin", 403);
        return write(error_response(403, "origin not allowed"));
      }
    }

    Request request{std::string(req.method_string()), std::string(req.target()),
                    std::move(req.body())};
    server_->api.handle(request, [self = shared_from_this()](Response response) {
      // History answers arrive on the Api's query thread: back to our executor to write.
      auto ex = self->stream_.get_executor();
      asio::post(ex, [self, response = std::move(response)]() mutable {
        self->write(std::move(response));
      });
    });
  }

  void upgrade(http::request<http::string_body> req, const Target& target) {
    if (req.method() != http::verb::get || !beast::websocket::is_upgrade(req)) {
      Response r = error_response(426, "this endpoint is a WebSocket: send an Upgrade request");
      r.headers.emplace_back("Upgrade", "websocket");
      server_->api.count_request(live_route, 426);
      return write(std::move(r));
    }
    const auto origin = req[http::field::origin];
    if (!origin.empty() && !same_origin(origin, req[http::field::host])) {
      server_->api.count_request(live_route, 403);
      keep_alive_ = false;
      return write(error_response(403, "origin not allowed"));
    }
    LiveFilterParse filter = parse_live_filter(target.query);
    if (!filter.error.empty()) {
      server_->api.count_request(live_route, 400);
      return write(error_response(400, filter.error));
    }
    server_->api.count_request(live_route, 101);
    upgraded_ = true;
    server_->connections.push_back(start_live_session(std::move(stream_), std::move(req),
                                                      server_->hub, std::move(filter.filter),
                                                      HttpServer::max_ws_message_bytes));
  }

  void write(Response response) {
    res_.emplace(static_cast<http::status>(response.status), version_);
    res_->set(http::field::server, "fieldhub");
    res_->set(http::field::content_type, response.content_type);
    res_->set("X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : response.headers) res_->set(k, v);
    res_->keep_alive(keep_alive_);
    res_->body() = std::move(response.body);
    res_->prepare_payload();
    stream_.expires_after(request_timeout);
    http::async_write(stream_, *res_,
                      beast::bind_front_handler(&HttpSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    if (!res_->keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      if (draining_) drain();
      return;
    }
    res_.reset();
    do_read();
  }

  // Answers a request that cannot be read to the end and closes the connection.
  void fail(int status, std::string_view message, std::string_view) {
    server_->api.count_request("invalid", status);
    keep_alive_ = false;
    draining_ = true;
    if (version_ == 0) version_ = 11;
    write(error_response(status, message));
  }

  // The client may still be sending the body we refused: read and discard a bounded amount so
  // that closing does not reset the connection before it has read our answer.
  void drain() {
    stream_.expires_after(drain_timeout);
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > drain_max_bytes) return;
                              self->drain();
                            });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerCore> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool upgraded_ = false;
  bool draining_ = false;
  std::size_t drained_ = 0;
  std::array<char, 4096> scratch_{};
};

}  // namespace

void ServerCore::do_accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->running) return;
    if (ec) {
      // Out of descriptors and the like: try again shortly instead of spinning.
      common::log(common::LogLevel::warn, "web", "accept failed: " + ec.message());
      self->accept_retry.expires_after(std::chrono::milliseconds{100});
      self->accept_retry.async_wait([self](beast::error_code wait_ec) {
        if (!wait_ec && self->running) self->do_accept();
      });
      return;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    std::erase_if(self->connections, [](const auto& c) { return c.expired(); });
    auto session = std::make_shared<HttpSession>(std::move(socket), self);
    self->connections.push_back(session);
    session->run();
    self->do_accept();
  });
}

void ServerCore::schedule_heartbeat() {
  heartbeat.expires_after(LiveHub::heartbeat_interval);
  heartbeat.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || !self->running) return;
    self->hub.heartbeat();
    self->schedule_heartbeat();
  });
}

void ServerCore::schedule_flush(std::chrono::milliseconds delay) {
  telemetry_tick.expires_after(delay);
  telemetry_tick.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || !self->running) return;
    self->hub.flush_telemetry();
  });
}

void ServerCore::stop() {
  if (!running) return;
  running = false;
  // The hub outlives the server: from now on it flushes at each publish.
  hub.set_flush_scheduler({});
  beast::error_code ec;
  acceptor.close(ec);
  heartbeat.cancel();
  telemetry_tick.cancel();
  accept_retry.cancel();
  for (const auto& weak : connections) {
    if (auto c = weak.lock()) c->shutdown();
  }
  connections.clear();
}

HttpServer::HttpServer(asio::any_io_executor executor, const config::ServerConfig& config, Api& api,
                       LiveHub& hub)
    : impl_(std::make_shared<Impl>(std::move(executor), config, api, hub)) {}

HttpServer::~HttpServer() {
  stop();
}

std::error_code HttpServer::start() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->config.listen_address, ec);
  if (ec) return ec;
  const tcp::endpoint endpoint{address, impl_->config.listen_port};
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code close_ec;
    acceptor.close(close_ec);
    return ec;
  }
  impl_->running = true;
  impl_->hub.set_flush_scheduler(
      [weak = std::weak_ptr<ServerCore>(impl_)](std::chrono::milliseconds delay) {
        if (const auto self = weak.lock()) self->schedule_flush(delay);
      });
  impl_->do_accept();
  impl_->schedule_heartbeat();
  return {};
}

void HttpServer::stop() {
  impl_->stop();
}

std::uint16_t HttpServer::port() const {
  beast::error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace fieldhub::web
