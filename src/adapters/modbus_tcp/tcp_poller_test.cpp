// SPDX-License-Identifier: Apache-2.0
// Modbus TCP polling against real peers: pymodbus (a server we did not write) for decoding and
// byte orders, fieldhub-modbus-sim with runtime faults for timeouts, late replies, exceptions,
// gateway errors and a killed server.
#include "adapters/modbus_tcp/tcp_poller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <csignal>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "support/modbus_poll_fixture.h"
#include "support/modbus_servers.h"

namespace fieldhub::modbus {
namespace {

using namespace std::chrono_literals;
using config::ByteOrder;
using config::ModbusFunction;
using config::ModbusType;
constexpr auto make_profile = testing::make_modbus_profile;

// Runs a poller on a private io_context in the test thread and records its readings.
class Harness : public testing::ReadingLog {
 public:
  // One device "dev" at unit 1, or devices "dev<unit>" for each of `units`.
  Harness(const config::Profile& profile, std::uint16_t port, std::vector<std::uint8_t> units = {},
          TcpPollerOptions options = fast_options()) {
    std::vector<TcpDeviceTarget> targets;
    for (std::size_t i = 0; i < std::max<std::size_t>(units.size(), 1); ++i) {
      TcpDeviceTarget t;
      t.device_id = units.empty() ? "dev" : "dev" + std::to_string(units[i]);
      t.profile = &profile;
      t.host = "127.0.0.1";
      t.port = port;
      t.unit = units.empty() ? 1 : units[i];
      targets.push_back(t);
    }
    target = "127.0.0.1:" + std::to_string(port);
    poller.emplace(io.get_executor(), std::move(targets), options, metrics, clock,
                   [this](const std::string&, const std::string& link,
                          std::vector<model::Reading>&& readings) {
                     ++cycles;
                     record("modbus_tcp", link, readings);
                   });
    poller->start();
  }
  ~Harness() {
    poller->stop();
    io.run_for(50ms);
  }

  static TcpPollerOptions fast_options() {
    TcpPollerOptions o;
    o.link.response_timeout = 300ms;
    o.link.connect_timeout = 1000ms;
    o.link.reconnect_min = 200ms;
    o.link.reconnect_max = 1000ms;
    o.offline_poll_max = 1000ms;
    return o;
  }

  bool run_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    return testing::run_io_until(io, condition, deadline);
  }

