// SPDX-License-Identifier: Apache-2.0
// The health tracker at 100,000 devices: observe() on the hot path, one advance() tick of the
// health timer, a link going down under every device, snapshot/restore, and memory per device.
// Run from a Release build:
//   build-rel/bin/health_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "health/health_tracker.h"

namespace {

using namespace std::chrono_literals;
using fieldhub::common::FakeClock;
using fieldhub::health::HealthTracker;
using fieldhub::health::State;
using fieldhub::model::Timestamp;

constexpr int device_count = 100'000;
const Timestamp t0 = fieldhub::model::from_micros(1'790'000'000'000'000);

// Built with append, not "literal" + std::string: GCC 12 warns falsely on that (-Wrestrict, PR
// 105329).
std::string named(std::string_view prefix, int i, std::string_view suffix = {}) {
  std::string s(prefix);
  s += std::to_string(i);
  s += suffix;
  return s;
}

std::vector<std::string> device_ids() {
  std::vector<std::string> ids;
  ids.reserve(device_count);
  for (int i = 0; i < device_count; ++i) ids.push_back(named("site-a/meter-", i));
  return ids;
}

// 100,000 devices with a declared 10 s interval, spread over 100 links, all seen once.
struct Fleet {
  explicit Fleet(std::chrono::milliseconds interval = 10s) : clock(t0), tracker(clock) {
    for (int i = 0; i < device_count; ++i) {
      tracker.register_device(ids[i], interval, named("modbus:10.0.", i % 100, ".1:502"));
    }
    for (int i = 0; i < device_count; ++i) tracker.observe(ids[i], clock.now());
  }
  std::vector<std::string> ids = device_ids();
  FakeClock clock;
  HealthTracker tracker;
};

// The hot path: one record's device looked up by id and marked seen.
void BM_ObserveById(benchmark::State& state) {
  Fleet f;
  std::int64_t us = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    f.tracker.observe(f.ids[i], t0 + std::chrono::microseconds(++us));
    if (++i == f.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ObserveById);

// The same with a DeviceRef resolved once (an adapter that keeps it per device).
void BM_ObserveByRef(benchmark::State& state) {
  Fleet f;
  std::vector<HealthTracker::DeviceRef> refs;
  for (const auto& id : f.ids) refs.push_back(f.tracker.find(id));
  std::int64_t us = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    f.tracker.observe(refs[i], t0 + std::chrono::microseconds(++us));
    if (++i == refs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ObserveByRef);

// One 1 s tick of the health timer in steady state: every device reports every 10 s (a tenth
// of them each second; the reports are not timed). A share `silent_per_mille` is quiet at any
// time, a different set each minute, so each tick some devices go stale or offline. Measures
// advance() alone.
void BM_AdvanceTick(benchmark::State& state) {
  const auto silent_per_mille = static_cast<int>(state.range(0));
  Fleet f;
  std::vector<HealthTracker::DeviceRef> refs;
  for (const auto& id : f.ids) refs.push_back(f.tracker.find(id));
  int second = 0;
  auto report = [&] {
    for (int i = second % 10; i < device_count; i += 10) {
      if (((i / 10) % 1000 + (second / 60) * silent_per_mille) % 1000 < silent_per_mille) continue;
      f.tracker.observe(refs[i], f.clock.now());
    }
  };
  // Warm up for 2 min so the lazy deadlines are spread as in a long run.
  for (; second < 120; ++second) {
    f.clock.advance(1s);
    report();
    f.tracker.advance(f.clock.now());
  }
  std::size_t transitions = 0;
  std::int64_t ticks = 0;
  for (auto _ : state) {
    state.PauseTiming();
    f.clock.advance(1s);
    ++second;
    report();
    state.ResumeTiming();
    transitions += f.tracker.advance(f.clock.now());
    ++ticks;
  }
  state.counters["transitions_per_tick"] =
      benchmark::Counter(static_cast<double>(transitions) / static_cast<double>(ticks));
  state.counters["online"] = static_cast<double>(f.tracker.summary().count(State::online));
}
BENCHMARK(BM_AdvanceTick)->Arg(0)->Arg(10)->Arg(100)->Unit(benchmark::kMicrosecond);

// The worst tick: every device on one link due at once (the first advance after a restore
// following an outage longer than the offline threshold).
void BM_AdvanceAllDue(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto f = std::make_unique<Fleet>();
    f->clock.advance(1h);
    state.ResumeTiming();
    benchmark::DoNotOptimize(f->tracker.advance(f->clock.now()));
    state.PauseTiming();
    f.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * device_count);
}
BENCHMARK(BM_AdvanceAllDue)->Unit(benchmark::kMillisecond)->Iterations(3);

// A link with 100,000 devices behind it goes down: all offline in one call, one event each.
void BM_LinkDown(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto f = std::make_unique<Fleet>();
    for (int i = 0; i < device_count; ++i) f->tracker.register_device(f->ids[i], 10s, "broker");
    std::size_t events = 0;
    f->tracker.on_change([&](const fieldhub::health::HealthChange&) { ++events; });
    state.ResumeTiming();
    f->tracker.link_down("broker", "connection reset");
    state.PauseTiming();
    if (events != device_count) state.SkipWithError("not every device went offline");
    f.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * device_count);
}
BENCHMARK(BM_LinkDown)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Snapshot(benchmark::State& state) {
  Fleet f;
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string s = f.tracker.snapshot();
    bytes = s.size();
    benchmark::DoNotOptimize(s);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Snapshot)->Unit(benchmark::kMillisecond);

void BM_Restore(benchmark::State& state) {
  Fleet f;
  std::string snap = f.tracker.snapshot();
  for (auto _ : state) {
    state.PauseTiming();
    FakeClock clock(t0 + 1s);
    auto fresh = std::make_unique<HealthTracker>(clock);
    for (int i = 0; i < device_count; ++i) fresh->register_device(f.ids[i], 10s, "broker");
    state.ResumeTiming();
    benchmark::DoNotOptimize(fresh->restore(snap, clock.now()));
    state.PauseTiming();
    fresh.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * device_count);
}
BENCHMARK(BM_Restore)->Unit(benchmark::kMillisecond)->Iterations(3);

// Heap bytes held per registered, seen device (the tracker's structures including the id string
// and the index), from malloc's own accounting.
void BM_MemoryPerDevice(benchmark::State& state) {
  for (auto _ : state) {
    auto ids = device_ids();
    std::size_t before = mallinfo2().uordblks;
    {
      FakeClock clock(t0);
      auto tracker = std::make_unique<HealthTracker>(clock);
      for (int i = 0; i < device_count; ++i) {
        tracker->register_device(ids[i], 10s, named("modbus:10.0.", i % 100, ".1:502"));
        tracker->observe(ids[i], clock.now());
      }
      std::size_t after = mallinfo2().uordblks;
      state.counters["bytes_per_device"] =
          static_cast<double>(after - before) / static_cast<double>(device_count);
    }
  }
}
BENCHMARK(BM_MemoryPerDevice)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
