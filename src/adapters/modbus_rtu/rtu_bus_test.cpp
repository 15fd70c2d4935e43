// SPDX-License-Identifier: Apache-2.0
// Modbus RTU polling over real serial lines (socat pty pairs) against real peers: pymodbus (a
// server we did not write) for decoding, byte orders and writes; fieldhub-modbus-sim with
// runtime faults for bad CRC, wrong unit, truncation, noise, echo, silence, late replies, a dead
// slave among healthy ones, and a bus whose device disappears and comes back.
#include "adapters/modbus_rtu/rtu_bus.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "adapters/modbus_rtu/rtu_poller.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "support/modbus_poll_fixture.h"
#include "support/modbus_servers.h"
#include "support/serial_port.h"

namespace fieldhub::modbus {
namespace {

using namespace std::chrono_literals;
using config::ByteOrder;
using config::ModbusFunction;
using config::ModbusType;
constexpr auto make_profile = testing::make_modbus_profile;

config::SerialBus make_bus(const std::filesystem::path& device, unsigned baud = 19200) {
  config::SerialBus b;
  b.name = "bus1";
  b.device = device.string();
  b.baud = baud;
  b.parity = 'N';
  b.response_timeout = 200ms;
  b.late_reply_window = 400ms;
  return b;
}

// Runs a poller on a private io_context in the test thread; records every reading.
class Harness : public testing::ReadingLog {
 public:
  // Devices "dev<unit>" for each of `units`, all with `profile`.
  Harness(const config::Profile& profile, config::SerialBus bus, std::vector<std::uint8_t> units,
          bool start_now = true) {
    std::vector<RtuDeviceTarget> targets;
    for (auto unit : units) {
      targets.push_back(RtuDeviceTarget{"dev" + std::to_string(unit), &profile, bus.name, unit});
    }
    RtuPollerOptions options;
    options.bus.reopen_min = 200ms;
    options.bus.reopen_max = 1000ms;
    options.offline_poll_max = 1000ms;
    poller.emplace(io.get_executor(), std::vector<config::SerialBus>{bus}, std::move(targets),
                   options, metrics, clock,
                   [this](const std::string& device, const std::string& link,
                          std::vector<model::Reading>&& readings) {
                     ++cycles[device];
                     record("modbus_rtu", link, readings);
                   });
    PollHooks hooks;
    hooks.link = [this](const std::string&, bool up, const std::string& reason) {
      link_events.push_back(std::string(up ? "up" : "down:") + (up ? "" : reason));
    };
    poller->set_status_hooks(std::move(hooks));
    if (start_now) poller->start();
  }
  ~Harness() {
    poller->stop();
    io.run_for(50ms);
  }

  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    return testing::run_io_until(io, condition, deadline);
  }
  void run_for(std::chrono::milliseconds d) { io.run_for(d); }
  std::uint64_t errors(std::string_view kind) const { return poller->bus_errors("bus1", kind); }

  // Every good reading of `metric` (any device) had `expected`.
  void expect_only(const std::string& metric, double expected) const {
    for (const auto& r : all) {
      if (r.metric != metric || r.quality != model::Quality::good) continue;
      EXPECT_DOUBLE_EQ(std::get<double>(r.value), expected) << r.device_id << "/" << metric;
    }
  }

