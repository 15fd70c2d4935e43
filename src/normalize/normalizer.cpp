// SPDX-License-Identifier: Apache-2.0
#include "normalize/normalizer.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <new>
#include <unordered_map>
#include <utility>

#include "common/json_writer.h"

namespace fieldhub::normalize {

namespace {

using config::PayloadFormat;
using config::TimestampFormat;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Nesting allowed in a payload. Device messages are two or three levels deep; the limit bounds
// the parser's stack and refuses "deep nesting" attacks with reason too_deep.
constexpr std::size_t max_depth = 32;
// Field-level dead letters kept per message: a message with thousands of bad keys must not become
// thousands of copies of its payload. The last one kept says how many more there were.
constexpr std::size_t max_field_dead_letters = 32;
// More levels than any pattern can have.
constexpr std::size_t max_topic_levels = 32;
// Numeric timestamps below this many milliseconds (March 1973) are taken as seconds: devices
// that send epoch seconds where milliseconds are due are common, and 1e11 s is year 5138.
constexpr double seconds_threshold = 1e11;
// 9999-12-31T23:59:59Z in ms: RFC 3339 cannot write later times.
constexpr double max_epoch_ms = 253402300799999.0;

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
template <typename V>
using NameMap = std::unordered_map<std::string, V, TransparentHash, std::equal_to<>>;

enum class LevelKind : std::uint8_t { literal, site, device };
struct Level {
  LevelKind kind = LevelKind::literal;
  std::string literal;
};
struct TopicPattern {
  std::string text;
  std::vector<Level> levels;
  bool has_site = false;
  bool telemetry = false;  // some profile's telemetry arrives on it
};

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    out.emplace_back(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

struct CompiledMetric {
  const config::MetricSpec* spec = nullptr;
  std::vector<std::string> path;
};
struct CompiledEvent {
  const config::EventSpec* spec = nullptr;
  std::vector<std::string> path;
};

constexpr std::size_t no_pattern = static_cast<std::size_t>(-1);

struct CompiledProfile {
  const config::Profile* profile = nullptr;
  std::vector<CompiledMetric> metrics;
  NameMap<std::size_t> metric_index;
  std::vector<CompiledEvent> events;
  NameMap<std::size_t> event_index;
  std::vector<std::string> ts_path;
  std::size_t telemetry_pattern = no_pattern;
  std::size_t event_pattern = no_pattern;
};

struct DeviceEntry {
  const model::Device* device = nullptr;
  const CompiledProfile* profile = nullptr;
};

enum class Role : std::uint8_t { telemetry, event };

// What a timestamp field gave: a time, none, or a reason to refuse the message.
struct TimeResult {
  bool present = false;
  bool in_seconds = false;  // a millisecond field that held seconds, converted
  model::Timestamp ts;
  std::string problem;  // non-empty: invalid_timestamp, with this detail
};

std::optional<model::Timestamp> from_epoch_ms(double ms) {
  if (!std::isfinite(ms) || ms < 0 || ms > max_epoch_ms) return std::nullopt;
  return model::from_micros(static_cast<std::int64_t>(std::llround(ms * 1000.0)));
}

bool as_double(element e, double& out) {
  switch (e.type()) {
    case element_type::INT64:
      out = static_cast<double>(e.get_int64().value_unsafe());
      return true;
    case element_type::UINT64:
      out = static_cast<double>(e.get_uint64().value_unsafe());
      return true;
    case element_type::DOUBLE:
      out = e.get_double().value_unsafe();
      return true;
    default:
      return false;
  }
}

// A field name for a detail message, quoted and escaped (keys may hold any character).
std::string quoted(std::string_view prefix, std::string_view key) {
  std::string name(prefix);
  name += key;
  std::string out;
  common::append_json_string(out, name);
  return out;
}

std::string join(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& p : path) {
    if (!out.empty()) out += '.';
    out += p;
  }
  return out;
}

enum class Lookup : std::uint8_t { found, absent, duplicate, not_object };

// Follows a dotted path through nested objects. A key that occurs twice on the way makes the
// value ambiguous (RFC 8259 §4: names SHOULD be unique; parsers disagree on which one wins).
Lookup find_path(element root, const std::vector<std::string>& path, element& out) {
  element at = root;
  for (const auto& segment : path) {
    object obj;
    if (at.get(obj) != simdjson::SUCCESS) return Lookup::not_object;
    int hits = 0;
    for (const auto field : obj) {
      if (field.key == segment) {
        if (++hits > 1) return Lookup::duplicate;
        out = field.value;
      }
    }
    if (hits == 0) return Lookup::absent;
    at = out;
  }
  return Lookup::found;
}

}  // namespace

struct Normalizer::Impl {
  config::Config config;  // a copy: everything below points into it
  std::vector<TopicPattern> patterns;
  std::vector<CompiledProfile> profiles;
  NameMap<DeviceEntry> devices;     // MQTT address → device
  NameMap<DeviceEntry> ws_devices;  // WebSocket device id → device
  std::size_t max_message = 0;      // the larger of the MQTT and WebSocket limits
  simdjson::dom::parser parser;
  std::unique_ptr<char[]> buffer;  // payload copy with simdjson's padding, reused
  std::size_t buffer_size = 0;
  std::vector<std::size_t> field_metric;  // per-message scratch
  std::vector<std::uint32_t> metric_hits;

