// SPDX-License-Identifier: Apache-2.0
// Data-driven reply cases: testcases/rtu_replies.txt and testcases/tcp_replies.txt. A new case is
// a line of hex, not code.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/modbus/frame.h"

namespace fieldhub::modbus {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes hex(const std::string& text) {
  std::string digits;
  for (const char c : text) {
    if (c != ' ' && c != '\t') digits += c;
  }
  Bytes out;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) out.push_back(trim(part));
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// A Request from its PDU, as the transport would have built it.
Request request_from(std::uint8_t unit, const Bytes& pdu) {
  Request r;
  r.unit = unit;
  r.function = static_cast<FunctionCode>(pdu.at(0));
  r.address = static_cast<std::uint16_t>((pdu.at(1) << 8) | pdu.at(2));
  const bool single = r.function == FunctionCode::write_single_coil ||
                      r.function == FunctionCode::write_single_register;
  r.count = single ? 1 : static_cast<std::uint16_t>((pdu.at(3) << 8) | pdu.at(4));
  r.pdu = pdu;
  return r;
}

std::string verdict(const Reply& r) {
  std::string s(to_string(r.status));
  if (r.status == ReplyStatus::exception) {
    char code[8];
    std::snprintf(code, sizeof code, "/%02X", r.exception);
    s += code;
  }
  return s;
}

std::vector<std::string> cases(const char* name) {
  std::ifstream in(std::string(FIELDHUB_MODBUS_TESTCASES) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

TEST(ModbusTestcases, RtuReplies) {
  const auto lines = cases("rtu_replies.txt");
  EXPECT_GE(lines.size(), 20u);
  for (const auto& line : lines) {
    SCOPED_TRACE(line);
    const auto f = split(line, '|');
    ASSERT_EQ(f.size(), 4u);
    const Bytes frame = hex(f[0]);
    ASSERT_GE(frame.size(), 4u);
    const Request request = request_from(frame[0], Bytes(frame.begin() + 1, frame.end() - 2));
    ASSERT_EQ(encode_rtu(request), frame) << "the request frame's CRC is wrong";
    const Bytes bus = hex(f[1]);
    bool echo_pending = f[2] == "echo";
    std::span<const std::uint8_t> rest(bus);
    std::string got;
    while (true) {
      const Reply r = parse_rtu(request, rest, echo_pending);
      ASSERT_LE(r.consumed, rest.size());
      if (!got.empty()) got += ' ';
      got += verdict(r) + ":" + std::to_string(r.consumed);
      const bool skip = r.status == ReplyStatus::noise || r.status == ReplyStatus::echo ||
                        r.status == ReplyStatus::wrong_unit;
      if (!skip) break;
      if (r.status == ReplyStatus::echo) echo_pending = false;
      rest = rest.subspan(r.consumed);
    }
    EXPECT_EQ(got, f[3]);
  }
}

TEST(ModbusTestcases, TcpReplies) {
  const auto lines = cases("tcp_replies.txt");
  EXPECT_GE(lines.size(), 10u);
  for (const auto& line : lines) {
    SCOPED_TRACE(line);
    const auto f = split(line, '|');
    ASSERT_EQ(f.size(), 3u);
    const Bytes adu = hex(f[0]);
    ASSERT_GE(adu.size(), 8u);
    const auto transaction = static_cast<std::uint16_t>((adu[0] << 8) | adu[1]);
    const Request request = request_from(adu[6], Bytes(adu.begin() + 7, adu.end()));
    ASSERT_EQ(encode_tcp(transaction, request), adu);
    TcpFrameDecoder decoder;
    decoder.feed(hex(f[1]));
    std::string got;
    while (auto frame = decoder.next()) {
      if (!got.empty()) got += ' ';
      got += verdict(check_tcp_reply(transaction, request, *frame));
    }
    if (decoder.failed()) got += got.empty() ? "bad_frame" : " bad_frame";
    EXPECT_EQ(got, f[2]);
  }
}

}  // namespace
}  // namespace fieldhub::modbus
