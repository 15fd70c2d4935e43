// SPDX-License-Identifier: Apache-2.0
// RedisLiveStore: live-state updates per second landed in Redis, against redis-benchmark's
// pipelined HSET on the same server in the same run (the ratio is the figure to compare; the
// machine is shared and noisy). Also the Redis memory per device of the chosen hash layout
// (compact JSON per metric) against one field per attribute.
//
// Usage: redis_live_bench [devices=1000] [metrics=10] [rounds=50]
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "stores/redis/live_codec.h"
#include "stores/redis/redis_connection.h"
#include "stores/redis/redis_live_store.h"
#include "support/redis_server.h"
#include "support/test_support.h"

namespace {

using namespace std::chrono_literals;
namespace model = fieldhub::model;
namespace redis = fieldhub::redis;
namespace stores = fieldhub::stores;
using Clock = std::chrono::steady_clock;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Runs a shell command and returns what it printed.
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// "HSET: 378000.00 requests per second, p50=..." → 378000; 0 if absent.
double requests_per_second(const std::string& out) {
  const auto at = out.rfind("HSET: ");
  if (at == std::string::npos) return 0;
  return std::strtod(out.c_str() + at + 6, nullptr);
}

long long memory_usage(redis::Connection& c, const std::string& key) {
  auto r = c.command({"MEMORY", "USAGE", key, "SAMPLES", "0"});
  return r.ok() ? r.value().integer : -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int devices = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int metrics = argc > 2 ? std::atoi(argv[2]) : 10;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 50;

  fieldhub::testing::RedisServer server;
  server.start();
  auto raw = redis::Connection::connect(*redis::parse_url(server.url()), 2s, 10s);
  if (!raw.ok()) throw std::runtime_error(raw.status().message());
  redis::Connection& conn = raw.value();

  boost::asio::io_context io;
  fieldhub::common::Metrics registry;
  // Room for a whole round: this measures writing, not the queue bound (tested elsewhere).
  stores::RedisOptions options;
  options.max_pending = static_cast<std::size_t>(devices) * (metrics + 1) * 2;
  auto opened = stores::RedisLiveStore::open(server.url(), options, io.get_executor(), registry);
  if (!opened.ok()) throw std::runtime_error(opened.status().message());
  stores::RedisLiveStore& store = *opened.value();

  std::vector<std::string> metric_names;
  for (int m = 0; m < metrics; ++m) metric_names.push_back("metric_" + std::to_string(m));
  std::vector<model::Reading> batch(static_cast<std::size_t>(devices * metrics));
  for (int d = 0; d < devices; ++d) {
    for (int m = 0; m < metrics; ++m) {
      auto& r = batch[static_cast<std::size_t>(d * metrics + m)];
      r.device_id = "meter-" + std::to_string(d);
      r.metric = metric_names[static_cast<std::size_t>(m)];
      r.unit = "kWh";
    }
  }

  auto settle = [&](const std::string& key, const std::string& field, double want) {
    return fieldhub::testing::wait_until(
        [&] {
          io.poll();
          io.restart();
          if (store.backlog() != 0) return false;
          auto r = conn.command({"HGET", key, field});
          if (!r.ok() || r.value().type != redis::Reply::Type::string) return false;
          const auto v = stores::redis_codec::decode_metric(r.value().str);
          return v && v->value == model::Value{want};
        },
        120s, 1ms);
  };
  const std::string last_key = "fieldhub:dev:meter-" + std::to_string(devices - 1);
  const std::string last_field = "m:" + metric_names.back();

  // 1. Drain: every device+metric new to Redis, nothing to coalesce: each update is one field
  // write, the figure to hold against HSET.
  const auto drain_start = Clock::now();
  for (auto& r : batch) {
    r.source_ts = t0;
    r.received_ts = t0 + 5ms;
    r.value = -1.0;
  }
  store.apply(batch);
  bool landed = settle(last_key, last_field, -1.0);
  const double drain_s = seconds(Clock::now() - drain_start);
  const double drain_writes = static_cast<double>(store.writes());

  // 2. Overwrite: rounds offered as fast as apply() takes them; the writer coalesces what it
  // cannot keep up with, so "landed" counts the field writes Redis actually took.
  const auto start = Clock::now();
  Clock::duration apply_time{};
  for (int round = 1; round <= rounds; ++round) {
    const model::Timestamp ts = t0 + std::chrono::seconds{round};
    for (auto& r : batch) {
      r.source_ts = ts;
      r.received_ts = ts + 5ms;
      r.value = 1.0 * round;
    }
    const auto a = Clock::now();
    store.apply(batch);
    apply_time += Clock::now() - a;
    io.poll();
    io.restart();
  }
  landed = settle(last_key, last_field, 1.0 * rounds) && landed;
  const double elapsed = seconds(Clock::now() - start);
  const double offered = static_cast<double>(batch.size()) * rounds;
  const double writes = static_cast<double>(store.writes()) - drain_writes;

  // Server-side cost of the newest-wins script, before redis-benchmark adds its own commands.
  std::string evalsha_stats;
  if (auto info = conn.command({"INFO", "commandstats"}); info.ok()) {
    const auto at = info.value().str.find("cmdstat_evalsha:");
    if (at != std::string::npos) {
      evalsha_stats = info.value().str.substr(at, info.value().str.find('\r', at) - at);
    }
  }

  // redis-benchmark on the same server: 50 clients (its default) and 1 client, pipeline 64.
  const std::string port = std::to_string(server.port());
  const int n = 1'000'000;
  const double hset50 = requests_per_second(
      run("redis-benchmark -h 127.0.0.1 -p " + port + " -P 64 -t hset -q -n " + std::to_string(n)));
  const double hset1 = requests_per_second(run("redis-benchmark -h 127.0.0.1 -p " + port +
                                               " -c 1 -P 64 -t hset -q -n " + std::to_string(n)));

  // Layout: the chosen one (compact JSON per metric) against one field per attribute.
  const long long json_bytes = memory_usage(conn, last_key);
  {
    std::vector<std::string> pairs = {"HSET", "layout:fields", "last_seen", "1795000000005000"};
    for (const auto& m : metric_names) {
      const std::pair<const char*, std::string> fv[] = {{".value", std::to_string(1.0 * rounds)},
                                                        {".unit", "kWh"},
                                                        {".ts", "1795000000000000"},
                                                        {".rts", "1795000000005000"},
                                                        {".q", "good"},
                                                        {".qr", ""}};
      for (const auto& [suffix, value] : fv) {
        pairs.push_back(m + suffix);
        pairs.push_back(value);
      }
    }
    std::vector<std::string_view> argv_view(pairs.begin(), pairs.end());
    conn.command(argv_view);
  }
  const long long field_bytes = memory_usage(conn, "layout:fields");

  std::printf("redis_live_bench: %d devices x %d metrics x %d rounds (redis-server %s)\n", devices,
              metrics, rounds, run("redis-server --version | cut -d' ' -f3 | tr -d '\\n'").c_str());
  std::printf("  drain        %10.0f field writes in %.2f s: %.0f writes/s\n", drain_writes,
              drain_s, drain_writes / drain_s);
  std::printf("  offered      %10.0f updates in %.2f s apply time (%.0f updates/s into apply)\n",
              offered, seconds(apply_time), offered / seconds(apply_time));
  std::printf("  landed       %10.0f field writes in %.2f s: %.0f writes/s%s\n", writes, elapsed,
              writes / elapsed, landed ? "" : " (DID NOT SETTLE)");
  std::printf("  coalesced    %10llu (newer value replaced a queued one), dropped %llu\n",
              static_cast<unsigned long long>(store.coalesced()),
              static_cast<unsigned long long>(store.dropped()));
  std::printf("  redis-benchmark -P 64 -t hset: %.0f req/s (50 clients), %.0f req/s (1 client)\n",
              hset50, hset1);
  if (hset1 > 0 && hset50 > 0) {
    std::printf("  ratio drain/hset: %.2f (vs 50 clients), %.2f (vs 1 client)\n",
                drain_writes / drain_s / hset50, drain_writes / drain_s / hset1);
  }
  std::printf("  server side: %s\n", evalsha_stats.c_str());
  std::printf(
      "  Redis memory per device (%d metrics): compact JSON %lld B, one field per "
      "attribute %lld B\n",
      metrics, json_bytes, field_bytes);
  return landed ? 0 : 1;
}
