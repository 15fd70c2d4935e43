// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fieldhub::model {

// All timestamps are UTC with microsecond resolution.
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

constexpr std::int64_t to_micros(Timestamp ts) {
  return ts.time_since_epoch().count();
}
constexpr Timestamp from_micros(std::int64_t us) {
  return Timestamp{std::chrono::microseconds{us}};
}

// RFC 3339 in UTC with millisecond precision, e.g. 2026-11-24T10:00:00.123Z.
std::string format_rfc3339(Timestamp ts);
// The same, appended to `out` (the live feed writes two per reading: no temporary string).
void append_rfc3339(std::string& out, Timestamp ts);

// Parses RFC 3339 (date-time with 'Z' or a numeric offset, optional fraction).
std::optional<Timestamp> parse_rfc3339(std::string_view text);

}  // namespace fieldhub::model
