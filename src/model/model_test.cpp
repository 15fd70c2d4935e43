// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "model/event.h"
#include "model/quality.h"
#include "model/reading.h"
#include "model/time.h"

namespace fieldhub::model {
namespace {

TEST(Rfc3339, ParsesUtcWithFraction) {
  const auto ts = parse_rfc3339("2026-11-24T10:00:00.123Z");
  ASSERT_TRUE(ts);
  EXPECT_EQ(to_micros(*ts), 1795514400123000);
  EXPECT_EQ(format_rfc3339(*ts), "2026-11-24T10:00:00.123Z");
}

TEST(Rfc3339, FormatsEveryFieldWithItsPaddingAndTruncatesToMilliseconds) {
  EXPECT_EQ(format_rfc3339(from_micros(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(from_micros(-1)), "1969-12-31T23:59:59.999Z");  // floor, not toward 0
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("0999-02-03T04:05:06.007999Z")),
            "0999-02-03T04:05:06.007Z");
  EXPECT_EQ(format_rfc3339(*parse_rfc3339("9999-12-31T23:59:59.999Z")), "9999-12-31T23:59:59.999Z");
  // Outside four-digit years (no device sends those) it still writes a readable time.
  EXPECT_EQ(format_rfc3339(from_micros(253402300800000000)), "10000-01-01T00:00:00.000Z");
  std::string out = "at ";
  append_rfc3339(out, from_micros(1795514400123000));
  EXPECT_EQ(out, "at 2026-11-24T10:00:00.123Z");
}

TEST(Rfc3339, AppliesNumericOffset) {
  const auto local = parse_rfc3339("2026-11-24T11:30:00+01:30");
  const auto utc = parse_rfc3339("2026-11-24T10:00:00Z");
  ASSERT_TRUE(local && utc);
  EXPECT_EQ(*local, *utc);
}

TEST(Rfc3339, KeepsMicroseconds) {
  const auto ts = parse_rfc3339("2026-01-01T00:00:00.000001Z");
  ASSERT_TRUE(ts);
  EXPECT_EQ(to_micros(*ts) % 1000000, 1);
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* bad :
       {"", "2026-11-24", "2026-11-24T10:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-11-24T25:00:00Z", "2026-11-24T10:00:00.Z", "2026-11-24T10:00:00Zjunk",
        "2026-11-24T10:00:00+0100", "abcd-11-24T10:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Quality, RoundTripsNames) {
  for (auto q : {Quality::good, Quality::uncertain, Quality::bad}) {
    EXPECT_EQ(parse_quality(to_string(q)), q);
  }
  EXPECT_FALSE(parse_quality("ok"));
}

TEST(Priority, RoundTripsNames) {
  for (auto p : {Priority::high, Priority::medium, Priority::low, Priority::none}) {
    EXPECT_EQ(parse_priority(to_string(p)), p);
  }
  EXPECT_FALSE(parse_priority("urgent"));
}

TEST(Reading, OrdersByReceiptTimeWhenSourceTimeUntrusted) {
  Reading r;
  r.source_ts = from_micros(5'000'000);
  r.received_ts = from_micros(1'000'000);
  EXPECT_EQ(r.ts(), r.source_ts);
  r.source_ts_trusted = false;
  EXPECT_EQ(r.ts(), r.received_ts);
}

}  // namespace
}  // namespace fieldhub::model