  explicit Impl(const config::Config& c) : config(c) {
    profiles.reserve(config.profiles.size());
    for (const auto& p : config.profiles) {
      const bool used =
          std::any_of(config.devices.begin(), config.devices.end(),
                      [&](const auto& d) { return d.protocol == "mqtt" && d.profile == p.name; });
      CompiledProfile cp;
      cp.profile = &p;
      for (const auto& m : p.metrics) {
        cp.metric_index.emplace(m.name, cp.metrics.size());
        cp.metrics.push_back({&m, split_path(m.path)});
      }
      for (const auto& e : p.events) {
        cp.event_index.emplace(e.type, cp.events.size());
        cp.events.push_back({&e, e.path.empty() ? std::vector<std::string>{} : split_path(e.path)});
      }
      if (!p.mqtt.timestamp_path.empty()) cp.ts_path = split_path(p.mqtt.timestamp_path);
      if (used) {
        cp.telemetry_pattern = add_pattern(p.mqtt.telemetry_topic);
        if (cp.telemetry_pattern != no_pattern) patterns[cp.telemetry_pattern].telemetry = true;
        cp.event_pattern = add_pattern(p.mqtt.event_topic);
      }
      profiles.push_back(std::move(cp));
    }
    for (const auto& d : config.devices) {
      if (d.protocol != "mqtt" && d.protocol != "websocket") continue;
      const auto it =
          std::find_if(profiles.begin(), profiles.end(),
                       [&](const CompiledProfile& cp) { return cp.profile->name == d.profile; });
      if (it == profiles.end()) continue;  // load_config guarantees it exists
      if (d.protocol == "mqtt") {
        devices.emplace(d.address, DeviceEntry{&d, &*it});
      } else {
        ws_devices.emplace(d.id, DeviceEntry{&d, &*it});
      }
    }
    max_message = config.mqtt.max_payload;
    if (!ws_devices.empty()) max_message = std::max(max_message, config.websocket.max_message);
    buffer_size = max_message + simdjson::SIMDJSON_PADDING;
    buffer = std::make_unique<char[]>(buffer_size);
    // Allocating up front keeps the hot path free of allocations and fixes the depth limit.
    if (parser.allocate(std::max<std::size_t>(max_message, 64), max_depth) != simdjson::SUCCESS) {
      throw std::bad_alloc();
    }
  }

