// SPDX-License-Identifier: Apache-2.0
// The Modbus TCP adapter as the composition root builds it: the example configuration parses,
// and, pointed at fieldhub-modbus-sim, make_adapters() polls its devices into a real Pipeline.
#include "adapters/modbus_tcp/modbus_tcp_adapter.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
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

TEST(ModbusTcpAdapterTest, ExampleConfigParsesIntoTargetsSharingOneGateway) {
  const config::Config config = config::load_config(FIELDHUB_MODBUS_TCP_EXAMPLE);
  const auto targets = ModbusTcpAdapter::targets(config);
  ASSERT_EQ(targets.size(), 3U);
  EXPECT_EQ(targets[0].device_id, "meter-incomer");
  EXPECT_EQ(targets[0].host, "127.0.0.1");
  EXPECT_EQ(targets[0].port, 5020);
  EXPECT_EQ(targets[0].unit, 1);
  EXPECT_EQ(targets[1].unit, 4);
  EXPECT_EQ(targets[0].response_timeout, 800ms);  // the gateway connection's setting
  EXPECT_EQ(targets[0].max_in_flight, 1U);
  EXPECT_FALSE(targets[2].response_timeout);
  EXPECT_EQ(targets[2].host, "127.0.0.2");
  EXPECT_EQ(targets[2].port, 502);
  for (const auto& t : targets) {
    ASSERT_NE(t.profile, nullptr);
    EXPECT_FALSE(t.profile->registers.empty());
  }
}

TEST(ModbusTcpAdapterTest, PollsTheSimulatorIntoThePipeline) {
  testing::ModbusSimServer sim;  // built-in devices: unit 1 SDM630, unit 4 PLC
  testing::TempDir dir;
  std::string text = read_file(FIELDHUB_MODBUS_TCP_EXAMPLE);
  const std::string from = "127.0.0.1:5020";
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), "127.0.0.1:" + std::to_string(sim.port()));
  }
  // Only the gateway's two devices: the third address answers nowhere.
  text = text.substr(0, text.find("[[devices]]\nid = \"plc-cell-2\""));
  text.replace(text.find("../../../profiles"), 17, FIELDHUB_SOURCE_ROOT "/profiles");
  const auto file = dir.path() / "fieldhub.toml";
  std::ofstream(file) << text;
  const config::Config config = config::load_config(file);

  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  RecordingLiveStore live;
  CountingHistoryStore history;
  NullFeed feed;
  pipeline::Pipeline pipeline(io.get_executor(), config.pipeline, clock, metrics, live, history,
                              feed);
  pipeline.start();
  auto adapters = make_adapters(io.get_executor(), config, pipeline, metrics, clock);
  ASSERT_EQ(adapters.size(), 1U);
  EXPECT_EQ(adapters[0]->name(), "modbus_tcp");
  adapters[0]->start();

  const auto good = [&](const std::string& key) {
    auto it = live.latest.find(key);
    return it != live.latest.end() && it->second.quality == model::Quality::good;
  };
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end &&
         !(good("meter-incomer/voltage_l1") && good("plc-cell-1/temperature") &&
           history.readings_written > 0)) {
    io.run_for(20ms);
  }
  adapters[0]->stop();
  io.run_for(50ms);
  pipeline.stop();

  ASSERT_TRUE(good("meter-incomer/voltage_l1")) << sim.log();
  ASSERT_TRUE(good("plc-cell-1/temperature"));
  ASSERT_TRUE(good("plc-cell-1/count"));
  const auto& v = live.latest["meter-incomer/voltage_l1"];
  ASSERT_TRUE(std::holds_alternative<double>(v.value));
  EXPECT_NEAR(std::get<double>(v.value), 230.0, 30.0);
  EXPECT_EQ(v.provenance.adapter, "modbus_tcp");
  EXPECT_EQ(v.provenance.link, "127.0.0.1:" + std::to_string(sim.port()));
  EXPECT_GT(history.readings_written.load(), 0U);
  // One connection for both units behind the gateway.
  const auto& adapter = static_cast<const ModbusTcpAdapter&>(*adapters[0]);
  EXPECT_EQ(adapter.poller().link_count(), 1U);
  // Every register was read: no transport fault. (The simulator's PLC template is not the
  // modbus-plc profile's map, so some of its values are out of range or not text: the
  // decoder's verdicts, not the poller's.)
  for (const auto& [key, r] : live.latest) {
    EXPECT_NE(r.quality_reason, "timeout") << key;
    EXPECT_NE(r.quality_reason, "connection_lost") << key;
    EXPECT_NE(r.quality_reason, "misconfigured") << key;
    if (key.rfind("meter-incomer/", 0) == 0) {
      EXPECT_EQ(r.quality, model::Quality::good) << key << ": " << r.quality_reason;
    }
  }
}

