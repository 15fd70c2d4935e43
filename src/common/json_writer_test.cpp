// SPDX-License-Identifier: Apache-2.0
#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/utf8.h"

namespace fieldhub::common {
namespace {

TEST(JsonWriter, WritesNestedStructure) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("a", 1).key("b").begin_array().value(true).null().value("x").end_array();
  w.field("c", 1.5).end_object();
  EXPECT_EQ(out, R"({"a":1,"b":[true,null,"x"],"c":1.5})");
}

TEST(JsonWriter, EscapesControlAndQuotes) {
  std::string out;
  append_json_string(out, std::string_view("a\"b\\c\n\x01\0", 8));
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001\u0000")");
}

TEST(JsonWriter, ReplacesInvalidUtf8) {
  std::string out;
  append_json_string(out, "ok\xC3\x28");
  EXPECT_EQ(out, "\"ok\xEF\xBF\xBD(\"");
  EXPECT_TRUE(is_valid_utf8(out));
}

TEST(JsonWriter, NonFiniteNumbersBecomeNull) {
  std::string out;
  JsonWriter w(out);
  w.begin_array().value(std::numeric_limits<double>::infinity()).value(std::nan("")).end_array();
  EXPECT_EQ(out, "[null,null]");
}

TEST(JsonWriter, WritesValueVariants) {
  std::string out;
  JsonWriter w(out);
  w.begin_array()
      .value(model::Value{})
      .value(model::Value{2.0})
      .value(model::Value{false})
      .value(model::Value{std::string("t")})
      .end_array();
  EXPECT_EQ(out, R"([null,2,false,"t"])");
}

TEST(Utf8, AcceptsWellFormedRejectsMalformed) {
  EXPECT_TRUE(is_valid_utf8("m\xC2\xB3 \xE2\x82\xAC \xF0\x9F\x94\x94"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
}

}  // namespace
}  // namespace fieldhub::common
