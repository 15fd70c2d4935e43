// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/write.h"

#include <gtest/gtest.h>

#include "adapters/modbus/codec.h"

namespace fieldhub::modbus {
namespace {

using config::ByteOrder;
using config::ModbusFunction;
using config::ModbusType;
using Bytes = std::vector<std::uint8_t>;

config::RegisterSpec writable(ModbusFunction f, std::uint16_t address, ModbusType type,
                              ByteOrder order = ByteOrder::abcd) {
  config::RegisterSpec s;
  s.metric = "setpoint";
  s.function = f;
  s.address = address;
  s.type = type;
  s.order = order;
  s.writable = true;
  return s;
}

Reply registers(std::vector<std::uint16_t> words) {
  Reply r;
  r.status = ReplyStatus::ok;
  r.registers = std::move(words);
  return r;
}

TEST(ModbusWrite, CoilIsFc05AndReadBackWithFc01) {
  const auto s = writable(ModbusFunction::coil, 0xAC, ModbusType::boolean);
  const WritePlan p = plan_write(1, s, true);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.request.pdu, (Bytes{0x05, 0x00, 0xAC, 0xFF, 0x00}));
  EXPECT_EQ(read_back_request(1, s).pdu, (Bytes{0x01, 0x00, 0xAC, 0x00, 0x01}));
  Reply on;
  on.status = ReplyStatus::ok;
  on.bits = {true};
  EXPECT_TRUE(read_back_matches(s, p, on));
  on.bits = {false};
  EXPECT_FALSE(read_back_matches(s, p, on));
}

TEST(ModbusWrite, OneRegisterIsFc06AndMoreAreFc16InEveryOrder) {
  auto s = writable(ModbusFunction::holding, 4, ModbusType::int16);
  s.scale = 0.1;
  WritePlan p = plan_write(1, s, 22.5);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.request.pdu, (Bytes{0x06, 0x00, 0x04, 0x00, 0xE1}));  // 225
  EXPECT_TRUE(read_back_matches(s, p, registers({225})));
  EXPECT_FALSE(read_back_matches(s, p, registers({224})));

  // The float32 vector 123456.0 in CDAB: the bytes of the published example.
  s = writable(ModbusFunction::holding, 4, ModbusType::float32, ByteOrder::cdab);
  p = plan_write(1, s, 123456.0);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.request.pdu, (Bytes{0x10, 0x00, 0x04, 0x00, 0x02, 0x04, 0x20, 0x00, 0x47, 0xF1}));
  EXPECT_EQ(read_back_request(1, s).pdu, (Bytes{0x03, 0x00, 0x04, 0x00, 0x02}));
  // What was written reads back as the same value through the same spec.
  const Reply back = registers({0x2000, 0x47F1});
  EXPECT_TRUE(read_back_matches(s, p, back));
  EXPECT_EQ(std::get<double>(decode_registers(s, back.registers).value), 123456.0);
  EXPECT_FALSE(read_back_matches(s, p, registers({0x47F1, 0x2000})));
  EXPECT_FALSE(read_back_matches(s, p, registers({0x2000})));
}

TEST(ModbusWrite, BitIsReadModifyWrite) {
  auto s = writable(ModbusFunction::holding, 6, ModbusType::bit);
  s.bit = 3;
  EXPECT_NE(plan_write(1, s, true).error, "");  // no current value
  const WritePlan p = plan_write(1, s, true, std::uint16_t{0x8001});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.words, (std::vector<std::uint16_t>{0x8009}));
  EXPECT_EQ(p.request.pdu, (Bytes{0x06, 0x00, 0x06, 0x80, 0x09}));
  // Other bits may have changed meanwhile; only ours is compared.
  EXPECT_TRUE(read_back_matches(s, p, registers({0x0008})));
  EXPECT_FALSE(read_back_matches(s, p, registers({0x8001})));
}

TEST(ModbusWrite, Refusals) {
  auto s = writable(ModbusFunction::holding, 0, ModbusType::uint16);
  EXPECT_EQ(plan_write(1, s, 70000.0).error, "out of range for uint16");
  EXPECT_EQ(plan_write(1, s, true).error, "needs a number");
  s.writable = false;
  EXPECT_EQ(plan_write(1, s, 1.0).error, "metric 'setpoint' is not writable");
  const auto coil = writable(ModbusFunction::coil, 0, ModbusType::boolean);
  EXPECT_EQ(plan_write(1, coil, 1.0).error, "a coil needs true or false");
  const auto input = writable(ModbusFunction::input, 0, ModbusType::uint16);
  EXPECT_EQ(plan_write(1, input, 1.0).error, "only coils and holding registers");
  Reply failed;
  failed.status = ReplyStatus::exception;
  EXPECT_FALSE(read_back_matches(
      s, plan_write(1, writable(ModbusFunction::holding, 0, ModbusType::uint16), 1.0), failed));
}

}  // namespace
}  // namespace fieldhub::modbus
