// SPDX-License-Identifier: Apache-2.0
// LiveHub fan-out: CPU per published telemetry message delivered to N live sessions whose sockets
// keep up (every write completes at once). 1,000 devices, one reading per message (as the
// pipeline publishes one envelope at a time), full-site sessions.
// BM_FanOutPerPublish: no flush scheduler, every publish is flushed at once (as the hub did
// before telemetry ticks: one frame per session per message).
// BM_FanOutTicked: a telemetry tick every 175 messages (10 ms at 17,500 msgs/s, 70 % of this
// machine's end-to-end rate).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "stores/memory/memory_live_store.h"
#include "web/live_hub.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'514'400'000'000);
constexpr int device_count = 1000;

config::Config make_config() {
  config::Config c;
  for (int d = 0; d < device_count; ++d) {
    std::array<char, 16> id{};
    std::snprintf(id.data(), id.size(), "dev-%d", d);
    c.devices.push_back({.id = id.data(), .site = std::string(3, 'l')});
  }
  return c;
}

// A socket that keeps up: the bench completes its write before the next message.
class Sink final : public web::LiveSink {
 public:
  void send(std::shared_ptr<const std::string> frame) override {
    in_flight = true;
    bytes += frame->size();
    ++frames;
  }
  void close_slow() override {}
  bool in_flight = false;
  std::size_t bytes = 0;
  std::size_t frames = 0;
};

std::vector<model::Reading> messages() {
  std::vector<model::Reading> out;
  for (int d = 0; d < device_count; ++d) {
    std::array<char, 16> id{};
    std::snprintf(id.data(), id.size(), "dev-%d", d);
    out.push_back(model::Reading{.device_id = id.data(),
                                 .metric = std::string("seq"),
                                 .value = 1.0,
                                 .unit = std::string(),
                                 .source_ts = t0,
                                 .received_ts = t0});
  }
  return out;
}

// sessions; messages per tick (0: no scheduler, flushed at each publish).
void fan_out(benchmark::State& state, std::size_t sessions, std::size_t per_tick) {
  const config::Config cfg = make_config();
  stores::MemoryLiveStore live;
  common::Metrics metrics;
  common::FakeClock clock{t0};
  web::LiveHub hub(cfg, live, metrics, clock);
  if (per_tick > 0) hub.set_flush_scheduler([](std::chrono::milliseconds) {});
  std::vector<std::unique_ptr<Sink>> sinks;
  std::vector<web::LiveHub::SessionId> ids;
  const auto drain = [&] {
    for (std::size_t i = 0; i < sinks.size(); ++i) {
      while (sinks[i]->in_flight) {
        sinks[i]->in_flight = false;
        hub.on_sent(ids[i]);
      }
    }
  };
  for (std::size_t i = 0; i < sessions; ++i) {
    sinks.push_back(std::make_unique<Sink>());
    ids.push_back(hub.attach(*sinks.back(), {}));
  }
  drain();
  for (auto& s : sinks) s->bytes = s->frames = 0;
  std::vector<model::Reading> msgs = messages();
  std::size_t i = 0;
  double seq = 0;
  for (auto _ : state) {
    model::Reading& r = msgs[i++ % msgs.size()];
    r.value = ++seq;
    hub.publish_readings({&r, 1});
    if (per_tick > 0 && i % per_tick == 0) hub.flush_telemetry();
    drain();
  }
  std::size_t frames = 0;
  for (const auto& s : sinks) frames += s->frames;
  state.SetItemsProcessed(state.iterations());
  state.counters["frames_per_msg"] =
      static_cast<double>(frames) / static_cast<double>(state.iterations());
}

void BM_FanOutPerPublish(benchmark::State& state) {
  fan_out(state, static_cast<std::size_t>(state.range(0)), 0);
}
BENCHMARK(BM_FanOutPerPublish)->Arg(1)->Arg(5)->Arg(20)->Arg(50);

void BM_FanOutTicked(benchmark::State& state) {
  fan_out(state, static_cast<std::size_t>(state.range(0)), 175);
}
BENCHMARK(BM_FanOutTicked)->Arg(1)->Arg(5)->Arg(20)->Arg(50);

}  // namespace

BENCHMARK_MAIN();