  boost::asio::io_context io;
  common::Metrics metrics;
  common::SystemClock clock;
  std::optional<RtuPoller> poller;
  std::map<std::string, int> cycles;
  std::vector<std::string> link_events;
};

TEST(RtuTiming, FrameGapIsThreeAndAHalfCharactersAndFixedAbove19200) {
  config::SerialBus b;
  b.baud = 9600;
  b.parity = 'E';  // 11 bits a character
  EXPECT_EQ(rtu_frame_gap(b).count(), 4010);
  b.parity = 'N';
  b.stop_bits = 1;  // 10 bits
  EXPECT_EQ(rtu_frame_gap(b).count(), 3646);
  b.baud = 19200;
  EXPECT_EQ(rtu_frame_gap(b).count(), 1823);
  b.baud = 38400;
  EXPECT_EQ(rtu_frame_gap(b).count(), 1750);
  b.baud = 115200;
  EXPECT_EQ(rtu_frame_gap(b).count(), 1750);
  b.baud = 9600;
  EXPECT_EQ(rtu_transmit_time(b, 8).count(), 8333);  // an 8-byte request at 9600 8N1
}

// ---- pymodbus: a peer we did not write --------------------------------------------------------

TEST(RtuPymodbus, DecodesSdm630VoltageAndFloat32InAllFourWordOrders) {
  testing::PtyPair pty;
  testing::PymodbusServer server(pty.a(), 19200);
  const auto profile =
      make_profile({{"voltage_l1", ModbusFunction::input, 0, ModbusType::float32},
                    {"frequency", ModbusFunction::input, 2, ModbusType::float32},
                    {"abcd", ModbusFunction::holding, 0, ModbusType::float32, ByteOrder::abcd},
                    {"cdab", ModbusFunction::holding, 2, ModbusType::float32, ByteOrder::cdab},
                    {"badc", ModbusFunction::holding, 4, ModbusType::float32, ByteOrder::badc},
                    {"dcba", ModbusFunction::holding, 6, ModbusType::float32, ByteOrder::dcba},
                    {"int64", ModbusFunction::holding, 13, ModbusType::int64}},
                   200ms);
  Harness h(profile, make_bus(pty.b()), {1});
  ASSERT_TRUE(h.run_until(
      [&] {
        return h.good("dev1/voltage_l1") && h.good("dev1/abcd") && h.good("dev1/cdab") &&
               h.good("dev1/badc") && h.good("dev1/dcba") && h.good("dev1/int64");
      },
      10s))
      << server.log();
  EXPECT_FLOAT_EQ(static_cast<float>(h.number("dev1/voltage_l1")), 230.2F);
  EXPECT_DOUBLE_EQ(h.number("dev1/frequency"), 50.0);
  for (const char* order : {"abcd", "cdab", "badc", "dcba"}) {
    EXPECT_DOUBLE_EQ(h.number(std::string("dev1/") + order), 123456.0) << order;
  }
  EXPECT_DOUBLE_EQ(h.number("dev1/int64"), -1234567890123.0);
  EXPECT_TRUE(h.poller->device_online("dev1"));
  EXPECT_TRUE(h.poller->bus_up("bus1"));
  EXPECT_EQ(h.errors("crc"), 0U);
}

// Each word order written with FC16, read back by the write path, then seen by the poll: the
// same codec both ways.
TEST(RtuPymodbus, WritesFloat32InEachWordOrderAndReadsItBack) {
  testing::PtyPair pty;
  testing::PymodbusServer server(pty.a(), 19200);
  const auto profile = make_profile(
      {{"abcd", ModbusFunction::holding, 0, ModbusType::float32, ByteOrder::abcd, true},
       {"cdab", ModbusFunction::holding, 2, ModbusType::float32, ByteOrder::cdab, true},
       {"badc", ModbusFunction::holding, 4, ModbusType::float32, ByteOrder::badc, true},
       {"dcba", ModbusFunction::holding, 6, ModbusType::float32, ByteOrder::dcba, true},
       {"readonly", ModbusFunction::input, 0, ModbusType::float32}},
      200ms);
  Harness h(profile, make_bus(pty.b()), {1});
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/abcd"); }, 10s)) << server.log();
  std::map<std::string, WriteResult> results;
  const std::map<std::string, double> values = {
      {"abcd", -42.25}, {"cdab", 98765.5}, {"badc", 0.125}, {"dcba", 1e6}};
  for (const auto& [metric, value] : values) {
    h.poller->write("dev1", metric, value,
                    [&, m = metric](const WriteResult& r) { results[m] = r; });
  }
  h.poller->write("dev1", "readonly", 1.0, [&](const WriteResult& r) { results["readonly"] = r; });
  h.poller->write("dev9", "abcd", 1.0, [&](const WriteResult& r) { results["nodev"] = r; });
  ASSERT_TRUE(h.run_until([&] { return results.size() == 6; }, 10s));
  for (const auto& [metric, value] : values) {
    EXPECT_TRUE(results[metric].ok()) << metric << ": " << results[metric].detail;
  }
  EXPECT_EQ(results["readonly"].error, WriteError::not_writable);
  EXPECT_EQ(results["nodev"].error, WriteError::not_writable);
  // The next polls read what was written, through the same byte orders.
  ASSERT_TRUE(h.run_until(
      [&] {
        for (const auto& [metric, value] : values) {
          if (h.number("dev1/" + metric) != value) return false;
        }
        return true;
      },
      5s));
}

// ---- fieldhub-modbus-sim faults ---------------------------------------------------------------

// Units 1, 2, 3: holding 0..1 = unit*10+1, unit*10+2 and holding 20..21 = unit*10+3, unit*10+4
// (two reads of the same shape per device, so a reply taken for the wrong request would show).
std::string sim_units() {
  std::string toml;
  for (int unit = 1; unit <= 3; ++unit) {
    const int base = unit * 10;
    toml += "[[unit]]\nid = " + std::to_string(unit) + "\nname = \"u" + std::to_string(unit) +
            "\"\nregisters = [ { table = \"holding\", address = 0, values = [" +
            std::to_string(base + 1) + ", " + std::to_string(base + 2) +
            "] }, { table = \"holding\", address = 20, values = [" + std::to_string(base + 3) +
            ", " + std::to_string(base + 4) + "] } ]\n";
  }
  return toml;
}

config::Profile sim_profile(std::chrono::milliseconds interval = 100ms) {
  return make_profile({{"a", ModbusFunction::holding, 0, ModbusType::uint16},
                       {"b", ModbusFunction::holding, 1, ModbusType::uint16},
                       {"c", ModbusFunction::holding, 20, ModbusType::uint16},
                       {"d", ModbusFunction::holding, 21, ModbusType::uint16}},
                      interval);
}

class RtuSim : public ::testing::Test {
 protected:
  RtuSim()
      : sim_({.config_toml = sim_units(), .tcp = false, .rtu_device = pty_.a(), .baud = 19200}) {}

