// SPDX-License-Identifier: Apache-2.0
// The counting oracle of RELIABILITY.md, end to end through real parts: numbered QoS 1 messages,
// malformed ones among them, published through a real Mosquitto into the real fieldhub binary.
// published = stored + rejected (by reason) + deduplicated; 0 missing, 0 duplicates — also across
// a broker restart and a SIGKILL of fieldhub mid-stream.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "fieldhub_process.h"
#include "model/time.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

constexpr int device_count = 10;

struct Plan {
  std::vector<Message> messages;
  std::map<std::string, std::set<std::int64_t>> expected;  // device → seq numbers
  std::size_t valid = 0;
  std::size_t duplicates = 0;
  std::map<std::string, std::size_t> rejected;  // reason → messages sent with that defect
};

std::int64_t base_ms() {
  static const std::int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch() - 1h)
                                       .count();
  return base;
}

std::string topic(int device, const std::string& site = "lab") {
  return "fieldhub/" + site + "/dev-" + std::to_string(device) + "/telemetry";
}

Message valid_message(std::int64_t seq) {
  const int device = static_cast<int>(seq % device_count);
  return {topic(device), R"({"ts":)" + std::to_string(base_ms() + seq) + R"(,"values":{"seq":)" +
                             std::to_string(seq) + "}}"};
}

// One message per defect kind; each must be refused whole with exactly this reason.
std::vector<std::pair<std::string, Message>> malformed_kinds(std::int64_t seq) {
  const std::string ts = std::to_string(base_ms() + seq);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 100; ++i) deep += "}";
  return {
      {"invalid_json", {topic(1), R"({"ts":)" + ts + R"(,"values":{"seq":1})"}},
      {"invalid_json", {topic(2), ""}},
      {"invalid_json", {topic(2), R"({"values":{"seq":NaN}})"}},
      {"invalid_utf8", {topic(3), "{\"values\":{\"label\":\"\xff\xfe\"}}"}},
      {"unknown_device",
       {"fieldhub/lab/ghost-" + std::to_string(seq) + "/telemetry", valid_message(seq).payload}},
      {"site_mismatch", {topic(4, "elsewhere"), valid_message(seq).payload}},
      {"unknown_metric", {topic(5), R"({"ts":)" + ts + R"(,"values":{"bogus":1}})"}},
      {"wrong_type", {topic(6), R"({"ts":)" + ts + R"(,"values":{"seq":"seven"}})"}},
      {"too_deep", {topic(7), deep}},
      {"oversized", {topic(8), R"({"values":{"label":")" + std::string(70000, 'x') + "\"}}"}},
      {"nul_in_string", {topic(9), R"({"ts":)" + ts + R"(,"values":{"label":"a\u0000b"}})"}},
      {"invalid_timestamp", {topic(0), R"({"ts":"yesterday","values":{"seq":1}})"}},
      {"timestamp_too_old", {topic(1), R"({"ts":946684800000,"values":{"seq":1}})"}},
  };
}

// N numbered messages; every 40th slot also carries a malformed message and every 97th valid
// message is sent twice (a device retrying).
Plan make_plan(std::int64_t first_seq, std::int64_t count) {
  Plan plan;
  std::size_t k = 0;
  for (std::int64_t seq = first_seq; seq < first_seq + count; ++seq) {
    Message m = valid_message(seq);
    plan.messages.push_back(m);
    plan.expected["dev-" + std::to_string(seq % device_count)].insert(seq);
    ++plan.valid;
    if (seq % 97 == 0) {
      plan.messages.push_back(m);
      ++plan.duplicates;
    }
    if (seq % 40 == 0) {
      auto kinds = malformed_kinds(seq);
      auto& [reason, bad] = kinds[k++ % kinds.size()];
      plan.messages.push_back(bad);
      ++plan.rejected[reason];
    }
  }
  return plan;
}

double metric(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? 0.0 : it->second;
}

// Every stored seq per device, read back through the history API.
std::map<std::string, std::vector<std::int64_t>> stored_points(const FieldhubProcess& fh) {
  std::map<std::string, std::vector<std::int64_t>> out;
  simdjson::dom::parser parser;
  const std::string from = model::format_rfc3339(model::from_micros((base_ms() - 1000) * 1000));
  const std::string to = model::format_rfc3339(model::from_micros((base_ms() + 3'600'000) * 1000));
  for (int d = 0; d < device_count; ++d) {
    const std::string id = "dev-" + std::to_string(d);
    const auto r = fh.get("/api/v1/devices/" + id + "/history?metric=seq&from=" + from +
                          "&to=" + to + "&limit=100000");
    if (!r || r->first != 200) throw std::runtime_error("history query failed for " + id);
    auto doc = parser.parse(r->second);
    for (auto point : doc["points"].get_array()) {
      out[id].push_back(static_cast<std::int64_t>(double(point["value"])));
    }
  }
  return out;
}

struct Reconciliation {
  std::size_t missing = 0;
  std::size_t duplicated = 0;
  std::size_t unexpected = 0;
  std::size_t stored = 0;
};

Reconciliation reconcile(const Plan& plan, const FieldhubProcess& fh) {
  Reconciliation r;
  const auto points = stored_points(fh);
  for (const auto& [device, expected] : plan.expected) {
    std::multiset<std::int64_t> got;
    if (auto it = points.find(device); it != points.end())
      got.insert(it->second.begin(), it->second.end());
    r.stored += got.size();
    for (auto seq : expected) {
      const auto n = got.count(seq);
      if (n == 0) ++r.missing;
      if (n > 1) r.duplicated += n - 1;
    }
    for (auto seq : got) {
      if (!expected.contains(seq)) ++r.unexpected;
    }
  }
  return r;
}

// Waits until fieldhub has committed every valid message of the plan.
bool wait_all_stored(const FieldhubProcess& fh, const Plan& plan,
                     std::chrono::milliseconds deadline) {
  return wait_until(
      [&] {
        const auto m = fh.metrics();
        return metric(m, "fieldhub_readings_stored_total") >= static_cast<double>(plan.valid) ||
               reconcile(plan, fh).missing == 0;
      },
      deadline, 200ms);
}

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
    FieldhubProcess::Options o{.broker_port = broker.port(), .devices = device_count};
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
