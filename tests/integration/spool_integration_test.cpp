// SPDX-License-Identifier: Apache-2.0
// The durable spool in front of history (issue 4, point 4) through real parts: a real Mosquitto,
// a real PostgreSQL as history, the real fieldhub binary. While PostgreSQL is frozen every message
// is still acknowledged (fieldhub takes them all, past the broker's inflight window, so it must
// have sent their PUBACKs) and nothing is lost once it thaws; a SIGKILL mid-append restarts ready
// within 5 s with a clean oracle.
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

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr int device_count = 10;

std::int64_t base_ms() {
  static const std::int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch() - 1h)
                                       .count();
  return base;
}

// Message seq: device seq % 10, its own timestamp, the value seq.
std::vector<Message> numbered(std::int64_t first, std::int64_t count) {
  std::vector<Message> out;
  for (std::int64_t seq = first; seq < first + count; ++seq) {
    out.push_back({"fieldhub/lab/dev-" + std::to_string(seq % device_count) + "/telemetry",
                   R"({"ts":)" + std::to_string(base_ms() + seq) + R"(,"values":{"seq":)" +
                       std::to_string(seq) + "}}"});
  }
  return out;
}

double metric(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? 0.0 : it->second;
}

struct Reconciliation {
  std::size_t stored = 0;
  std::size_t missing = 0;
  std::size_t duplicated = 0;
};

// Reads every stored seq back through the history API and compares with [first, first+count).
Reconciliation reconcile(const FieldhubProcess& fh, std::int64_t first, std::int64_t count) {
  std::multiset<std::int64_t> got;
  simdjson::dom::parser parser;
  const std::string from = model::format_rfc3339(model::from_micros((base_ms() - 1000) * 1000));
  const std::string to = model::format_rfc3339(model::from_micros((base_ms() + 3'600'000) * 1000));
  for (int d = 0; d < device_count; ++d) {
    const auto r = fh.get("/api/v1/devices/dev-" + std::to_string(d) +
                          "/history?metric=seq&from=" + from + "&to=" + to + "&limit=100000");
    if (!r || r->first != 200) throw std::runtime_error("history query failed");
    auto doc = parser.parse(r->second);
    for (auto point : doc["points"].get_array()) {
      got.insert(static_cast<std::int64_t>(double(point["value"])));
    }
  }
  Reconciliation rec;
  rec.stored = got.size();
  for (std::int64_t seq = first; seq < first + count; ++seq) {
    const auto n = got.count(seq);
    if (n == 0) ++rec.missing;
    if (n > 1) rec.duplicated += n - 1;
  }
  return rec;
}

class SpoolIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::available()) GTEST_SKIP() << "PostgreSQL not installed";
    broker.start();
    postgres = std::make_unique<PostgresServer>();
    postgres->start();
  }

  FieldhubProcess::Options options() {
    // The spool is on by default with PostgreSQL history.
    return {.broker_port = broker.port(),
            .devices = device_count,
            .history_url = postgres->create_database()};
  }

  MosquittoServer broker;
  std::unique_ptr<PostgresServer> postgres;
};

TEST_F(SpoolIntegration, PostgresFrozenEveryMessageIsAcknowledgedAndNothingLost) {
  FieldhubProcess::Options o = options();
  // A memory window smaller than the backlog: history drains most of it from the files.
  o.extra_config = "[pipeline]\nqueue_capacity = 4000\n";
  FieldhubProcess fh(o);
  fh.start();
  constexpr std::int64_t count = 20000;
  const auto messages = numbered(1, count);
  postgres->freeze();
  const auto ingest_start = steady::now();
  const auto published = publish_all(broker.port(), messages, 60s);
  ASSERT_EQ(published.acknowledged, messages.size());
  // The broker lets at most 1000 unacknowledged messages be in flight to fieldhub: fieldhub
  // receiving all of them means it acknowledged them, and it did so with history frozen.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = fh.metrics();
        return metric(m, "fieldhub_messages_received_total") >= count &&
               metric(m, "fieldhub_spool_synced_records_total") >= count;
      },
      30s, 50ms))
      << fh.log();
  const double ingest_seconds = std::chrono::duration<double>(steady::now() - ingest_start).count();
  auto m = fh.metrics();
  EXPECT_LT(metric(m, "fieldhub_readings_stored_total"), count);  // history really was frozen
  const double backlog = metric(m, "fieldhub_spool_backlog_records");
  const double stored_before = metric(m, "fieldhub_readings_stored_total");

  postgres->thaw();
  const auto drain_start = steady::now();
  ASSERT_TRUE(wait_until(
      [&] { return metric(fh.metrics(), "fieldhub_readings_stored_total") >= count; }, 60s, 20ms))
      << fh.log();
  const double drain_seconds = std::chrono::duration<double>(steady::now() - drain_start).count();
  const Reconciliation r = reconcile(fh, 1, count);
  m = fh.metrics();
  const double ingest_rate = count / ingest_seconds;
  const double drain_rate = (count - stored_before) / drain_seconds;
  std::cout << "postgres frozen: " << count << " messages acknowledged in " << ingest_seconds
            << " s (" << ingest_rate << "/s) with history frozen, spool backlog " << backlog
            << "; after thaw drained in " << drain_seconds << " s (" << drain_rate << "/s, "
            << drain_rate / ingest_rate << "x ingest); stored before thaw " << stored_before
            << ", after " << r.stored << ", missing " << r.missing << ", duplicates "
            << r.duplicated << "\n";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.stored, static_cast<std::size_t>(count));
  EXPECT_EQ(metric(m, "fieldhub_spool_healthy"), 1);
  EXPECT_EQ(metric(m, "fieldhub_spool_dropped_readings_total"), 0);
  EXPECT_GT(backlog, count - 10000);  // at most one batch was in flight when PostgreSQL froze
  EXPECT_GT(metric(m, "fieldhub_spool_replayed_records_total"), 0);  // read back from the files
}

TEST_F(SpoolIntegration, SigkillWhileAppendingRestartsReadyWithin5sAndLosesNothing) {
  FieldhubProcess fh(options());
  fh.start();
  constexpr std::int64_t first = 300000;
  constexpr std::int64_t count = 6000;
  const auto messages = numbered(first, count);
  std::atomic<bool> killed{false};
  std::thread killer;
  double restart_seconds = 0;
  const auto published = publish_all(broker.port(), messages, 90s, 500, [&](std::size_t acked) {
    if (acked == 2500 && !killed.exchange(true)) {
      killer = std::thread([&] {
        fh.kill();
        const auto t = steady::now();
        fh.start();
        restart_seconds = std::chrono::duration<double>(steady::now() - t).count();
      });
    }
  });
  if (killer.joinable()) killer.join();
  ASSERT_TRUE(killed);
  ASSERT_EQ(published.acknowledged, messages.size());
  ASSERT_TRUE(wait_until([&] { return reconcile(fh, first, count).missing == 0; }, 60s, 250ms))
      << fh.log();
  const Reconciliation r = reconcile(fh, first, count);
  const auto m = fh.metrics();
  std::cout << "SIGKILL mid-append: ready again in " << restart_seconds << " s; torn tails "
            << metric(m, "fieldhub_spool_torn_tail_total") << ", replayed "
            << metric(m, "fieldhub_spool_replayed_records_total") << "; stored " << r.stored
            << ", missing " << r.missing << ", duplicates " << r.duplicated << "\n";
  EXPECT_LE(restart_seconds, 5.0);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(metric(m, "fieldhub_spool_corrupt_records_total"), 0);
}

}  // namespace
}  // namespace fieldhub::testing
