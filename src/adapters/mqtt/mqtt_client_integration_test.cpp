// SPDX-License-Identifier: Apache-2.0
// The MQTT client against the real Mosquitto (and Debian's mosquitto_pub/mosquitto_sub for
// interop). Each test starts its own broker on a random loopback port with persistence on.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "adapters/mqtt/mqtt_client.h"
#include "support/test_support.h"

namespace fieldhub::mqtt {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

struct Received {
  std::string topic;
  std::string payload;
  std::uint8_t qos;
  bool dup;
  std::uint16_t packet_id;
  std::uint64_t generation;
};

// Records what a Client reports, for assertions after the io_context ran.
struct Recorder {
  std::vector<Received> messages;
  std::vector<LinkStatus> links;
  int connected_events() const {
    int n = 0;
    for (const auto& l : links) n += l.event == LinkEvent::connected;
    return n;
  }
  void attach(Client& c) {
    c.on_message([this](const InboundMessage& m) {
      messages.push_back(
          {std::string(m.topic), std::string(m.payload), m.qos, m.dup, m.packet_id, m.generation});
    });
    c.on_link([this](const LinkStatus& s) { links.push_back(s); });
  }
  std::size_t count_payload(std::string_view payload) const {
    std::size_t n = 0;
    for (const auto& m : messages) n += m.payload == payload;
    return n;
  }
};

class MqttClientIntegration : public ::testing::Test {
 protected:
  void SetUp() override { broker.start(); }

  ClientOptions options(std::string client_id) {
    ClientOptions o;
    o.port = broker.port();
    o.client_id = std::move(client_id);
    o.keepalive = 5s;
    return o;
  }

  // Runs the client's executor until `condition` holds or `deadline` passes.
  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto end = SteadyClock::now() + deadline;
    while (!condition()) {
      if (SteadyClock::now() >= end) return false;
      io.restart();
      if (io.run_for(5ms) == 0) io.run_for(5ms);
    }
    return true;
  }

  std::uint64_t counter(std::string_view name, const std::string& client,
                        const std::string& reason = "") {
    common::Labels labels{{"client", client}};
    if (!reason.empty()) labels.emplace_back("reason", reason);
    return metrics.counter_value(name, labels);
  }

  asio::io_context io;
  common::Metrics metrics;
  common::SystemClock clock;
  fieldhub::testing::MosquittoServer broker;
};

TEST_F(MqttClientIntegration, ReceivesFromMosquittoPubAtQos0AndQos1) {
  Client sub(io.get_executor(), options("it-sub"), metrics, clock);
  Recorder rec;
  rec.attach(sub);
  sub.set_subscriptions({{"interop/#", 1}});
  sub.start();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 1; }, 5s));
  EXPECT_TRUE(sub.connected());
  EXPECT_EQ(rec.links[0].reason, "");
  EXPECT_EQ(sub.generation(), 1u);

  fieldhub::testing::TempDir dir;
  for (const char* qos : {"1", "0"}) {
    fieldhub::testing::ChildProcess pub(
        {"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t",
         std::string("interop/q") + qos, "-q", qos, "-m", std::string("caf\xc3\xa9 ") + qos},
        dir.path() / "pub.log");
    ASSERT_EQ(pub.wait(10s), 0) << pub.log();
  }
  ASSERT_TRUE(run_until([&] { return rec.messages.size() == 2; }, 5s));
  EXPECT_EQ(rec.messages[0].topic, "interop/q1");
  EXPECT_EQ(rec.messages[0].payload, "caf\xc3\xa9 1");
  EXPECT_EQ(rec.messages[0].qos, 1);
  EXPECT_FALSE(rec.messages[0].dup);
  EXPECT_NE(rec.messages[0].packet_id, 0);
  EXPECT_EQ(rec.messages[1].topic, "interop/q0");
  EXPECT_EQ(rec.messages[1].qos, 0);
  sub.acknowledge(rec.messages[0].packet_id, rec.messages[0].generation);
  EXPECT_EQ(counter("fieldhub_mqtt_messages_received_total", "it-sub"), 2u);
  EXPECT_EQ(counter("fieldhub_mqtt_acks_sent_total", "it-sub"), 1u);
  EXPECT_EQ(counter("fieldhub_mqtt_connects_total", "it-sub"), 1u);
  sub.stop();
  EXPECT_FALSE(sub.connected());
}

