// SPDX-License-Identifier: Apache-2.0
// RedisLiveStore against a real redis-server on loopback: values land in the hashes, instances
// see each other through pub/sub, Redis stopped or hung never blocks apply(), state is rebuilt
// after Redis returns, and the Lua script keeps newest-wins across instances.
#include "stores/redis/redis_live_store.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "stores/redis/live_codec.h"
#include "stores/redis/redis_connection.h"
#include "support/redis_server.h"
#include "support/test_support.h"

namespace fieldhub::stores {
namespace {

using namespace std::chrono_literals;
using fieldhub::testing::RedisServer;
using fieldhub::testing::wait_until;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

model::Reading reading(std::string device, std::string metric, model::Timestamp ts, model::Value v,
                       model::Timestamp received) {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = std::move(v);
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = received;
  return r;
}

model::Reading reading(std::string device, std::string metric, model::Timestamp ts,
                       model::Value v) {
  return reading(std::move(device), std::move(metric), ts, std::move(v), ts + 10ms);
}

RedisOptions fast_options() {
  RedisOptions o;
  o.connect_timeout = 500ms;
  o.command_timeout = 500ms;
  o.heartbeat_interval = 200ms;
  o.reconnect_min = 50ms;
  o.reconnect_max = 500ms;
  return o;
}

// One instance: its own io_context (this test's thread is its io thread) and metrics.
struct Instance {
  boost::asio::io_context io;
  common::Metrics metrics;
  std::unique_ptr<RedisLiveStore> store;
  std::vector<model::Reading> remote;  // what the remote-update callback handed over

  Instance(const std::string& url, RedisOptions options = fast_options()) {
    auto r = RedisLiveStore::open(url, std::move(options), io.get_executor(), metrics);
    if (!r.ok()) throw std::runtime_error(r.status().message());
    store = std::move(r.value());
    store->set_remote_update_callback([this](std::span<const model::Reading> rs) {
      remote.insert(remote.end(), rs.begin(), rs.end());
    });
  }
  ~Instance() { store.reset(); }
  void poll() {
    io.poll();
    io.restart();
  }
};

class RedisLiveStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << "redis-server is not installed";
    server_.start();
  }

  redis::Connection raw() {
    auto ep = redis::parse_url(server_.url());
    auto c = redis::Connection::connect(*ep, 1s, 1s);
    if (!c.ok()) throw std::runtime_error(c.status().message());
    return std::move(c.value());
  }

  // The metric as held in Redis, or nullopt.
  std::optional<LatestValue> held(const std::string& device, const std::string& metric) {
    auto ep = redis::parse_url(server_.url());
    auto c = redis::Connection::connect(*ep, 200ms, 500ms);
    if (!c.ok()) return std::nullopt;
    auto r = c.value().command({"HGET", "fieldhub:dev:" + device, "m:" + metric});
    if (!r.ok() || r.value().type != redis::Reply::Type::string) return std::nullopt;
    return redis_codec::decode_metric(r.value().str);
  }

  bool holds(const std::string& device, const std::string& metric, const model::Value& v) {
    const auto h = held(device, metric);
    return h && h->value == v;
  }

  RedisServer server_;
};

TEST_F(RedisLiveStoreTest, ValuesLandInTheDeviceHash) {
  Instance a(server_.url());
  EXPECT_FALSE(a.store->degraded());
  model::Reading r = reading("meter-1", "energy", t0, 12.5);
  r.quality = model::Quality::uncertain;
  r.quality_reason = "estimated";
  const std::vector<model::Reading> rs = {r, reading("meter-1", "power", t0, 3.0, t0 + 20ms)};
  EXPECT_EQ(a.store->apply(rs), 2u);
  ASSERT_TRUE(a.store->get("meter-1"));  // the mirror answers at once

  ASSERT_TRUE(wait_until([&] { return holds("meter-1", "power", 3.0); }, 5s));
  const auto energy = held("meter-1", "energy");
  ASSERT_TRUE(energy);
  EXPECT_EQ(energy->value, model::Value{12.5});
  EXPECT_EQ(energy->unit, "kWh");
  EXPECT_EQ(energy->ts, t0);
  EXPECT_EQ(energy->received_ts, t0 + 10ms);
  EXPECT_EQ(energy->quality, model::Quality::uncertain);
  EXPECT_EQ(energy->quality_reason, "estimated");

  auto c = raw();
  auto seen = c.command({"HGET", "fieldhub:dev:meter-1", "last_seen"});
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen.value().str, std::to_string(model::to_micros(t0 + 20ms)));
  EXPECT_GE(a.metrics.counter_value("fieldhub_redis_writes_total"), 3u);
  EXPECT_NE(a.metrics.render_prometheus().find("fieldhub_redis_up 1"), std::string::npos);
}

