// SPDX-License-Identifier: Apache-2.0
#include "pipeline/validate.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/json_writer.h"
#include "common/utf8.h"

namespace fieldhub::pipeline {

namespace {

// Why a value cannot be stored, or empty if it can.
std::string_view value_problem(const model::Value& v) {
  if (const auto* d = std::get_if<double>(&v); d && !std::isfinite(*d)) return "non_finite";
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (s->find('\0') != std::string::npos) return "nul_in_string";
    if (!common::is_valid_utf8(*s)) return "invalid_utf8";
  }
  return {};
}

std::string_view identity_problem(std::string_view device_id, std::string_view name) {
  if (device_id.empty() || name.empty()) return "invalid_record";
  if (!common::is_valid_utf8(device_id) || !common::is_valid_utf8(name)) return "invalid_utf8";
  if (device_id.find('\0') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return "nul_in_string";
  }
  return {};
}

DeadLetter dead_letter(model::Timestamp now, std::string_view device_id, std::string_view what,
                       std::string_view reason, std::string detail) {
  DeadLetter d;
  d.received_ts = now;
  d.source = "device/";
  d.source += device_id;
  d.reason = std::string(reason);
  d.detail = std::move(detail);
  d.payload = std::string(what);
  return d;
}

// Applies the clock checks to one record; returns a dead-letter reason or empty.
template <typename Record>
std::string_view check_time(Record& r, const ValidationLimits& limits, model::Timestamp now,
                            ValidationNotes& notes) {
  if (!r.source_ts_trusted) {
    ++notes.missing_timestamps;
    return {};
  }
  if (r.source_ts > now + limits.max_future_skew) {
    r.source_ts_trusted = false;
    ++notes.future_timestamps;
    return "future_timestamp";
  }
  if (r.source_ts < now - limits.max_past_age) return "timestamp_too_old";
  return {};
}

}  // namespace

ValidationNotes validate(Envelope& env, const ValidationLimits& limits, model::Timestamp now) {
  ValidationNotes notes;
  auto reject_reading = [&](const model::Reading& r, std::string_view reason) {
    std::string shown;
    common::JsonWriter w(shown);
    w.begin_object().field("metric", std::string_view{r.metric}).key("value").value(r.value);
    w.end_object();
    env.dead_letters.push_back(dead_letter(now, r.device_id, shown, reason,
                                           "metric '" + r.metric + "': " + std::string(reason)));
  };
  std::erase_if(env.readings, [&](model::Reading& r) {
    std::string_view problem = identity_problem(r.device_id, r.metric);
    if (problem.empty()) problem = value_problem(r.value);
    if (!problem.empty()) {
      reject_reading(r, problem);
      return true;
    }
    const std::string_view time_note = check_time(r, limits, now, notes);
    if (time_note == "future_timestamp") {
      if (r.quality == model::Quality::good) r.quality = model::Quality::uncertain;
      if (r.quality_reason.empty()) r.quality_reason = "future_timestamp";
    } else if (!time_note.empty()) {
      reject_reading(r, time_note);
      return true;
    }
    return false;
  });
  std::erase_if(env.events, [&](model::Event& e) {
    std::string_view problem = identity_problem(e.device_id, e.type);
    if (problem.empty()) {
      const std::string_view time_note = check_time(e, limits, now, notes);
      if (time_note != "future_timestamp") problem = time_note;
    }
    if (problem.empty()) return false;
    env.dead_letters.push_back(dead_letter(now, e.device_id, e.attributes_json, problem,
                                           "event '" + e.type + "': " + std::string(problem)));
    return true;
  });
  return notes;
}

}  // namespace fieldhub::pipeline