TEST_F(MqttClientIntegration, PublishesToMosquittoSub) {
  fieldhub::testing::TempDir dir;
  fieldhub::testing::ChildProcess sub(
      {"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t", "out/#", "-q",
       "1", "-C", "3", "-v", "-i", "interop-sub"},
      dir.path() / "sub.log");
  Client pub(io.get_executor(), options("it-pub"), metrics, clock);
  pub.start();
  // mosquitto_sub subscribes shortly after it starts; publish until it has taken three messages.
  int sent = 0;
  int completed = 0;
  asio::steady_timer tick(io);
  bool publishing = true;
  std::function<void()> send_next = [&] {
    pub.publish("out/n", "msg-" + std::to_string(sent++), 1, false, [&](std::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      ++completed;
    });
    tick.expires_after(50ms);
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (!ec && publishing) send_next();
    });
  };
  send_next();
  ASSERT_TRUE(run_until([&] { return !sub.running(); }, 10s)) << sub.log();
  publishing = false;  // cancel() alone misses a wait that already completed
  tick.cancel();
  const std::string log = sub.log();
  std::printf("mosquitto_sub got:\n%s", log.c_str());
  int lines = 0;
  for (std::size_t pos = 0; (pos = log.find("out/n msg-", pos)) != std::string::npos; ++pos) {
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  ASSERT_TRUE(run_until([&] { return completed == sent; }, 5s));
  EXPECT_EQ(counter("fieldhub_mqtt_published_total", "it-pub"), static_cast<std::uint64_t>(sent));
}

TEST_F(MqttClientIntegration, UnacknowledgedQos1IsRedeliveredWithDupAndAcknowledgedIsNot) {
  Client pub(io.get_executor(), options("redeliver-pub"), metrics, clock);
  pub.start();
  Recorder first;
  {
    Client sub(io.get_executor(), options("redeliver-sub"), metrics, clock);
    first.attach(sub);
    sub.set_subscriptions({{"r/#", 1}});
    sub.start();
    ASSERT_TRUE(run_until([&] { return first.connected_events() == 1; }, 5s));
    EXPECT_FALSE(first.links[0].session_present);
    pub.publish("r/1", "acked", 1);
    pub.publish("r/2", "not-acked", 1);
    ASSERT_TRUE(run_until([&] { return first.messages.size() == 2; }, 5s));
    ASSERT_EQ(first.messages[0].payload, "acked");
    sub.acknowledge(first.messages[0].packet_id, first.messages[0].generation);
    sub.stop();  // the PUBACK goes out before DISCONNECT; "not-acked" stays in the session
    ASSERT_TRUE(run_until(
        [&] { return broker.log().find("Client redeliver-sub disconnected") != std::string::npos; },
        5s))
        << broker.log();
  }
  Client again(io.get_executor(), options("redeliver-sub"), metrics, clock);
  Recorder second;
  second.attach(again);
  again.set_subscriptions({{"r/#", 1}});
  again.start();
  ASSERT_TRUE(run_until([&] { return second.connected_events() == 1; }, 5s));
  EXPECT_TRUE(second.links[0].session_present);
  // Anything the session holds comes before a message published now.
  pub.publish("r/marker", "marker", 1);
  ASSERT_TRUE(run_until([&] { return second.count_payload("marker") == 1; }, 5s));
  EXPECT_EQ(second.count_payload("acked"), 0u);
  ASSERT_EQ(second.count_payload("not-acked"), 1u);
  for (const auto& m : second.messages) {
    if (m.payload == "not-acked") {
      EXPECT_TRUE(m.dup);
    }
    if (m.payload == "marker") {
      EXPECT_FALSE(m.dup);
    }
  }
}

