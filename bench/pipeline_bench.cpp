// SPDX-License-Identifier: Apache-2.0
// The pipeline's per-message work that is not storage: validation against the clock, and
// validation followed by the in-process live store update (1,000 devices).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>

#include "pipeline/validate.h"
#include "stores/memory/memory_live_store.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;

const model::Timestamp now = model::from_micros(1'795'514'400'000'000);

pipeline::Envelope envelope(int device, int values) {
  pipeline::Envelope env;
  for (int v = 0; v < values; ++v) {
    // Built by snprintf and designated initialisers: assigning short strings here trips GCC 12's
    // false -Wrestrict warning (GCC PR 105651).
    std::array<char, 16> device_id{};
    std::array<char, 16> metric{};
    std::snprintf(device_id.data(), device_id.size(), "dev-%d", device);
    std::snprintf(metric.data(), metric.size(), "m%d", v);
    model::Reading r{.device_id = device_id.data(),
                     .metric = metric.data(),
                     .value = 230.0 + v,
                     .unit = std::string(1, 'V'),
                     .source_ts = now - 1s,
                     .received_ts = now};
    env.readings.push_back(std::move(r));
  }
  return env;
}

void BM_Validate(benchmark::State& state) {
  const int values = static_cast<int>(state.range(0));
  // Valid records pass through untouched, so the same envelope is validated again each time.
  pipeline::Envelope env = envelope(1, values);
  for (auto _ : state) {
    benchmark::DoNotOptimize(pipeline::validate(env, {}, now));
  }
  state.SetItemsProcessed(state.iterations() * values);
}
BENCHMARK(BM_Validate)->Arg(1)->Arg(10);

void BM_ValidateAndApplyLive(benchmark::State& state) {
  const int values = static_cast<int>(state.range(0));
  std::vector<pipeline::Envelope> envelopes;
  for (int d = 0; d < 1000; ++d) envelopes.push_back(envelope(d, values));
  stores::MemoryLiveStore live;
  std::size_t i = 0;
  for (auto _ : state) {
    pipeline::Envelope& env = envelopes[i++ % envelopes.size()];
    pipeline::validate(env, {}, now);
    benchmark::DoNotOptimize(live.apply(env.readings));
  }
  state.SetItemsProcessed(state.iterations() * values);
}
BENCHMARK(BM_ValidateAndApplyLive)->Arg(1)->Arg(10);

}  // namespace

BENCHMARK_MAIN();
