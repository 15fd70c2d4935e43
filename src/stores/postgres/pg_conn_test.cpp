// SPDX-License-Identifier: Apache-2.0
// The parts of the libpq wrapper that need no server: COPY BINARY encoding and URL redaction.

#include "stores/postgres/pg_conn.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace fieldhub::pg {
namespace {

using namespace std::string_literals;

// PostgreSQL docs, COPY, "Binary Format": 11-byte signature, 32-bit flags, 32-bit extension length.
const std::string header = "PGCOPY\n\xff\r\n\0"s + "\0\0\0\0"s + "\0\0\0\0"s;

TEST(CopyBuffer, EmptyBufferIsTheHeaderAndTheTrailer) {
  CopyBuffer b;
  EXPECT_EQ(b.data(), header);
  b.finish();
  EXPECT_EQ(b.data(), header + "\xff\xff");
  EXPECT_EQ(b.rows(), 0u);
}

TEST(CopyBuffer, FieldsAreLengthPrefixedBigEndian) {
  CopyBuffer b;
  b.begin_row(6);
  b.int2(-2);
  b.int4(0x01020304);
  b.int8(-1);
  b.boolean(true);
  b.bytea("a\0b"s);
  b.null();
  b.finish();
  const std::string row = "\0\x06"s                                             // 6 fields
                          + "\0\0\0\x02"s + "\xff\xfe"                          // int2 -2
                          + "\0\0\0\x04"s + "\x01\x02\x03\x04"                  // int4
                          + "\0\0\0\x08"s + "\xff\xff\xff\xff\xff\xff\xff\xff"  // int8 -1
                          + "\0\0\0\x01"s + "\x01"                              // true
                          + "\0\0\0\x03"s + "a\0b"s                             // bytes kept
                          + "\xff\xff\xff\xff";                                 // NULL
  EXPECT_EQ(b.data(), header + row + "\xff\xff");
  EXPECT_EQ(b.rows(), 1u);
  b.clear();
  EXPECT_EQ(b.data(), header);
  EXPECT_EQ(b.rows(), 0u);
}

TEST(CopyBuffer, DoublesKeepEveryBit) {
  CopyBuffer b;
  b.float8(1.0);
  EXPECT_EQ(b.data().substr(header.size()), "\0\0\0\x08"s + "\x3f\xf0\0\0\0\0\0\0"s);
  b.clear();
  b.float8(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(b.data().substr(header.size() + 4, 2), "\x7f\xf8");
}

TEST(RedactUrl, HidesThePasswordOnly) {
  EXPECT_EQ(redact_url("postgresql://fieldhub:s3cret@db:5432/fh"),
            "postgresql://fieldhub:***@db:5432/fh");
  EXPECT_EQ(redact_url("postgresql://fieldhub@db/fh"), "postgresql://fieldhub@db/fh");
  EXPECT_EQ(redact_url("postgresql://db:5432/fh"), "postgresql://db:5432/fh");
  EXPECT_EQ(redact_url("host=db password=s3cret dbname=fh"), "host=db password=*** dbname=fh");
  EXPECT_EQ(redact_url("postgresql://db/fh?password=s3cret&sslmode=require"),
            "postgresql://db/fh?password=***&sslmode=require");
}

TEST(Connection, AClosedConnectionFailsAsAValue) {
  Connection c;
  EXPECT_FALSE(c.healthy());
  EXPECT_FALSE(c.execute("SELECT 1").ok());
  EXPECT_FALSE(c.query("SELECT 1").ok());
  EXPECT_EQ(c.transaction_state(), '?');
}

}  // namespace
}  // namespace fieldhub::pg