  std::size_t add_pattern(const std::string& text) {
    if (text.empty()) return no_pattern;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      if (patterns[i].text == text) return i;
    }
    TopicPattern p;
    p.text = text;
    std::size_t start = 0;
    while (true) {
      const auto slash = text.find('/', start);
      const std::string level =
          text.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      if (level == "{device}") {
        p.levels.push_back({LevelKind::device, {}});
      } else if (level == "{site}") {
        p.levels.push_back({LevelKind::site, {}});
        p.has_site = true;
      } else {
        p.levels.push_back({LevelKind::literal, level});
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    patterns.push_back(std::move(p));
    return patterns.size() - 1;
  }

  // --- one message --------------------------------------------------------------------------

  struct Message {
    std::string_view topic;
    std::string_view payload;
    model::Timestamp received_ts;
    pipeline::Envelope env;
    const model::Device* device = nullptr;
    const CompiledProfile* profile = nullptr;
    std::string_view adapter = "mqtt";
    std::string_view link = "broker";
    bool transport_keys = false;  // "id" and "kind" are the transport's, not attributes
    std::size_t field_rejections = 0;
    std::size_t omitted_rejections = 0;
  };

  void reject(Message& m, std::string_view reason, std::string detail) {
    pipeline::DeadLetter d;
    d.received_ts = m.received_ts;
    d.source = std::string(m.topic);
    d.reason = std::string(reason);
    d.detail = std::move(detail);
    d.payload = std::string(m.payload.substr(0, config.pipeline.dead_letter_payload_cap));
    m.env.dead_letters.push_back(std::move(d));
  }

  // A bad part of a usable message: the rest is kept.
  void reject_field(Message& m, std::string_view reason, std::string detail) {
    if (m.field_rejections == max_field_dead_letters) {
      ++m.omitted_rejections;
      return;
    }
    ++m.field_rejections;
    reject(m, reason, std::move(detail));
  }

  void finish(Message& m) {
    if (m.omitted_rejections > 0 && !m.env.dead_letters.empty()) {
      m.env.dead_letters.back().detail +=
          " (and " + std::to_string(m.omitted_rejections) + " more fields refused)";
    }
  }

  pipeline::Envelope run(std::string_view topic, std::string_view payload,
                         model::Timestamp received_ts) {
    Message m;
    m.topic = topic;
    m.payload = payload;
    m.received_ts = received_ts;
    if (payload.size() > config.mqtt.max_payload) {
      reject(m, "oversized",
             "payload of " + std::to_string(payload.size()) + " bytes exceeds mqtt.max_payload (" +
                 std::to_string(config.mqtt.max_payload) + ")");
      return std::move(m.env);
    }
    Role role = Role::telemetry;
    if (!route(m, role)) return std::move(m.env);
    decode(m, role, m.profile->profile->mqtt.format);
    return std::move(m.env);
  }

  pipeline::Envelope run_device(std::string_view device_id, Role role, std::string_view payload,
                                model::Timestamp received_ts, const Normalizer::Origin& origin) {
    Message m;
    m.topic = origin.source;
    m.payload = payload;
    m.received_ts = received_ts;
    m.adapter = origin.adapter;
    m.link = origin.link;
    m.transport_keys = true;
    if (payload.size() > config.websocket.max_message) {
      reject(m, "oversized",
             "payload of " + std::to_string(payload.size()) +
                 " bytes exceeds websocket.max_message (" +
                 std::to_string(config.websocket.max_message) + ")");
      return std::move(m.env);
    }
    const auto it = ws_devices.find(device_id);
    if (it == ws_devices.end()) {
      reject(m, "unknown_device", "no websocket device with id " + quoted("", device_id));
      return std::move(m.env);
    }
    m.device = it->second.device;
    m.profile = it->second.profile;
    decode(m, role, PayloadFormat::fieldhub);
    return std::move(m.env);
  }

  // Parses m.payload (within the size limit, checked by the caller) and maps it per `format`.
  void decode(Message& m, Role role, PayloadFormat format) {
    // An empty view may have a null data(): memcpy must not see it.
    if (!m.payload.empty()) std::memcpy(buffer.get(), m.payload.data(), m.payload.size());
    std::memset(buffer.get() + m.payload.size(), 0, simdjson::SIMDJSON_PADDING);
    element root;
    if (const auto error = parser.parse(buffer.get(), m.payload.size(), false).get(root)) {
      reject(m, parse_reason(error), std::string("payload: ") + simdjson::error_message(error));
      return;
    }
    object obj;
    if (root.get(obj) != simdjson::SUCCESS) {
      reject(m, "not_an_object", "payload must be a JSON object");
      return;
    }
    if (format == PayloadFormat::fieldhub) {
      if (role == Role::telemetry) {
        fieldhub_telemetry(m, obj);
      } else {
        fieldhub_event(m, obj);
      }
    } else {
      json_message(m, root, role);
    }
    finish(m);
  }

  static std::string_view parse_reason(simdjson::error_code error) {
    switch (error) {
      case simdjson::UTF8_ERROR:
        return "invalid_utf8";
      case simdjson::DEPTH_ERROR:
        return "too_deep";
      case simdjson::NUMBER_ERROR:
      case simdjson::NUMBER_OUT_OF_RANGE:
        return "invalid_number";
      case simdjson::CAPACITY:
        return "oversized";
      default:
        return "invalid_json";
    }
  }

  // Finds the device and the topic's role; false (with a dead letter) if the topic is not ours.
  bool route(Message& m, Role& role) {
    std::array<std::string_view, max_topic_levels> levels;
    std::size_t count = 0;
    std::size_t start = 0;
    while (true) {
      if (count == max_topic_levels) {
        reject(m, "unknown_topic",
               "topic has more than " + std::to_string(max_topic_levels) + " levels");
        return false;
      }
      const auto slash = m.topic.find('/', start);
      levels[count++] =
          m.topic.substr(start, slash == std::string_view::npos ? slash : slash - start);
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }

    bool matched_pattern = false;
    const DeviceEntry* wrong_topic = nullptr;
    std::string_view unknown_address;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      const auto& p = patterns[i];
      if (p.levels.size() != count) continue;
      std::string_view device;
      std::string_view site;
      bool match = true;
      for (std::size_t l = 0; l < count && match; ++l) {
        switch (p.levels[l].kind) {
          case LevelKind::literal:
            match = levels[l] == p.levels[l].literal;
            break;
          case LevelKind::device:
            device = levels[l];
            break;
          case LevelKind::site:
            site = levels[l];
            break;
        }
      }
      if (!match) continue;
      matched_pattern = true;
      const auto it = devices.find(device);
      if (it == devices.end()) {
        unknown_address = device;
        continue;
      }
      const DeviceEntry& entry = it->second;
      if (entry.profile->telemetry_pattern == i) {
        role = Role::telemetry;
      } else if (entry.profile->event_pattern == i) {
        role = Role::event;
      } else {
        wrong_topic = &entry;
        continue;
      }
      if (p.has_site && site != entry.device->site) {
        reject(m, "site_mismatch",
               "device '" + entry.device->id + "' belongs to site '" + entry.device->site +
                   "' but published as site " + quoted("", site));
        return false;
      }
      m.device = entry.device;
      m.profile = entry.profile;
      return true;
    }
    if (wrong_topic != nullptr) {
      reject(m, "unknown_topic",
             "device '" + wrong_topic->device->id + "' (profile '" + wrong_topic->device->profile +
                 "') does not publish on this topic");
    } else if (matched_pattern) {
      reject(m, "unknown_device", "no MQTT device with address " + quoted("", unknown_address));
    } else {
      reject(m, "unknown_topic", "topic matches no profile's topic pattern");
    }
    return false;
  }

