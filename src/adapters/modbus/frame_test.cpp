// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/frame.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace fieldhub::modbus {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes hex(const std::string& text) {
  Bytes out;
  std::string digits;
  for (const char c : text) {
    if (c != ' ') digits += c;
  }
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

Bytes with_crc(Bytes b) {
  const std::uint16_t crc = crc16(b);
  b.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  b.push_back(static_cast<std::uint8_t>(crc >> 8));
  return b;
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const Request sdm_voltage = read_request(1, FunctionCode::read_input_registers, 0, 2);

// --- Published vectors (test-vectors README, SDM630 phase-1 voltage) ---------------------------

TEST(ModbusFrame, Sdm630RtuRequestAndReply) {
  EXPECT_EQ(encode_rtu(sdm_voltage), hex("01 04 00 00 00 02 71 CB"));
  const Reply r = parse_rtu(sdm_voltage, hex("01 04 04 43 66 33 34 1B 38"));
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.consumed, 9u);
  EXPECT_EQ(r.registers, (std::vector<std::uint16_t>{0x4366, 0x3334}));
  EXPECT_EQ(expected_rtu_reply_size(sdm_voltage), 9u);
}

TEST(ModbusFrame, Sdm630TcpRequestAndReply) {
  EXPECT_EQ(encode_tcp(1, sdm_voltage), hex("00 01 00 00 00 06 01 04 00 00 00 02"));
  TcpFrameDecoder d;
  d.feed(hex("00 01 00 00 00 07 01 04 04 43 66 33 34"));
  const auto f = d.next();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->transaction, 1);
  EXPECT_EQ(f->unit, 1);
  const Reply r = check_tcp_reply(1, sdm_voltage, *f);
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.registers, (std::vector<std::uint16_t>{0x4366, 0x3334}));
  EXPECT_FALSE(d.next().has_value());
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(ModbusFrame, Crc16Check) {
  // CRC-16/MODBUS check value for "123456789" (CRC catalogue).
  const std::string text = "123456789";
  EXPECT_EQ(crc16(Bytes(text.begin(), text.end())), 0x4B37);
}

// --- Request PDUs ---------------------------------------------------------------------------

TEST(ModbusFrame, RequestPdus) {
  EXPECT_EQ(read_request(1, FunctionCode::read_coils, 0x13, 0x13).pdu, hex("01 00 13 00 13"));
  EXPECT_EQ(read_request(1, FunctionCode::read_discrete_inputs, 0xC4, 0x16).pdu,
            hex("02 00 C4 00 16"));
  EXPECT_EQ(read_request(1, FunctionCode::read_holding_registers, 0x6B, 3).pdu,
            hex("03 00 6B 00 03"));
  EXPECT_EQ(write_single_coil(1, 0xAC, true).pdu, hex("05 00 AC FF 00"));
  EXPECT_EQ(write_single_coil(1, 0xAC, false).pdu, hex("05 00 AC 00 00"));
  EXPECT_EQ(write_single_register(1, 1, 3).pdu, hex("06 00 01 00 03"));
  // v1.1b §6.11 example: coils 20..29 = CD 01.
  const std::array<bool, 10> coils = {true,  false, true, true, false,
                                      false, true,  true, true, false};
  EXPECT_EQ(write_multiple_coils(1, 0x13, coils).pdu, hex("0F 00 13 00 0A 02 CD 01"));
  const std::array<std::uint16_t, 2> regs = {0x000A, 0x0102};
  EXPECT_EQ(write_multiple_registers(1, 1, regs).pdu, hex("10 00 01 00 02 04 00 0A 01 02"));
}

// --- Reply checks shared by TCP and RTU -------------------------------------------------------

TEST(ModbusFrame, ReadCoilsReplyBitsAreLsbFirst) {
  const Request req = read_request(1, FunctionCode::read_coils, 0x13, 0x13);
  // v1.1b §6.1 example: CD 6B 05.
  const Reply r = check_pdu(req, hex("01 03 CD 6B 05"));
  ASSERT_EQ(r.status, ReplyStatus::ok);
  ASSERT_EQ(r.bits.size(), 19u);
  EXPECT_TRUE(r.bits[0]);
  EXPECT_FALSE(r.bits[1]);
  EXPECT_TRUE(r.bits[2]);
  EXPECT_TRUE(r.bits[3]);
  EXPECT_TRUE(r.bits[18]);
  EXPECT_FALSE(r.bits[17]);
}

