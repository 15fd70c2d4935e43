// SPDX-License-Identifier: Apache-2.0
// HttpServer over real loopback TCP: a Beast HTTP client and Beast WebSocket clients against a
// server running on its own io_context thread.
#include "web/http_server.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdlib>
#include <future>
#include <thread>

#include "web/test_fakes.h"

namespace fieldhub::web {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using testing::make_event;
using testing::make_reading;

std::filesystem::path source_static_dir() {
  const char* src = std::getenv("FIELDHUB_SOURCE_DIR");
  return std::filesystem::path(src != nullptr ? src : FIELDHUB_TEST_SOURCE_DIR) / "src/web/static";
}

// A WebSocket client with deadlines: its own io_context, driven with run_for().
class WsClient {
 public:
  // Connects and upgrades; returns the handshake error (upgrade_declined with the HTTP status
  // in response() when the server refused).
  beast::error_code connect(std::uint16_t port, const std::string& target,
                            const std::string& origin = "") {
    beast::error_code ec;
    if (receive_buffer_ > 0) {
      // Fixed before connecting, so the kernel does not grow it: what waits ahead of a frame
      // is then on the server's side.
      auto& socket = beast::get_lowest_layer(ws_).socket();
      socket.open(tcp::v4(), ec);
      socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer_), ec);
      if (ec) return ec;
    }
    beast::get_lowest_layer(ws_).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                         ec);
    if (ec) return ec;
    ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
      if (!origin.empty()) req.set(http::field::origin, origin);
    }));
    // Async: Beast 1.74's synchronous handshake leaves the response empty when declined.
    bool done = false;
    ws_.async_handshake(response_, "127.0.0.1:" + std::to_string(port), target,
                        [&](beast::error_code hec) {
                          ec = hec;
                          done = true;
                        });
    ioc_.restart();
    ioc_.run_for(5s);
    if (!done) return asio::error::timed_out;
    return ec;
  }

  // The next message, or nullopt on error/close (see error()) or when the deadline passes.
  std::optional<std::string> read(std::chrono::milliseconds timeout = 5s) {
    bool done = false;
    buffer_.clear();
    ws_.async_read(buffer_, [&](beast::error_code ec, std::size_t) {
      error_ = ec;
      done = true;
    });
    ioc_.restart();
    ioc_.run_for(timeout);
    if (!done) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run();
      error_ = asio::error::timed_out;
      return std::nullopt;
    }
    if (error_) return std::nullopt;
    bytes_read_ += buffer_.size();
    return beast::buffers_to_string(buffer_.data());
  }

  // Reads until a frame of the given type (skipping heartbeats and others) or the deadline.
  std::optional<std::string> read_type(std::string_view type,
                                       std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto frame = read(std::max(left, 1ms));
      if (!frame) return std::nullopt;
      simdjson::dom::parser p;
      if (std::string_view(p.parse(*frame)["type"]) == type) return frame;
    }
    return std::nullopt;
  }

  void write(const std::string& text) {
    beast::error_code ec;
    ws_.text(true);
    ws_.write(asio::buffer(text), ec);
  }

  void set_receive_buffer(int bytes) { receive_buffer_ = bytes; }
  std::size_t bytes_read() const { return bytes_read_; }

  beast::error_code error() const { return error_; }
  websocket::close_reason reason() const { return ws_.reason(); }
  const websocket::response_type& response() const { return response_; }

 private:
  asio::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
  int receive_buffer_ = 0;
  std::size_t bytes_read_ = 0;
};

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    const model::Reading r = make_reading("meter-1", "energy", 7.25, clock_.now());
    live_.apply({&r, 1});
    EXPECT_FALSE(server_.start());
    port_ = server_.port();
    EXPECT_NE(port_, 0);
    io_thread_ = std::thread([this] { ioc_.run(); });
  }

  ~HttpServerTest() override {
    on_io([this] { server_.stop(); });
    work_.reset();
    ioc_.stop();
    io_thread_.join();
  }

  // Runs f on the io thread (where the hub and live store live) and waits for it.
  template <typename F>
  void on_io(F f) {
    std::promise<void> done;
    asio::post(ioc_, [&] {
      f();
      done.set_value();
    });
    done.get_future().get();
  }

  http::response<http::string_body> request(
      http::verb verb, const std::string& target, std::string body = "",
      std::vector<std::pair<std::string, std::string>> headers = {}) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  }

  // Set before server_ copies it: an ephemeral port, never the default 8080 (parallel tests).
  static config::Config server_config() {
    config::Config c = testing::make_config();
    c.server.listen_address = "127.0.0.1";
    c.server.listen_port = 0;
    c.server.static_dir = source_static_dir();
    return c;
  }

  config::Config config_ = server_config();
  testing::FakeLiveStore live_;
  testing::FakeHistoryStore history_;
  common::Metrics metrics_;
  common::SystemClock clock_;
  Api api_{{config_, live_, history_, metrics_, clock_, {}}};
  LiveHub hub_{config_, live_, metrics_, clock_, LiveHubLimits{.max_event_backlog = 500}};
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  HttpServer server_{ioc_.get_executor(), config_.server, api_, hub_};
  std::uint16_t port_ = 0;
  std::thread io_thread_;
  simdjson::dom::parser parser_;
};

