// SPDX-License-Identifier: Apache-2.0
#include "sim/device_sim.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "normalize/normalizer.h"

namespace fieldhub::sim {
namespace {

using namespace std::chrono_literals;

std::filesystem::path source_dir() {
  const char* dir = std::getenv("FIELDHUB_SOURCE_DIR");
  return dir != nullptr ? dir : FIELDHUB_TEST_SOURCE_DIR;
}

// The simulator and the normalizer must agree on every shipped profile: two simulated hours of
// every demo device normalize without a single dead letter, every metric arrives, and every
// event type of every profile occurs.
TEST(DeviceSim, EveryDemoDeviceSpeaksItsProfileCleanly) {
  const config::Config cfg = config::load_config(source_dir() / "config/demo.toml");
  normalize::Normalizer normalizer(cfg);
  model::Timestamp now = model::from_micros(1'795'514'400'000'000);
  std::uint32_t seed = 1;
  std::uint64_t ws_id = 0;
  std::size_t ws_devices = 0;
  for (const auto& device : cfg.devices) {
    // Polled devices are fieldhub-modbus-sim's.
    if (device.protocol != "mqtt" && device.protocol != "websocket") continue;
    const bool ws = device.protocol == "websocket";
    const config::Profile* profile = cfg.profile(device.profile);
    ASSERT_NE(profile, nullptr) << device.id;
    DeviceSim sim(device, *profile, seed++, 1.0);
    std::set<std::string> metrics_seen;
    std::set<std::string> events_seen;
    for (auto t = now; t < now + 2h; t += 1s) {
      for (const auto& p : sim.poll(t)) {
        // WebSocket devices send the same payload in the protocol's envelope, as the sim's link.
        const auto env =
            ws ? normalizer.normalize_device(device.id,
                                             p.event ? normalize::Normalizer::Kind::event
                                                     : normalize::Normalizer::Kind::telemetry,
                                             ws_message(++ws_id, p.event, p.payload), t,
                                             {"ws:" + device.id, "websocket", "ws:" + device.id})
               : normalizer.normalize(p.topic, p.payload, t);
        ASSERT_TRUE(env.dead_letters.empty())
            << device.id << " " << p.topic << " " << p.payload << " → "
            << env.dead_letters.front().reason << ": " << env.dead_letters.front().detail;
        for (const auto& r : env.readings) {
          EXPECT_EQ(r.device_id, device.id);
          EXPECT_EQ(r.quality, model::Quality::good)
              << device.id << " " << r.metric << " " << p.payload;
          metrics_seen.insert(r.metric);
        }
        for (const auto& e : env.events) events_seen.insert(e.type);
      }
    }
    ws_devices += ws ? 1 : 0;
    EXPECT_EQ(metrics_seen.size(), profile->metrics.size()) << device.id;
    for (const auto& e : profile->events) {
      EXPECT_TRUE(events_seen.contains(e.type)) << device.id << " never raised " << e.type;
    }
  }
  EXPECT_GE(ws_devices, 2u) << "the demo has a smart lock and a vending machine on WebSocket";
}

}  // namespace
}  // namespace fieldhub::sim