  boost::asio::io_context io;
  common::Metrics metrics;
  common::SystemClock clock;
  std::string target;
  std::optional<TcpPoller> poller;
  int cycles = 0;
};

TEST(ModbusTcpPollerTest, ReadsTheSdm630VectorAndAllFourByteOrdersFromPymodbus) {
  testing::PymodbusServer server;
  const auto profile =
      make_profile({{"voltage_l1", ModbusFunction::input, 0, ModbusType::float32},
                    {"abcd", ModbusFunction::holding, 0, ModbusType::float32, ByteOrder::abcd},
                    {"cdab", ModbusFunction::holding, 2, ModbusType::float32, ByteOrder::cdab},
                    {"badc", ModbusFunction::holding, 4, ModbusType::float32, ByteOrder::badc},
                    {"dcba", ModbusFunction::holding, 6, ModbusType::float32, ByteOrder::dcba},
                    {"int16", ModbusFunction::holding, 8, ModbusType::int16}},
                   200ms);
  Harness h(profile, server.port());
  ASSERT_TRUE(h.run_until(
      [&] {
        return h.good("voltage_l1") && h.good("abcd") && h.good("cdab") && h.good("badc") &&
               h.good("dcba") && h.good("int16");
      },
      10s))
      << server.log();
  EXPECT_FLOAT_EQ(static_cast<float>(h.number("voltage_l1")), 230.2F);
  for (const char* order : {"abcd", "cdab", "badc", "dcba"}) {
    EXPECT_DOUBLE_EQ(h.number(order), 123456.0) << order;
  }
  EXPECT_DOUBLE_EQ(h.number("int16"), -1234.0);
  EXPECT_TRUE(h.poller->device_online("dev"));
  EXPECT_TRUE(h.poller->link_up(h.target));
}

// Writes through the same codec as reads: each word order written with FC16 to a server we did
// not write, read back by the write path, then polled identically.
void write_each_order_and_read_back(std::uint16_t port) {
  const auto profile = make_profile(
      {{"abcd", ModbusFunction::holding, 0, ModbusType::float32, ByteOrder::abcd, true},
       {"cdab", ModbusFunction::holding, 2, ModbusType::float32, ByteOrder::cdab, true},
       {"badc", ModbusFunction::holding, 4, ModbusType::float32, ByteOrder::badc, true},
       {"dcba", ModbusFunction::holding, 6, ModbusType::float32, ByteOrder::dcba, true},
       {"fixed", ModbusFunction::holding, 8, ModbusType::int16}},
      200ms);
  Harness h(profile, port);
  ASSERT_TRUE(h.run_until([&] { return h.good("abcd"); }, 10s));
  const std::map<std::string, double> values = {
      {"abcd", -42.25}, {"cdab", 98765.5}, {"badc", 0.125}, {"dcba", 1e6}};
  std::map<std::string, WriteResult> results;
  for (const auto& [metric, value] : values) {
    h.poller->write("dev", metric, value,
                    [&, m = metric](const WriteResult& r) { results[m] = r; });
  }
  h.poller->write("dev", "fixed", 1.0, [&](const WriteResult& r) { results["fixed"] = r; });
  h.poller->write("dev", "abcd", std::string("text"),
                  [&](const WriteResult& r) { results["text"] = r; });
  ASSERT_TRUE(h.run_until([&] { return results.size() == 6; }, 10s));
  for (const auto& [metric, value] : values) {
    EXPECT_TRUE(results[metric].ok()) << metric << ": " << results[metric].detail;
  }
  EXPECT_EQ(results["fixed"].error, WriteError::not_writable);
  EXPECT_EQ(results["text"].error, WriteError::invalid_value);
  ASSERT_TRUE(h.run_until(
      [&] {
        for (const auto& [metric, value] : values) {
          if (h.number(metric) != value) return false;
        }
        return true;
      },
      5s));
}

TEST(ModbusTcpPollerTest, WritesFloat32InEachWordOrderToPymodbusAndReadsItBack) {
  testing::PymodbusServer server;
  write_each_order_and_read_back(server.port());
}

TEST(ModbusTcpPollerTest, WritesFloat32InEachWordOrderToTheSimulatorAndReadsItBack) {
  testing::ModbusSimOptions o;
  o.config_toml = "[[tcp]]\nport = 0\nhost = \"127.0.0.1\"\n[[unit]]\nid = 1\nname = \"u\"\n";
  testing::ModbusSimServer sim(o);
  write_each_order_and_read_back(sim.port());
}

// Unit 1: holding 0..5 = 1..6, holding 0x10 = 215, on a free port; with `fixed_port`, also on
// that port (a second listener: the first one always gets a free port).
testing::ModbusSimOptions sim_options(std::uint16_t fixed_port = 0) {
  testing::ModbusSimOptions o;
  o.config_toml = "[[tcp]]\nport = 0\nhost = \"127.0.0.1\"\n";
  if (fixed_port != 0) {
    o.config_toml += "[[tcp]]\nport = " + std::to_string(fixed_port) + "\nhost = \"127.0.0.1\"\n";
  }
  o.config_toml +=
      "[[unit]]\nid = 1\nname = \"plc\"\n"
      "registers = [ { table = \"holding\", address = 0, values = [1, 2, 3, 4, 5, 6] },"
      " { table = \"holding\", address = 16, values = [215] } ]\n";
  return o;
}

config::Profile sim_profile() {
  // a/b/c merge into one read of 0..4; setpoint (0x10) is a read of its own (hole > 8).
  return make_profile({{"a", ModbusFunction::holding, 0, ModbusType::uint16},
                       {"b", ModbusFunction::holding, 2, ModbusType::uint16},
                       {"c", ModbusFunction::holding, 4, ModbusType::uint16},
                       {"setpoint", ModbusFunction::holding, 16, ModbusType::uint16}},
                      200ms);
}

TEST(ModbusTcpPollerTest, SilenceGivesBadQualityTimeoutThenOfflineAndRecovers) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = sim_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until([&] { return h.good("a") && h.good("setpoint"); }, 5s)) << sim.log();
  EXPECT_DOUBLE_EQ(h.number("setpoint"), 215.0);

  sim.control("stop 1");
  const auto silent = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      h.run_until([&] { return h.bad("a", "timeout") && h.bad("setpoint", "timeout"); }, 3s));
  const auto to_bad = std::chrono::steady_clock::now() - silent;
  ASSERT_TRUE(h.run_until([&] { return !h.poller->device_online("dev"); }, 5s));
  const auto to_offline = std::chrono::steady_clock::now() - silent;
  EXPECT_LT(to_offline, 5s);  // RELIABILITY.md: offline ≤ 5 s
  EXPECT_TRUE(h.poller->link_up(h.target));
  std::printf(
      "silence: bad quality after %lld ms, offline after %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(to_bad).count()),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(to_offline).count()));

  sim.control("start 1");
  ASSERT_TRUE(h.run_until([&] { return h.good("a") && h.poller->device_online("dev"); }, 5s));
  EXPECT_DOUBLE_EQ(h.number("a"), 1.0);
}