TEST_F(HttpServerTest, ServesApiEndpointsOverTcp) {
  auto res = request(http::verb::get, "/api/v1/devices");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(parser_.parse(res.body()).get_array().size(), 3u);

  res = request(http::verb::get, "/api/v1/devices/meter-1");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_DOUBLE_EQ(double(parser_.parse(res.body())["metrics"]["energy"]["value"]), 7.25);

  // Answered from the Api's query thread and posted back to the connection.
  history_.readings_data = {make_reading("meter-1", "energy", 1.0, clock_.now() - 10min)};
  res = request(http::verb::get, "/api/v1/devices/meter-1/history?metric=energy");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(parser_.parse(res.body())["points"].get_array().size(), 1u);

  res = request(http::verb::get, "/api/v1/devices/nope");
  EXPECT_EQ(res.result_int(), 404);
  res = request(http::verb::delete_, "/api/v1/devices");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET");

  res = request(http::verb::get, "/healthz");
  EXPECT_EQ(res.result_int(), 200);
  res = request(http::verb::get, "/metrics");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res.body().find(
                R"(fieldhub_http_requests_total{route="/api/v1/devices/{id}",status="404"} 1)"),
            std::string::npos);
}

TEST_F(HttpServerTest, ServesTheFirstPage) {
  auto res = request(http::verb::get, "/");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(res.body().find("app.js"), std::string::npos);
  EXPECT_EQ(request(http::verb::get, "/app.js")[http::field::content_type],
            "text/javascript; charset=utf-8");
  EXPECT_EQ(request(http::verb::get, "/style.css")[http::field::content_type],
            "text/css; charset=utf-8");
  EXPECT_EQ(request(http::verb::get, "/../CMakeLists.txt").result_int(), 404);
  EXPECT_EQ(request(http::verb::get, "/%2e%2e/CMakeLists.txt").result_int(), 404);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  beast::flat_buffer buffer;
  for (const char* target : {"/healthz", "/api/v1/devices", "/api/v1/events"}) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200) << target;
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(HttpServerTest, RefusesOversizedBodyAndHeader) {
  auto res = request(http::verb::post, "/api/v1/devices", std::string(65 * 1024, 'x'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
  res = request(http::verb::get, "/api/v1/devices", "", {{"X-Big", std::string(9000, 'h')}});
  EXPECT_EQ(res.result_int(), 431);
}

TEST_F(HttpServerTest, StartReportsAPortInUse) {
  config::ServerConfig taken = config_.server;
  taken.listen_port = port_;
  HttpServer second(ioc_.get_executor(), taken, api_, hub_);
  const std::error_code ec = second.start();
  EXPECT_TRUE(ec);
  EXPECT_EQ(ec, std::errc::address_in_use) << ec.message();
}

TEST_F(HttpServerTest, LiveFeedSendsHelloSnapshotThenEventsAndReadings) {
  WsClient ws;
  ASSERT_FALSE(ws.connect(port_, "/api/v1/live"));
  auto hello = ws.read();
  ASSERT_TRUE(hello);
  EXPECT_EQ(std::string_view(parser_.parse(*hello)["type"]), "hello");
  auto snapshot = ws.read();
  ASSERT_TRUE(snapshot);
  auto snap = parser_.parse(*snapshot);
  EXPECT_EQ(std::string_view(snap["type"]), "snapshot");
  EXPECT_DOUBLE_EQ(double(snap["devices"].at(0)["metrics"]["energy"]["value"]), 7.25);

  on_io([&] {
    hub_.publish_event(make_event("call-7", "code_blue", model::Priority::high, clock_.now()));
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 8.5, clock_.now())});
  });
  auto event = ws.read_type("event");
  ASSERT_TRUE(event);
  EXPECT_EQ(std::string_view(parser_.parse(*event)["event_type"]), "code_blue");
  EXPECT_EQ(std::string_view(parser_.parse(*event)["priority"]), "high");
  auto readings = ws.read_type("readings");
  ASSERT_TRUE(readings);
  EXPECT_DOUBLE_EQ(double(parser_.parse(*readings)["items"].at(0)["value"]), 8.5);
  // The server's watchdog frame arrives about every second.
  EXPECT_TRUE(ws.read_type("heartbeat", 3s));
}