  // --- timestamps ----------------------------------------------------------------------------

  static TimeResult epoch_ms_time(double ms) {
    TimeResult t;
    t.present = true;
    if (std::isfinite(ms) && ms >= 0 && ms < seconds_threshold) {
      ms *= 1000.0;
      t.in_seconds = true;
    }
    if (auto ts = from_epoch_ms(ms)) {
      t.ts = *ts;
    } else {
      t.problem = "not a time between 1970 and 9999";
    }
    return t;
  }

  static TimeResult fieldhub_time(element e) {
    if (e.type() == element_type::STRING) {
      TimeResult t;
      t.present = true;
      const std::string_view text = e.get_string().value_unsafe();
      if (auto ts = model::parse_rfc3339(text)) {
        t.ts = *ts;
      } else {
        t.problem = "not an RFC 3339 date-time";
      }
      return t;
    }
    double ms = 0;
    if (as_double(e, ms)) return epoch_ms_time(ms);
    TimeResult t;
    t.present = true;
    t.problem = "must be an RFC 3339 string or epoch milliseconds";
    return t;
  }

  static TimeResult json_time(element e, TimestampFormat format) {
    TimeResult t;
    t.present = true;
    double number = 0;
    switch (format) {
      case TimestampFormat::rfc3339:
      case TimestampFormat::naive_utc: {
        if (e.type() != element_type::STRING) {
          t.problem = "must be a date-time string";
          return t;
        }
        const std::string_view text = e.get_string().value_unsafe();
        std::optional<model::Timestamp> ts;
        if (format == TimestampFormat::naive_utc) {
          // Local time without an offset (Tasmota's "Time"): read as UTC.
          ts = model::parse_rfc3339(std::string(text) + "Z");
        }
        if (!ts) ts = model::parse_rfc3339(text);
        if (ts) {
          t.ts = *ts;
        } else {
          t.problem = "not a date-time";
        }
        return t;
      }
      case TimestampFormat::epoch_ms:
        if (!as_double(e, number)) break;
        return epoch_ms_time(number);
      case TimestampFormat::epoch_s:
        if (!as_double(e, number)) break;
        if (auto ts = from_epoch_ms(number * 1000.0)) {
          t.ts = *ts;
        } else {
          t.problem = "not a time between 1970 and 9999";
        }
        return t;
    }
    t.problem = "must be a number";
    return t;
  }