TEST(ModbusTcpPollerTest, LateReplyIsDiscardedCountedAndNeverTakenForAnotherRegister) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = sim_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until([&] { return h.good("a") && h.good("setpoint"); }, 5s)) << sim.log();

  // Replies for the setpoint come after the timeout, while the next read (a/b/c) is in flight: a
  // client matching by arrival would read 215 as "a".
  sim.control("fault 1 late delay_ms=400 from=16 to=16");
  ASSERT_TRUE(h.run_until([&] { return h.poller->late_replies(h.target) >= 3; }, 8s));
  EXPECT_TRUE(h.bad("setpoint", "timeout"));
  sim.control("clear 1");
  h.all.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  EXPECT_DOUBLE_EQ(h.number("setpoint"), 215.0);
  h.run_until([] { return false; }, 500ms);
  for (const auto& r : h.all) {
    if (r.quality != model::Quality::good) continue;
    const double v = std::get<double>(r.value);
    if (r.metric == "a") {
      EXPECT_DOUBLE_EQ(v, 1.0);
    }
    if (r.metric == "b") {
      EXPECT_DOUBLE_EQ(v, 3.0);
    }
    if (r.metric == "c") {
      EXPECT_DOUBLE_EQ(v, 5.0);
    }
    if (r.metric == "setpoint") {
      EXPECT_DOUBLE_EQ(v, 215.0);
    }
  }
  std::printf("late replies discarded: %llu\n",
              static_cast<unsigned long long>(h.poller->late_replies(h.target)));
}

TEST(ModbusTcpPollerTest, IllegalAddressMarksOnlyThatRegisterMisconfigured) {
  testing::ModbusSimServer sim(sim_options());
  sim.control("fault 1 exception code=2 from=2 to=2");
  const auto profile = sim_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until(
      [&] {
        return h.bad("b", "misconfigured") && h.good("a") && h.good("c") && h.good("setpoint");
      },
      5s))
      << sim.log();
  EXPECT_DOUBLE_EQ(h.number("a"), 1.0);
  EXPECT_DOUBLE_EQ(h.number("c"), 5.0);
  EXPECT_TRUE(h.poller->device_online("dev"));
  // The split is remembered: later cycles still read a and c.
  h.latest.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("a") && h.bad("b", "misconfigured"); }, 3s));
}

TEST(ModbusTcpPollerTest, GatewayTargetFailedMarksDeviceOfflineWithTheLinkUp) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = sim_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until([&] { return h.poller->device_online("dev"); }, 5s)) << sim.log();
  sim.control("fault 1 exception code=0x0B");
  ASSERT_TRUE(h.run_until([&] { return !h.poller->device_online("dev"); }, 3s));
  EXPECT_TRUE(h.poller->link_up(h.target));
  EXPECT_EQ(h.latest["a"].quality, model::Quality::bad);
  EXPECT_EQ(h.latest["setpoint"].quality, model::Quality::bad);
  sim.control("clear 1");
  ASSERT_TRUE(h.run_until([&] { return h.poller->device_online("dev") && h.good("a"); }, 5s));
}

