// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/faults.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fieldhub::modbus {
namespace {

using model::Quality;

// The table RELIABILITY.md asks for, row by row.
struct Row {
  std::string name;
  FaultAction action;
  Quality quality;
  std::string reason;
  bool retry, busy_retry, misconfigured, target_offline, counts_failure, reconnect, reparse;
};

TEST(ModbusFaults, Table) {
  auto ex = [](std::uint8_t code) {
    return classify(Outcome::reply, ReplyStatus::exception, code);
  };
  auto st = [](ReplyStatus s) { return classify(Outcome::reply, s); };
  const std::vector<Row> rows = {
      // name, action, quality, reason, retry, busy, misconf, offline, failure, reconnect, reparse
      {"ok", classify(Outcome::ok), Quality::good, "", false, false, false, false, false, false,
       false},
      {"reply ok", st(ReplyStatus::ok), Quality::good, "", false, false, false, false, false, false,
       false},
      {"timeout", classify(Outcome::timeout), Quality::bad, "timeout", true, false, false, false,
       true, false, false},
      {"connection lost", classify(Outcome::connection_lost), Quality::bad, "connection_lost",
       false, false, false, false, true, true, false},
      {"01", ex(0x01), Quality::bad, "misconfigured", false, false, true, false, false, false,
       false},
      {"02", ex(0x02), Quality::bad, "misconfigured", false, false, true, false, false, false,
       false},
      {"03", ex(0x03), Quality::bad, "misconfigured", false, false, true, false, false, false,
       false},
      {"04", ex(0x04), Quality::bad, "server_device_failure", true, false, false, false, true,
       false, false},
      {"05", ex(0x05), Quality::bad, "acknowledge", false, true, false, false, false, false, false},
      {"06", ex(0x06), Quality::bad, "server_device_busy", false, true, false, false, false, false,
       false},
      {"08", ex(0x08), Quality::bad, "memory_parity_error", false, false, false, false, true, false,
       false},
      {"0A", ex(0x0A), Quality::bad, "gateway_path_unavailable", false, false, false, true, true,
       false, false},
      {"0B", ex(0x0B), Quality::bad, "gateway_target_failed_to_respond", false, false, false, true,
       true, false, false},
      {"unknown code", ex(0x42), Quality::bad, "exception_unknown", false, false, false, false,
       true, false, false},
      {"bad crc", st(ReplyStatus::bad_crc), Quality::bad, "bad_crc", true, false, false, false,
       true, false, false},
      {"wrong function", st(ReplyStatus::wrong_function), Quality::bad, "wrong_function", true,
       false, false, false, true, false, false},
      {"bad byte count", st(ReplyStatus::bad_byte_count), Quality::bad, "bad_byte_count", true,
       false, false, false, true, false, false},
      {"bad length", st(ReplyStatus::bad_length), Quality::bad, "bad_length", true, false, false,
       false, true, false, false},
      {"bad echo", st(ReplyStatus::bad_echo), Quality::bad, "bad_echo", true, false, false, false,
       true, false, false},
      {"truncated at timeout", st(ReplyStatus::truncated), Quality::bad, "truncated", true, false,
       false, false, true, false, false},
      {"bad frame", st(ReplyStatus::bad_frame), Quality::bad, "bad_frame", false, false, false,
       false, true, true, false},
      {"wrong unit", st(ReplyStatus::wrong_unit), Quality::good, "wrong_unit", false, false, false,
       false, false, false, true},
      {"noise", st(ReplyStatus::noise), Quality::good, "noise", false, false, false, false, false,
       false, true},
      {"echo", st(ReplyStatus::echo), Quality::good, "echo", false, false, false, false, false,
       false, true},
      {"late reply", st(ReplyStatus::late_reply), Quality::good, "late_reply", false, false, false,
       false, false, false, false},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(r.action.quality, r.quality);
    EXPECT_EQ(std::string(r.action.reason), r.reason);
    EXPECT_EQ(r.action.retry, r.retry);
    EXPECT_EQ(r.action.busy_retry, r.busy_retry);
    EXPECT_EQ(r.action.misconfigured, r.misconfigured);
    EXPECT_EQ(r.action.target_offline, r.target_offline);
    EXPECT_EQ(r.action.counts_failure, r.counts_failure);
    EXPECT_EQ(r.action.reconnect, r.reconnect);
    EXPECT_EQ(r.action.reparse, r.reparse);
  }
}

// Only an unreachable device gives up the rest of its cycle; a refused register does not.
TEST(ModbusFaults, AbandonCycle) {
  EXPECT_TRUE(classify(Outcome::timeout).abandon_cycle);
  EXPECT_TRUE(classify(Outcome::connection_lost).abandon_cycle);
  EXPECT_TRUE(classify(Outcome::reply, ReplyStatus::exception, 0x0A).abandon_cycle);
  EXPECT_TRUE(classify(Outcome::reply, ReplyStatus::exception, 0x0B).abandon_cycle);
  EXPECT_TRUE(classify(Outcome::reply, ReplyStatus::bad_frame).abandon_cycle);
  for (std::uint8_t code : {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x08}) {
    EXPECT_FALSE(classify(Outcome::reply, ReplyStatus::exception, code).abandon_cycle) << int{code};
  }
  for (auto s : {ReplyStatus::ok, ReplyStatus::bad_crc, ReplyStatus::wrong_function,
                 ReplyStatus::bad_byte_count, ReplyStatus::noise, ReplyStatus::echo,
                 ReplyStatus::wrong_unit, ReplyStatus::late_reply, ReplyStatus::truncated}) {
    EXPECT_FALSE(classify(Outcome::reply, s).abandon_cycle) << to_string(s);
  }
}

TEST(ModbusFaults, FromAParsedReply) {
  Reply r;
  r.status = ReplyStatus::exception;
  r.exception = 0x02;
  EXPECT_TRUE(classify(r).misconfigured);
}

}  // namespace
}  // namespace fieldhub::modbus
