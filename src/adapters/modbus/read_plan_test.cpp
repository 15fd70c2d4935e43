// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/read_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace fieldhub::modbus {
namespace {

using config::ModbusFunction;
using config::ModbusType;
using config::RegisterSpec;

RegisterSpec reg(std::uint16_t address, ModbusType type = ModbusType::uint16,
                 ModbusFunction function = ModbusFunction::holding, std::string group = "") {
  RegisterSpec r;
  r.address = address;
  r.type = type;
  r.function = function;
  r.group = std::move(group);
  return r;
}

RegisterSpec str(std::uint16_t address, std::uint16_t length) {
  RegisterSpec r = reg(address, ModbusType::string);
  r.length = length;
  return r;
}

PlanOptions hole(std::uint16_t max_hole) {
  PlanOptions o;
  o.max_hole = max_hole;
  return o;
}

TEST(ReadPlan, ContiguousRegistersShareOneRead) {
  const std::vector<RegisterSpec> regs = {reg(0, ModbusType::float32), reg(2, ModbusType::float32),
                                          reg(4, ModbusType::float32)};
  const auto plan = plan_reads(regs, hole(0));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].function, ModbusFunction::holding);
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 6);
  ASSERT_EQ(plan[0].items.size(), 3u);
  EXPECT_EQ(plan[0].items[2].spec_index, 2u);
  EXPECT_EQ(plan[0].items[2].offset, 4);
}

TEST(ReadPlan, HolesUpToMaxHoleAreReadOver) {
  // SDM630: voltage at 0, current at 6 (gap of 4 registers between 2 and 6).
  const std::vector<RegisterSpec> regs = {reg(0, ModbusType::float32), reg(6, ModbusType::float32)};
  auto plan = plan_reads(regs, hole(4));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 8);
  EXPECT_EQ(plan[0].items[1].offset, 6);
  plan = plan_reads(regs, hole(3));
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].address, 6);
  EXPECT_EQ(plan[1].count, 2);
  EXPECT_EQ(plan[1].items[0].offset, 0);
}

TEST(ReadPlan, Exactly125FitsAnd126Splits) {
  // 125 single registers 0..124: one read of 125.
  std::vector<RegisterSpec> regs;
  for (std::uint16_t a = 0; a < 125; ++a) regs.push_back(reg(a));
  auto plan = plan_reads(regs, hole(8));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 125);
  // One more register: two reads, 125 + 1.
  regs.push_back(reg(125));
  plan = plan_reads(regs, hole(8));
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 125);
  EXPECT_EQ(plan[1].address, 125);
  EXPECT_EQ(plan[1].count, 1);
  // A float32 that would straddle the cap starts a new read rather than being cut.
  regs = {reg(0), reg(124, ModbusType::float32)};
  plan = plan_reads(regs, hole(124));
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 1);
  EXPECT_EQ(plan[1].address, 124);
  EXPECT_EQ(plan[1].count, 2);
}

TEST(ReadPlan, BitsCapAt2000) {
  std::vector<RegisterSpec> regs = {reg(0, ModbusType::boolean, ModbusFunction::coil),
                                    reg(1999, ModbusType::boolean, ModbusFunction::coil)};
  auto plan = plan_reads(regs, hole(2000));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 2000);
  regs.push_back(reg(2000, ModbusType::boolean, ModbusFunction::coil));
  plan = plan_reads(regs, hole(2000));
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].address, 2000);
}

TEST(ReadPlan, LowerDeviceCap) {
  std::vector<RegisterSpec> regs;
  for (std::uint16_t a = 0; a < 10; ++a) regs.push_back(reg(a));
  PlanOptions o = hole(0);
  o.max_registers = 4;
  const auto plan = plan_reads(regs, o);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].count, 4);
  EXPECT_EQ(plan[1].count, 4);
  EXPECT_EQ(plan[2].count, 2);
}