TEST(ModbusTcpPollerTest, KilledServerTakesTheLinkDownAndItReconnectsWhenTheServerReturns) {
  auto sim = std::make_unique<testing::ModbusSimServer>(sim_options());
  const std::uint16_t port = sim->port();
  const auto profile = sim_profile();
  Harness h(profile, port);
  ASSERT_TRUE(h.run_until([&] { return h.good("a") && h.poller->link_up(h.target); }, 5s));

  sim->process().signal(SIGKILL);
  sim.reset();
  ASSERT_TRUE(h.run_until([&] { return !h.poller->link_up(h.target); }, 3s));
  ASSERT_TRUE(h.run_until([&] { return h.bad("a", "connection_lost"); }, 3s));

  sim = std::make_unique<testing::ModbusSimServer>(sim_options(port));
  const auto back = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.run_until([&] { return h.poller->link_up(h.target) && h.good("a"); }, 5s))
      << sim->log();
  std::printf("values good again %lld ms after the server returned\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - back)
                                         .count()));
  EXPECT_DOUBLE_EQ(h.number("a"), 1.0);
}

TEST(ModbusTcpPollerTest, PipelinedUnitsBehindOneGatewayEachGetTheirOwnValues) {
  // Eight units, each holding 0 = 10 × unit; requests to them share one connection, up to four in
  // flight; unit 3's replies come late, after its timeout, while others are in flight.
  testing::ModbusSimOptions o;
  o.config_toml = "[[tcp]]\nport = 0\nhost = \"127.0.0.1\"\n";
  std::vector<std::uint8_t> units;
  for (int u = 1; u <= 8; ++u) {
    units.push_back(static_cast<std::uint8_t>(u));
    o.config_toml += "[[unit]]\nid = " + std::to_string(u) +
                     "\nregisters = [ { table = \"holding\", address = 0, values = [" +
                     std::to_string(u * 10) + ", 2, 3, 4, 5, 6] } ]\n";
  }
  testing::ModbusSimServer sim(o);
  sim.control("fault 3 late delay_ms=350");
  const auto profile = make_profile({{"a", ModbusFunction::holding, 0, ModbusType::uint16},
                                     {"c", ModbusFunction::holding, 4, ModbusType::uint16}},
                                    100ms);
  auto options = Harness::fast_options();
  options.link.max_in_flight = 4;
  Harness h(profile, sim.port(), units, options);
  const auto all_good = [&] {
    for (int u = 1; u <= 8; ++u) {
      if (u == 3) continue;
      auto it = h.latest.find("dev" + std::to_string(u) + "/a");
      if (it == h.latest.end() || it->second.quality != model::Quality::good) return false;
    }
    return true;
  };
  ASSERT_TRUE(h.run_until([&] { return all_good() && h.poller->late_replies(h.target) >= 2; }, 8s))
      << sim.log();
  EXPECT_EQ(h.poller->link_count(), 1U);
  EXPECT_EQ(h.latest["dev3/a"].quality_reason, "timeout");
  for (const auto& r : h.all) {
    if (r.quality != model::Quality::good) continue;
    const int unit = std::stoi(r.device_id.substr(3));
    if (r.metric == "a") {
      EXPECT_DOUBLE_EQ(std::get<double>(r.value), unit * 10.0) << r.device_id;
    }
  }
  std::printf("pipelined: %zu readings, %llu late replies discarded\n", h.all.size(),
              static_cast<unsigned long long>(h.poller->late_replies(h.target)));
}

// The simulator's PLC setpoint (holding 0x10), writable, polled every 200 ms.
config::Profile setpoint_profile() {
  return make_profile(
      {{"setpoint", ModbusFunction::holding, 16, ModbusType::uint16, ByteOrder::abcd, true}},
      200ms);
}