  // Every good value was the right one, for each device.
  void expect_right_values(const Harness& h, const std::vector<int>& units) {
    for (const auto& r : h.all) {
      if (r.quality != model::Quality::good) continue;
      const int unit = std::stoi(r.device_id.substr(3));
      const int offset = r.metric == "a" ? 1 : r.metric == "b" ? 2 : r.metric == "c" ? 3 : 4;
      EXPECT_DOUBLE_EQ(std::get<double>(r.value), unit * 10 + offset)
          << r.device_id << "/" << r.metric;
    }
    for (int unit : units) {
      const std::string dev = "dev" + std::to_string(unit);
      EXPECT_TRUE(h.good(dev + "/a") && h.good(dev + "/c")) << dev;
    }
  }

  testing::PtyPair pty_;
  testing::ModbusSimServer sim_;
  config::Profile profile_ = sim_profile();
};

TEST_F(RtuSim, ManySlavesOnOneBusEachGetTheirOwnValues) {
  Harness h(profile_, make_bus(pty_.b()), {1, 2, 3});
  ASSERT_TRUE(h.run_until([&] { return h.cycles["dev1"] >= 5 && h.cycles["dev3"] >= 5; }, 10s))
      << sim_.log();
  expect_right_values(h, {1, 2, 3});
  EXPECT_EQ(h.errors("timeout"), 0U);
  EXPECT_EQ(h.link_events.front(), "up");
}

TEST_F(RtuSim, BadCrcIsRejectedCountedAndRetried) {
  sim_.control("fault 1 bad_crc every=3");
  Harness h(profile_, make_bus(pty_.b()), {1, 2});
  ASSERT_TRUE(h.run_until([&] { return h.errors("crc") >= 3 && h.cycles["dev1"] >= 8; }, 10s));
  expect_right_values(h, {1, 2});
  EXPECT_TRUE(h.poller->device_online("dev1"));
}

TEST_F(RtuSim, WrongUnitReplyIsIgnoredAndCounted) {
  sim_.control("fault 1 wrong_unit every=3");
  Harness h(profile_, make_bus(pty_.b()), {1, 2});
  ASSERT_TRUE(
      h.run_until([&] { return h.errors("wrong_unit") >= 2 && h.cycles["dev1"] >= 6; }, 10s));
  // Unit 2's own values were never taken from unit 1's misaddressed frame, and vice versa.
  expect_right_values(h, {1, 2});
}

TEST_F(RtuSim, NoiseAndEchoAroundTheReplyAreSkipped) {
  sim_.control("fault 1 noise_before bytes=5 every=2");
  sim_.control("fault 2 noise_after bytes=3 every=2");
  sim_.control("fault 3 echo every=2");
  Harness h(profile_, make_bus(pty_.b()), {1, 2, 3});
  ASSERT_TRUE(h.run_until(
      [&] { return h.errors("noise") >= 4 && h.cycles["dev1"] >= 6 && h.cycles["dev3"] >= 6; },
      10s));
  expect_right_values(h, {1, 2, 3});
  // Noise and echoes cost no request: no timeouts.
  EXPECT_EQ(h.errors("timeout"), 0U);
}

TEST_F(RtuSim, TruncatedReplyGivesBadQualityTruncatedNeverAValue) {
  sim_.control("fault 1 truncated bytes=3 from=20 to=21");
  Harness h(profile_, make_bus(pty_.b()), {1});
  ASSERT_TRUE(h.run_until([&] { return h.bad("dev1/c", "truncated") && h.good("dev1/a"); }, 10s));
  EXPECT_GE(h.errors("truncated"), 2U);  // and its retry
  expect_right_values(h, {});
  EXPECT_TRUE(h.poller->device_online("dev1"));  // the other read still answers
}

TEST_F(RtuSim, SilentSlaveTimesOutGoesOfflineAndReturns) {
  Harness h(profile_, make_bus(pty_.b()), {1, 2});
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a") && h.good("dev2/a"); }, 10s));
  sim_.control("stop 1");
  ASSERT_TRUE(h.run_until([&] { return !h.poller->device_online("dev1"); }, 5s));
  EXPECT_TRUE(h.bad("dev1/a", "timeout"));
  EXPECT_TRUE(h.poller->device_online("dev2"));
  EXPECT_TRUE(h.poller->bus_up("bus1"));  // the bus is fine, one slave is not
  sim_.control("start 1");
  h.latest.erase("dev1/a");
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a"); }, 5s));
  EXPECT_TRUE(h.poller->device_online("dev1"));
  expect_right_values(h, {1, 2});
}

// The late reply (300 ms after the request, the timeout is 200 ms) of one read must never be
// taken for the device's other read of the same shape, nor for another slave's read.
TEST_F(RtuSim, LateReplyIsNeverTakenForTheNextAnswer) {
  sim_.control("fault 1 late delay_ms=300 every=2");
  Harness h(profile_, make_bus(pty_.b()), {1, 2});
  ASSERT_TRUE(h.run_until(
      [&] { return h.errors("timeout") >= 4 && h.cycles["dev1"] >= 6 && h.cycles["dev2"] >= 6; },
      15s));
  expect_right_values(h, {2});
  // The late frames arrived and were dropped: while the bus was idle or as another unit's frame.
  EXPECT_GE(h.errors("late_reply") + h.errors("wrong_unit"), 2U);
}

// RELIABILITY.md: one dead slave on an RTU bus costs the others at most one timeout per cycle and
// is then polled at backoff rate. Measured as cycles per second of the healthy slaves.
TEST_F(RtuSim, DeadSlaveCostsTheOthersAtMostOneTimeoutPerCycle) {
  const auto profile = sim_profile(100ms);
  const auto measure = [&](bool with_dead) {
    std::vector<std::uint8_t> units = {1, 2};
    if (with_dead) units.push_back(3);
    Harness h(profile, make_bus(pty_.b()), units);
    // Let the dead one go offline first (3 failed cycles), then count 3 s of healthy cycles.
    h.run_for(with_dead ? 2000ms : 300ms);
    const int before = h.cycles["dev1"] + h.cycles["dev2"];
    const auto start = std::chrono::steady_clock::now();
    h.run_for(3000ms);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (with_dead) {
      EXPECT_FALSE(h.poller->device_online("dev3"));
    }
    return (h.cycles["dev1"] + h.cycles["dev2"] - before) / seconds / 2;
  };
  const double healthy = measure(false);
  sim_.control("stop 3");
  const double with_dead = measure(true);
  std::printf("healthy slave cycles/s: %.2f alone, %.2f with a dead slave on the bus\n", healthy,
              with_dead);
  // Interval 100 ms: ~10 cycles/s. An offline dead slave is asked at most once a second (backoff
  // cap 1 s here) and costs one 200 ms timeout then, so the others keep most of their rate.
  EXPECT_GT(healthy, 7.0);
  EXPECT_GT(with_dead, healthy * 0.7);
}

// ---- the bus itself ---------------------------------------------------------------------------

// RELIABILITY.md on a serial line too: 05/06 busy-retry for writes, and a write the slave does not
// keep (the simulator acknowledges FC06 but leaves the register) fails as mismatch.
TEST_F(RtuSim, BusyWriteIsRetriedAndAWriteTheSlaveDoesNotKeepIsAMismatch) {
  const auto profile = make_profile(
      {{"a", ModbusFunction::holding, 0, ModbusType::uint16, ByteOrder::abcd, true}}, 100ms);
  Harness h(profile, make_bus(pty_.b()), {1});
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a"); }, 10s)) << sim_.log();
  ASSERT_DOUBLE_EQ(h.number("dev1/a"), 11.0);

  sim_.control("fault 1 exception code=6 function=6 times=2");
  std::optional<WriteResult> taken;
  h.poller->write("dev1", "a", 42.0, [&](const WriteResult& r) { taken = r; });
  ASSERT_TRUE(h.run_until([&] { return taken.has_value(); }, 10s));
  EXPECT_TRUE(taken->ok()) << taken->detail;
  EXPECT_EQ(h.metrics.counter_value("fieldhub_modbus_exceptions_total", {{"code", "06"}}), 2U);
  ASSERT_TRUE(h.run_until([&] { return h.number("dev1/a") == 42.0; }, 5s));

  sim_.control("clear 1");
  sim_.control("fault 1 ignore_write function=6");
  std::optional<WriteResult> kept;
  h.poller->write("dev1", "a", 43.0, [&](const WriteResult& r) { kept = r; });
  ASSERT_TRUE(h.run_until([&] { return kept.has_value(); }, 10s));
  EXPECT_EQ(kept->error, WriteError::mismatch);
  EXPECT_EQ(kept->detail, "read back 42, wrote 43");
  h.latest.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a"); }, 5s));
  EXPECT_DOUBLE_EQ(h.number("dev1/a"), 42.0);
}

TEST(RtuBusLink, DeviceFileGoneTakesTheBusDownAndItReopensWhenItReturns) {
  testing::TempDir dir;
  const auto a = dir.path() / "a";
  const auto b = dir.path() / "b";
  const auto profile = sim_profile();
  std::optional<testing::PtyPair> pty(std::in_place, a, b);
  std::optional<testing::ModbusSimServer> sim(
      testing::ModbusSimOptions{.config_toml = sim_units(), .tcp = false, .rtu_device = a});
  Harness h(profile, make_bus(b), {1});
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a"); }, 10s));
  sim.reset();
  pty.reset();  // socat gone: the pty closes and its links disappear
  ASSERT_TRUE(h.run_until([&] { return !h.poller->bus_up("bus1"); }, 5s));
  ASSERT_FALSE(h.link_events.empty());
  EXPECT_EQ(h.link_events.back().rfind("down:", 0), 0U) << h.link_events.back();
  ASSERT_TRUE(h.run_until([&] { return h.bad("dev1/a", "connection_lost"); }, 5s));
  h.run_for(500ms);  // a reopen attempt or two fail: the device file is not there
  EXPECT_FALSE(h.poller->bus_up("bus1"));

  pty.emplace(a, b);
  sim.emplace(testing::ModbusSimOptions{.config_toml = sim_units(), .tcp = false, .rtu_device = a});
  h.latest.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("dev1/a"); }, 10s));
  EXPECT_TRUE(h.poller->bus_up("bus1"));
  EXPECT_EQ(h.link_events.back(), "up");
}

}  // namespace
}  // namespace fieldhub::modbus