TEST_F(RedisLiveStoreTest, TouchLandsAsLastSeenAndNeverMovesBack) {
  Instance a(server_.url());
  a.store->touch("door-3", t0 + 5s);
  a.store->touch("door-3", t0 + 1s);
  auto c = raw();
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = c.command({"HGET", "fieldhub:dev:door-3", "last_seen"});
        return r.ok() && r.value().str == std::to_string(model::to_micros(t0 + 5s));
      },
      5s));
}

TEST_F(RedisLiveStoreTest, ANewInstanceStartsWithTheStateInRedis) {
  {
    Instance a(server_.url());
    const model::Reading r = reading("meter-1", "energy", t0, 7.0);
    a.store->apply({&r, 1});
    ASSERT_TRUE(wait_until([&] { return holds("meter-1", "energy", 7.0); }, 5s));
  }
  Instance b(server_.url());
  const auto d = b.store->get("meter-1");  // loaded inside open()
  ASSERT_TRUE(d);
  EXPECT_EQ(d->metrics.at("energy").value, model::Value{7.0});
  EXPECT_EQ(d->last_seen, t0 + 10ms);
}

TEST_F(RedisLiveStoreTest, ASecondInstanceSeesTheFirstsUpdatesThroughPubSub) {
  Instance a(server_.url());
  Instance b(server_.url());
  auto c = raw();
  // Both subscribed before anything is published.
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = c.command({"PUBSUB", "NUMSUB", "fieldhub:updates"});
        return r.ok() && r.value().elements.size() == 2 && r.value().elements[1].integer == 2;
      },
      5s));

  for (int i = 0; i < 20; ++i) {
    const model::Reading r = reading("meter-1", "energy", t0 + std::chrono::seconds{i}, 1.0 * i);
    a.store->apply({&r, 1});
  }
  ASSERT_TRUE(wait_until(
      [&] {
        b.poll();
        const auto d = b.store->get("meter-1");
        return d && d->metrics.at("energy").value == model::Value{19.0};
      },
      5s));
  ASSERT_FALSE(b.remote.empty());
  EXPECT_EQ(b.remote.back().device_id, "meter-1");
  EXPECT_EQ(b.remote.back().value, model::Value{19.0});
  // Its own frames come back on the channel too; they change nothing.
  a.poll();
  EXPECT_TRUE(a.remote.empty());
}

TEST_F(RedisLiveStoreTest, OutOfOrderAcrossInstancesNeverRegressesRedis) {
  Instance a(server_.url());
  Instance b(server_.url());  // b's io is never run: it does not hear of a's value
  const model::Reading newer = reading("m", "energy", t0 + 10s, 2.0);
  a.store->apply({&newer, 1});
  ASSERT_TRUE(wait_until([&] { return holds("m", "energy", 2.0); }, 5s));

  const auto before = b.store->writes();
  const model::Reading older = reading("m", "energy", t0, 1.0, t0 + 60s);
  EXPECT_EQ(b.store->apply({&older, 1}), 1u);  // news to b's mirror
  // b's round lands: the Lua script takes last_seen (newer) but not the older value.
  ASSERT_TRUE(wait_until([&] { return b.store->writes() > before; }, 5s));
  EXPECT_TRUE(holds("m", "energy", 2.0));
  auto c = raw();
  auto seen = c.command({"HGET", "fieldhub:dev:m", "last_seen"});
  EXPECT_EQ(seen.value().str, std::to_string(model::to_micros(t0 + 60s)));

  // Equal time, later receipt: the correction wins on the server too.
  const model::Reading correction = reading("m", "energy", t0 + 10s, 2.5, t0 + 70s);
  b.store->apply({&correction, 1});
  EXPECT_TRUE(wait_until([&] { return holds("m", "energy", 2.5); }, 5s));
}

TEST_F(RedisLiveStoreTest, ADeviceWithThousandsOfMetricsLandsWhole) {
  Instance a(server_.url());
  std::vector<model::Reading> rs;
  for (int i = 0; i < 2500; ++i)
    rs.push_back(reading("plc-1", "tag_" + std::to_string(i), t0, 1.0 * i));
  EXPECT_EQ(a.store->apply(rs), rs.size());
  auto c = raw();
  ASSERT_TRUE(wait_until(
      [&] {
        auto n = c.command({"HLEN", "fieldhub:dev:plc-1"});
        return n.ok() && n.value().integer == 2501;  // the metrics and last_seen
      },
      5s));
  EXPECT_TRUE(holds("plc-1", "tag_2499", 2499.0));
  EXPECT_EQ(a.metrics.counter_value("fieldhub_redis_errors_total"), 0u);
}

