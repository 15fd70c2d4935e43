// SPDX-License-Identifier: Apache-2.0
#include "ws_device_client.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <mutex>
#include <thread>

namespace fieldhub::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct WsDeviceClient::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buffer;
  std::deque<std::string> out;
  bool writing = false;
  mutable std::mutex mutex;
  std::vector<std::string> received;
  bool closed = false;
  int close_code = 0;
  std::thread thread;

  void read() {
    ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      std::lock_guard lock(self->mutex);
      if (ec) {
        self->closed = true;
        self->close_code = static_cast<int>(self->ws.reason().code);
        return;
      }
      self->received.push_back(beast::buffers_to_string(self->buffer.data()));
      self->buffer.consume(self->buffer.size());
      self->read();
    });
  }

  void write() {
    if (writing || out.empty()) return;
    writing = true;
    ws.async_write(asio::buffer(out.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->writing = false;
                     self->out.pop_front();
                     if (!ec) self->write();
                   });
  }
};

WsDeviceClient::WsDeviceClient() : impl_(std::make_shared<Impl>()) {}

WsDeviceClient::~WsDeviceClient() {
  impl_->work.reset();
  asio::post(impl_->io, [impl = impl_] {
    beast::error_code ec;
    impl->ws.next_layer().close(ec);
  });
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  } else {
    impl_->io.run();
  }
}

int WsDeviceClient::connect(std::uint16_t port, const std::string& target,
                            const std::string& token) {
  beast::error_code ec;
  impl_->ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return 0;
  impl_->ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }));
  impl_->ws.text(true);
  // Asynchronously: Boost 1.74's synchronous handshake leaves the response empty when the
  // upgrade is declined, and the test wants fieldhub's status and reason.
  websocket::response_type res;
  bool done = false;
  impl_->ws.async_handshake(res, "127.0.0.1:" + std::to_string(port), target,
                            [&](beast::error_code handshake_ec) {
                              ec = handshake_ec;
                              done = true;
                            });
  while (!done && impl_->io.run_one() > 0) {
  }
  if (ec) {
    refusal_ = res.body();
    return static_cast<int>(res.result_int());
  }
  impl_->read();
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
  return 101;
}

void WsDeviceClient::send(std::string text) {
  asio::post(impl_->io, [impl = impl_, text = std::move(text)]() mutable {
    impl->out.push_back(std::move(text));
    impl->write();
  });
}

std::vector<std::string> WsDeviceClient::received() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

bool WsDeviceClient::closed() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->closed;
}

int WsDeviceClient::close_code() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->close_code;
}

void WsDeviceClient::drop() {
  asio::post(impl_->io, [impl = impl_] {
    beast::error_code ec;
    impl->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    impl->ws.next_layer().close(ec);
  });
}

}  // namespace fieldhub::testing
