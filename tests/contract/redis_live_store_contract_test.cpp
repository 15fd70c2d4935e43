// SPDX-License-Identifier: Apache-2.0
// The LiveStore contract against RedisLiveStore on a real redis-server (one per test binary,
// flushed before each test). What the contract checks right after apply() returns is answered
// by the store's in-process mirror; Redis itself is checked in
// src/stores/redis/redis_live_store_test.cpp.
#include <boost/asio/io_context.hpp>
#include <memory>

#include "common/metrics.h"
#include "live_store_contract.h"
#include "stores/redis/redis_connection.h"
#include "stores/redis/redis_live_store.h"
#include "support/redis_server.h"

namespace fieldhub::contract {
namespace {

struct SharedRedis {
  std::unique_ptr<testing::RedisServer> server;
  boost::asio::io_context io;  // never run: no other instance publishes here
  common::Metrics metrics;
};

SharedRedis& shared() {
  static SharedRedis s;
  return s;
}

std::unique_ptr<stores::LiveStore> make_redis_store() {
  if (!testing::RedisServer::available()) return nullptr;
  SharedRedis& s = shared();
  if (!s.server) {
    s.server = std::make_unique<testing::RedisServer>();
    s.server->start();
  }
  auto conn = redis::Connection::connect(*redis::parse_url(s.server->url()),
                                         std::chrono::seconds{1}, std::chrono::seconds{1});
  if (!conn.ok() || !conn.value().command({"FLUSHALL"}).ok()) return nullptr;
  auto store = stores::RedisLiveStore::open(s.server->url(), {}, s.io.get_executor(), s.metrics);
  if (!store.ok()) return nullptr;
  return std::move(store.value());
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(redis, LiveStoreContract,
                         ::testing::Values(LiveStoreImpl{"redis", make_redis_store}),
                         live_store_name);

}  // namespace fieldhub::contract
