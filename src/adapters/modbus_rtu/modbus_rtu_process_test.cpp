// SPDX-License-Identifier: Apache-2.0
// End to end through the real fieldhub binary: modbus_rtu devices in fieldhub.toml are polled
// from fieldhub-modbus-sim on a socat pty, their values reach the live API, and the serial bus
// shows in /api/v1/health and /metrics.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "integration/fieldhub_process.h"
#include "support/modbus_servers.h"
#include "support/serial_port.h"
#include "support/test_support.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

TEST(ModbusRtuProcessTest, PollsTheSimulatorOnAPtyThroughTheRealBinary) {
  MosquittoServer broker;
  broker.start();
  PtyPair pty;
  ModbusSimServer sim({.tcp = false, .rtu_device = pty.a(), .baud = 19200});  // built-in units

  FieldhubProcess::Options options;
  options.broker_port = broker.port();
  options.devices = 1;
  options.extra_config = "[[serial_buses]]\nname = \"rs485-1\"\ndevice = \"" + pty.b().string() +
                         "\"\nbaud = 19200\nparity = \"N\"\n"
                         "[[devices]]\nid = \"water-1\"\nsite = \"lab\"\n"
                         "profile = \"modbus-water-meter\"\nprotocol = \"modbus_rtu\"\n"
                         "bus = \"rs485-1\"\nunit_id = 2\n"
                         "[[devices]]\nid = \"gas-1\"\nsite = \"lab\"\n"
                         "profile = \"modbus-gas-meter-cdab\"\nprotocol = \"modbus_rtu\"\n"
                         "bus = \"rs485-1\"\nunit_id = 3\n";
  FieldhubProcess fh(options);
  for (const char* profile : {"modbus-water-meter.toml", "modbus-gas-meter-cdab.toml"}) {
    std::filesystem::copy_file(std::filesystem::path(FIELDHUB_SOURCE_ROOT "/profiles") / profile,
                               fh.dir() / "profiles" / profile);
  }
  fh.start();

  const std::string bus_up = "fieldhub_modbus_rtu_bus_up{bus=\"rs485-1\"}";
  ASSERT_TRUE(wait_until([&] { return fh.metrics()[bus_up] == 1.0; }, 5s)) << fh.log();
  for (const std::string id : {"water-1", "gas-1"}) {
    ASSERT_TRUE(wait_until(
        [&] {
          auto r = fh.get("/api/v1/devices/" + id);
          // A polled value, not only the profile's metric names (listed before any reading).
          return r && r->first == 200 &&
                 r->second.find("\"quality\":\"good\"") != std::string::npos;
        },
        10s))
        << id << "\n"
        << fh.log();
  }
  auto health = fh.get("/api/v1/health");
  ASSERT_TRUE(health);
  EXPECT_NE(health->second.find("serial:rs485-1"), std::string::npos) << health->second;
  EXPECT_GT(fh.metrics()["fieldhub_modbus_rtu_requests_total{bus=\"rs485-1\"}"], 0.0);
  fh.stop();
}

}  // namespace
}  // namespace fieldhub::testing