TEST(ModbusFrame, ExceptionReplies) {
  for (std::uint8_t code : {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08, 0x0A, 0x0B}) {
    const Reply r = check_pdu(sdm_voltage, Bytes{0x84, code});
    EXPECT_EQ(r.status, ReplyStatus::exception);
    EXPECT_EQ(r.exception, code);
  }
  EXPECT_EQ(exception_name(0x02), "illegal_data_address");
  EXPECT_EQ(exception_name(0x0B), "gateway_target_failed_to_respond");
  EXPECT_EQ(exception_name(0x09), "exception_unknown");
  EXPECT_EQ(check_pdu(sdm_voltage, hex("84 02 00")).status, ReplyStatus::bad_length);
}

TEST(ModbusFrame, MalformedReadReplies) {
  EXPECT_EQ(check_pdu(sdm_voltage, hex("03 04 43 66 33 34")).status, ReplyStatus::wrong_function);
  EXPECT_EQ(check_pdu(sdm_voltage, hex("83 02")).status, ReplyStatus::wrong_function);
  EXPECT_EQ(check_pdu(sdm_voltage, hex("04 02 43 66")).status, ReplyStatus::bad_byte_count);
  EXPECT_EQ(check_pdu(sdm_voltage, hex("04 04 43 66 33")).status, ReplyStatus::bad_length);
  EXPECT_EQ(check_pdu(sdm_voltage, hex("04 04 43 66 33 34 00")).status, ReplyStatus::bad_length);
  EXPECT_EQ(check_pdu(sdm_voltage, hex("04")).status, ReplyStatus::bad_length);
  EXPECT_EQ(check_pdu(sdm_voltage, Bytes{}).status, ReplyStatus::bad_length);
}

TEST(ModbusFrame, WriteRepliesMustEchoTheRequest) {
  const Request single = write_single_register(1, 7, 0x0102);
  EXPECT_EQ(check_pdu(single, hex("06 00 07 01 02")).status, ReplyStatus::ok);
  EXPECT_EQ(check_pdu(single, hex("06 00 07 01 03")).status, ReplyStatus::bad_echo);
  EXPECT_EQ(check_pdu(single, hex("06 00 08 01 02")).status, ReplyStatus::bad_echo);
  const Request coil = write_single_coil(1, 7, true);
  EXPECT_EQ(check_pdu(coil, hex("05 00 07 FF 00")).status, ReplyStatus::ok);
  EXPECT_EQ(check_pdu(coil, hex("05 00 07 00 00")).status, ReplyStatus::bad_echo);
  const std::array<std::uint16_t, 2> regs = {1, 2};
  const Request multi = write_multiple_registers(1, 7, regs);
  EXPECT_EQ(check_pdu(multi, hex("10 00 07 00 02")).status, ReplyStatus::ok);
  EXPECT_EQ(check_pdu(multi, hex("10 00 07 00 01")).status, ReplyStatus::bad_echo);
  const std::array<bool, 3> bits = {true, true, false};
  const Request coils = write_multiple_coils(1, 7, bits);
  EXPECT_EQ(check_pdu(coils, hex("0F 00 07 00 03")).status, ReplyStatus::ok);
  EXPECT_EQ(check_pdu(coils, hex("0F 00 07 00 03 00")).status, ReplyStatus::bad_length);
}

// --- TCP stream decoder -----------------------------------------------------------------------

TEST(ModbusTcp, DecodesByteByByteAndBackToBack) {
  const Bytes one = hex("00 01 00 00 00 07 01 04 04 43 66 33 34");
  const Bytes two = hex("00 02 00 00 00 03 01 84 02");
  const Bytes stream = cat(one, two);
  TcpFrameDecoder d;
  std::vector<TcpFrame> frames;
  for (const std::uint8_t b : stream) {
    d.feed(std::span(&b, 1));
    while (auto f = d.next()) frames.push_back(*f);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].transaction, 1);
  EXPECT_EQ(frames[1].transaction, 2);
  EXPECT_EQ(frames[1].pdu, hex("84 02"));
}