TEST_F(HttpServerTest, LiveFeedFiltersBySite) {
  WsClient ws;
  ASSERT_FALSE(ws.connect(port_, "/api/v1/live?site=south"));
  ASSERT_TRUE(ws.read_type("snapshot"));
  on_io([&] {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1, clock_.now()),
                                      make_reading("meter-2", "energy", 2, clock_.now())});
  });
  auto readings = ws.read_type("readings");
  ASSERT_TRUE(readings);
  auto items = parser_.parse(*readings)["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-2");
}

// The alarm console's feed: no telemetry until it subscribes to some, on the same socket.
TEST_F(HttpServerTest, LiveFeedSubscriptionsOverTheSocket) {
  WsClient ws;
  ASSERT_FALSE(ws.connect(port_, "/api/v1/live?telemetry=off"));
  auto hello = ws.read();
  ASSERT_TRUE(hello);
  EXPECT_FALSE(bool(parser_.parse(*hello)["filter"]["telemetry"]));
  on_io([&] {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1, clock_.now())});
    hub_.publish_event(make_event("call-7", "call", model::Priority::medium, clock_.now()));
  });
  // Until two heartbeats have passed (the telemetry tick is 10 ms): events, never readings.
  int heartbeats = 0;
  bool event = false;
  while (heartbeats < 2) {
    auto frame = ws.read(3s);
    ASSERT_TRUE(frame);
    const std::string type(std::string_view(parser_.parse(*frame)["type"]));
    ASSERT_NE(type, "readings");
    ASSERT_NE(type, "snapshot");
    heartbeats += type == "heartbeat" ? 1 : 0;
    event = event || type == "event";
  }
  EXPECT_TRUE(event);

  ws.write(R"({"type":"subscribe","devices":["meter-2"]})");
  ASSERT_TRUE(ws.read_type("subscribed"));
  auto snapshot = ws.read_type("snapshot");
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(parser_.parse(*snapshot)["devices"].get_array().size(), 0u);  // never heard yet
  on_io([&] {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1, clock_.now()),
                                      make_reading("meter-2", "energy", 2, clock_.now())});
  });
  auto readings = ws.read_type("readings");
  ASSERT_TRUE(readings);
  auto items = parser_.parse(*readings)["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-2");

  ws.write("{\"type\":\"subscribe\",\"telemetry\":\"yes\"}");
  auto error = ws.read_type("error");
  ASSERT_TRUE(error);
  EXPECT_EQ(std::string_view(parser_.parse(*error)["message"]),
            "'telemetry' must be true or false");
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_client_errors_total"), 1u);

  WsClient bad;
  EXPECT_EQ(bad.connect(port_, "/api/v1/live?telemetry=maybe"), websocket::error::upgrade_declined);
  EXPECT_EQ(bad.response().result_int(), 400);
}

TEST_F(HttpServerTest, LiveFeedRefusesAForeignOriginBeforeUpgrade) {
  WsClient evil;
  EXPECT_EQ(evil.connect(port_, "/api/v1/live", "http://evil.example"),
            websocket::error::upgrade_declined);
  EXPECT_EQ(evil.response().result_int(), 403);
  WsClient same;
  EXPECT_FALSE(same.connect(port_, "/api/v1/live", "http://127.0.0.1:" + std::to_string(port_)));
  EXPECT_EQ(metrics_.counter_value("fieldhub_http_requests_total",
                                   {{"route", "/api/v1/live"}, {"status", "403"}}),
            1u);
  // A plain GET is told to upgrade.
  EXPECT_EQ(request(http::verb::get, "/api/v1/live").result_int(), 426);
}

