// SPDX-License-Identifier: Apache-2.0
// The MQTT client against a scripted fake broker on loopback: what a real broker rarely does on
// demand (malformed packets, QoS 2, refusals, silence, dropping a connection mid-flight).
// The script runs on its own thread with blocking sockets and poll() deadlines; the client runs
// on the test thread's io_context.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "adapters/mqtt/mqtt_client.h"

namespace fieldhub::mqtt {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

struct RawPacket {
  std::uint8_t first = 0;
  std::string body;
  std::uint8_t type() const { return first >> 4; }
};

// One accepted connection, blocking with deadlines.
class FakeConnection {
 public:
  explicit FakeConnection(int fd) : fd_(fd) {}
  ~FakeConnection() { ::close(fd_); }
  FakeConnection(const FakeConnection&) = delete;
  FakeConnection& operator=(const FakeConnection&) = delete;

  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      const auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  // The next packet from the client, or nullopt on timeout or close.
  std::optional<RawPacket> read_packet(std::chrono::milliseconds timeout = 5s) {
    RawPacket p;
    char c;
    if (!read_exact(&c, 1, timeout)) return std::nullopt;
    p.first = static_cast<std::uint8_t>(c);
    std::size_t remaining = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      if (!read_exact(&c, 1, timeout)) return std::nullopt;
      remaining |= static_cast<std::size_t>(c & 0x7F) << shift;
      if ((c & 0x80) == 0) break;
    }
    p.body.resize(remaining);
    if (remaining > 0 && !read_exact(p.body.data(), remaining, timeout)) return std::nullopt;
    return p;
  }

  // True if the client closed the connection within the timeout (any data is discarded).
  bool wait_closed(std::chrono::milliseconds timeout) {
    char buf[4096];
    const auto end = SteadyClock::now() + timeout;
    while (SteadyClock::now() < end) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 20) > 0) {
        if (::recv(fd_, buf, sizeof buf, 0) <= 0) return true;
      }
    }
    return false;
  }

 private:
  bool read_exact(char* out, std::size_t n, std::chrono::milliseconds timeout) {
    const auto end = SteadyClock::now() + timeout;
    std::size_t got = 0;
    while (got < n) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      const auto r = ::recv(fd_, out + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  int fd_;
};

// Listens on 127.0.0.1:<random>; run() starts the script on a thread.
class FakeBroker {
 public:
  FakeBroker() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 8);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FakeBroker() {
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }

  std::unique_ptr<FakeConnection> accept(std::chrono::milliseconds timeout = 10s) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return nullptr;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return nullptr;
    ++accepted;
    return std::make_unique<FakeConnection>(fd);
  }

  // Accepts, expects CONNECT, answers CONNACK with `return_code`.
  std::unique_ptr<FakeConnection> accept_session(std::uint8_t return_code = 0,
                                                 bool session_present = false) {
    auto c = accept();
    if (!c) return nullptr;
    auto connect = c->read_packet();
    if (!connect || connect->type() != 1) return nullptr;
    c->send(bytes({0x20, 2, session_present ? 1 : 0, return_code}));
    return c;
  }

  void run(std::function<void(FakeBroker&)> script) {
    thread_ = std::thread([this, s = std::move(script)] {
      s(*this);
      done = true;
    });
  }

  std::atomic<int> accepted{0};
  std::atomic<bool> done{false};

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

