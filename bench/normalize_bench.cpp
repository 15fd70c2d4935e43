// SPDX-License-Identifier: Apache-2.0
// The normalizer on its hot path: a fieldhub-format telemetry message from one of 1,000 devices
// becomes readings. items_per_second counts readings. Run from a Release build:
//   build-rel/bin/normalize_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "normalize/normalizer.h"

namespace {

using fieldhub::config::Config;
using fieldhub::config::MetricSpec;
using fieldhub::config::Profile;

constexpr int device_count = 1000;

Config bench_config(int metric_count) {
  Config c;
  Profile p;
  p.name = "bench";
  p.kind = "kwh_meter";
  p.mqtt.telemetry_topic = "fieldhub/{site}/{device}/telemetry";
  p.mqtt.event_topic = "fieldhub/{site}/{device}/event";
  for (int i = 0; i < metric_count; ++i) {
    MetricSpec m;
    m.name = "metric_" + std::to_string(i);
    m.unit = "kWh";
    m.path = "values." + m.name;
    m.min = 0.0;
    m.max = 1e9;
    p.metrics.push_back(m);
  }
  c.profiles.push_back(p);
  for (int i = 0; i < device_count; ++i) {
    fieldhub::model::Device d;
    d.id = "meter-" + std::to_string(i);
    d.kind = "kwh_meter";
    d.site = "plant";
    d.profile = "bench";
    d.protocol = "mqtt";
    d.address = d.id;
    c.devices.push_back(d);
  }
  return c;
}

void BM_NormalizeTelemetry(benchmark::State& state) {
  const int values = static_cast<int>(state.range(0));
  const Config config = bench_config(values);
  fieldhub::normalize::Normalizer normalizer(config);
  // A typical message: RFC 3339 time, plain numbers. Topics cycle over all devices.
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
  for (int i = 0; i < device_count; ++i) {
    topics.push_back("fieldhub/plant/meter-" + std::to_string(i) + "/telemetry");
    std::string p = R"({"ts":"2026-11-24T10:00:00.123Z","values":{)";
    for (int v = 0; v < values; ++v) {
      if (v > 0) p += ',';
      p += "\"metric_" + std::to_string(v) + "\":" + std::to_string(1000 + i * 7 + v) + ".25";
    }
    p += "}}";
    payloads.push_back(std::move(p));
  }
  const auto received = fieldhub::model::from_micros(1795514400000000);
  std::size_t readings = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    auto env = normalizer.normalize(topics[i], payloads[i], received);
    readings += env.readings.size();
    benchmark::DoNotOptimize(env);
    if (++i == topics.size()) i = 0;
  }
  if (readings != static_cast<std::size_t>(state.iterations()) * static_cast<std::size_t>(values)) {
    state.SkipWithError("a message did not give all its readings");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(readings));
  state.counters["msgs_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NormalizeTelemetry)->Arg(1)->Arg(10);

}  // namespace
