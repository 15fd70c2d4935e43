// SPDX-License-Identifier: Apache-2.0
// Store hot paths: SqliteHistoryStore::write of 1k and 10k-reading batches across 1,000 devices
// x 2 metrics (synchronous normal and full), MemoryLiveStore::apply, and the live store's memory
// per device.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "stores/memory/memory_live_store.h"
#include "stores/sqlite/sqlite_history_store.h"

namespace {

using namespace std::chrono_literals;
using fieldhub::model::Reading;
using fieldhub::model::Timestamp;
namespace model = fieldhub::model;
namespace pipeline = fieldhub::pipeline;
namespace stores = fieldhub::stores;

const Timestamp t0 = model::from_micros(1'795'000'000'000'000);
constexpr int devices = 1000;
constexpr int metrics_per_device = 2;

std::string device_name(int d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "site-a/meter-%05d", d);
  return buf;
}

Reading make_reading(int device, const char* metric, Timestamp ts) {
  Reading r;
  r.device_id = device_name(device);
  r.metric = metric;
  r.value = 1234.5 + device;
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts + 20ms;
  r.provenance = {"mqtt", "broker"};
  return r;
}

// Messages of one device each carrying its 2 metrics, as the MQTT adapter produces them. Each
// batch continues where the last one stopped, so every row is new: device after device, and the
// timestamp moves on by 1 s after each pass over all devices.
class BatchMaker {
 public:
  explicit BatchMaker(int readings_per_batch) {
    const int messages = readings_per_batch / metrics_per_device;
    batch_.resize(static_cast<std::size_t>(messages));
    for (auto& e : batch_) {
      e.readings = {make_reading(0, "energy", t0), make_reading(0, "power", t0)};
    }
  }
  const std::vector<pipeline::Envelope>& next() {
    for (auto& e : batch_) {
      const Timestamp ts = t0 + std::chrono::seconds{pass_};
      for (auto& r : e.readings) {
        r.device_id = device_name(device_);
        r.source_ts = ts;
        r.received_ts = ts + 20ms;
      }
      if (++device_ == devices) {
        device_ = 0;
        ++pass_;
      }
    }
    return batch_;
  }

 private:
  std::vector<pipeline::Envelope> batch_;
  int device_ = 0;
  long pass_ = 0;
};

void BM_SqliteWrite(benchmark::State& state) {
  const int batch_size = static_cast<int>(state.range(0));
  stores::SqliteOptions options;
  options.synchronous =
      state.range(1) == 0 ? stores::SqliteSynchronous::normal : stores::SqliteSynchronous::full;
  std::string dir = (std::filesystem::temp_directory_path() / "fieldhub-bench-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  {
    auto opened = stores::SqliteHistoryStore::open(std::filesystem::path(dir) / "h.db", options);
    if (!opened.ok()) {
      state.SkipWithError(opened.status().message().c_str());
      return;
    }
    auto& store = *opened.value();
    BatchMaker maker(batch_size);
    std::uint64_t stored = 0;
    for (auto _ : state) {
      const auto result = store.write(maker.next());
      if (!result.ok) {
        state.SkipWithError(result.error.c_str());
        break;
      }
      stored += result.readings_stored;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(stored));
    state.counters["rows_in_db"] = static_cast<double>(stored);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteWrite)
    ->ArgNames({"batch", "sync_full"})
    ->Args({1000, 0})
    ->Args({10000, 0})
    ->Args({1000, 1})
    ->Args({10000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_MemoryLiveApply(benchmark::State& state) {
  stores::MemoryLiveStore store;
  BatchMaker maker(static_cast<int>(state.range(0)));
  std::int64_t readings = 0;
  for (auto _ : state) {
    // Flatten the envelopes into one span, as the pipeline hands readings to the live store.
    state.PauseTiming();
    std::vector<Reading> flat;
    for (const auto& e : maker.next())
      flat.insert(flat.end(), e.readings.begin(), e.readings.end());
    state.ResumeTiming();
    benchmark::DoNotOptimize(store.apply(flat));
    readings += static_cast<std::int64_t>(flat.size());
  }
  state.SetItemsProcessed(readings);
}
BENCHMARK(BM_MemoryLiveApply)->Arg(1000)->Arg(10000);

// Heap bytes per device held by the live store: 10,000 devices with 5 metrics each, ids longer
// than the small-string buffer, as a site's would be.
void BM_MemoryLiveFootprint(benchmark::State& state) {
  constexpr int n = 10000;
  const char* names[] = {"energy", "power", "voltage", "current", "flow_rate"};
  std::vector<Reading> rs;
  for (int d = 0; d < n; ++d) {
    for (const char* m : names) rs.push_back(make_reading(d, m, t0));
  }
  double per_device = 0;
  for (auto _ : state) {
    const auto before = ::mallinfo2().uordblks;
    {
      auto store = std::make_unique<stores::MemoryLiveStore>();
      store->apply(rs);
      const auto after = ::mallinfo2().uordblks;
      per_device = static_cast<double>(after - before) / n;
      benchmark::DoNotOptimize(store->device_count());
    }
  }
  state.counters["bytes_per_device"] = per_device;
}
BENCHMARK(BM_MemoryLiveFootprint)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
