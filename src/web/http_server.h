// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

#include "config/config.h"
#include "web/api.h"
#include "web/live_hub.h"

namespace fieldhub::web {

// The HTTP/1.1 server: REST API, static pages, /metrics, /healthz and the WebSocket live feed on
// /api/v1/live. Everything runs on the io executor given, which must be run by a single thread
// (the LiveHub and LiveStore are not thread-safe).
// Limits: request header ≤ 8 KiB (431), body ≤ 64 KiB (413), a request must arrive within 30 s
// (then the connection is closed); WebSocket messages from clients ≤ 64 KiB (close 1009).
// The WebSocket upgrade is refused with 403 when the Origin header names another host than the
// Host header (a browser page from elsewhere must not read the feed); no Origin is allowed
// (non-browser clients). Every accepted socket gets TCP_NODELAY (alert latency).
// While started, the server runs the LiveHub's timers on the io executor: heartbeat() every
// second and flush_telemetry() one telemetry tick after the hub asks (set_flush_scheduler).
// start()/stop() are called on the io executor or while it is not running. Api and LiveHub must
// outlive the server; stop() (also run by the destructor) detaches every live session from the
// hub and closes every connection.
class HttpServer {
 public:
  static constexpr std::size_t max_body_bytes = 64 * 1024;
  static constexpr std::size_t max_header_bytes = 8 * 1024;
  static constexpr std::size_t max_ws_message_bytes = 64 * 1024;

  HttpServer(boost::asio::any_io_executor executor, const config::ServerConfig& config, Api& api,
             LiveHub& hub);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the error (e.g. address in use) instead of throwing.
  std::error_code start();
  void stop();
  // The bound port (useful with listen_port 0: an ephemeral port); 0 before start().
  std::uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// True when a WebSocket upgrade with this Origin header may be accepted for this Host header:
// the origin's host[:port] equals Host (case-insensitive). "null" and malformed origins are not.
bool same_origin(std::string_view origin, std::string_view host);

}  // namespace fieldhub::web