TEST_F(MqttClientIntegration, StaleGenerationAckIsDroppedAndTheBrokerRedelivers) {
  auto o = options("stale-sub");
  o.reconnect_min = 100ms;
  Client sub(io.get_executor(), o, metrics, clock);
  Recorder rec;
  rec.attach(sub);
  sub.set_subscriptions({{"s/#", 1}});
  sub.start();
  Client pub(io.get_executor(), options("stale-pub"), metrics, clock);
  pub.start();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 1; }, 5s));
  bool published = false;
  pub.publish("s/1", "x", 1, false, [&](std::error_code ec) { published = !ec; });
  ASSERT_TRUE(run_until([&] { return rec.messages.size() == 1 && published; }, 5s));
  const Received original = rec.messages[0];
  EXPECT_EQ(original.generation, 1u);

  broker.restart();  // clean shutdown: the unacked message is persisted
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 2; }, 5s)) << broker.log();
  EXPECT_EQ(sub.generation(), 2u);
  EXPECT_TRUE(rec.links.back().session_present);
  ASSERT_TRUE(run_until([&] { return rec.count_payload("x") == 2; }, 5s));
  const Received redelivered = rec.messages.back();
  EXPECT_TRUE(redelivered.dup);
  EXPECT_EQ(redelivered.generation, 2u);

  sub.acknowledge(original.packet_id, original.generation);  // stale: connection 1 is gone
  EXPECT_EQ(counter("fieldhub_mqtt_acks_dropped_stale_total", "stale-sub"), 1u);
  EXPECT_EQ(counter("fieldhub_mqtt_acks_sent_total", "stale-sub"), 0u);

  sub.acknowledge(redelivered.packet_id, redelivered.generation);
  EXPECT_EQ(counter("fieldhub_mqtt_acks_sent_total", "stale-sub"), 1u);
  // Our own QoS 1 publish after the PUBACK completes only once the broker has read the PUBACK.
  bool barrier = false;
  sub.publish("s-barrier", "b", 1, false, [&](std::error_code ec) { barrier = !ec; });
  ASSERT_TRUE(run_until([&] { return barrier; }, 5s));

  broker.restart();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 3; }, 5s)) << broker.log();
  pub.publish("s/marker", "marker", 1);
  ASSERT_TRUE(run_until([&] { return rec.count_payload("marker") == 1; }, 5s));
  EXPECT_EQ(rec.count_payload("x"), 2u);  // acknowledged on connection 2: not sent a third time
}

TEST_F(MqttClientIntegration, BrokerRestartMidStreamReconnectsWithinFiveSecondsAndResubscribes) {
  Client sub(io.get_executor(), options("restart-sub"), metrics, clock);  // default backoff
  Recorder rec;
  std::map<int, int> seen;  // message number → deliveries
  int dup_flagged = 0;
  sub.on_message([&](const InboundMessage& m) {
    ++seen[std::stoi(std::string(m.payload))];
    dup_flagged += m.dup;
    sub.acknowledge(m.packet_id, m.generation);
  });
  sub.on_link([&](const LinkStatus& s) { rec.links.push_back(s); });
  sub.set_subscriptions({{"stream/#", 1}});
  sub.start();
  Client pub(io.get_executor(), options("restart-pub"), metrics, clock);
  pub.start();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 1; }, 5s));

  int next = 0;
  int failed = 0;
  asio::steady_timer tick(io);
  bool publishing = true;
  std::function<void()> publish_some = [&] {
    for (int i = 0; i < 5; ++i) {
      pub.publish("stream/m", std::to_string(next++), 1, false,
                  [&](std::error_code ec) { failed += ec ? 1 : 0; });
    }
    tick.expires_after(5ms);
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (!ec && publishing) publish_some();
    });
  };
  publish_some();
  ASSERT_TRUE(run_until([&] { return seen.size() >= 500; }, 10s));

  broker.stop();
  // The client notices and retries with backoff while the broker is down.
  ASSERT_TRUE(run_until(
      [&] {
        return counter("fieldhub_mqtt_connect_failures_total", "restart-sub", "connect_error") >= 2;
      },
      10s));
  broker.start();
  const auto restarted = SteadyClock::now();
  const int first_after_restart = next;
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 2; }, 10s));
  const auto reconnect_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - restarted);
  EXPECT_LE(reconnect_ms, 5s);
  // Resubscription verified by traffic published after the restart.
  ASSERT_TRUE(run_until([&] { return seen.rbegin()->first >= first_after_restart + 100; }, 10s));
  publishing = false;  // cancel() alone misses a wait that already completed
  tick.cancel();
  const int total = next;
  ASSERT_TRUE(run_until([&] { return static_cast<int>(seen.size()) == total; }, 15s))
      << seen.size() << " of " << total;
  int duplicates = 0;
  for (const auto& [n, deliveries] : seen) duplicates += deliveries - 1;
  std::printf(
      "broker restart: published %d, received %zu distinct, missing 0, duplicate deliveries %d "
      "(dup-flagged %d), reconnect %lld ms after the broker was back\n",
      total, seen.size(), duplicates, dup_flagged, static_cast<long long>(reconnect_ms.count()));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(seen.begin()->first, 0);
  EXPECT_EQ(seen.rbegin()->first, total - 1);
  EXPECT_GE(counter("fieldhub_mqtt_disconnects_total", "restart-sub", "eof") +
                counter("fieldhub_mqtt_disconnects_total", "restart-sub", "read_error"),
            1u);
}

