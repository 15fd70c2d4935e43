// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model/time.h"
#include "model/value.h"

namespace fieldhub::common {

// Appends compact JSON to a string. The caller keeps keys and values balanced; the writer
// inserts commas and escapes strings (control characters, quotes, backslashes; invalid UTF-8
// bytes become U+FFFD so the output is always valid JSON).
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view{s}); }
  JsonWriter& value(const std::string& s) { return value(std::string_view{s}); }
  JsonWriter& value(double d);  // non-finite numbers are written as null
  JsonWriter& value(std::int64_t i);
  JsonWriter& value(std::uint64_t u);
  JsonWriter& value(int i) { return value(static_cast<std::int64_t>(i)); }
  JsonWriter& value(bool b);
  JsonWriter& value(const model::Value& v);
  JsonWriter& value(model::Timestamp ts);  // RFC 3339
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // an already-encoded JSON value

  template <typename T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

 private:
  void separate();
  std::string& out_;
  bool need_comma_ = false;
};

// Appends s to out as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

}  // namespace fieldhub::common
