// SPDX-License-Identifier: Apache-2.0
#include "stores/redis/live_codec.h"

#include <simdjson.h>

#include <charconv>

#include "common/json_writer.h"

namespace fieldhub::stores::redis_codec {

namespace {

std::optional<std::int64_t> parse_i64(std::string_view s) {
  std::int64_t v = 0;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  if (res.ec != std::errc{} || res.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<LatestValue> metric_from(simdjson::dom::element e) {
  simdjson::dom::object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return std::nullopt;
  std::int64_t ts = 0;
  std::int64_t rts = 0;
  if (o["ts"].get_int64().get(ts) != simdjson::SUCCESS) return std::nullopt;
  if (o["rts"].get_int64().get(rts) != simdjson::SUCCESS) return std::nullopt;
  LatestValue v;
  v.ts = model::from_micros(ts);
  v.received_ts = model::from_micros(rts);
  simdjson::dom::element value;
  if (o["v"].get(value) == simdjson::SUCCESS) {
    if (value.is_bool()) {
      v.value = bool(value.get_bool().value_unsafe());
    } else if (value.is_number()) {
      double d = 0;
      if (value.get_double().get(d) != simdjson::SUCCESS) return std::nullopt;
      v.value = d;
    } else if (value.is_string()) {
      v.value = std::string(value.get_string().value_unsafe());
    }
  }
  std::string_view s;
  if (o["u"].get_string().get(s) == simdjson::SUCCESS) v.unit = std::string(s);
  if (o["q"].get_string().get(s) == simdjson::SUCCESS) {
    const auto q = model::parse_quality(s);
    if (!q) return std::nullopt;
    v.quality = *q;
  }
  if (o["qr"].get_string().get(s) == simdjson::SUCCESS) v.quality_reason = std::string(s);
  return v;
}

}  // namespace

void encode_metric(const LatestValue& v, std::string& out) {
  common::JsonWriter w(out);
  w.begin_object()
      .field("ts", model::to_micros(v.ts))
      .field("rts", model::to_micros(v.received_ts))
      .field("v", v.value)
      .field("u", v.unit)
      .field("q", model::to_string(v.quality));
  if (!v.quality_reason.empty()) w.field("qr", v.quality_reason);
  w.end_object();
}

std::optional<LatestValue> decode_metric(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(json.data(), json.size()).get(e) != simdjson::SUCCESS) return std::nullopt;
  return metric_from(e);
}

DeviceUpdate decode_hash(std::string device_id,
                         const std::vector<std::pair<std::string, std::string>>& fields,
                         std::size_t* skipped) {
  DeviceUpdate u;
  u.device_id = std::move(device_id);
  simdjson::dom::parser parser;
  auto skip = [&] {
    if (skipped != nullptr) ++*skipped;
  };
  for (const auto& [field, value] : fields) {
    if (field == last_seen_field) {
      if (const auto us = parse_i64(value)) {
        u.last_seen = model::from_micros(*us);
      } else {
        skip();
      }
      continue;
    }
    if (!field.starts_with(metric_field_prefix)) {
      skip();
      continue;
    }
    simdjson::dom::element e;
    std::optional<LatestValue> v;
    if (parser.parse(value.data(), value.size()).get(e) == simdjson::SUCCESS) v = metric_from(e);
    if (!v) {
      skip();
      continue;
    }
    u.metrics.emplace_back(field.substr(metric_field_prefix.size()), std::move(*v));
  }
  return u;
}

FrameWriter::FrameWriter(std::string_view source, std::size_t max_bytes)
    : source_(source), max_bytes_(max_bytes) {}

void FrameWriter::device(
    std::string_view device_id, std::optional<model::Timestamp> last_seen,
    std::span<const std::pair<std::string_view, std::string_view>> metric_json) {
  if (current_.empty()) {
    common::JsonWriter w(current_);
    w.begin_object().field("src", source_).key("dev").begin_array();
  } else {
    current_ += ',';
  }
  // A writer per device entry: it only has to get the commas inside the entry right.
  common::JsonWriter w(current_);
  w.begin_object().field("id", device_id);
  if (last_seen) w.field("seen", model::to_micros(*last_seen));
  if (!metric_json.empty()) {
    w.key("m").begin_object();
    for (const auto& [metric, json] : metric_json) w.key(metric).raw(json);
    w.end_object();
  }
  w.end_object();
  if (current_.size() >= max_bytes_) close_frame();
}

void FrameWriter::close_frame() {
  if (current_.empty()) return;
  current_ += "]}";
  frames_.push_back(std::move(current_));
  current_.clear();
}

std::vector<std::string> FrameWriter::take() {
  close_frame();
  return std::move(frames_);
}

std::optional<Frame> decode_frame(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  Frame f;
  std::string_view src;
  if (doc["src"].get_string().get(src) != simdjson::SUCCESS) return std::nullopt;
  f.source = std::string(src);
  simdjson::dom::array devices;
  if (doc["dev"].get_array().get(devices) != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element d : devices) {
    DeviceUpdate u;
    std::string_view id;
    if (d["id"].get_string().get(id) != simdjson::SUCCESS) return std::nullopt;
    u.device_id = std::string(id);
    std::int64_t seen = 0;
    if (d["seen"].get_int64().get(seen) == simdjson::SUCCESS)
      u.last_seen = model::from_micros(seen);
    simdjson::dom::object metrics;
    if (d["m"].get_object().get(metrics) == simdjson::SUCCESS) {
      for (auto [key, value] : metrics) {
        auto v = metric_from(value);
        if (!v) return std::nullopt;
        u.metrics.emplace_back(std::string(key), std::move(*v));
      }
    }
    f.devices.push_back(std::move(u));
  }
  return f;
}

}  // namespace fieldhub::stores::redis_codec
