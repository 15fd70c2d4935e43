// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

namespace fieldhub::modbus {
namespace {

using config::ByteOrder;
using config::ModbusFunction;
using config::ModbusType;
using config::RegisterSpec;

RegisterSpec spec(ModbusType type, ByteOrder order = ByteOrder::abcd) {
  RegisterSpec s;
  s.function = ModbusFunction::holding;
  s.type = type;
  s.order = order;
  return s;
}

double number_of(const DecodedValue& d) {
  EXPECT_EQ(d.quality, model::Quality::good) << d.reason;
  const double* v = std::get_if<double>(&d.value);
  return v != nullptr ? *v : std::nan("");
}

// Published vector (test-vectors README): 123456.0 = 0x47F12000 in each of the four orders.
TEST(ModbusCodec, Float32InEveryOrderMatchesThePublishedBytes) {
  const std::vector<std::tuple<ByteOrder, std::vector<std::uint16_t>>> cases = {
      {ByteOrder::abcd, {0x47F1, 0x2000}},
      {ByteOrder::cdab, {0x2000, 0x47F1}},
      {ByteOrder::badc, {0xF147, 0x0020}},
      {ByteOrder::dcba, {0x0020, 0xF147}},
  };
  for (const auto& [order, words] : cases) {
    SCOPED_TRACE(std::string(to_string(order)));
    const auto s = spec(ModbusType::float32, order);
    EXPECT_EQ(number_of(decode_registers(s, words)), 123456.0);
    const EncodedValue e = encode_registers(s, 123456.0);
    EXPECT_EQ(e.error, "");
    EXPECT_EQ(e.words, words);
  }
}

// SDM630 phase-1 voltage: registers 43 66 33 34 → 230.2 V (float32 ABCD).
TEST(ModbusCodec, Sdm630VoltageVector) {
  const auto s = spec(ModbusType::float32);
  const std::vector<std::uint16_t> words = {0x4366, 0x3334};
  const double volts = number_of(decode_registers(s, words));
  EXPECT_NEAR(volts, 230.2, 1e-4);
  // The meter sent 230.20001 (0x43663334; 230.2 rounds to ...33): writing the value read gives
  // the same words back.
  EXPECT_EQ(encode_registers(s, volts).words, words);
}

// Carlo Gavazzi EM24: INT32 low word first (CDAB), value = raw / weight (V × 10).
TEST(ModbusCodec, Em24Int32LowWordFirstWithWeight) {
  auto s = spec(ModbusType::int32, ByteOrder::cdab);
  s.scale = 0.1;
  const std::vector<std::uint16_t> words = {0x08FE, 0x0000};  // 2302 → 230.2 V
  EXPECT_NEAR(number_of(decode_registers(s, words)), 230.2, 1e-9);
  EXPECT_EQ(encode_registers(s, 230.2).words, words);
  const std::vector<std::uint16_t> negative = {0xFFFF, 0xFFFF};  // -1 → -0.1
  EXPECT_NEAR(number_of(decode_registers(s, negative)), -0.1, 1e-12);
}

// 64-bit orders are the same two swaps over four words: ABCD = ABCDEFGH, CDAB = GHEFCDAB,
// BADC = BADCFEHG, DCBA = HGFEDCBA.
TEST(ModbusCodec, SixtyFourBitOrders) {
  const std::vector<std::uint8_t> be = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  EXPECT_EQ(to_wire_words(be, ByteOrder::abcd),
            (std::vector<std::uint16_t>{0x0102, 0x0304, 0x0506, 0x0708}));
  EXPECT_EQ(to_wire_words(be, ByteOrder::cdab),
            (std::vector<std::uint16_t>{0x0708, 0x0506, 0x0304, 0x0102}));
  EXPECT_EQ(to_wire_words(be, ByteOrder::badc),
            (std::vector<std::uint16_t>{0x0201, 0x0403, 0x0605, 0x0807}));
  EXPECT_EQ(to_wire_words(be, ByteOrder::dcba),
            (std::vector<std::uint16_t>{0x0807, 0x0605, 0x0403, 0x0201}));
  auto s = spec(ModbusType::uint64, ByteOrder::cdab);
  EXPECT_EQ(number_of(decode_registers(s, to_wire_words(be, ByteOrder::cdab))),
            static_cast<double>(0x0102030405060708ULL));
}

// Every number type × every order that applies: encode then decode gives the value back, and the
// words differ between orders as the swaps say.
TEST(ModbusCodec, RoundTripEveryTypeAndOrder) {
  struct Case {
    ModbusType type;
    std::vector<double> values;
  };
  const std::vector<Case> cases = {
      {ModbusType::int16, {0, 1, -1, 32767, -32768, 1234}},
      {ModbusType::uint16, {0, 1, 65535, 40000}},
      {ModbusType::int32, {0, -1, 2147483647, -2147483648.0, 123456789}},
      {ModbusType::uint32, {0, 4294967295.0, 3000000000.0}},
      {ModbusType::int64, {0, -1, -9007199254740992.0, 9007199254740992.0, 1e15}},
      {ModbusType::uint64, {0, 18446744073709549568.0, 1e18}},
      {ModbusType::float32, {0, -1.5, 123456.0, 3.4e38f, 1e-30f}},
      {ModbusType::float64, {0, -1.5, 123456.789, 1e300, -1e-300}},
  };
  for (const auto& c : cases) {
    const bool sixteen = c.type == ModbusType::int16 || c.type == ModbusType::uint16;
    for (const auto order : {ByteOrder::abcd, ByteOrder::cdab, ByteOrder::badc, ByteOrder::dcba}) {
      if (sixteen && (order == ByteOrder::cdab || order == ByteOrder::dcba)) continue;
      for (const double v : c.values) {
        SCOPED_TRACE(std::string(to_string(c.type)) + " " + std::string(to_string(order)) + " " +
                     std::to_string(v));
        const auto s = spec(c.type, order);
        const EncodedValue e = encode_registers(s, v);
        ASSERT_EQ(e.error, "");
        ASSERT_EQ(e.words.size(), s.width());
        EXPECT_EQ(number_of(decode_registers(s, e.words)), v);
      }
    }
  }
}

TEST(ModbusCodec, Int16ByteSwap) {
  const auto s = spec(ModbusType::int16, ByteOrder::badc);
  const std::vector<std::uint16_t> words = {0xFEFF};  // 0xFFFE = -2 with bytes swapped
  EXPECT_EQ(number_of(decode_registers(s, words)), -2);
}

TEST(ModbusCodec, ScaleAndOffsetAreInvertedForWrites) {
  auto s = spec(ModbusType::int16);
  s.scale = 0.1;
  s.offset = -40;  // raw 0 = -40 °C
  const std::vector<std::uint16_t> words = {625};
  EXPECT_NEAR(number_of(decode_registers(s, words)), 22.5, 1e-9);
  EXPECT_EQ(encode_registers(s, 22.5).words, words);
}

TEST(ModbusCodec, NanAndInfinityAreBadNeverZero) {
  const auto f32 = spec(ModbusType::float32);
  for (const std::vector<std::uint16_t>& words :
       {std::vector<std::uint16_t>{0x7FC0, 0x0000}, std::vector<std::uint16_t>{0x7F80, 0x0000},
        std::vector<std::uint16_t>{0xFF80, 0x0000}}) {
    const DecodedValue d = decode_registers(f32, words);
    EXPECT_EQ(d.quality, model::Quality::bad);
    EXPECT_EQ(d.reason, "not_a_number");
    EXPECT_TRUE(std::holds_alternative<std::monostate>(d.value));
  }
  const auto f64 = spec(ModbusType::float64);
  const std::vector<std::uint16_t> nan64 = {0x7FF8, 0, 0, 0};
  EXPECT_EQ(decode_registers(f64, nan64).reason, "not_a_number");
  // A finite value that overflows once scaled is no number either.
  auto big = spec(ModbusType::float64);
  big.scale = 1e300;
  EXPECT_EQ(decode_registers(big, encode_registers(spec(ModbusType::float64), 1e300).words).reason,
            "not_a_number");
}

TEST(ModbusCodec, ShortResponseIsBad) {
  const std::vector<std::uint16_t> one = {0x4366};
  const DecodedValue d = decode_registers(spec(ModbusType::float32), one);
  EXPECT_EQ(d.quality, model::Quality::bad);
  EXPECT_EQ(d.reason, "short_response");
}

TEST(ModbusCodec, Bits) {
  auto s = spec(ModbusType::bit);
  const std::vector<std::uint16_t> words = {0x8001};
  s.bit = 0;
  EXPECT_EQ(decode_registers(s, words).value, model::Value{true});
  s.bit = 1;
  EXPECT_EQ(decode_registers(s, words).value, model::Value{false});
  s.bit = 15;
  EXPECT_EQ(decode_registers(s, words).value, model::Value{true});
  EXPECT_EQ(set_bit(0x8001, 3, true), 0x8009);
  EXPECT_EQ(set_bit(0x8009, 15, false), 0x0009);
  EXPECT_NE(encode_registers(s, true).error, "");  // needs the register: set_bit
  const auto coil = spec(ModbusType::boolean);
  EXPECT_EQ(encode_registers(coil, true).words, (std::vector<std::uint16_t>{1}));
}

TEST(ModbusCodec, Strings) {
  auto s = spec(ModbusType::string);
  s.length = 4;
  const std::vector<std::uint16_t> words = {0x5344, 0x4D36, 0x3330, 0x0000};  // "SDM630"
  EXPECT_EQ(decode_registers(s, words).value, model::Value{std::string("SDM630")});
  EXPECT_EQ(encode_registers(s, std::string("SDM630")).words, words);
  s.order = ByteOrder::badc;  // low byte first in each register
  const std::vector<std::uint16_t> swapped = {0x4453, 0x364D, 0x3033, 0x0000};
  EXPECT_EQ(decode_registers(s, swapped).value, model::Value{std::string("SDM630")});
  EXPECT_EQ(encode_registers(s, std::string("SDM630")).words, swapped);
  // Space padding is trimmed; too long is refused; invalid UTF-8 is bad, not passed on.
  s.order = ByteOrder::abcd;
  const std::vector<std::uint16_t> padded = {0x4142, 0x2020, 0x2020, 0x2020};
  EXPECT_EQ(decode_registers(s, padded).value, model::Value{std::string("AB")});
  EXPECT_NE(encode_registers(s, std::string("123456789")).error, "");
  const std::vector<std::uint16_t> invalid = {0xFFFE, 0, 0, 0};
  EXPECT_EQ(decode_registers(s, invalid).reason, "invalid_text");
}

TEST(ModbusCodec, WritesRefuseWhatTheRegisterCannotHold) {
  EXPECT_EQ(encode_registers(spec(ModbusType::int16), 32768.0).error, "out of range for int16");
  EXPECT_EQ(encode_registers(spec(ModbusType::uint16), -1.0).error, "out of range for uint16");
  EXPECT_EQ(encode_registers(spec(ModbusType::uint64), 18446744073709551616.0).error,
            "out of range for uint64");
  EXPECT_EQ(encode_registers(spec(ModbusType::float32), 1e39).error, "out of range for float32");
  EXPECT_NE(encode_registers(spec(ModbusType::float32), std::nan("")).error, "");
  EXPECT_NE(encode_registers(spec(ModbusType::uint16), std::string("x")).error, "");
  EXPECT_NE(encode_registers(spec(ModbusType::uint16), true).error, "");
}

}  // namespace
}  // namespace fieldhub::modbus