// One simulated SDM630 polled by the adapter into a real Pipeline with a HealthTracker.
struct HealthRig {
  HealthRig() {
    tracker.register_device("meter", 1000ms, link, {}, health::Cadence::polled);
    pipeline.set_health(&tracker);
    pipeline.start();
    adapter =
        std::make_unique<ModbusTcpAdapter>(io.get_executor(), config, pipeline, metrics, clock);
    adapter->start();
  }
  ~HealthRig() {
    adapter->stop();
    io.run_for(50ms);
    pipeline.stop();
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done()) io.run_for(20ms);
    return done();
  }
  health::State state() { return tracker.device("meter")->state; }
  config::Config load() {
    std::ofstream(dir.path() / "fieldhub.toml")
        << "data_dir = \"data\"\nprofiles_dir = \"" FIELDHUB_SOURCE_ROOT "/profiles\"\n"
        << "[[devices]]\nid = \"meter\"\nsite = \"lab\"\nprofile = \"eastron-sdm630\"\n"
        << "protocol = \"modbus_tcp\"\naddress = \"" << target << "\"\nunit_id = 1\n";
    return config::load_config(dir.path() / "fieldhub.toml");
  }

  testing::ModbusSimServer sim;
  testing::TempDir dir;
  const std::string target = "127.0.0.1:" + std::to_string(sim.port());
  const std::string link = "modbus:" + target;
  config::Config config = load();
  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  RecordingLiveStore live;
  CountingHistoryStore history;
  NullFeed feed;
  health::HealthTracker tracker{clock};
  pipeline::Pipeline pipeline{
      io.get_executor(), config.pipeline, clock, metrics, live, history, feed};
  std::unique_ptr<ModbusTcpAdapter> adapter;
};

TEST(ModbusTcpAdapterTest, ReportsLinkAndGatewayOfflineToTheHealthTracker) {
  HealthRig rig;
  EXPECT_TRUE(rig.run_until([&] {
    return rig.tracker.link_state(rig.link) == health::LinkState::up &&
           rig.state() == health::State::online;
  }));
  EXPECT_TRUE(rig.run_until([&] {
    auto l = rig.tracker.link(rig.link);
    return l && l->rtt.samples > 0;
  }));
  // A gateway answering 0B: the device is offline, the link stays up.
  rig.sim.control("fault 1 exception code=0x0B");
  EXPECT_TRUE(rig.run_until([&] { return rig.state() == health::State::offline; }));
  EXPECT_EQ(rig.tracker.link_state(rig.link), health::LinkState::up);
  int not_offline = 0;
  const auto end = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < end) {
    rig.io.run_for(10ms);
    if (rig.state() != health::State::offline) ++not_offline;
  }
  EXPECT_EQ(not_offline, 0);  // later cycles' bad readings do not make it look online
}

// RELIABILITY.md: a slave gone silent behind a live link is offline within 5 s (its failed
// cycles are not mistaken for the device being heard), and online again once it answers.
TEST(ModbusTcpAdapterTest, SilentDeviceGoesOfflineWithinFiveSecondsAndReturns) {
  HealthRig rig;
  ASSERT_TRUE(rig.run_until([&] { return rig.state() == health::State::online; }));
  rig.sim.control("fault 1 silence");
  const auto silent_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(rig.run_until([&] { return rig.state() == health::State::offline; }, 6s));
  EXPECT_LE(std::chrono::steady_clock::now() - silent_at, 5s);
  EXPECT_EQ(rig.tracker.link_state(rig.link), health::LinkState::up);
  rig.sim.control("clear 1");
  EXPECT_TRUE(rig.run_until([&] { return rig.state() == health::State::online; }, 15s));
}