TEST(ModbusTcp, LateReplyIsNeverTakenForTheCurrentRequest) {
  // Request 1 timed out; request 2 is in flight; request 1's reply arrives first.
  TcpFrameDecoder d;
  d.feed(hex("00 01 00 00 00 07 01 04 04 00 00 00 00"));
  d.feed(hex("00 02 00 00 00 07 01 04 04 43 66 33 34"));
  const auto late = d.next();
  ASSERT_TRUE(late);
  EXPECT_EQ(check_tcp_reply(2, sdm_voltage, *late).status, ReplyStatus::late_reply);
  const auto current = d.next();
  ASSERT_TRUE(current);
  const Reply r = check_tcp_reply(2, sdm_voltage, *current);
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.registers[0], 0x4366);
}

TEST(ModbusTcp, WrongUnit) {
  const TcpFrame f{1, 2, hex("04 04 43 66 33 34")};
  EXPECT_EQ(check_tcp_reply(1, sdm_voltage, f).status, ReplyStatus::wrong_unit);
}

TEST(ModbusTcp, ImpossibleHeadersFailTheStream) {
  for (const char* header : {"00 01 00 01 00 03 01 84 02",  // protocol id 1
                             "00 01 00 00 00 01 01",        // length 1: no function code
                             "00 01 00 00 00 FF 01"}) {     // 255 > 254: over 260 bytes
    SCOPED_TRACE(header);
    TcpFrameDecoder d;
    d.feed(hex(header));
    EXPECT_FALSE(d.next().has_value());
    EXPECT_TRUE(d.failed());
    d.reset();
    EXPECT_FALSE(d.failed());
  }
  // The largest legal frame (260 bytes) passes.
  Bytes big = hex("00 01 00 00 00 FE 01 03 FA");
  big.resize(260, 0);
  TcpFrameDecoder d;
  d.feed(big);
  const auto f = d.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->pdu.size(), 253u);
}

// --- RTU reply parser -------------------------------------------------------------------------