TEST_F(HttpServerTest, LiveFeedClosesWith1009OnAnOversizedMessage) {
  WsClient ws;
  ASSERT_FALSE(ws.connect(port_, "/api/v1/live"));
  ws.write(std::string(HttpServer::max_ws_message_bytes + 1, 'x'));
  while (ws.read()) {
  }
  EXPECT_EQ(ws.error(), websocket::error::closed) << ws.error().message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::too_big);
}

TEST_F(HttpServerTest, AClientThatNeverReadsDoesNotDelayAnother) {
  WsClient stuck;
  ASSERT_FALSE(stuck.connect(port_, "/api/v1/live"));  // and never reads again
  WsClient fast;
  ASSERT_FALSE(fast.connect(port_, "/api/v1/live"));
  ASSERT_TRUE(fast.read_type("snapshot"));

  // 4 KiB of attributes per event: a few MB fill the stuck client's socket buffers, after which
  // its backlog grows in the hub until the cap closes it.
  const std::string attributes = R"({"note":")" + std::string(4096, 'n') + R"("})";
  constexpr int rounds = 200;
  constexpr int per_round = 25;
  std::chrono::milliseconds worst{0};
  int received = 0;
  for (int round = 0; round < rounds; ++round) {
    const auto published = std::chrono::steady_clock::now();
    on_io([&] {
      for (int i = 0; i < per_round; ++i) {
        auto e = make_event("call-7", "call", model::Priority::high, clock_.now());
        e.attributes_json = attributes;
        hub_.publish_event(e);
        hub_.publish_readings(std::vector{make_reading("meter-1", "energy", i, clock_.now())});
      }
    });
    for (int i = 0; i < per_round; ++i) {
      ASSERT_TRUE(fast.read_type("event", 2s))
          << "round " << round << ": " << fast.error().message();
      ++received;
    }
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - published));
  }
  EXPECT_EQ(received, rounds * per_round);
  EXPECT_LT(worst, 1000ms);
  std::printf("fast client: %d events, worst round latency %lld ms\n", received,
              static_cast<long long>(worst.count()));
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_sessions_closed_slow_total"), 1u);
}

// A dashboard that falls behind (a busy browser) must not find an urgent event queued behind
// megabytes of telemetry in the server's socket buffer: the live session's send buffer is
// bounded, so the hub holds the rest and coalesces it, and the event goes ahead of that.
TEST_F(HttpServerTest, AnEventReachesALaggingClientBehindLittleTelemetry) {
  WsClient lagging;
  lagging.set_receive_buffer(64 * 1024);
  ASSERT_FALSE(lagging.connect(port_, "/api/v1/live"));
  ASSERT_TRUE(lagging.read_type("snapshot"));
  // 500 distinct metrics, ~100 bytes each: a ~50 KB telemetry frame per tick.
  const auto publish_round = [&](int round) {
    on_io([&] {
      std::vector<model::Reading> batch;
      for (int k = 0; k < 500; ++k) {
        batch.push_back(make_reading("meter-1", std::string("m").append(std::to_string(k)), round,
                                     clock_.now()));
      }
      hub_.publish_readings(batch);
    });
  };
  // The client keeps up for a while (the kernel grows a busy connection's send buffer), then
  // stops reading for half a second while the telemetry goes on.
  for (int round = 0; round < 100; ++round) {
    publish_round(round);
    ASSERT_TRUE(lagging.read_type("readings", 2s));
    std::this_thread::sleep_for(2ms);
  }
  for (int round = 100; round < 150; ++round) {
    publish_round(round);
    std::this_thread::sleep_for(10ms);
  }
  on_io([&] {
    hub_.publish_event(make_event("bed-12", "code_blue", model::Priority::high, clock_.now()));
  });
  const std::size_t before = lagging.bytes_read();
  ASSERT_TRUE(lagging.read_type("event", 5s));
  const std::size_t ahead = lagging.bytes_read() - before;
  std::printf("telemetry read ahead of the event: %zu bytes\n", ahead);
  // The client's 128 KiB (64 KiB doubled by the kernel), the server's bounded send buffer and
  // the frame being written; unbounded, the kernel lets the server queue megabytes.
  EXPECT_LT(ahead, 640u * 1024u);
  EXPECT_GT(metrics_.counter_value("fieldhub_live_readings_coalesced_total"), 0u)
      << "the hub, not the kernel, held the backlog";
}

}  // namespace
}  // namespace fieldhub::web