class MqttClientFakeBroker : public ::testing::Test {
 protected:
  ClientOptions options() {
    ClientOptions o;
    o.port = broker.port();
    o.client_id = "fake-client";
    o.keepalive = 30s;
    o.reconnect_min = 50ms;
    o.reconnect_max = 200ms;
    return o;
  }

  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto end = SteadyClock::now() + deadline;
    while (!condition()) {
      if (SteadyClock::now() >= end) return false;
      io.restart();
      if (io.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  std::uint64_t counter(std::string_view name, const std::string& reason = "") {
    common::Labels labels{{"client", "fake-client"}};
    if (!reason.empty()) labels.emplace_back("reason", reason);
    return metrics.counter_value(name, labels);
  }

  FakeBroker broker;
  asio::io_context io;
  common::Metrics metrics;
  common::SystemClock clock;
};

TEST_F(MqttClientFakeBroker, SendsConnectWithOptionsAndNoDelayedSubscribe) {
  std::string connect_body;
  std::string subscribe_body;
  broker.run([&](FakeBroker& b) {
    auto c = b.accept();
    if (!c) return;
    auto p = c->read_packet();
    if (p) connect_body = p->body;
    c->send(bytes({0x20, 2, 0, 0}));
    auto s = c->read_packet();
    if (s && s->first == 0x82) {
      subscribe_body = s->body;
      c->send(bytes({0x90, 3, static_cast<int>(static_cast<unsigned char>(s->body[0])),
                     static_cast<int>(static_cast<unsigned char>(s->body[1])), 1}));
    }
    c->wait_closed(5s);
  });
  auto o = options();
  o.username = "user";
  o.password = "secret";
  o.will = Will{"status/fake", "offline", 1, true};
  Client client(io.get_executor(), o, metrics, clock);
  std::vector<LinkStatus> links;
  client.on_link([&](const LinkStatus& s) { links.push_back(s); });
  client.set_subscriptions({{"a/+", 2}});  // asked for 2, sent as 1
  client.start();
  ASSERT_TRUE(run_until([&] { return !links.empty(); }, 5s));
  EXPECT_EQ(links[0].event, LinkEvent::connected);
  EXPECT_EQ(links[0].reason, "");
  std::string expected_connect;
  ASSERT_TRUE(encode_connect(expected_connect, {.client_id = "fake-client",
                                                .clean_session = false,
                                                .keepalive_seconds = 30,
                                                .username = "user",
                                                .password = "secret",
                                                .will = &*o.will}));
  EXPECT_EQ(connect_body, expected_connect.substr(2));
  EXPECT_EQ(subscribe_body.substr(2), bytes({0, 3, 'a', '/', '+', 1}));
  client.stop();
  ASSERT_TRUE(run_until([&] { return broker.done.load(); }, 5s));
}

TEST_F(MqttClientFakeBroker, ConnackRefusalBecomesTheLinkReasonAndItRetries) {
  broker.run([](FakeBroker& b) {
    for (int i = 0; i < 2; ++i) {
      auto c = b.accept_session(5);
      if (c) c->wait_closed(5s);
    }
  });
  Client client(io.get_executor(), options(), metrics, clock);
  std::vector<LinkStatus> links;
  client.on_link([&](const LinkStatus& s) { links.push_back(s); });
  client.start();
  ASSERT_TRUE(run_until([&] { return links.size() >= 2; }, 5s));
  EXPECT_EQ(links[0].event, LinkEvent::disconnected);
  EXPECT_EQ(links[0].reason, "connection refused: not authorized");
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(counter("fieldhub_mqtt_connects_total"), 0u);
  EXPECT_EQ(counter("fieldhub_mqtt_connect_failures_total", "refused"), 2u);
  client.stop();
}

TEST_F(MqttClientFakeBroker, Qos2PublishIsAProtocolErrorThenMalformedToo) {
  broker.run([](FakeBroker& b) {
    {
      auto c = b.accept_session();
      if (!c) return;
      c->send(bytes({0x34, 5, 0, 1, 't', 0, 1}));  // QoS 2 PUBLISH
      c->wait_closed(5s);
    }
    {
      auto c = b.accept_session();
      if (!c) return;
      c->send(bytes({0x30, 3, 0, 1, 't'}));        // a good QoS 0 message
      c->send(bytes({0x36, 5, 0, 1, 't', 0, 1}));  // QoS 3
      c->wait_closed(5s);
    }
    auto c = b.accept_session();  // the client keeps coming back
  });
  Client client(io.get_executor(), options(), metrics, clock);
  int messages = 0;
  client.on_message([&](const InboundMessage&) { ++messages; });
  client.start();
  ASSERT_TRUE(run_until([&] { return broker.done.load(); }, 10s));
  EXPECT_EQ(counter("fieldhub_mqtt_protocol_errors_total", "qos2_unsupported"), 1u);
  EXPECT_EQ(counter("fieldhub_mqtt_protocol_errors_total", "bad_qos"), 1u);
  EXPECT_EQ(counter("fieldhub_mqtt_disconnects_total", "protocol_error"), 2u);
  EXPECT_EQ(messages, 1);  // the good one before the malformed one was delivered
  EXPECT_EQ(broker.accepted.load(), 3);
  client.stop();
}

TEST_F(MqttClientFakeBroker, OversizedPacketIsRefusedWithoutBufferingIt) {
  broker.run([](FakeBroker& b) {
    auto c = b.accept_session();
    if (!c) return;
    c->send(bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 1, 't'}));  // claims 256 MiB
    c->wait_closed(5s);
  });
  auto o = options();
  o.max_packet_size = 1024;
  Client client(io.get_executor(), o, metrics, clock);
  client.start();
  ASSERT_TRUE(run_until(
      [&] { return counter("fieldhub_mqtt_protocol_errors_total", "packet_too_large") == 1; }, 5s));
  client.stop();
}