TEST_F(RedisLiveStoreTest, WritesDroppedPastTheBoundWhileUpAreRewrittenFromTheMirror) {
  RedisOptions o = fast_options();
  o.max_pending = 100;
  Instance a(server_.url(), o);
  std::vector<model::Reading> rs;
  for (int i = 0; i < 1000; ++i)
    rs.push_back(reading("meter-" + std::to_string(i), "energy", t0, 1.0 * i));
  a.store->apply(rs);
  EXPECT_GT(a.store->dropped(), 0u);
  auto c = raw();
  ASSERT_TRUE(wait_until(
      [&] {
        a.poll();
        auto n = c.command({"DBSIZE"});
        return n.ok() && n.value().integer == 1000;
      },
      10s));
  EXPECT_TRUE(holds("meter-0", "energy", 0.0));
  EXPECT_TRUE(holds("meter-999", "energy", 999.0));
}

TEST_F(RedisLiveStoreTest, RedisStoppedNeverBlocksAndStateIsRebuiltAfterItReturns) {
  RedisOptions o = fast_options();
  o.max_pending = 100;  // far fewer than the writes below: the rewrite must not need the queue
  Instance a(server_.url(), o);
  const model::Reading before = reading("meter-0", "energy", t0, 1.0);
  a.store->apply({&before, 1});
  ASSERT_TRUE(wait_until([&] { return holds("meter-0", "energy", 1.0); }, 5s));

  server_.kill();
  const auto down_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return a.store->degraded(); }, 5s));
  const auto detected = std::chrono::steady_clock::now() - down_at;

  std::vector<model::Reading> batch;
  for (int i = 0; i < 10'000; ++i) {
    batch.push_back(reading("meter-" + std::to_string(i % 1000), "energy",
                            t0 + 1s + std::chrono::microseconds{i}, 2.0 + i));
  }
  // A blocked apply() would wait for a connect or command timeout (500 ms here) at least once.
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration slowest{};
  for (const auto& r : batch) {
    const auto t = std::chrono::steady_clock::now();
    a.store->apply({&r, 1});
    slowest = std::max(slowest, std::chrono::steady_clock::now() - t);
  }
  const auto took = std::chrono::steady_clock::now() - start;
  const auto ms = [](auto d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  std::printf(
      "redis down: degraded after %lld ms; 10,000 applies took %lld ms (slowest %lld ms); "
      "dropped %llu\n",
      ms(detected), ms(took), ms(slowest), static_cast<unsigned long long>(a.store->dropped()));
  EXPECT_LT(slowest, 250ms) << "apply() must not wait for Redis";
  EXPECT_LT(took, 3s);
  EXPECT_LE(a.store->pending(), 100u);
  EXPECT_GT(a.store->dropped(), 0u);
  EXPECT_EQ(a.metrics.counter_value("fieldhub_redis_errors_total") > 0, true);

  server_.start();  // same port, empty (nothing was saved)
  const auto back_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      [&] {
        a.poll();  // the rewrite's snapshot is taken on the io thread
        return holds("meter-999", "energy", 2.0 + 9999) && holds("meter-0", "energy", 2.0 + 9000);
      },
      30s));
  std::printf("redis back: state rebuilt in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - back_at)
                                         .count()));
  EXPECT_FALSE(a.store->degraded());
  // Every device is back, not only those still queued.
  auto c = raw();
  auto n = c.command({"DBSIZE"});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value().integer, 1000);
}

TEST_F(RedisLiveStoreTest, HungRedisIsDetectedByTimeoutsAndRecovers) {
  Instance a(server_.url());
  server_.pause();
  ASSERT_TRUE(wait_until([&] { return a.store->degraded(); }, 5s));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    const model::Reading r = reading("m", "energy", t0 + std::chrono::seconds{i}, 1.0 * i);
    a.store->apply({&r, 1});
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  server_.resume();
  ASSERT_TRUE(wait_until(
      [&] {
        a.poll();
        return !a.store->degraded() && holds("m", "energy", 999.0);
      },
      15s));
}

TEST_F(RedisLiveStoreTest, OpenWithRedisDownStartsDegradedAndCatchesUp) {
  server_.stop();
  Instance a(server_.url());
  EXPECT_TRUE(a.store->degraded());
  const model::Reading r = reading("m", "energy", t0, 4.0);
  a.store->apply({&r, 1});
  EXPECT_EQ(a.store->get("m")->metrics.at("energy").value, model::Value{4.0});
  server_.start();
  ASSERT_TRUE(wait_until(
      [&] {
        a.poll();
        return holds("m", "energy", 4.0);
      },
      10s));
}

TEST(RedisLiveStoreOpen, MalformedUrlIsAnError) {
  boost::asio::io_context io;
  common::Metrics metrics;
  auto r = RedisLiveStore::open("localhost:6379", {}, io.get_executor(), metrics);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("redis://"), std::string::npos);
}

}  // namespace
}  // namespace fieldhub::stores
