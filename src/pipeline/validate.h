// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>

#include "model/time.h"
#include "pipeline/envelope.h"

namespace fieldhub::pipeline {

struct ValidationLimits {
  std::chrono::microseconds max_future_skew{std::chrono::minutes{5}};
  std::chrono::microseconds max_past_age{std::chrono::hours{24 * 7}};
};

struct ValidationNotes {
  std::size_t future_timestamps = 0;  // records whose time is not trusted for ordering
  std::size_t missing_timestamps = 0;
};

// Checks every record of an envelope against what any adapter may produce and against the clock,
// whatever protocol it came from (RELIABILITY.md, malformed input):
// - a non-finite number, a text value with NUL or invalid UTF-8, an empty device id or metric:
//   the record moves to the envelope's dead letters with a reason;
// - a time older than max_past_age: dead letter "timestamp_too_old";
// - a time further ahead than max_future_skew: kept, but flagged (quality at most uncertain,
//   reason future_timestamp) and ordered by receipt time, never trusted for "latest".
// Pure: the caller passes the time.
ValidationNotes validate(Envelope& env, const ValidationLimits& limits, model::Timestamp now);

}  // namespace fieldhub::pipeline