TEST_F(MqttClientFakeBroker, SilentBrokerIsDroppedAfterOneAndAHalfKeepalives) {
  std::atomic<int> pings{0};
  broker.run([&](FakeBroker& b) {
    auto c = b.accept_session();
    if (!c) return;
    while (auto p = c->read_packet(3s)) {
      if (p->first == 0xC0) ++pings;  // PINGREQ, never answered
    }
    b.accept_session();  // the reconnect
  });
  auto o = options();
  o.keepalive = 1s;
  Client client(io.get_executor(), o, metrics, clock);
  std::vector<LinkStatus> links;
  client.on_link([&](const LinkStatus& s) { links.push_back(s); });
  const auto t0 = SteadyClock::now();
  client.start();
  ASSERT_TRUE(run_until(
      [&] { return counter("fieldhub_mqtt_disconnects_total", "keepalive_timeout") == 1; }, 5s));
  const auto elapsed = SteadyClock::now() - t0;
  EXPECT_GE(elapsed, 1400ms);
  EXPECT_LE(elapsed, 2500ms);
  EXPECT_GE(pings.load(), 1);
  ASSERT_TRUE(run_until([&] { return broker.done.load(); }, 5s));
  ASSERT_GE(links.size(), 2u);
  EXPECT_EQ(links[1].event, LinkEvent::disconnected);
  client.stop();
}

TEST_F(MqttClientFakeBroker, NoConnackWithinConnectTimeout) {
  broker.run([](FakeBroker& b) {
    auto c = b.accept();
    if (c) c->wait_closed(5s);
  });
  auto o = options();
  o.connect_timeout = 300ms;
  Client client(io.get_executor(), o, metrics, clock);
  client.start();
  ASSERT_TRUE(run_until(
      [&] { return counter("fieldhub_mqtt_connect_failures_total", "connect_timeout") == 1; }, 5s));
  client.stop();
}

TEST_F(MqttClientFakeBroker, UnackedQos1IsResentWithDupAndSameIdAfterReconnect) {
  std::string first_publish;
  std::string resent;
  broker.run([&](FakeBroker& b) {
    {
      auto c = b.accept_session();
      if (!c) return;
      auto p = c->read_packet();
      if (p) first_publish = std::string(1, static_cast<char>(p->first)) + p->body;
    }  // closed without PUBACK
    auto c = b.accept_session(0, true);
    if (!c) return;
    auto p = c->read_packet();
    if (!p) return;
    resent = std::string(1, static_cast<char>(p->first)) + p->body;
    const std::size_t id_at = 2 + 3;  // topic "a/b"
    c->send(bytes({0x40, 2}) + p->body.substr(id_at, 2));
    c->send(bytes({0x40, 2}) + p->body.substr(id_at, 2));  // a duplicate PUBACK is ignored
    c->wait_closed(5s);
  });
  Client client(io.get_executor(), options(), metrics, clock);
  int done_calls = 0;
  std::error_code result = make_error_code(ClientError::stopped);
  client.publish("a/b", "payload", 1, false, [&](std::error_code ec) {
    ++done_calls;
    result = ec;
  });
  client.start();
  ASSERT_TRUE(run_until([&] { return done_calls == 1; }, 5s));
  EXPECT_FALSE(result);
  ASSERT_GE(first_publish.size(), 8u);
  EXPECT_EQ(static_cast<unsigned char>(first_publish[0]), 0x32);  // QoS 1, no DUP
  EXPECT_EQ(static_cast<unsigned char>(resent[0]), 0x3A);         // QoS 1, DUP
  EXPECT_EQ(first_publish.substr(1), resent.substr(1));           // same id, topic, payload
  EXPECT_EQ(counter("fieldhub_mqtt_published_total"), 1u);
  client.stop();
  ASSERT_TRUE(run_until([&] { return broker.done.load(); }, 5s));
  EXPECT_EQ(done_calls, 1);
}