TEST(ModbusTcpPollerTest, RefusedWriteIsAnExceptionValueAndTheNextWriteSucceeds) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = setpoint_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  // The device refuses writes to the setpoint: FC06 answered with exception 02.
  sim.control("fault 1 exception code=2 from=16 to=16 every=1");
  std::optional<WriteResult> refused;
  h.poller->write("dev", "setpoint", 220.0, [&](const WriteResult& r) { refused = r; });
  ASSERT_TRUE(h.run_until([&] { return refused.has_value(); }, 5s));
  EXPECT_EQ(refused->error, WriteError::exception);
  EXPECT_NE(refused->detail.find("illegal_data_address"), std::string::npos) << refused->detail;
  sim.control("clear 1");
  std::optional<WriteResult> ok;
  h.poller->write("dev", "setpoint", 221.0, [&](const WriteResult& r) { ok = r; });
  ASSERT_TRUE(h.run_until([&] { return ok.has_value(); }, 5s));
  EXPECT_TRUE(ok->ok()) << ok->detail;
  ASSERT_TRUE(h.run_until([&] { return h.number("setpoint") == 221.0; }, 5s));
}

// RELIABILITY.md: 05/06 busy-retry, for writes as for reads. The simulator answers the next two
// FC06 writes "busy" (06), then takes the third; then it answers every write "acknowledge" (05).
TEST(ModbusTcpPollerTest, BusyWriteIsRetriedWithBackoffUntilTheDeviceTakesIt) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = setpoint_profile();
  auto options = Harness::fast_options();
  options.busy_delay = 50ms;
  Harness h(profile, sim.port(), {}, options);
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  const auto exceptions = [&](const char* code) {
    return h.metrics.counter_value("fieldhub_modbus_exceptions_total", {{"code", code}});
  };

  sim.control("fault 1 exception code=6 function=6 times=2");
  std::optional<WriteResult> taken;
  const auto start = std::chrono::steady_clock::now();
  h.poller->write("dev", "setpoint", 222.0, [&](const WriteResult& r) { taken = r; });
  ASSERT_TRUE(h.run_until([&] { return taken.has_value(); }, 5s));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(taken->ok()) << taken->detail;
  EXPECT_EQ(exceptions("06"), 2U);
  EXPECT_GE(took, 50ms + 100ms);  // two pauses, the second twice the first
  ASSERT_TRUE(h.run_until([&] { return h.number("setpoint") == 222.0; }, 5s));

  // Busy for good: bounded, then the write fails with the device's answer and changes nothing.
  sim.control("clear 1");
  sim.control("fault 1 exception code=5 function=6");
  std::optional<WriteResult> refused;
  h.poller->write("dev", "setpoint", 223.0, [&](const WriteResult& r) { refused = r; });
  ASSERT_TRUE(h.run_until([&] { return refused.has_value(); }, 5s));
  EXPECT_EQ(refused->error, WriteError::exception);
  EXPECT_NE(refused->detail.find("acknowledge"), std::string::npos) << refused->detail;
  EXPECT_EQ(exceptions("05"), 1U + options.busy_retries);
  h.latest.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  EXPECT_DOUBLE_EQ(h.number("setpoint"), 222.0);
  std::printf(
      "busy write taken after %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

// RELIABILITY.md: writes are read back; a mismatch fails the command. The simulator acknowledges
// the write but keeps the register's value, as a device that drops or clamps a setpoint does.
TEST(ModbusTcpPollerTest, WriteTheDeviceDoesNotKeepFailsAsMismatch) {
  testing::ModbusSimServer sim(sim_options());
  const auto profile = setpoint_profile();
  Harness h(profile, sim.port());
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  const double before = h.number("setpoint");
  ASSERT_NE(before, 230.0);

  sim.control("fault 1 ignore_write function=6");
  std::optional<WriteResult> result;
  h.poller->write("dev", "setpoint", 230.0, [&](const WriteResult& r) { result = r; });
  ASSERT_TRUE(h.run_until([&] { return result.has_value(); }, 5s));
  EXPECT_EQ(result->error, WriteError::mismatch);
  EXPECT_EQ(result->detail,
            "read back " + std::to_string(static_cast<int>(before)) + ", wrote 230");
  EXPECT_EQ(h.metrics.counter_value("fieldhub_modbus_writes_total",
                                    {{"adapter", "modbus_tcp"}, {"result", "mismatch"}}),
            1U);
  h.latest.clear();
  ASSERT_TRUE(h.run_until([&] { return h.good("setpoint"); }, 5s));
  EXPECT_DOUBLE_EQ(h.number("setpoint"), before);
}

}  // namespace
}  // namespace fieldhub::modbus
