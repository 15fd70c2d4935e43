// SPDX-License-Identifier: Apache-2.0
// End to end through the real fieldhub binary: a modbus_tcp device in fieldhub.toml is polled
// from fieldhub-modbus-sim, its values reach the live API, and the link state shows in /metrics;
// a command through the REST API writes a PLC setpoint, is read back and audited in history.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>

#include "integration/fieldhub_process.h"
#include "support/modbus_servers.h"
#include "support/test_support.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

TEST(ModbusTcpProcessTest, PollsTheSimulatorThroughTheRealBinary) {
  MosquittoServer broker;
  broker.start();
  auto sim = std::make_unique<ModbusSimServer>();  // unit 1: SDM630
  const std::string target = "127.0.0.1:" + std::to_string(sim->port());

  FieldhubProcess::Options options;
  options.broker_port = broker.port();
  options.devices = 1;
  options.extra_config =
      "[[devices]]\nid = \"meter-1\"\nsite = \"lab\"\n"
      "profile = \"eastron-sdm630\"\nprotocol = \"modbus_tcp\"\n"
      "address = \"" +
      target + "\"\nunit_id = 1\n";
  FieldhubProcess fh(options);
  std::filesystem::copy_file(FIELDHUB_SOURCE_ROOT "/profiles/eastron-sdm630.toml",
                             fh.dir() / "profiles" / "eastron-sdm630.toml");
  fh.start();

  const std::string link_up = "fieldhub_modbus_link_up{target=\"" + target + "\"}";
  ASSERT_TRUE(wait_until([&] { return fh.metrics()[link_up] == 1.0; }, 5s)) << fh.log();
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = fh.get("/api/v1/devices/meter-1");
        // A polled value, not only the profile's metric names (listed before any reading).
        return r && r->first == 200 && r->second.find("\"quality\":\"good\"") != std::string::npos;
      },
      5s))
      << fh.log();
  EXPECT_GT(fh.metrics()["fieldhub_modbus_requests_total{target=\"" + target + "\"}"], 0.0);

  sim->process().signal(SIGKILL);
  sim.reset();
  EXPECT_TRUE(wait_until([&] { return fh.metrics()[link_up] == 0.0; }, 5s)) << fh.log();
  fh.stop();
}

// The PLC's setpoint in the live API, or nullopt while it has none.
std::optional<double> live_setpoint(const FieldhubProcess& fh) {
  const auto r = fh.get("/api/v1/devices/plc-1");
  if (!r || r->first != 200) return std::nullopt;
  simdjson::dom::parser parser;
  double v = 0;
  if (parser.parse(r->second)["metrics"]["setpoint"]["value"].get(v)) return std::nullopt;
  return v;
}

TEST(ModbusTcpProcessTest, ACommandWritesAPlcSetpointReadsItBackAndIsAuditedInHistory) {
  MosquittoServer broker;
  broker.start();
  ModbusSimServer sim;  // unit 4: the PLC cell
  FieldhubProcess::Options options;
  options.broker_port = broker.port();
  options.devices = 1;
  options.extra_config =
      "[[devices]]\nid = \"plc-1\"\nsite = \"lab\"\nprofile = \"modbus-plc\"\n"
      "protocol = \"modbus_tcp\"\naddress = \"127.0.0.1:" +
      std::to_string(sim.port()) + "\"\nunit_id = 4\n";
  FieldhubProcess fh(options);
  std::filesystem::copy_file(FIELDHUB_SOURCE_ROOT "/profiles/modbus-plc.toml",
                             fh.dir() / "profiles" / "modbus-plc.toml");
  fh.start();
  ASSERT_TRUE(wait_until([&] { return live_setpoint(fh).has_value(); }, 10s)) << fh.log();
  const auto command = [&](const std::string& device, const std::string& body) {
    auto r = fh.request("POST", "/api/v1/devices/" + device + "/commands", body);
    return r ? *r : std::pair<int, std::string>{0, ""};
  };

  // Written, read back equal, and the next poll shows it.
  auto ok =
      command("plc-1", R"({"metric":"setpoint","value":1450,"by":"eng.a","comment":"slower"})");
  EXPECT_EQ(ok.first, 200) << ok.second;
  EXPECT_NE(ok.second.find(R"("result":"ok")"), std::string::npos) << ok.second;
  EXPECT_TRUE(wait_until([&] { return live_setpoint(fh) == 1450.0; }, 5s));

  // The PLC acknowledges the next write without taking it: the read-back tells, the command fails.
  sim.control("fault 4 ignore_write function=16 times=1");
  auto mismatch = command("plc-1", R"({"metric":"setpoint","value":1500,"by":"eng.a"})");
  EXPECT_EQ(mismatch.first, 502) << mismatch.second;
  EXPECT_NE(mismatch.second.find(R"("result":"mismatch")"), std::string::npos) << mismatch.second;
  EXPECT_EQ(live_setpoint(fh), 1450.0);

  // Refused before anything is sent.
  auto read_only = command("plc-1", R"({"metric":"speed","value":3,"by":"eng.a"})");
  EXPECT_EQ(read_only.first, 400) << read_only.second;
  EXPECT_NE(read_only.second.find(R"("result":"not_writable")"), std::string::npos);
  EXPECT_EQ(command("plc-1", R"({"metric":"setpoint","value":1})").first, 400);  // no "by"
  EXPECT_EQ(command("nope", R"({"metric":"setpoint","value":1,"by":"a"})").first, 404);
  EXPECT_EQ(
      fh.request("POST", "/api/v1/devices/plc-1/commands",
                 R"({"metric":"setpoint","value":1,"by":"a"})", "Origin: http://evil.example\r\n")
          ->first,
      403);

  // Every command that reached the device's adapter is in history with who and the result.
  std::string audit;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = fh.get("/api/v1/events?device=plc-1&type=command");
        if (!r || r->first != 200) return false;
        audit = r->second;
        simdjson::dom::parser parser;
        return parser.parse(audit).get_array().size() == 3;
      },
      5s))
      << audit;
  EXPECT_NE(audit.find(R"("result":"ok")"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("result":"mismatch")"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("result":"not_writable")"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("by":"eng.a")"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("comment":"slower")"), std::string::npos) << audit;
  fh.stop();
}

}  // namespace
}  // namespace fieldhub::testing
