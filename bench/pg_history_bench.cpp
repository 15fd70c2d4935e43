// SPDX-License-Identifier: Apache-2.0
// Rows/s landed by PostgresHistoryStore::write against the physical limit on the same server:
// psql sending the very same rows with plain binary COPY straight into the same partitioned
// table and indexes, in the same 10k-row transactions.
//
//   pg_history_bench [batches=50]
// It starts its own PostgreSQL 15 (fsync and synchronous_commit on) in a temp dir.
// Load: 1,000 devices x 2 metrics, 5 timestamps per batch = 10,000 readings per write(), each
// device's two values in one envelope (one message), times advancing batch after batch.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "stores/postgres/postgres_history_store.h"
#include "support/postgres_server.h"

namespace {

using namespace std::chrono_literals;
using fieldhub::pipeline::Envelope;
using Clock = std::chrono::steady_clock;

constexpr int devices = 1000;
constexpr int metrics = 2;
constexpr int steps_per_batch = 5;

std::vector<Envelope> make_batch(int index, fieldhub::model::Timestamp start) {
  std::vector<Envelope> batch;
  batch.reserve(devices * steps_per_batch);
  for (int s = 0; s < steps_per_batch; ++s) {
    const auto ts = start + (index * steps_per_batch + s) * 1s;
    for (int d = 0; d < devices; ++d) {
      Envelope e;
      for (int m = 0; m < metrics; ++m) {
        fieldhub::model::Reading r;
        r.device_id = "site-1/meter-" + std::to_string(d);
        r.metric = m == 0 ? "energy" : "power";
        r.value = 1000.0 + d * 0.5 + index + s;
        r.unit = m == 0 ? "kWh" : "W";
        r.source_ts = ts;
        r.received_ts = ts + 12ms;
        r.provenance = {"mqtt", "broker"};
        e.readings.push_back(std::move(r));
      }
      batch.push_back(std::move(e));
    }
  }
  return batch;
}

int run_psql(const std::string& url, const std::filesystem::path& script,
             const std::filesystem::path& log) {
  fieldhub::testing::ChildProcess psql(
      {(fieldhub::testing::PostgresServer::bin_dir() / "psql").string(), "-X", "-q", "-v",
       "ON_ERROR_STOP=1", "-d", url, "-f", script.string()},
      log);
  return psql.wait(std::chrono::minutes{10});
}

}  // namespace

