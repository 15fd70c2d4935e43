// SPDX-License-Identifier: Apache-2.0
// The pipeline's per-message work that is not storage: validation against the clock, and
// validation followed by the in-process live store update (1,000 devices).
#include <benchmark/benchmark.h>

#include "bench_envelopes.h"
#include "pipeline/validate.h"
#include "stores/memory/memory_live_store.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;

const model::Timestamp now = model::from_micros(1'795'514'400'000'000);

pipeline::Envelope envelope(int device, int values) {
  return bench::envelope(device, values, now);
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