  // --- records -------------------------------------------------------------------------------

  model::Reading& new_reading(Message& m, const config::MetricSpec& spec, const TimeResult& time) {
    model::Reading& r = m.env.readings.emplace_back();
    r.device_id = m.device->id;
    r.metric = spec.name;
    r.unit = spec.unit;
    r.received_ts = m.received_ts;
    r.source_ts = time.present ? time.ts : m.received_ts;
    r.source_ts_trusted = time.present;
    if (time.in_seconds) {
      // The time was a guess (seconds taken for milliseconds): kept, and countable by reason.
      r.quality = model::Quality::uncertain;
      r.quality_reason = "timestamp_in_seconds";
    }
    r.provenance.adapter = std::string(m.adapter);
    r.provenance.link = std::string(m.link);
    return r;
  }

  // Turns one JSON value into a reading of `spec`, or a field dead letter.
  void add_reading(Message& m, const config::MetricSpec& spec, element value,
                   const TimeResult& time, std::string_view field) {
    const auto type = value.type();
    if (type == element_type::NULL_VALUE) {
      // The device says it has no value: a bad reading without a number, never a 0.
      model::Reading& r = new_reading(m, spec, time);
      r.quality = model::Quality::bad;
      r.quality_reason = "no_value";
      return;
    }
    switch (spec.type) {
      case model::ValueType::number: {
        double raw = 0;
        if (!as_double(value, raw)) break;
        const double v = raw * spec.scale + spec.offset;
        if (!std::isfinite(v)) {
          reject_field(m, "invalid_number",
                       "field " + quoted("", field) + ": scaled value overflows");
          return;
        }
        model::Reading& r = new_reading(m, spec, time);
        r.value = v;
        if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max)) {
          r.quality = model::Quality::bad;
          r.quality_reason = "out_of_range";
        }
        return;
      }
      case model::ValueType::boolean: {
        if (type != element_type::BOOL) break;
        new_reading(m, spec, time).value = value.get_bool().value_unsafe();
        return;
      }
      case model::ValueType::text: {
        if (type != element_type::STRING) break;
        const std::string_view s = value.get_string().value_unsafe();
        if (s.find('\0') != std::string_view::npos) {
          reject_field(m, "nul_in_string",
                       "field " + quoted("", field) + ": text holds a NUL character");
          return;
        }
        new_reading(m, spec, time).value = std::string(s);
        return;
      }
      case model::ValueType::none:
        break;
    }
    static constexpr std::array<std::string_view, 4> type_names = {"nothing", "a number",
                                                                   "true or false", "a string"};
    reject_field(m, "wrong_type",
                 "field " + quoted("", field) + ": must be " +
                     std::string(type_names[static_cast<std::size_t>(spec.type)]));
  }

  // Reads the "ts" of a fieldhub message; false (message refused) if it is ambiguous or bad.
  bool top_level_time(Message& m, object obj, TimeResult& time) {
    int hits = 0;
    for (const auto field : obj) {
      if (field.key != "ts") continue;
      if (++hits > 1) {
        reject(m, "duplicate_key", "field \"ts\" occurs twice");
        return false;
      }
      time = fieldhub_time(field.value);
    }
    if (!time.problem.empty()) {
      reject(m, "invalid_timestamp", "field \"ts\": " + time.problem);
      return false;
    }
    return true;
  }

  // {"ts": ..., "values": {"<metric>": number | bool | string, ...}}
  void fieldhub_telemetry(Message& m, object obj) {
    TimeResult time;
    if (!top_level_time(m, obj, time)) return;
    object values;
    int hits = 0;
    for (const auto field : obj) {
      if (field.key != "values") continue;
      if (++hits > 1) {
        reject(m, "duplicate_key", "field \"values\" occurs twice");
        return;
      }
      if (field.value.get(values) != simdjson::SUCCESS) {
        reject(m, "wrong_type", "field \"values\": must be an object of metric values");
        return;
      }
    }
    if (hits == 0) {
      reject(m, "missing_values", "telemetry needs a \"values\" object");
      return;
    }
    const CompiledProfile& profile = *m.profile;
    // First pass: which metric each key names and how often, so a duplicated metric is refused
    // whole rather than taking whichever copy came first.
    field_metric.clear();
    metric_hits.assign(profile.metrics.size(), 0);
    for (const auto field : values) {
      const auto it = profile.metric_index.find(field.key);
      const std::size_t index = it == profile.metric_index.end() ? no_pattern : it->second;
      if (index != no_pattern) ++metric_hits[index];
      field_metric.push_back(index);
    }
    m.env.readings.reserve(field_metric.size());
    std::size_t i = 0;
    for (const auto field : values) {
      const std::size_t index = field_metric[i++];
      if (index == no_pattern) {
        if (field.key.find('\0') != std::string_view::npos) {
          reject_field(m, "nul_in_string",
                       "field " + quoted("values.", field.key) + ": name holds a NUL character");
          continue;
        }
        reject_field(m, "unknown_metric",
                     "field " + quoted("values.", field.key) + ": profile '" +
                         profile.profile->name + "' has no such metric");
        continue;
      }
      if (metric_hits[index] > 1) {
        if (metric_hits[index] != static_cast<std::uint32_t>(-1)) {
          reject_field(m, "duplicate_key",
                       "field " + quoted("values.", field.key) + " occurs " +
                           std::to_string(metric_hits[index]) + " times");
          metric_hits[index] = static_cast<std::uint32_t>(-1);  // one dead letter per metric
        }
        continue;
      }
      add_reading(m, *profile.metrics[index].spec, field.value, time,
                  profile.metrics[index].spec->path);
    }
  }

  // {"ts": ..., "type": "call", ...attributes}
  void fieldhub_event(Message& m, object obj) {
    TimeResult time;
    if (!top_level_time(m, obj, time)) return;
    std::string_view type;
    int hits = 0;
    for (const auto field : obj) {
      if (field.key != "type") continue;
      if (++hits > 1) {
        reject(m, "duplicate_key", "field \"type\" occurs twice");
        return;
      }
      if (field.value.type() != element_type::STRING) {
        reject(m, "wrong_type", "field \"type\": must be a string");
        return;
      }
      type = field.value.get_string().value_unsafe();
    }
    if (hits == 0) {
      reject(m, "missing_event_type", "an event needs a \"type\"");
      return;
    }
    const auto it = m.profile->event_index.find(type);
    if (it == m.profile->event_index.end()) {
      reject(m, "unknown_event_type",
             "event type " + quoted("", type) + ": profile '" + m.profile->profile->name +
                 "' has no such event");
      return;
    }
    model::Event& e = new_event(m, *m.profile->events[it->second].spec, time);
    // Attributes: every other field, once; a repeated name is ambiguous and dropped.
    std::vector<std::string_view> names;
    for (const auto field : obj) names.push_back(field.key);
    std::sort(names.begin(), names.end());
    std::string attributes;
    common::JsonWriter w(attributes);
    w.begin_object();
    for (const auto field : obj) {
      if (field.key == "ts" || field.key == "type") continue;
      if (m.transport_keys && (field.key == "id" || field.key == "kind")) continue;
      const auto [lo, hi] = std::equal_range(names.begin(), names.end(), field.key);
      if (hi - lo > 1) {
        if (lo->data() == field.key.data()) {
          reject_field(
              m, "duplicate_key",
              "field " + quoted("", field.key) + " occurs " + std::to_string(hi - lo) + " times");
        }
        continue;
      }
      add_attribute(m, w, field.key, field.value);
    }
    w.end_object();
    e.attributes_json = std::move(attributes);
  }

  void add_attribute(Message& m, common::JsonWriter& w, std::string_view key, element value) {
    if (key.find('\0') != std::string_view::npos) {
      reject_field(m, "nul_in_string", "field " + quoted("", key) + ": name holds a NUL character");
      return;
    }
    if (value.type() == element_type::STRING) {
      const std::string_view s = value.get_string().value_unsafe();
      if (s.find('\0') != std::string_view::npos) {
        reject_field(m, "nul_in_string",
                     "field " + quoted("", key) + ": text holds a NUL character");
        return;
      }
      w.key(key).value(s);
      return;
    }
    w.key(key).raw(simdjson::minify(value));
  }

  model::Event& new_event(Message& m, const config::EventSpec& spec, const TimeResult& time) {
    model::Event& e = m.env.events.emplace_back();
    e.device_id = m.device->id;
    e.type = spec.type;
    e.priority = spec.priority;
    e.received_ts = m.received_ts;
    e.source_ts = time.present ? time.ts : m.received_ts;
    e.source_ts_trusted = time.present;
    e.provenance.adapter = std::string(m.adapter);
    e.provenance.link = std::string(m.link);
    return e;
  }

  // Third-party JSON: metrics by path, events by the presence of their field.
  void json_message(Message& m, element root, Role role) {
    const CompiledProfile& profile = *m.profile;
    TimeResult time;
    if (!profile.ts_path.empty()) {
      element ts;
      const std::string field = join(profile.ts_path);
      switch (find_path(root, profile.ts_path, ts)) {
        case Lookup::found:
          time = json_time(ts, profile.profile->mqtt.timestamp_format);
          if (!time.problem.empty()) {
            reject(m, "invalid_timestamp", "field " + quoted("", field) + ": " + time.problem);
            return;
          }
          break;
        case Lookup::duplicate:
          reject(m, "duplicate_key", "field " + quoted("", field) + " occurs twice");
          return;
        case Lookup::absent:
        case Lookup::not_object:
          break;  // no time: readings take the receipt time, untrusted
      }
    }
    if (role == Role::telemetry) {
      m.env.readings.reserve(profile.metrics.size());
      for (const auto& metric : profile.metrics) {
        element value;
        switch (find_path(root, metric.path, value)) {
          case Lookup::found:
            add_reading(m, *metric.spec, value, time, metric.spec->path);
            break;
          case Lookup::duplicate:
            reject_field(m, "duplicate_key",
                         "field " + quoted("", metric.spec->path) + " occurs twice");
            break;
          case Lookup::not_object:
            reject_field(
                m, "wrong_type",
                "field " + quoted("", metric.spec->path) + ": a level on the way is not an object");
            break;
          case Lookup::absent:
            break;  // third-party messages carry a subset of fields at a time
        }
      }
    }
    for (const auto& event : profile.events) {
      element value;
      switch (find_path(root, event.path, value)) {
        case Lookup::found: {
          // Zigbee2MQTT sends "action": "" (or null) to clear a previous action: not a press.
          if (value.type() == element_type::NULL_VALUE) break;
          if (value.type() == element_type::STRING && value.get_string().value_unsafe().empty())
            break;
          model::Event& e = new_event(m, *event.spec, time);
          std::string attributes;
          common::JsonWriter w(attributes);
          w.begin_object();
          add_attribute(m, w, "value", value);
          w.end_object();
          e.attributes_json = std::move(attributes);
          break;
        }
        case Lookup::duplicate:
          reject_field(m, "duplicate_key",
                       "field " + quoted("", event.spec->path) + " occurs twice");
          break;
        case Lookup::absent:
        case Lookup::not_object:
          break;
      }
    }
  }
};

