// SPDX-License-Identifier: Apache-2.0
#include "web/live_session.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace fieldhub::web {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

// A live session's socket send buffer (the kernel doubles it): about 75 ms of a full site's
// telemetry at 17,000 readings/s, a whole board frame at 250 ms intervals.
constexpr int send_buffer_bytes = 64 * 1024;

// One dashboard's WebSocket: a LiveSink for the hub. Lives as long as one of its socket
// operations is outstanding; while attached, a read is always outstanding, so the hub's raw
// pointer to it stays valid until detach().
class LiveSession final : public Connection,
                          public LiveSink,
                          public std::enable_shared_from_this<LiveSession> {
 public:
  LiveSession(beast::tcp_stream stream, http::request<http::string_body> req, LiveHub& hub,
              LiveFilter filter, std::size_t max_message_bytes)
      : ws_(std::move(stream)), req_(std::move(req)), hub_(hub), filter_(std::move(filter)) {
    ws_.read_message_max(max_message_bytes);
    // One frame, one socket write: Beast's default splits a message into 4 KiB frames, each its
    // own write and completion, which keeps a session busy (and an urgent event waiting behind
    // it) for several turns of the io loop per telemetry frame.
    ws_.auto_fragment(false);
    // A bounded send buffer: left to itself the kernel grows a busy connection's to megabytes,
    // and a client that falls behind then finds an urgent event queued behind seconds of
    // telemetry there. Bounded, a write completes only as the client reads, so the hub holds
    // the backlog (coalesced, newest per metric) and the event goes ahead of it.
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().set_option(
        boost::asio::socket_base::send_buffer_size(send_buffer_bytes), ec);
  }

  void run() {
    // The HTTP read timeout must not apply to a long-lived feed; the WebSocket's own idle
    // timeout (with pings) replaces it.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "fieldhub"); }));
    ws_.async_accept(req_, beast::bind_front_handler(&LiveSession::on_accept, shared_from_this()));
  }

  void send(std::shared_ptr<const std::string> frame) override {
    writing_ = std::move(frame);
    ws_.text(true);
    ws_.async_write(boost::asio::buffer(*writing_),
                    beast::bind_front_handler(&LiveSession::on_write, shared_from_this()));
  }

  void close_slow() override {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).close();
  }

  void shutdown() override {
    detach();
    close_slow();
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    id_ = hub_.attach(*this, filter_);
    attached_ = true;
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&LiveSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      // Closed by the client, a too-big message (Beast has already sent close 1009), a timeout
      // or our own close_slow(): the session ends here.
      detach();
      beast::get_lowest_layer(ws_).close();
      return;
    }
    // A client changes its subscription with a text message (web/README.md).
    if (attached_ && ws_.got_text()) {
      const auto data = buffer_.cdata();
      hub_.on_message(id_, {static_cast<const char*>(data.data()), data.size()});
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_.reset();
    if (ec) {
      detach();
      beast::get_lowest_layer(ws_).close();
      return;
    }
    if (attached_) hub_.on_sent(id_);
  }

  void detach() {
    if (!attached_) return;
    attached_ = false;
    hub_.detach(id_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  http::request<http::string_body> req_;
  LiveHub& hub_;
  LiveFilter filter_;
  LiveHub::SessionId id_ = 0;
  bool attached_ = false;
  beast::flat_buffer buffer_;
  std::shared_ptr<const std::string> writing_;
};

}  // namespace

std::shared_ptr<Connection> start_live_session(beast::tcp_stream stream,
                                               http::request<http::string_body> req, LiveHub& hub,
                                               LiveFilter filter, std::size_t max_message_bytes) {
  auto session = std::make_shared<LiveSession>(std::move(stream), std::move(req), hub,
                                               std::move(filter), max_message_bytes);
  session->run();
  return session;
}

}  // namespace fieldhub::web
