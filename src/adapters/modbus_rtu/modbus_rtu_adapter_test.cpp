// SPDX-License-Identifier: Apache-2.0
// The Modbus RTU adapter as the composition root builds it: the example configuration parses,
// and, pointed at fieldhub-modbus-sim on a socat pty, make_adapters() polls its devices into a
// real Pipeline whose HealthTracker sees the serial bus as a link (up, errors, round trips, and
// down with its devices offline when the device file goes away).
#include "adapters/modbus_rtu/modbus_rtu_adapter.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "adapters/adapters.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "health/health_tracker.h"
#include "pipeline/pipeline.h"
#include "support/modbus_servers.h"
#include "support/pipeline_doubles.h"
#include "support/serial_port.h"

namespace fieldhub::adapters {
namespace {

using namespace std::chrono_literals;
using testing::CountingHistoryStore;
using testing::NullFeed;
using testing::RecordingLiveStore;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ModbusRtuAdapterTest, ExampleConfigParsesIntoBusesAndTargets) {
  const config::Config config = config::load_config(FIELDHUB_MODBUS_RTU_EXAMPLE);
  ASSERT_EQ(config.serial_buses.size(), 2U);
  const config::SerialBus& bus = config.serial_buses[0];
  EXPECT_EQ(bus.name, "rs485-1");
  EXPECT_EQ(bus.device, "/tmp/rs485-b");
  EXPECT_EQ(bus.baud, 19200U);
  EXPECT_EQ(bus.parity, 'N');
  EXPECT_EQ(bus.response_timeout, 300ms);
  EXPECT_EQ(bus.late_reply_window, 500ms);
  EXPECT_EQ(config.serial_buses[1].parity, 'E');  // the Modbus default
  EXPECT_EQ(config.serial_buses[1].response_timeout, 500ms);
  const auto targets = ModbusRtuAdapter::targets(config);
  ASSERT_EQ(targets.size(), 3U);
  EXPECT_EQ(targets[0].device_id, "water-basement");
  EXPECT_EQ(targets[0].bus, "rs485-1");
  EXPECT_EQ(targets[0].unit, 2);
  EXPECT_EQ(targets[1].unit, 3);
  EXPECT_EQ(targets[2].bus, "rs485-2");
  for (const auto& t : targets) {
    ASSERT_NE(t.profile, nullptr);
    EXPECT_FALSE(t.profile->registers.empty());
  }
}

// The example's first bus on a pty where the simulator's built-in water and gas meters answer,
// through make_adapters() into a Pipeline with a HealthTracker.
struct Rig {
  Rig() {
    std::string text = read_file(FIELDHUB_MODBUS_RTU_EXAMPLE);
    const std::string device = "device = \"/tmp/rs485-b\"";
    text.replace(text.find(device), device.size(), "device = \"" + pty->b().string() + "\"");
    text.replace(text.find("../../../profiles"), 17, FIELDHUB_SOURCE_ROOT "/profiles");
    text.replace(text.find("response_timeout = \"300ms\""), 26, "response_timeout = \"200ms\"");
    // Only the first bus's devices: the second bus's port does not exist here.
    text = text.substr(0, text.find("[[devices]]\nid = \"kwh-hall-2\""));
    const auto second = text.find("[[serial_buses]]\nname = \"rs485-2\"");
    text.erase(second, text.find("[[devices]]") - second);
    std::ofstream(dir.path() / "fieldhub.toml") << text;
    config = config::load_config(dir.path() / "fieldhub.toml");
    // The profiles poll every 5 s; the test does not wait that long between cycles.
    for (auto& p : config.profiles) p.modbus.poll_interval = 300ms;
    for (const char* id : {"water-basement", "gas-boiler-house"}) {
      tracker.register_device(id, 1000ms, "serial:rs485-1", {}, health::Cadence::polled);
    }
    pipeline.emplace(io.get_executor(), config.pipeline, clock, metrics, live, history, feed);
    pipeline->set_health(&tracker);
    pipeline->start();
    adapters = make_adapters(io.get_executor(), config, *pipeline, metrics, clock);
    for (auto& a : adapters) a->start();
  }
  ~Rig() {
    for (auto& a : adapters) a->stop();
    io.run_for(50ms);
    pipeline->stop();
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done()) {
      io.run_for(20ms);
      tracker.advance(clock.now());
    }
    return done();
  }
  bool good(const std::string& key) const {
    auto it = live.latest.find(key);
    return it != live.latest.end() && it->second.quality == model::Quality::good;
  }
  double number(const std::string& key) const {
    auto it = live.latest.find(key);
    if (it == live.latest.end() || !std::holds_alternative<double>(it->second.value)) return -1;
    return std::get<double>(it->second.value);
  }
  health::State state(const char* id) { return tracker.device(id)->state; }

