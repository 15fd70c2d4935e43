// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to fieldhub_web: the Beast-facing pieces shared by http_server.cpp and
// live_session.cpp. Kept out of the public headers so that only these two translation units
// compile Beast.

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>

#include "web/live_hub.h"

namespace fieldhub::web {

// An open connection the server can shut down on stop(). Called on the io executor.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void shutdown() = 0;
};

// Takes over an HTTP connection whose request is a WebSocket upgrade already checked by the
// server (path, Origin) and runs the live feed session on it until either side closes.
std::shared_ptr<Connection> start_live_session(
    boost::beast::tcp_stream stream,
    boost::beast::http::request<boost::beast::http::string_body> req, LiveHub& hub,
    LiveFilter filter, std::size_t max_message_bytes);

}  // namespace fieldhub::web