int main(int argc, char** argv) {
  const int batches = argc > 1 ? std::atoi(argv[1]) : 50;
  // On disk, as a deployment would be: fsync costs what it costs.
  fieldhub::testing::PostgresServer server(fieldhub::testing::PostgresStorage::disk);
  server.start();
  const auto database = [&](const std::string& name) {
    server.execute(server.url(), "DROP DATABASE IF EXISTS " + name);
    server.execute(server.url(), "CREATE DATABASE " + name);
    return server.url(name);
  };
  fieldhub::testing::TempDir dir;
  const auto start =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());

  std::vector<std::vector<Envelope>> data;
  for (int b = 0; b < batches; ++b) data.push_back(make_batch(b, start));
  const double rows = double(batches) * devices * metrics * steps_per_batch;

  // The batch files for psql: the same rows, sorted as fieldhub sends them, exported once from
  // the first round's store.
  std::ofstream export_script(dir.path() / "export.sql");
  std::ofstream import_script(dir.path() / "import.sql");
  std::ofstream import_text_script(dir.path() / "import-text.sql");
  const std::int64_t batch_us = steps_per_batch * 1'000'000;
  for (int b = 0; b < batches; ++b) {
    const auto from = fieldhub::model::to_micros(start) + b * batch_us;
    const auto file = (dir.path() / ("batch-" + std::to_string(b) + ".bin")).string();
    export_script << "\\copy (SELECT * FROM readings WHERE ts >= " << from << " AND ts < "
                  << from + batch_us << " ORDER BY series_id, ts) TO '" << file
                  << "' WITH (FORMAT binary)\n";
    import_script << "\\copy readings FROM '" << file << "' WITH (FORMAT binary)\n";
    // The same rows as text, to see what binary COPY buys.
    export_script << "\\copy (SELECT * FROM readings WHERE ts >= " << from << " AND ts < "
                  << from + batch_us << " ORDER BY series_id, ts) TO '" << file << ".txt'\n";
    import_text_script << "\\copy readings FROM '" << file << ".txt'\n";
  }
  export_script.close();
  import_script.close();
  import_text_script.close();

  // The machine is shared and noisy: alternate the two, three rounds, and compare medians.
  constexpr int rounds = 3;
  std::vector<double> store_s, replay_s, copy_s, text_s, commit_ms;
  for (int round = 0; round < rounds; ++round) {
    // 1. fieldhub: write() per batch, into a fresh database.
    const std::string store_url = database("bench_store");
    auto store = fieldhub::stores::PostgresHistoryStore::open(store_url);
    if (!store.ok()) {
      std::cerr << store.status().message() << "\n";
      return 1;
    }
    const auto t0 = Clock::now();
    for (const auto& batch : data) {
      const auto b0 = Clock::now();
      const auto r = store.value()->write(batch);
      commit_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - b0).count());
      if (!r.ok || r.readings_stored != batch.size() * metrics) {
        std::cerr << "write failed: " << r.error << "\n";
        return 1;
      }
    }
    store_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());

    // The same batches again, every row a repeat (a replay after a crash): the staging path.
    const auto r0 = Clock::now();
    for (const auto& batch : data) {
      const auto r = store.value()->write(batch);
      if (!r.ok || r.readings_duplicate != batch.size() * metrics) {
        std::cerr << "replay failed: " << r.error << "\n";
        return 1;
      }
    }
    replay_s.push_back(std::chrono::duration<double>(Clock::now() - r0).count());
    if (round == 0 &&
        run_psql(store_url, dir.path() / "export.sql", dir.path() / "psql.log") != 0) {
      std::cerr << "export failed\n";
      return 1;
    }
    store.value().reset();

    // 2. The limit: psql replays the files into a fresh database with the same schema.
    const std::string copy_url = database("bench_copy");
    {
      // Schema and partitions only: readings has no foreign key, so series rows are not needed.
      auto schema = fieldhub::stores::PostgresHistoryStore::open(copy_url);
      if (!schema.ok()) return 1;
    }
    const auto c0 = Clock::now();
    if (run_psql(copy_url, dir.path() / "import.sql", dir.path() / "psql.log") != 0) {
      std::cerr << "import failed\n";
      return 1;
    }
    copy_s.push_back(std::chrono::duration<double>(Clock::now() - c0).count());

    const std::string text_url = database("bench_text");
    {
      auto schema = fieldhub::stores::PostgresHistoryStore::open(text_url);
      if (!schema.ok()) return 1;
    }
    const auto x0 = Clock::now();
    if (run_psql(text_url, dir.path() / "import-text.sql", dir.path() / "psql.log") != 0) {
      std::cerr << "text import failed\n";
      return 1;
    }
    text_s.push_back(std::chrono::duration<double>(Clock::now() - x0).count());
  }

  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::sort(commit_ms.begin(), commit_ms.end());
  const double p50 = commit_ms[commit_ms.size() / 2];
  const double p99 = commit_ms[std::min(commit_ms.size() - 1, commit_ms.size() * 99 / 100)];
  std::printf("rows: %.0f in %d batches of %d, median of %d rounds\n", rows, batches,
              devices * metrics * steps_per_batch, rounds);
  std::printf(
      "PostgresHistoryStore::write    %9.0f rows/s  (%.2f s; per batch p50 %.1f ms, p99 %.1f ms)\n",
      rows / median(store_s), median(store_s), p50, p99);
  std::printf("replay, all repeats (counted)  %9.0f rows/s  (%.2f s)\n", rows / median(replay_s),
              median(replay_s));
  std::printf("psql binary COPY (the limit)   %9.0f rows/s  (%.2f s)\n", rows / median(copy_s),
              median(copy_s));
  std::printf("psql text COPY, same rows       %9.0f rows/s  (%.2f s)\n", rows / median(text_s),
              median(text_s));
  std::printf("ratio write / limit            %9.1f %%\n",
              100.0 * median(copy_s) / median(store_s));
  return 0;
}
