// SPDX-License-Identifier: Apache-2.0
// The shipped Modbus profiles load, sit where their published maps say, and plan sensibly.
#include <gtest/gtest.h>

#include <filesystem>

#include "adapters/modbus/codec.h"
#include "adapters/modbus/read_plan.h"
#include "config/config.h"

namespace fieldhub::modbus {
namespace {

namespace fs = std::filesystem;

config::Profile shipped(const std::string& name) {
  return config::load_profile(fs::path(FIELDHUB_SOURCE_ROOT) / "profiles" / (name + ".toml"));
}

const config::RegisterSpec& spec_of(const config::Profile& p, const std::string& metric) {
  for (const auto& r : p.registers) {
    if (r.metric == metric) return r;
  }
  throw std::runtime_error("no register for " + metric);
}

TEST(ModbusProfiles, AllShippedModbusProfilesLoadAndPlan) {
  for (const char* name : {"eastron-sdm630", "eastron-sdm120", "carlo-gavazzi-em24",
                           "tuf2000-flow-meter", "modbus-gas-meter", "modbus-plc"}) {
    SCOPED_TRACE(name);
    const auto p = shipped(name);
    EXPECT_FALSE(p.registers.empty());
    EXPECT_FALSE(p.source.empty());
    EXPECT_EQ(p.registers.size(), p.metrics.size());  // every metric is mapped
    const auto plan = plan_reads(p);
    std::size_t items = 0;
    for (const auto& r : plan) {
      EXPECT_LE(r.count, p.modbus.max_registers_per_read);
      items += r.items.size();
    }
    EXPECT_EQ(items, p.registers.size());
  }
}

// Addresses from the test-vectors README (Eastron input registers, FC04, float32 ABCD).
TEST(ModbusProfiles, Sdm630MatchesThePublishedAddresses) {
  const auto p = shipped("eastron-sdm630");
  const std::vector<std::pair<std::string, std::uint16_t>> expected = {
      {"voltage_l1", 0x0000},    {"voltage_l2", 0x0002}, {"voltage_l3", 0x0004},
      {"current_l1", 0x0006},    {"current_l2", 0x0008}, {"current_l3", 0x000A},
      {"power_l1", 0x000C},      {"power_l2", 0x000E},   {"power_l3", 0x0010},
      {"power", 0x0034},         {"frequency", 0x0046},  {"energy_import", 0x0048},
      {"energy_export", 0x004A}, {"energy", 0x0156}};
  for (const auto& [metric, address] : expected) {
    const auto& r = spec_of(p, metric);
    EXPECT_EQ(r.address, address) << metric;
    EXPECT_EQ(r.function, config::ModbusFunction::input);
    EXPECT_EQ(r.type, config::ModbusType::float32);
    EXPECT_EQ(r.order, config::ByteOrder::abcd);
  }
  // The published reply bytes decode to 230.2 V through the profile's own spec.
  const std::vector<std::uint16_t> words = {0x4366, 0x3334};
  EXPECT_NEAR(std::get<double>(decode_registers(spec_of(p, "voltage_l1"), words).value), 230.2,
              1e-4);
  // Fast block 0x00..0x11 in one read; power (0x34) and frequency (0x46) apart; energies
  // every 10 s.
  const auto plan = plan_reads(p);
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 18);
  for (const auto& r : plan) {
    EXPECT_EQ(r.interval, r.group == "energy" ? std::chrono::seconds{10} : std::chrono::seconds{1});
  }
}

TEST(ModbusProfiles, Sdm120MatchesThePublishedAddresses) {
  const auto p = shipped("eastron-sdm120");
  EXPECT_EQ(spec_of(p, "voltage").address, 0x0000);
  EXPECT_EQ(spec_of(p, "current").address, 0x0006);
  EXPECT_EQ(spec_of(p, "power").address, 0x000C);
  EXPECT_EQ(spec_of(p, "frequency").address, 0x0046);
  EXPECT_EQ(spec_of(p, "energy_import").address, 0x0048);
  EXPECT_EQ(spec_of(p, "energy_export").address, 0x004A);
  EXPECT_EQ(spec_of(p, "energy").address, 0x0156);
}

TEST(ModbusProfiles, Em24IsInt32LowWordFirstWithWeights) {
  const auto p = shipped("carlo-gavazzi-em24");
  const auto& v = spec_of(p, "voltage_l1");
  EXPECT_EQ(v.type, config::ModbusType::int32);
  EXPECT_EQ(v.order, config::ByteOrder::cdab);
  const std::vector<std::uint16_t> words = {2302, 0};
  EXPECT_NEAR(std::get<double>(decode_registers(v, words).value), 230.2, 1e-9);
  const std::vector<std::uint16_t> amps = {0x3039, 0};  // 12345 mA
  EXPECT_NEAR(std::get<double>(decode_registers(spec_of(p, "current_l1"), amps).value), 12.345,
              1e-9);
}

TEST(ModbusProfiles, Tuf2000IsLowWordFirst) {
  const auto p = shipped("tuf2000-flow-meter");
  const auto& flow = spec_of(p, "flow_rate");
  EXPECT_EQ(flow.order, config::ByteOrder::cdab);
  const std::vector<std::uint16_t> words = {0x2000, 0x47F1};  // 123456.0 CDAB
  EXPECT_EQ(std::get<double>(decode_registers(flow, words).value), 123456.0);
}

}  // namespace
}  // namespace fieldhub::modbus
