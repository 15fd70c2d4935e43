// SPDX-License-Identifier: Apache-2.0
#include "sim/device_sim.h"

#include <algorithm>
#include <cmath>

#include "common/json_writer.h"

namespace fieldhub::sim {

namespace {

using namespace std::chrono_literals;

// A plausible starting value for a quantity, by unit.
double typical_value(const config::MetricSpec& m) {
  const std::string& u = m.unit;
  double v = 50.0;
  if (u == "V")
    v = 230.0;
  else if (u == "A")
    v = 4.0;
  else if (u == "W")
    v = 900.0;
  else if (u == "kW")
    v = 12.0;
  else if (u == "Hz")
    v = 50.0;
  else if (u == "°C")
    v = 21.0;
  else if (u == "%")
    v = 55.0;
  else if (u == "l/min")
    v = 12.0;
  else if (u == "m³/h")
    v = 1.5;
  else if (u == "kWh")
    v = 1200.0;
  else if (u == "m³")
    v = 300.0;
  else if (u == "dBm")
    v = -60.0;
  if (m.min) v = std::max(v, *m.min);
  if (m.max) v = std::min(v, *m.max);
  if (m.min && m.max && (v <= *m.min || v >= *m.max)) v = (*m.min + *m.max) / 2;
  return v;
}

// How much a counter grows per report, by unit.
double counter_step(const std::string& unit) {
  if (unit == "kWh") return 0.2;
  if (unit == "Wh") return 200.0;
  if (unit == "m³") return 0.01;
  if (unit == "l") return 10.0;
  return 1.0;
}

// Puts `value` at a dotted path inside a nested map of JSON fragments.
struct JsonTree {
  std::map<std::string, JsonTree> children;
  std::string leaf;  // encoded JSON value when this is a leaf