TEST_F(MqttClientIntegration, TenThousandQos1MessagesArriveExactlyOnce) {
  constexpr int total = 10'000;
  Client sub(io.get_executor(), options("load-sub"), metrics, clock);
  std::vector<int> deliveries(total, 0);
  int distinct = 0;
  int dup_flagged = 0;
  Recorder rec;
  sub.on_link([&](const LinkStatus& s) { rec.links.push_back(s); });
  sub.on_message([&](const InboundMessage& m) {
    const int n = std::stoi(std::string(m.payload.substr(m.payload.rfind(':') + 1)));
    if (deliveries.at(static_cast<std::size_t>(n))++ == 0) ++distinct;
    dup_flagged += m.dup;
    sub.acknowledge(m.packet_id, m.generation);
  });
  sub.set_subscriptions({{"load/+", 1}});
  sub.start();
  Client pub(io.get_executor(), options("load-pub"), metrics, clock);
  pub.start();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 1 && pub.connected(); }, 5s));

  const auto t0 = SteadyClock::now();
  int acked = 0;
  for (int i = 0; i < total; ++i) {
    pub.publish("load/" + std::to_string(i % 10),
                R"({"device":"m)" + std::to_string(i % 10) + R"(","n":)" + std::to_string(i), 1,
                false, [&](std::error_code ec) { acked += ec ? 0 : 1; });
  }
  ASSERT_TRUE(run_until([&] { return distinct == total && acked == total; }, 60s))
      << distinct << " received, " << acked << " acked";
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  int duplicates = 0;
  for (int d : deliveries) duplicates += d > 1 ? d - 1 : 0;
  std::printf(
      "10k QoS 1: %d published, %d received distinct, missing %d, duplicates %d "
      "(dup-flagged %d), reconnects %d, %.3f s, %.0f msg/s\n",
      total, distinct, total - distinct, duplicates, dup_flagged, rec.connected_events() - 1,
      seconds, total / seconds);
  EXPECT_EQ(duplicates, 0);  // no reconnect happened, so nothing may arrive twice
  EXPECT_EQ(rec.connected_events(), 1);
  EXPECT_EQ(counter("fieldhub_mqtt_published_total", "load-pub"),
            static_cast<std::uint64_t>(total));
  EXPECT_EQ(counter("fieldhub_mqtt_acks_sent_total", "load-sub"),
            static_cast<std::uint64_t>(total));
}

TEST_F(MqttClientIntegration, PausedReadingDeliversNothingUntilResumed) {
  Client sub(io.get_executor(), options("pause-sub"), metrics, clock);
  Recorder rec;
  int received = 0;
  sub.on_message([&](const InboundMessage& m) {
    if (++received == 100) sub.pause_reading();
    sub.acknowledge(m.packet_id, m.generation);
  });
  sub.on_link([&](const LinkStatus& s) { rec.links.push_back(s); });
  sub.set_subscriptions({{"p/#", 1}});
  sub.start();
  Client pub(io.get_executor(), options("pause-pub"), metrics, clock);
  pub.start();
  ASSERT_TRUE(run_until([&] { return rec.connected_events() == 1; }, 5s));
  int done = 0;
  for (int i = 0; i < 1000; ++i)
    pub.publish("p/x", std::to_string(i), 1, false, [&](auto) { ++done; });
  // The broker takes all 1000 from the publisher even though the subscriber stopped reading.
  ASSERT_TRUE(run_until([&] { return done == 1000; }, 10s));
  EXPECT_EQ(received, 100);
  sub.resume_reading();
  ASSERT_TRUE(run_until([&] { return received == 1000; }, 10s));
}

}  // namespace
}  // namespace fieldhub::mqtt