TEST(ReadPlan, UnsortedInputGivesTheSamePlan) {
  const std::vector<RegisterSpec> sorted = {reg(0), reg(1), reg(20), reg(21)};
  const std::vector<RegisterSpec> shuffled = {reg(21), reg(0), reg(20), reg(1)};
  const auto a = plan_reads(sorted, hole(2));
  const auto b = plan_reads(shuffled, hole(2));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i].address, b[i].address);
    EXPECT_EQ(a[i].count, b[i].count);
    ASSERT_EQ(a[i].items.size(), b[i].items.size());
    for (std::size_t k = 0; k < a[i].items.size(); ++k) {
      EXPECT_EQ(a[i].items[k].offset, b[i].items[k].offset);
      // Items point at the caller's specs, whichever order they came in.
      EXPECT_EQ(sorted[a[i].items[k].spec_index].address,
                shuffled[b[i].items[k].spec_index].address);
    }
  }
}

TEST(ReadPlan, DuplicatesAndOverlapsShareTheRead) {
  RegisterSpec status = reg(10, ModbusType::uint16);
  RegisterSpec alarm = reg(10, ModbusType::bit);
  alarm.bit = 3;
  const std::vector<RegisterSpec> regs = {status, reg(10), alarm};
  const auto plan = plan_reads(regs, hole(0));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 1);
  ASSERT_EQ(plan[0].items.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(plan[0].items[i].spec_index, i);  // declaration order among equals
    EXPECT_EQ(plan[0].items[i].offset, 0);
  }
}

TEST(ReadPlan, FunctionsAndGroupsNeverMix) {
  config::ModbusProfileSettings settings;
  settings.poll_interval = std::chrono::seconds{1};
  settings.groups = {{"fast", std::chrono::milliseconds{200}}, {"slow", std::chrono::minutes{1}}};
  const std::vector<RegisterSpec> regs = {
      reg(0, ModbusType::uint16, ModbusFunction::input),
      reg(1, ModbusType::uint16, ModbusFunction::holding),
      reg(2, ModbusType::uint16, ModbusFunction::input, "fast"),
      reg(3, ModbusType::uint16, ModbusFunction::input, "slow"),
      reg(4, ModbusType::uint16, ModbusFunction::input),
  };
  const auto plan = plan_reads(regs, hole(8), settings);
  ASSERT_EQ(plan.size(), 4u);
  // Default group first (""), then by name; within a group coil < discrete < holding < input.
  EXPECT_EQ(plan[0].group, "");
  EXPECT_EQ(plan[0].function, ModbusFunction::holding);
  EXPECT_EQ(plan[0].interval, std::chrono::seconds{1});
  EXPECT_EQ(plan[1].group, "");
  EXPECT_EQ(plan[1].function, ModbusFunction::input);
  EXPECT_EQ(plan[1].address, 0);
  EXPECT_EQ(plan[1].count, 5);  // 0 and 4 merged over the 3-register hole
  EXPECT_EQ(plan[2].group, "fast");
  EXPECT_EQ(plan[2].interval, std::chrono::milliseconds{200});
  EXPECT_EQ(plan[3].group, "slow");
  EXPECT_EQ(plan[3].interval, std::chrono::minutes{1});
}

TEST(ReadPlan, StringsAndWideTypes) {
  const std::vector<RegisterSpec> regs = {str(0, 10), reg(10, ModbusType::float64),
                                          str(200, 126)};  // 126 > 125: skipped (refused by config)
  const auto plan = plan_reads(regs, hole(0));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 14);
}

TEST(ReadPlan, TopOfTheAddressSpace) {
  const std::vector<RegisterSpec> regs = {reg(65534, ModbusType::uint16), reg(65535)};
  const auto plan = plan_reads(regs, hole(8));
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].address, 65534);
  EXPECT_EQ(plan[0].count, 2);
}

TEST(ReadPlan, EmptyMap) {
  EXPECT_TRUE(plan_reads(std::vector<RegisterSpec>{}, hole(8)).empty());
}

}  // namespace
}  // namespace fieldhub::modbus
