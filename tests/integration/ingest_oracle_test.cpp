// SPDX-License-Identifier: Apache-2.0
// The counting oracle of RELIABILITY.md, end to end through real parts: numbered QoS 1 messages,
// malformed ones among them, published through a real Mosquitto into the real fieldhub binary.
// published = stored + rejected (by reason) + deduplicated; 0 missing, 0 duplicates — also across
// a broker restart and a SIGKILL of fieldhub mid-stream.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "fieldhub_process.h"
#include "oracle.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

// Each test runs on the embedded stores (in-process live state, SQLite) and on the production
// ones (Redis, PostgreSQL), all started for real on loopback.
enum class Stores { embedded, production };

class IngestOracle : public ::testing::TestWithParam<Stores> {
 protected:
  void SetUp() override {
    broker.start();
    if (GetParam() == Stores::production) {
      if (!RedisServer::available() || !PostgresServer::available()) {
        GTEST_SKIP() << "redis-server or PostgreSQL not installed";
      }
      redis = std::make_unique<RedisServer>();
      redis->start();
      postgres = std::make_unique<PostgresServer>();
      postgres->start();
    }
  }

  FieldhubProcess::Options options() {
    FieldhubProcess::Options o{.broker_port = broker.port(), .devices = oracle_devices};
    if (GetParam() == Stores::production) {
      o.live_url = redis->url();
      o.history_url = postgres->create_database();
    }
    return o;
  }

  MosquittoServer broker;
  std::unique_ptr<RedisServer> redis;
  std::unique_ptr<PostgresServer> postgres;
};

TEST_P(IngestOracle, EveryPublishedMessageIsStoredRejectedOrDeduplicated) {
  FieldhubProcess fh(options());
  fh.start();
  const Plan plan = make_plan(1, 4000);
  const auto result = publish_all(broker.port(), plan.messages, 60s);
  ASSERT_EQ(result.acknowledged, plan.messages.size());

  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = fh.metrics();
        return metric(m, "fieldhub_messages_received_total") >= plan.messages.size() &&
               metric(m, "fieldhub_readings_stored_total") +
                       metric(m, "fieldhub_readings_duplicate_total") >=
                   static_cast<double>(plan.valid + plan.duplicates);
      },
      30s, 100ms))
      << fh.log();

  const auto m = fh.metrics();
  const Reconciliation r = reconcile(plan, fh);
  std::size_t rejected = 0;
  for (const auto& [reason, sent] : plan.rejected) {
    const double counted = metric(m, "fieldhub_messages_rejected_total{reason=\"" + reason + "\"}");
    EXPECT_EQ(counted, static_cast<double>(sent)) << "reason " << reason;
    rejected += static_cast<std::size_t>(counted);
  }
  const auto deduplicated =
      static_cast<std::size_t>(metric(m, "fieldhub_readings_duplicate_total") +
                               metric(m, "fieldhub_messages_deduplicated_total"));
  std::cout << "oracle: published " << plan.messages.size() << " = stored " << r.stored
            << " + rejected " << rejected << " + deduplicated " << deduplicated << "; missing "
            << r.missing << ", duplicates " << r.duplicated << "\n";
  EXPECT_EQ(plan.messages.size(), r.stored + rejected + deduplicated);
  EXPECT_EQ(r.stored, plan.valid);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
  EXPECT_EQ(deduplicated, plan.duplicates);

  // Every refused message is kept as a dead letter with its reason.
  const auto dl = fh.get("/api/v1/dead-letters?limit=1000");
  ASSERT_TRUE(dl && dl->first == 200);
  for (const auto& [reason, sent] : plan.rejected) {
    EXPECT_NE(dl->second.find("\"" + reason + "\""), std::string::npos) << reason;
  }
}

TEST_P(IngestOracle, BrokerRestartMidStreamLosesNothing) {
  FieldhubProcess fh(options());
  fh.start();
  const Plan plan = make_plan(100000, 6000);
  std::atomic<bool> restarted{false};
  std::thread restarter;
  const auto result = publish_all(broker.port(), plan.messages, 90s, 200, [&](std::size_t acked) {
    if (acked == 2000 && !restarted.exchange(true)) {
      restarter = std::thread([&] { broker.restart(); });
    }
  });
  if (restarter.joinable()) restarter.join();
  ASSERT_TRUE(restarted);
  ASSERT_EQ(result.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_all_stored(fh, plan, 60s)) << fh.log();
  ASSERT_TRUE(wait_until([&] { return reconcile(plan, fh).missing == 0; }, 30s, 200ms));
  const Reconciliation r = reconcile(plan, fh);
  const auto m = fh.metrics();
  std::cout << "broker restart: stored " << r.stored << " of " << plan.valid << ", missing "
            << r.missing << ", duplicates " << r.duplicated << ", fieldhub connects "
            << metric(m, "fieldhub_mqtt_connects_total{client=\"fieldhub-test\"}") << "\n";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
  EXPECT_GE(metric(m, "fieldhub_mqtt_connects_total{client=\"fieldhub-test\"}"), 2.0);
}

TEST_P(IngestOracle, SigkillMidStreamLosesNoAcknowledgedMessage) {
  FieldhubProcess fh(options());
  fh.start();
  const Plan plan = make_plan(200000, 6000);
  std::atomic<bool> killed{false};
  std::thread killer;
  const auto result = publish_all(broker.port(), plan.messages, 90s, 200, [&](std::size_t acked) {
    if (acked == 2500 && !killed.exchange(true)) {
      killer = std::thread([&] {
        fh.kill();
        fh.start();
      });
    }
  });
  if (killer.joinable()) killer.join();
  ASSERT_TRUE(killed);
  ASSERT_EQ(result.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_until([&] { return reconcile(plan, fh).missing == 0; }, 60s, 250ms)) << fh.log();
  const Reconciliation r = reconcile(plan, fh);
  std::cout << "SIGKILL: stored " << r.stored << " of " << plan.valid << ", missing " << r.missing
            << ", duplicates " << r.duplicated << "\n";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
}

std::string stores_name(const ::testing::TestParamInfo<Stores>& p) {
  return p.param == Stores::embedded ? "embedded" : "production";
}

INSTANTIATE_TEST_SUITE_P(Stores, IngestOracle,
                         ::testing::Values(Stores::embedded, Stores::production), stores_name);

}  // namespace
}  // namespace fieldhub::testing