  testing::TempDir dir;
  std::optional<testing::PtyPair> pty{std::in_place};
  std::optional<testing::ModbusSimServer> sim{
      testing::ModbusSimOptions{.tcp = false, .rtu_device = pty->a(), .baud = 19200}};
  config::Config config;
  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  RecordingLiveStore live;
  CountingHistoryStore history;
  NullFeed feed;
  health::HealthTracker tracker{clock};
  std::optional<pipeline::Pipeline> pipeline;
  std::vector<std::unique_ptr<Adapter>> adapters;
};

TEST(ModbusRtuAdapterTest, PollsTheSimulatorsWaterAndGasMetersIntoThePipeline) {
  Rig rig;
  ASSERT_EQ(rig.adapters.size(), 1U);
  EXPECT_EQ(rig.adapters[0]->name(), "modbus_rtu");
  ASSERT_TRUE(rig.run_until([&] {
    return rig.good("water-basement/volume") && rig.good("water-basement/temperature") &&
           rig.good("water-basement/valve_open") && rig.good("gas-boiler-house/volume") &&
           rig.good("gas-boiler-house/pressure") && rig.good("gas-boiler-house/temperature");
  })) << rig.sim->log();
  // The simulator's templates (src/sim/modbus/README.md) decoded through the profiles.
  EXPECT_NEAR(rig.number("water-basement/volume"), 1234.567, 50.0);  // 1234567 l
  EXPECT_NEAR(rig.number("water-basement/temperature"), 12.5, 1.6);
  EXPECT_NEAR(rig.number("gas-boiler-house/volume"), 8421.5, 5.0);  // float32 CDAB
  EXPECT_NEAR(rig.number("gas-boiler-house/pressure"), 21.0, 0.4);  // int32 CDAB × 0.1
  EXPECT_NEAR(rig.number("gas-boiler-house/temperature"), 9.5, 2.1);
  const auto& v = rig.live.latest["gas-boiler-house/volume"];
  EXPECT_EQ(v.provenance.adapter, "modbus_rtu");
  EXPECT_EQ(v.provenance.link, "rs485-1");
  for (const auto& [key, r] : rig.live.latest) {
    EXPECT_EQ(r.quality, model::Quality::good) << key << ": " << r.quality_reason;
  }
  ASSERT_TRUE(rig.run_until([&] {
    return rig.state("water-basement") == health::State::online &&
           rig.state("gas-boiler-house") == health::State::online;
  }));
  auto link = rig.tracker.link("serial:rs485-1");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->state, health::LinkState::up);
  EXPECT_GT(link->rtt.samples, 0U);
  EXPECT_EQ(rig.metrics.gauge("fieldhub_modbus_rtu_bus_up", "", {{"bus", "rs485-1"}}).value(), 1.0);

  // The valve through the Writable seam: FC05, read back with FC01.
  auto& writable = dynamic_cast<Writable&>(*rig.adapters[0]);
  std::optional<WriteResult> closed;
  writable.write("water-basement", "valve_open", false, [&](const WriteResult& r) { closed = r; });
  ASSERT_TRUE(rig.run_until([&] { return closed.has_value(); }));
  EXPECT_TRUE(closed->ok()) << closed->detail;
  std::optional<WriteResult> refused;
  writable.write("gas-boiler-house", "volume", 1.0, [&](const WriteResult& r) { refused = r; });
  ASSERT_TRUE(rig.run_until([&] { return refused.has_value(); }));
  EXPECT_EQ(refused->error, WriteError::not_writable);
}

TEST(ModbusRtuAdapterTest, BusErrorsAndABusWhoseDeviceFileGoesAwayReachHealth) {
  Rig rig;
  ASSERT_TRUE(rig.run_until([&] {
    return rig.tracker.link_state("serial:rs485-1") == health::LinkState::up &&
           rig.state("gas-boiler-house") == health::State::online;
  })) << rig.sim->log();
  rig.sim->control("fault 3 bad_crc");
  ASSERT_TRUE(rig.run_until([&] {
    auto l = rig.tracker.link("serial:rs485-1");
    if (!l) return false;
    for (const auto& [kind, n] : l->errors) {
      if (kind == "crc" && n > 0) return true;
    }
    return false;
  }));
  rig.sim.reset();
  rig.pty.reset();  // the adapter unplugged: the bus goes down, its devices offline
  ASSERT_TRUE(rig.run_until(
      [&] { return rig.tracker.link_state("serial:rs485-1") == health::LinkState::down; }, 5s));
  EXPECT_EQ(rig.state("water-basement"), health::State::offline);
  EXPECT_EQ(rig.state("gas-boiler-house"), health::State::offline);
  EXPECT_EQ(rig.tracker.device("water-basement")->reason, "link down");
}

}  // namespace
}  // namespace fieldhub::adapters