Normalizer::Normalizer(const config::Config& config) : impl_(std::make_unique<Impl>(config)) {}

Normalizer::~Normalizer() = default;

namespace {

std::string filter_of(const TopicPattern& p) {
  std::string filter;
  for (const auto& level : p.levels) {
    if (!filter.empty()) filter += '/';
    filter += level.kind == LevelKind::literal ? level.literal : std::string("+");
  }
  return filter;
}

void add_unique(std::vector<std::string>& filters, std::string filter) {
  if (std::find(filters.begin(), filters.end(), filter) == filters.end()) {
    filters.push_back(std::move(filter));
  }
}

}  // namespace

std::vector<std::string> Normalizer::subscriptions() const {
  std::vector<std::string> filters;
  for (const auto& p : impl_->patterns) add_unique(filters, filter_of(p));
  return filters;
}

std::vector<std::string> Normalizer::event_subscriptions() const {
  std::vector<std::string> telemetry;
  for (const auto& p : impl_->patterns) {
    if (p.telemetry) add_unique(telemetry, filter_of(p));
  }
  std::vector<std::string> filters;
  for (const auto& p : impl_->patterns) {
    std::string filter = filter_of(p);
    if (std::find(telemetry.begin(), telemetry.end(), filter) == telemetry.end()) {
      add_unique(filters, std::move(filter));
    }
  }
  return filters;
}

pipeline::Envelope Normalizer::normalize(std::string_view topic, std::string_view payload,
                                         model::Timestamp received_ts) {
  return impl_->run(topic, payload, received_ts);
}

pipeline::Envelope Normalizer::normalize_device(std::string_view device_id, Kind kind,
                                                std::string_view payload,
                                                model::Timestamp received_ts,
                                                const Origin& origin) {
  return impl_->run_device(device_id, kind == Kind::telemetry ? Role::telemetry : Role::event,
                           payload, received_ts, origin);
}

}  // namespace fieldhub::normalize