  void put(std::string_view path, std::string encoded) {
    const auto dot = path.find('.');
    auto& child = children[std::string(path.substr(0, dot))];
    if (dot == std::string_view::npos) {
      child.leaf = std::move(encoded);
    } else {
      child.put(path.substr(dot + 1), std::move(encoded));
    }
  }
  void write(common::JsonWriter& w) const {
    if (children.empty()) {
      w.raw(leaf);
      return;
    }
    w.begin_object();
    for (const auto& [k, v] : children) {
      w.key(k);
      v.write(w);
    }
    w.end_object();
  }
};

std::string encode(const model::Value& v) {
  std::string out;
  common::JsonWriter(out).value(v);
  return out;
}

std::string encode_time(model::Timestamp ts, config::TimestampFormat format) {
  std::string out;
  common::JsonWriter w(out);
  switch (format) {
    case config::TimestampFormat::rfc3339:
      w.value(ts);
      break;
    case config::TimestampFormat::epoch_ms:
      w.value(static_cast<std::int64_t>(model::to_micros(ts) / 1000));
      break;
    case config::TimestampFormat::epoch_s:
      w.value(static_cast<std::int64_t>(model::to_micros(ts) / 1000000));
      break;
    case config::TimestampFormat::naive_utc: {
      std::string s = model::format_rfc3339(ts);
      w.value(std::string_view{s}.substr(0, 19));  // 2026-11-24T10:00:00, as Tasmota sends
      break;
    }
  }
  return out;
}

}  // namespace

DeviceSim::DeviceSim(const model::Device& device, const config::Profile& profile,
                     std::uint32_t seed, double rate_scale)
    : device_(device), profile_(profile), rng_(seed), rate_scale_(rate_scale) {
  auto interval =
      device.expected_interval.count() > 0 ? device.expected_interval : profile.expected_interval;
  if (interval.count() <= 0) interval = 10s;
  interval_ = std::chrono::duration_cast<std::chrono::microseconds>(interval / rate_scale_);
  for (const auto& m : profile_.metrics) {
    if (m.type == model::ValueType::number) state_[m.name] = typical_value(m);
  }
}

std::string DeviceSim::topic(const std::string& pattern, std::string_view fallback_suffix) const {
  std::string t =
      pattern.empty() ? "fieldhub/{site}/{device}/" + std::string(fallback_suffix) : pattern;
  auto replace = [&](std::string_view key, const std::string& with) {
    if (const auto at = t.find(key); at != std::string::npos) t.replace(at, key.size(), with);
  };
  replace("{site}", device_.site);
  replace("{device}", device_.address.empty() ? device_.id : device_.address);
  return t;
}

double DeviceSim::next_value(const config::MetricSpec& m) {
  double& v = state_[m.name];
  if (m.counter) {
    v += counter_step(m.unit) * std::uniform_real_distribution<double>(0.2, 1.0)(rng_);
  } else {
    // Small steps that drift back toward the quantity's typical size, so trends look like a real
    // meter's rather than a random walk that wanders off.
    const double typical = typical_value(m);
    v += 0.05 * (typical - v) +
         std::normal_distribution<double>(0.0, 0.01 * std::max(1.0, std::abs(typical)))(rng_);
    if (m.min) v = std::max(v, *m.min);
    if (m.max) v = std::min(v, *m.max);
  }
  // Raw value in the device's own scale: the profile maps value = raw * scale + offset.
  const double raw = (v - m.offset) / (m.scale == 0 ? 1.0 : m.scale);
  return std::round(raw * 1000.0) / 1000.0;
}

Publication DeviceSim::telemetry(model::Timestamp now) {
  JsonTree tree;
  const bool fieldhub_format = profile_.mqtt.format == config::PayloadFormat::fieldhub;
  for (const auto& m : profile_.metrics) {
    model::Value v;
    switch (m.type) {
      case model::ValueType::number:
        v = next_value(m);
        break;
      case model::ValueType::boolean: {
        double& s = state_[m.name];
        if (std::bernoulli_distribution(0.03)(rng_)) s = s > 0.5 ? 0.0 : 1.0;
        v = s > 0.5;
        break;
      }
      case model::ValueType::text:
        v = std::string("ok");
        break;
      case model::ValueType::none:
        continue;
    }
    const std::string path = fieldhub_format || m.path.empty() ? "values." + m.name : m.path;
    tree.put(path, encode(v));
  }
  if (fieldhub_format) {
    tree.put("ts", encode_time(now, config::TimestampFormat::rfc3339));
  } else if (!profile_.mqtt.timestamp_path.empty()) {
    tree.put(profile_.mqtt.timestamp_path, encode_time(now, profile_.mqtt.timestamp_format));
  }
  Publication p;
  p.topic = topic(profile_.mqtt.telemetry_topic, "telemetry");
  common::JsonWriter w(p.payload);
  tree.write(w);
  return p;
}

Publication DeviceSim::event(const config::EventSpec& spec, model::Timestamp now) {
  Publication p;
  p.event = true;
  common::JsonWriter w(p.payload);
  if (profile_.mqtt.format == config::PayloadFormat::fieldhub) {
    p.topic = topic(profile_.mqtt.event_topic, "event");
    w.begin_object().field("ts", now).field("type", std::string_view{spec.type});
    w.field("source", "fieldhub-sim").end_object();
  } else {
    p.topic = topic(profile_.mqtt.event_topic.empty() ? profile_.mqtt.telemetry_topic
                                                      : profile_.mqtt.event_topic,
                    "event");
    JsonTree tree;
    tree.put(spec.path.empty() ? spec.type : spec.path, encode(model::Value{spec.type}));
    tree.write(w);
  }
  return p;
}

std::chrono::microseconds DeviceSim::event_gap(const config::EventSpec& spec) {
  // Urgent calls are rare; routine events (doors, lock state) are frequent.
  std::chrono::seconds mean = 60s;
  switch (spec.priority) {
    case model::Priority::high:
      mean = 300s;
      break;
    case model::Priority::medium:
      mean = 120s;
      break;
    default:
      mean = 45s;
  }
  const double s =
      std::exponential_distribution<double>(1.0 / static_cast<double>(mean.count()))(rng_);
  return std::chrono::microseconds{static_cast<std::int64_t>(s * 1e6 / rate_scale_) + 1};
}

model::Timestamp DeviceSim::next_due() const {
  if (profile_.events.empty()) return next_telemetry_;
  return std::min(next_telemetry_, next_event_);
}

std::vector<Publication> DeviceSim::poll(model::Timestamp now) {
  std::vector<Publication> out;
  if (next_telemetry_.time_since_epoch().count() == 0) {
    // Spread the first reports over a few seconds so devices do not all speak at once, yet every
    // device shows up soon after the demo starts.
    const auto spread = std::min<std::chrono::microseconds>(interval_, 3s);
    next_telemetry_ = now + std::chrono::microseconds{std::uniform_int_distribution<std::int64_t>(
                                0, spread.count())(rng_)};
    if (!profile_.events.empty()) next_event_ = now + event_gap(profile_.events.front());
  }
  if (!profile_.metrics.empty() && now >= next_telemetry_) {
    out.push_back(telemetry(now));
    next_telemetry_ = now + interval_;
  }
  if (!profile_.events.empty() && now >= next_event_) {
    const config::EventSpec* spec = pending_follow_up_;
    pending_follow_up_ = nullptr;
    if (spec == nullptr) {
      spec = &profile_.events[std::uniform_int_distribution<std::size_t>(
          0, profile_.events.size() - 1)(rng_)];
      // A nurse call is answered: a call is followed by its cancel a little later.
      if (spec->type == "cancel") {
        if (const auto* call = profile_.event("call")) spec = call;
      }
      if (spec->type == "call") pending_follow_up_ = profile_.event("cancel");
    }
    out.push_back(event(*spec, now));
    next_event_ =
        now + (pending_follow_up_ != nullptr
                   ? std::chrono::microseconds{static_cast<std::int64_t>(30e6 / rate_scale_)}
                   : event_gap(*spec));
  }
  return out;
}

std::string ws_message(std::uint64_t id, bool event, std::string_view payload) {
  std::string out = "{\"id\":";
  out.append(std::to_string(id)).append(",\"kind\":\"").append(event ? "event" : "telemetry");
  out.append("\"");
  // The payload's fields after its '{' (an empty object adds none).
  if (payload.size() > 2) out.append(",");
  if (!payload.empty()) out.append(payload.substr(1));
  return out;
}

}  // namespace fieldhub::sim
