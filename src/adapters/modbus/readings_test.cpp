// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/readings.h"

#include <gtest/gtest.h>

#include "config/config_text.h"

namespace fieldhub::modbus {
namespace {

config::Profile profile() {
  return config::parse_profile(R"(kind = "kwh_meter"
[[metrics]]
name = "voltage"
unit = "V"
max = 300
modbus = { function = "input", address = 0, type = "float32" }
[[metrics]]
name = "current"
unit = "A"
modbus = { function = "input", address = 6, type = "float32" }
)",
                               "meter.toml");
}

const ReadingContext context{"meter-1", model::from_micros(1'000'000), "modbus_tcp",
                             "10.0.0.5:502"};

TEST(ModbusReadings, DecodesEveryItemOfARead) {
  const auto p = profile();
  const auto plan = plan_reads(p);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(to_request(1, plan[0]).pdu, (std::vector<std::uint8_t>{0x04, 0, 0, 0, 8}));
  Reply reply;
  reply.status = ReplyStatus::ok;
  reply.registers = {0x4366, 0x3334, 0, 0, 0, 0, 0x7FC0, 0x0000};  // 230.2 V; current NaN
  std::vector<model::Reading> out;
  append_readings(p, plan[0], reply, context, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].device_id, "meter-1");
  EXPECT_EQ(out[0].metric, "voltage");
  EXPECT_EQ(out[0].unit, "V");
  EXPECT_NEAR(std::get<double>(out[0].value), 230.2, 1e-4);
  EXPECT_EQ(out[0].quality, model::Quality::good);
  EXPECT_EQ(out[0].provenance.adapter, "modbus_tcp");
  EXPECT_EQ(out[0].received_ts, context.received);
  EXPECT_EQ(out[1].metric, "current");
  EXPECT_EQ(out[1].quality, model::Quality::bad);
  EXPECT_EQ(out[1].quality_reason, "not_a_number");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(out[1].value));
}

TEST(ModbusReadings, OutOfRangeKeepsTheValueMarkedBad) {
  const auto p = profile();
  const auto plan = plan_reads(p);
  Reply reply;
  reply.status = ReplyStatus::ok;
  reply.registers = {0x47F1, 0x2000, 0, 0, 0, 0, 0, 0};  // 123456 V > max 300
  std::vector<model::Reading> out;
  append_readings(p, plan[0], reply, context, out);
  EXPECT_EQ(out[0].quality, model::Quality::bad);
  EXPECT_EQ(out[0].quality_reason, "out_of_range");
  EXPECT_EQ(std::get<double>(out[0].value), 123456.0);
}

TEST(ModbusReadings, FailuresLeaveBadReadingsWithoutValues) {
  const auto p = profile();
  const auto plan = plan_reads(p);
  std::vector<model::Reading> out;
  append_failed(p, plan[0], classify(Outcome::timeout).reason, context, out);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out) {
    EXPECT_EQ(r.quality, model::Quality::bad);
    EXPECT_EQ(r.quality_reason, "timeout");
    EXPECT_TRUE(std::holds_alternative<std::monostate>(r.value));
  }
}

TEST(ModbusReadings, SplitPerItemForMisconfiguredReads) {
  const auto p = profile();
  const auto plan = plan_reads(p);
  const auto parts = split_per_item(p, plan[0]);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].address, 0);
  EXPECT_EQ(parts[0].count, 2);
  EXPECT_EQ(parts[1].address, 6);
  EXPECT_EQ(parts[1].count, 2);
  EXPECT_EQ(parts[1].items[0].spec_index, 1u);
  EXPECT_EQ(parts[1].items[0].offset, 0);
}

}  // namespace
}  // namespace fieldhub::modbus
