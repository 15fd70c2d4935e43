// SPDX-License-Identifier: Apache-2.0
// End to end through the real fieldhub binary: a modbus_tcp device in fieldhub.toml is polled
// from fieldhub-modbus-sim, its values reach the live API, and the link state shows in /metrics.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <memory>

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

}  // namespace
}  // namespace fieldhub::testing
