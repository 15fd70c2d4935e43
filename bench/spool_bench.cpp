// SPDX-License-Identifier: Apache-2.0
// The durable spool: record encode and decode (sans I/O), and append + group fdatasync on a real
// file in $TMPDIR (records/s and MB/s), for 1 and 10 readings per message and group sizes of 1
// (a trickle: one sync per message) and 1,000 (a flood: one sync per group).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "bench_envelopes.h"
#include "pipeline/spool.h"
#include "pipeline/spool_codec.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;

const model::Timestamp now = model::from_micros(1'795'514'400'000'000);

pipeline::Envelope envelope(int device, int values) {
  return bench::envelope(device, values, now);
}

void BM_Encode(benchmark::State& state) {
  const pipeline::Envelope env = envelope(7, static_cast<int>(state.range(0)));
  std::string out;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    out.clear();
    pipeline::spool_codec::append_record(++seq, env, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_Encode)->Arg(1)->Arg(10);

void BM_Decode(benchmark::State& state) {
  std::string record;
  pipeline::spool_codec::append_record(1, envelope(7, static_cast<int>(state.range(0))), record);
  for (auto _ : state) {
    const auto view = pipeline::spool_codec::parse_record(record);
    auto env = pipeline::spool_codec::decode_payload(view.payload);
    benchmark::DoNotOptimize(env);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(record.size()));
}
BENCHMARK(BM_Decode)->Arg(1)->Arg(10);

// Appends `group` messages, waits for their sync; repeated. Args: readings per message, group.
void BM_AppendSync(benchmark::State& state) {
  const int values = static_cast<int>(state.range(0));
  const int group = static_cast<int>(state.range(1));
  std::random_device rd;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("fieldhub-spool-bench-" + std::to_string(rd()));
  common::Metrics metrics;
  std::int64_t records = 0;
  std::int64_t bytes = 0;
  {
    pipeline::Spool spool({.dir = dir, .max_bytes = std::uint64_t{8} << 30}, metrics);
    spool.open();
    spool.start({});
    const pipeline::Envelope env = envelope(7, values);
    std::string one;
    pipeline::spool_codec::append_record(1, env, one);
    std::uint64_t taken = 0;
    for (auto _ : state) {
      for (int i = 0; i < group; ++i) spool.append(pipeline::Envelope(env));
      if (!spool.flush(60s)) state.SkipWithError("sync did not finish");
      records += group;
      bytes += group * static_cast<std::int64_t>(one.size());
      // History keeps up: the records are taken and committed, so segments are deleted.
      state.PauseTiming();
      const auto batch = spool.take(1'000'000, 0ms);
      if (batch.last_seq != 0) spool.committed(batch.last_seq);
      taken += batch.envelopes.size();
      state.ResumeTiming();
    }
    spool.stop();
    benchmark::DoNotOptimize(taken);
  }
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_AppendSync)
    ->Args({1, 1})
    ->Args({1, 1000})
    ->Args({10, 1})
    ->Args({10, 1000})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