TEST(ModbusRtu, TruncatedWaitsForMore) {
  const Bytes reply = hex("01 04 04 43 66 33 34 1B 38");
  for (std::size_t n = 0; n < reply.size(); ++n) {
    SCOPED_TRACE(n);
    const Reply r = parse_rtu(sdm_voltage, std::span(reply).first(n));
    EXPECT_EQ(r.status, ReplyStatus::truncated);
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(ModbusRtu, BadCrc) {
  const Reply r = parse_rtu(sdm_voltage, hex("01 04 04 43 66 33 34 1B 39"));
  EXPECT_EQ(r.status, ReplyStatus::bad_crc);
  EXPECT_EQ(r.consumed, 9u);
}

TEST(ModbusRtu, WrongUnitIsAWholeFrameForSomeoneElse) {
  const Reply r = parse_rtu(sdm_voltage, with_crc(hex("02 04 04 43 66 33 34")));
  EXPECT_EQ(r.status, ReplyStatus::wrong_unit);
  EXPECT_EQ(r.consumed, 9u);
}

TEST(ModbusRtu, WrongFunctionAndByteCount) {
  EXPECT_EQ(parse_rtu(sdm_voltage, with_crc(hex("01 03 04 43 66 33 34"))).status,
            ReplyStatus::wrong_function);
  EXPECT_EQ(parse_rtu(sdm_voltage, with_crc(hex("01 04 02 43 66"))).status,
            ReplyStatus::bad_byte_count);
  EXPECT_EQ(parse_rtu(sdm_voltage, with_crc(hex("01 2B 0E 01"))).status,
            ReplyStatus::wrong_function);
}

TEST(ModbusRtu, Exception) {
  const Reply r = parse_rtu(sdm_voltage, with_crc(hex("01 84 02")));
  EXPECT_EQ(r.status, ReplyStatus::exception);
  EXPECT_EQ(r.exception, 0x02);
  EXPECT_EQ(r.consumed, 5u);
}

TEST(ModbusRtu, NoiseIsSkippedByteByByte) {
  Bytes buffer = cat(hex("00 FF"), hex("01 04 04 43 66 33 34 1B 38"));
  std::span<const std::uint8_t> rest(buffer);
  std::size_t noise = 0;
  Reply r;
  while (true) {
    r = parse_rtu(sdm_voltage, rest);
    if (r.status != ReplyStatus::noise) break;
    ASSERT_GT(r.consumed, 0u);
    rest = rest.subspan(r.consumed);
    ++noise;
  }
  EXPECT_EQ(noise, 2u);
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.registers[0], 0x4366);
}

TEST(ModbusRtu, EchoOfAReadIsRecognisedWithoutConfiguration) {
  const Bytes buffer = cat(hex("01 04 00 00 00 02 71 CB"), hex("01 04 04 43 66 33 34 1B 38"));
  Reply r = parse_rtu(sdm_voltage, buffer);
  EXPECT_EQ(r.status, ReplyStatus::echo);
  EXPECT_EQ(r.consumed, 8u);
  r = parse_rtu(sdm_voltage, std::span(buffer).subspan(8));
  EXPECT_EQ(r.status, ReplyStatus::ok);
  // Half an echo: wait.
  EXPECT_EQ(parse_rtu(sdm_voltage, std::span(buffer).first(6)).status, ReplyStatus::truncated);
}

TEST(ModbusRtu, EchoOfASingleWriteNeedsTheBusFlag) {
  // FC06's reply is byte-identical to the request: only a bus known to echo tells them apart.
  const Request w = write_single_register(1, 7, 0x0102);
  const Bytes frame = encode_rtu(w);
  const Bytes twice = cat(frame, frame);
  Reply r = parse_rtu(w, twice, /*echo_pending=*/true);
  EXPECT_EQ(r.status, ReplyStatus::echo);
  EXPECT_EQ(r.consumed, 8u);
  r = parse_rtu(w, std::span(twice).subspan(8), /*echo_pending=*/false);
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(parse_rtu(w, frame, false).status, ReplyStatus::ok);
}

TEST(ModbusRtu, LateReplyOfAnotherRequestIsNotTaken) {
  // The reply to an earlier request to unit 2 arrives while we wait for unit 1.
  const Bytes late = with_crc(hex("02 04 04 00 00 00 00"));
  const Bytes buffer = cat(late, hex("01 04 04 43 66 33 34 1B 38"));
  Reply r = parse_rtu(sdm_voltage, buffer);
  EXPECT_EQ(r.status, ReplyStatus::wrong_unit);
  r = parse_rtu(sdm_voltage, std::span(buffer).subspan(r.consumed));
  EXPECT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.registers[0], 0x4366);
  // A late reply from the same unit to a different read has the wrong byte count.
  const Request other = read_request(1, FunctionCode::read_input_registers, 6, 4);
  EXPECT_EQ(parse_rtu(other, hex("01 04 04 43 66 33 34 1B 38")).status,
            ReplyStatus::bad_byte_count);
}

TEST(ModbusRtu, ReadCoilsAndWrites) {
  const Request coils = read_request(1, FunctionCode::read_coils, 0, 10);
  const Reply r = parse_rtu(coils, with_crc(hex("01 01 02 01 03")));
  ASSERT_EQ(r.status, ReplyStatus::ok);
  EXPECT_EQ(r.bits.size(), 10u);
  EXPECT_TRUE(r.bits[0]);
  EXPECT_TRUE(r.bits[8]);
  EXPECT_TRUE(r.bits[9]);
  const std::array<std::uint16_t, 2> regs = {1, 2};
  const Request multi = write_multiple_registers(1, 7, regs);
  EXPECT_EQ(parse_rtu(multi, with_crc(hex("01 10 00 07 00 02"))).status, ReplyStatus::ok);
  EXPECT_EQ(parse_rtu(multi, with_crc(hex("01 10 00 07 00 03"))).status, ReplyStatus::bad_echo);
  EXPECT_EQ(expected_rtu_reply_size(multi), 8u);
  EXPECT_EQ(expected_rtu_reply_size(coils), 7u);
}

}  // namespace
}  // namespace fieldhub::modbus