// History stalls: the pipeline's queue reaches its capacity, and the poller stops polling (each
// cycle due meanwhile counted as missed) instead of queueing readings without bound; once history
// takes writes again, polling resumes and every cycle read was stored.
TEST(ModbusTcpAdapterTest, PollingHoldsWhileThePipelineIsSaturatedAndResumes) {
  testing::ModbusSimServer sim;
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "profiles");
  std::ofstream(dir.path() / "profiles" / "fast-meter.toml")
      << "kind = \"meter\"\nsource = \"test\"\n[modbus]\npoll_interval = \"50ms\"\n"
      << "[[metrics]]\nname = \"voltage\"\nunit = \"V\"\n"
      << "modbus = { function = \"input\", address = 0, type = \"float32\" }\n";
  const std::string target = "127.0.0.1:" + std::to_string(sim.port());
  std::ofstream(dir.path() / "fieldhub.toml")
      << "data_dir = \"data\"\nprofiles_dir = \"profiles\"\n[pipeline]\nqueue_capacity = 4\n"
      << "[[devices]]\nid = \"meter\"\nsite = \"lab\"\nprofile = \"fast-meter\"\n"
      << "protocol = \"modbus_tcp\"\naddress = \"" << target << "\"\nunit_id = 1\n";
  const config::Config config = config::load_config(dir.path() / "fieldhub.toml");

  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  RecordingLiveStore live;
  CountingHistoryStore history;
  history.hold();
  NullFeed feed;
  pipeline::Pipeline pipeline(io.get_executor(), config.pipeline, clock, metrics, live, history,
                              feed);
  pipeline.start();
  ModbusTcpAdapter adapter(io.get_executor(), config, pipeline, metrics, clock);
  adapter.start();
  const auto run_until = [&](const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !done()) io.run_for(10ms);
    return done();
  };
  const auto requests = [&] {
    return metrics.counter_value("fieldhub_modbus_requests_total", {{"target", target}});
  };
  const auto missed = [&] {
    return metrics.counter_value("fieldhub_modbus_cycles_missed_total",
                                 {{"adapter", "modbus_tcp"}});
  };
  const auto cycles = [&] {
    return metrics.counter_value("fieldhub_modbus_cycles_total", {{"adapter", "modbus_tcp"}});
  };

  ASSERT_TRUE(run_until([&] { return pipeline.saturated(); }, 5s)) << sim.log();
  const auto requests_held = requests();
  const auto missed_held = missed();
  // Ten intervals with history stalled: at most the cycle already in flight is finished.
  const auto window_end = std::chrono::steady_clock::now() + 500ms;
  while (std::chrono::steady_clock::now() < window_end) io.run_for(10ms);
  EXPECT_TRUE(pipeline.saturated());
  EXPECT_LE(requests(), requests_held + 1);
  EXPECT_GE(missed(), missed_held + 5);

  history.release();
  const auto resumed_from = requests();
  ASSERT_TRUE(
      run_until([&] { return !pipeline.saturated() && requests() >= resumed_from + 5; }, 5s));
  const auto polled = cycles();
  ASSERT_TRUE(run_until([&] { return history.readings_written.load() >= polled; }, 5s));
  adapter.stop();
  io.run_for(50ms);
  pipeline.stop();
  EXPECT_EQ(live.latest["meter/voltage"].quality, model::Quality::good);
  std::printf("held at %llu requests; %llu cycles missed while saturated; %llu readings stored\n",
              static_cast<unsigned long long>(requests_held),
              static_cast<unsigned long long>(missed() - missed_held),
              static_cast<unsigned long long>(history.readings_written.load()));
}
}  // namespace
}  // namespace fieldhub::adapters
