// SPDX-License-Identifier: Apache-2.0
// The Modbus core's hot paths: planning reads for a large site, and turning one full
// 125-register reply into readings. Figures go to docs/PERFORMANCE.md.
#include <benchmark/benchmark.h>

#include <vector>

#include "adapters/modbus/codec.h"
#include "adapters/modbus/frame.h"
#include "adapters/modbus/read_plan.h"
#include "adapters/modbus/readings.h"
#include "config/config.h"

namespace {

using namespace fieldhub;

// 20 registers per device: a meter-like mix of float32, uint32 and int16 with small holes,
// declared out of order, shifted per device so the plans differ.
std::vector<config::RegisterSpec> device_map(std::size_t device) {
  std::vector<config::RegisterSpec> regs;
  const auto base = static_cast<std::uint16_t>((device * 7) % 500);
  for (std::uint16_t i = 0; i < 20; ++i) {
    config::RegisterSpec r;
    r.function = i % 5 == 0 ? config::ModbusFunction::holding : config::ModbusFunction::input;
    r.type = i % 3 == 0 ? config::ModbusType::int16 : config::ModbusType::float32;
    r.address = static_cast<std::uint16_t>(base + ((i * 37) % 20) * 4);
    r.group = i % 7 == 0 ? "slow" : "";
    regs.push_back(r);
  }
  return regs;
}

void BM_PlanReads10kDevices(benchmark::State& state) {
  const std::size_t devices = 10000;
  std::vector<std::vector<config::RegisterSpec>> maps;
  maps.reserve(devices);
  for (std::size_t d = 0; d < devices; ++d) maps.push_back(device_map(d));
  modbus::PlanOptions options;
  config::ModbusProfileSettings settings;
  settings.groups = {{"slow", std::chrono::seconds{10}}};
  std::size_t requests = 0;
  for (auto _ : state) {
    requests = 0;
    for (const auto& m : maps) {
      auto plan = modbus::plan_reads(m, options, settings);
      requests += plan.size();
      benchmark::DoNotOptimize(plan.data());
    }
  }
  state.counters["requests_per_pass"] = static_cast<double>(requests);
  state.counters["devices/s"] = benchmark::Counter(
      static_cast<double>(devices) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["registers/s"] = benchmark::Counter(
      static_cast<double>(devices * 20) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PlanReads10kDevices)->Unit(benchmark::kMillisecond);

// A profile whose 125 registers are one read: 62 float32 + one int16.
config::Profile full_read_profile() {
  config::Profile p;
  p.name = "bench";
  const std::string volts("V");
  for (std::uint16_t i = 0; i < 63; ++i) {
    config::MetricSpec m;
    m.name = std::to_string(i);
    m.name.insert(m.name.begin(), 'm');
    m.unit = volts;
    m.min = -1e9;
    m.max = 1e9;
    config::RegisterSpec r;
    r.metric = m.name;
    r.metric_index = i;
    r.function = config::ModbusFunction::input;
    r.address = static_cast<std::uint16_t>(i * 2);
    r.type = i < 62 ? config::ModbusType::float32 : config::ModbusType::int16;
    r.scale = 0.1;
    p.metrics.push_back(m);
    p.registers.push_back(r);
  }
  return p;
}

std::vector<std::uint8_t> full_read_rtu_reply() {
  std::vector<std::uint8_t> frame = {1, 4, 250};
  for (std::size_t i = 0; i < 125; ++i) {
    frame.push_back(0x43);
    frame.push_back(static_cast<std::uint8_t>(i));
  }
  const std::uint16_t crc = modbus::crc16(frame);
  frame.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  frame.push_back(static_cast<std::uint8_t>(crc >> 8));
  return frame;
}

void BM_Decode125RegistersIntoReadings(benchmark::State& state) {
  const auto profile = full_read_profile();
  const auto plan = modbus::plan_reads(profile);
  if (plan.size() != 1 || plan[0].count != 125) {
    state.SkipWithError("plan is not one 125-register read");
    return;
  }
  const auto request = modbus::to_request(1, plan[0]);
  const auto frame = full_read_rtu_reply();
  const modbus::ReadingContext context{"meter-0001", model::from_micros(1'700'000'000'000'000),
                                       "modbus_rtu", "bus1"};
  std::vector<model::Reading> out;
  out.reserve(64);
  for (auto _ : state) {
    out.clear();
    const modbus::Reply reply = modbus::parse_rtu(request, frame);
    modbus::append_readings(profile, plan[0], reply, context, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(profile.registers.size()) * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode125RegistersIntoReadings);

// The codec alone: 62 float32 values out of one reply's registers.
void BM_DecodeRegistersOnly(benchmark::State& state) {
  const auto profile = full_read_profile();
  std::vector<std::uint16_t> words(125);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = static_cast<std::uint16_t>(0x4300 + i);
  const std::span<const std::uint16_t> all(words);
  for (auto _ : state) {
    for (const auto& r : profile.registers) {
      auto d = modbus::decode_registers(r, all.subspan(r.address));
      benchmark::DoNotOptimize(d);
    }
  }
  state.counters["values/s"] =
      benchmark::Counter(static_cast<double>(profile.registers.size()) * state.iterations(),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeRegistersOnly);

}  // namespace

BENCHMARK_MAIN();