TEST_F(MqttClientFakeBroker, PublishErrorsAreReportedAtOnce) {
  broker.run([](FakeBroker&) {});
  auto o = options();
  o.max_outbound_queue = 2;
  o.max_packet_size = 100;
  Client client(io.get_executor(), o, metrics, clock);  // not started: everything queues
  std::vector<std::error_code> results;
  auto record = [&](std::error_code ec) { results.push_back(ec); };
  client.publish("a/+", "x", 0, false, record);
  client.publish("a", "x", 2, false, record);
  client.publish("a", std::string(200, 'x'), 0, false, record);
  client.publish("a", "1", 1, false, record);
  client.publish("a", "2", 0, false, record);
  client.publish("a", "3", 1, false, record);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0], make_error_code(ClientError::invalid_topic));
  EXPECT_EQ(results[1], make_error_code(ClientError::invalid_qos));
  EXPECT_EQ(results[2], make_error_code(ClientError::too_large));
  EXPECT_EQ(results[3], make_error_code(ClientError::queue_full));
  client.stop();  // the two queued ones fail with `stopped`, in order
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[4], make_error_code(ClientError::stopped));
  EXPECT_EQ(results[5], make_error_code(ClientError::stopped));
  client.publish("a", "4", 0, false, record);
  EXPECT_EQ(results.back(), make_error_code(ClientError::stopped));
}

TEST_F(MqttClientFakeBroker, AckOnAnEndedConnectionIsDropped) {
  broker.run([](FakeBroker& b) {
    {
      auto c = b.accept_session();
      if (!c) return;
      c->send(bytes({0x32, 5, 0, 1, 't', 0, 9}));  // QoS 1, id 9
      c->wait_closed(300ms);
    }
    auto c = b.accept_session(0, true);
    if (!c) return;
    auto p = c->read_packet(2s);  // expect nothing: a stale ack must not be sent here
    if (p) c->send(bytes({0x30, 5, 0, 3, 'b', 'a', 'd'}));
    c->send(bytes({0x30, 6, 0, 4, 'd', 'o', 'n', 'e'}));
    c->wait_closed(5s);
  });
  Client client(io.get_executor(), options(), metrics, clock);
  std::vector<std::pair<std::string, std::uint64_t>> got;
  std::uint16_t id = 0;
  std::uint64_t gen = 0;
  client.on_message([&](const InboundMessage& m) {
    got.emplace_back(std::string(m.topic), m.generation);
    if (m.packet_id) {
      id = m.packet_id;
      gen = m.generation;
    }
  });
  client.start();
  ASSERT_TRUE(run_until([&] { return client.generation() == 2 && client.connected(); }, 5s));
  client.acknowledge(id, gen);
  EXPECT_EQ(counter("fieldhub_mqtt_acks_dropped_stale_total"), 1u);
  EXPECT_EQ(counter("fieldhub_mqtt_acks_sent_total"), 0u);
  ASSERT_TRUE(run_until([&] { return got.size() == 2; }, 5s));
  EXPECT_EQ(got[0], std::make_pair(std::string("t"), std::uint64_t{1}));
  EXPECT_EQ(got[1], std::make_pair(std::string("done"), std::uint64_t{2}));
  client.stop();
}

// A burst of telemetry in one read must not hold the io loop for all of it: after a turn's share
// the rest waits behind whatever else is ready (the urgent session's handler, a dashboard write).
TEST_F(MqttClientFakeBroker, ABurstInOneReadLetsOtherHandlersRunBetweenTurns) {
  constexpr int burst = 300;
  broker.run([](FakeBroker& b) {
    auto c = b.accept_session();
    if (!c) return;
    std::string all;
    for (int i = 0; i < burst; ++i) {
      if (!encode_publish(all, "t/x", std::to_string(i), 0, false, false, 0)) return;
    }
    c->send(all);  // one write: the client reads it at once
    c->wait_closed(5s);
  });
  Client client(io.get_executor(), options(), metrics, clock);
  std::vector<std::string> payloads;
  int handled_when_other_ran = -1;
  client.on_message([&](const InboundMessage& m) {
    payloads.emplace_back(m.payload);
    if (payloads.size() == 1) {
      // Another connection's handler becoming ready while the burst is being handled.
      asio::post(io, [&] { handled_when_other_ran = static_cast<int>(payloads.size()); });
    }
  });
  client.start();
  ASSERT_TRUE(run_until([&] { return payloads.size() == burst; }, 5s));
  for (int i = 0; i < burst; ++i)
    ASSERT_EQ(payloads[static_cast<std::size_t>(i)], std::to_string(i));
  EXPECT_GE(handled_when_other_ran, 1);
  EXPECT_LE(handled_when_other_ran, 64) << "the other handler waited for the whole burst";
  client.stop();
  ASSERT_TRUE(run_until([&] { return broker.done.load(); }, 5s));
}

}  // namespace
}  // namespace fieldhub::mqtt
