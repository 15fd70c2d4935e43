// SPDX-License-Identifier: Apache-2.0
// The pipeline's per-message work that is not storage: validation against the clock,
// validation followed by the in-process live store update (1,000 devices), and remembering each
// message's digest to recognise a redelivery.
#include <benchmark/benchmark.h>

#include "bench_envelopes.h"
#include "pipeline/recent_digests.h"
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

// Every inbound message: a new digest into a full window of 65,536 (so one is forgotten too).
void BM_RememberDigest(benchmark::State& state) {
  pipeline::RecentDigests recent(std::size_t{1} << 16);
  std::uint64_t digest = 0x243F6A8885A308D3ULL;
  const auto next = [&digest] {
    digest ^= digest << 13;  // xorshift64: distinct, hash-like digests
    digest ^= digest >> 7;
    digest ^= digest << 17;
    return digest;
  };
  for (std::size_t i = 0; i < recent.capacity(); ++i) recent.seen_or_remember(next());
  for (auto _ : state) benchmark::DoNotOptimize(recent.seen_or_remember(next()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RememberDigest);

}  // namespace

BENCHMARK_MAIN();
