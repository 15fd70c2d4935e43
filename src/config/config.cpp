// SPDX-License-Identifier: Apache-2.0
#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "config/config_text.h"
#include "config/units.h"

namespace fieldhub::config {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const MetricSpec* Profile::metric(std::string_view metric_name) const {
  for (const auto& m : metrics) {
    if (m.name == metric_name) return &m;
  }
  return nullptr;
}

const EventSpec* Profile::event(std::string_view event_type) const {
  for (const auto& e : events) {
    if (e.type == event_type) return &e;
  }
  return nullptr;
}

const Profile* Config::profile(std::string_view profile_name) const {
  for (const auto& p : profiles) {
    if (p.name == profile_name) return &p;
  }
  return nullptr;
}

const SerialBus* Config::serial_bus(std::string_view bus_name) const {
  for (const auto& b : serial_buses) {
    if (b.name == bus_name) return &b;
  }
  return nullptr;
}

const ModbusEndpoint* Config::modbus_device(std::string_view device_id) const {
  for (const auto& e : modbus_devices) {
    if (e.device_id == device_id) return &e;
  }
  return nullptr;
}

const WebSocketCredential* Config::websocket_credential(std::string_view device_id) const {
  for (const auto& w : websocket_credentials) {
    if (w.device_id == device_id) return &w;
  }
  return nullptr;
}

std::uint16_t RegisterSpec::width() const {
  switch (type) {
    case ModbusType::boolean:
    case ModbusType::bit:
    case ModbusType::int16:
    case ModbusType::uint16:
      return 1;
    case ModbusType::int32:
    case ModbusType::uint32:
    case ModbusType::float32:
      return 2;
    case ModbusType::int64:
    case ModbusType::uint64:
    case ModbusType::float64:
      return 4;
    case ModbusType::string:
      return length;
  }
  return 1;
}

const PollGroup* ModbusProfileSettings::group(std::string_view group_name) const {
  for (const auto& g : groups) {
    if (g.name == group_name) return &g;
  }
  return nullptr;
}

milliseconds ModbusProfileSettings::interval_of(std::string_view group_name) const {
  if (const PollGroup* g = group(group_name)) return g->interval;
  return poll_interval;
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  std::int64_t number = 0;
  const char* const first = text.data();
  const char* const last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, number);
  if (ec != std::errc{} || end == first || number < 0) return std::nullopt;
  const std::string_view unit(end, static_cast<std::size_t>(last - end));
  std::int64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 3600 * 1000;
  } else if (unit == "d") {
    factor = 24 * 3600 * 1000;
  } else if (unit == "y") {
    factor = std::int64_t{365} * 24 * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  if (number > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
  return milliseconds{number * factor};
}

namespace {

// One TOML table being read: hands out typed values, remembers which keys were read, and names
// file, line and dotted key in every error. check_unknown() then catches typos.
class Section {
 public:
  Section(const fs::path& file, const toml::table& table, std::string prefix)
      : file_(file), table_(table), prefix_(std::move(prefix)) {}

  const fs::path& file() const { return file_; }
  const toml::table& table() const { return table_; }

  std::string full(std::string_view key) const {
    if (prefix_.empty()) return std::string(key);
    return prefix_ + "." + std::string(key);
  }

  std::uint32_t line(const toml::node* n) const {
    const auto& region = n != nullptr ? n->source() : table_.source();
    return region.begin.line;
  }

  [[noreturn]] void fail(const toml::node* at, std::string_view key,
                         std::string_view message) const {
    throw ConfigError(file_.string() + ":" + std::to_string(line(at)) + ": key '" + full(key) +
                      "': " + std::string(message));
  }

  const toml::node* find(std::string_view key) {
    known_.emplace(key);
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return std::nullopt;
    const auto* s = n->as_string();
    if (s == nullptr) fail(n, key, "must be a string");
    return s->get();
  }

  std::string required_string(std::string_view key) {
    auto s = string(key);
    if (!s) fail(nullptr, key, "is required");
    if (s->empty()) fail(table_.get(key), key, "must not be empty");
    return *s;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* n = find(key);
    if (n == nullptr) return std::nullopt;
    const auto* i = n->as_integer();
    if (i == nullptr) fail(n, key, "must be an integer");
    const std::int64_t v = i->get();
    if (v < min || v > max) {
      fail(n, key, "must be " + std::to_string(min) + ".." + std::to_string(max));
    }
    return v;
  }

  // An integer or a float; TOML writes `min = 0` as an integer.
  std::optional<double> number(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return std::nullopt;
    double v = 0;
    if (const auto* i = n->as_integer()) {
      v = static_cast<double>(i->get());
    } else if (const auto* f = n->as_floating_point()) {
      v = f->get();
    } else {
      fail(n, key, "must be a number");
    }
    if (!std::isfinite(v)) fail(n, key, "must be a finite number");
    return v;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return std::nullopt;
    const auto* b = n->as_boolean();
    if (b == nullptr) fail(n, key, "must be true or false");
    return b->get();
  }

  std::optional<milliseconds> duration(std::string_view key, milliseconds min, milliseconds max) {
    const toml::node* n = find(key);
    if (n == nullptr) return std::nullopt;
    const auto* s = n->as_string();
    if (s == nullptr) fail(n, key, "must be a duration string such as \"500ms\", \"10s\", \"5m\"");
    const auto d = parse_duration(s->get());
    if (!d) {
      fail(n, key,
           "'" + s->get() + "' is not a duration (a whole number with ms, s, m, h, d or y)");
    }
    if (*d < min || *d > max) {
      fail(n, key,
           "must be between " + std::to_string(min.count()) + "ms and " +
               std::to_string(max.count()) + "ms");
    }
    return d;
  }

  const toml::table* subtable(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return nullptr;
    const auto* t = n->as_table();
    if (t == nullptr) fail(n, key, "must be a table");
    return t;
  }

  const toml::array* array_of_tables(std::string_view key) {
    const toml::node* n = find(key);
    if (n == nullptr) return nullptr;
    const auto* a = n->as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      fail(n, key, "must be an array of tables ([[" + full(key) + "]])");
    }
    return a;
  }

  void check_unknown() const {
    for (const auto& [k, v] : table_) {
      if (known_.count(std::string(k.str())) == 0) {
        throw ConfigError(file_.string() + ":" + std::to_string(k.source().begin.line) + ": key '" +
                          full(k.str()) + "': unknown key");
      }
    }
  }

 private:
  const fs::path& file_;
  const toml::table& table_;
  std::string prefix_;
  std::set<std::string, std::less<>> known_;
};

// Parses `text`, or the file itself when text is null.
toml::table parse_toml(const fs::path& file, const std::string_view* text) {
  try {
    if (text != nullptr) return toml::parse(*text, file.string());
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    if (begin.line == 0) {
      throw ConfigError(file.string() + ": cannot read: " + std::string(e.description()));
    }
    throw ConfigError(file.string() + ":" + std::to_string(begin.line) + ":" +
                      std::to_string(begin.column) +
                      ": TOML syntax error: " + std::string(e.description()));
  }
}

// Names that travel in MQTT topics, file names and URLs: no separators, wildcards or spaces.
bool is_plain_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                              c == ':';
                     }) &&
         s != "." && s != "..";
}

bool is_metric_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

fs::path resolve(const fs::path& base_dir, const std::string& p) {
  const fs::path path(p);
  return (path.is_absolute() ? path : base_dir / path).lexically_normal();
}

// Validates an MQTT topic pattern: literal levels, or exactly {site} / {device}; {device} once.
std::string topic_problem(std::string_view topic) {
  if (topic.empty()) return "must not be empty";
  int devices = 0;
  int sites = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = topic.find('/', start);
    const std::string_view level = topic.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (level == "{device}") {
      ++devices;
    } else if (level == "{site}") {
      ++sites;
    } else if (level.empty()) {
      return "has an empty level";
    } else if (level.find_first_of("{}+#") != std::string_view::npos) {
      return "level '" + std::string(level) +
             "': placeholders must fill a whole level and wildcards are not allowed";
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (topic.front() == '$') return "must not start with '$' (broker topics)";
  if (devices != 1) return "must contain {device} exactly once";
  if (sites > 1) return "must contain {site} at most once";
  return {};
}

void read_mqtt_mapping(Section& profile, Profile& p) {
  const toml::table* t = profile.subtable("mqtt");
  if (t == nullptr) {
    p.mqtt.telemetry_topic = "fieldhub/{site}/{device}/telemetry";
    p.mqtt.event_topic = "fieldhub/{site}/{device}/event";
    return;
  }
  Section s(profile.file(), *t, "mqtt");
  const auto format = s.string("format").value_or("fieldhub");
  if (format == "fieldhub") {
    p.mqtt.format = PayloadFormat::fieldhub;
  } else if (format == "json") {
    p.mqtt.format = PayloadFormat::json;
  } else {
    s.fail(t->get("format"), "format", "must be \"fieldhub\" or \"json\"");
  }
  const bool json = p.mqtt.format == PayloadFormat::json;
  for (const std::string_view key : {"telemetry_topic", "event_topic"}) {
    auto topic = s.string(key);
    if (!topic) {
      if (json && key == "telemetry_topic") s.fail(nullptr, key, "is required for format \"json\"");
      if (json) continue;
      topic = key == "telemetry_topic" ? "fieldhub/{site}/{device}/telemetry"
                                       : "fieldhub/{site}/{device}/event";
    }
    if (auto problem = topic_problem(*topic); !problem.empty()) s.fail(t->get(key), key, problem);
    (key == "telemetry_topic" ? p.mqtt.telemetry_topic : p.mqtt.event_topic) = *topic;
  }
  if (p.mqtt.telemetry_topic == p.mqtt.event_topic) {
    s.fail(t->get("event_topic"), "event_topic", "must differ from telemetry_topic");
  }
  if (auto ts = s.string("timestamp")) {
    if (!json)
      s.fail(t->get("timestamp"), "timestamp", "only for format \"json\" (fieldhub uses \"ts\")");
    if (ts->empty()) s.fail(t->get("timestamp"), "timestamp", "must not be empty");
    p.mqtt.timestamp_path = *ts;
  }
  if (auto tf = s.string("timestamp_format")) {
    const toml::node* n = t->get("timestamp_format");
    if (!json) s.fail(n, "timestamp_format", "only for format \"json\"");
    if (*tf == "rfc3339") {
      p.mqtt.timestamp_format = TimestampFormat::rfc3339;
    } else if (*tf == "epoch_ms") {
      p.mqtt.timestamp_format = TimestampFormat::epoch_ms;
    } else if (*tf == "epoch_s") {
      p.mqtt.timestamp_format = TimestampFormat::epoch_s;
    } else if (*tf == "naive_utc") {
      p.mqtt.timestamp_format = TimestampFormat::naive_utc;
    } else {
      s.fail(n, "timestamp_format", "must be rfc3339, epoch_ms, epoch_s or naive_utc");
    }
  }
  s.check_unknown();
}

bool is_path(std::string_view path) {
  if (path.empty() || path.front() == '.' || path.back() == '.') return false;
  return path.find("..") == std::string_view::npos;
}

// --- Modbus register maps (src/adapters/modbus/README.md, docs/decisions/0004) -------------------

void read_modbus_settings(Section& profile, Profile& p) {
  const toml::table* t = profile.subtable("modbus");
  if (t == nullptr) return;
  Section s(profile.file(), *t, "modbus");
  auto& m = p.modbus;
  if (auto d = s.duration("poll_interval", milliseconds{10}, std::chrono::hours{24}))
    m.poll_interval = *d;
  // Modbus caps a read at 125 registers (FC03/FC04) and 2000 bits (FC01/FC02).
  if (auto v = s.integer("max_hole", 0, 124)) m.max_hole = static_cast<std::uint16_t>(*v);
  if (auto v = s.integer("max_registers_per_read", 1, 125))
    m.max_registers_per_read = static_cast<std::uint16_t>(*v);
  if (auto v = s.integer("max_bits_per_read", 1, 2000))
    m.max_bits_per_read = static_cast<std::uint16_t>(*v);
  if (const toml::table* groups = s.subtable("groups")) {
    Section g(profile.file(), *groups, "modbus.groups");
    for (const auto& [k, v] : *groups) {
      const std::string name(k.str());
      if (!is_metric_name(name)) {
        g.fail(&v, name, "group name must be lower-case letters, digits and _");
      }
      const auto d = g.duration(name, milliseconds{10}, std::chrono::hours{24});
      m.groups.push_back({name, *d});
    }
  }
  s.check_unknown();
}

struct NamedFunction {
  std::string_view name;
  ModbusFunction function;
};
constexpr std::array<NamedFunction, 4> modbus_functions = {
    {{"coil", ModbusFunction::coil},
     {"discrete_input", ModbusFunction::discrete_input},
     {"holding", ModbusFunction::holding},
     {"input", ModbusFunction::input}}};

struct NamedType {
  std::string_view name;
  ModbusType type;
};
constexpr std::array<NamedType, 11> modbus_types = {{{"bool", ModbusType::boolean},
                                                     {"bit", ModbusType::bit},
                                                     {"int16", ModbusType::int16},
                                                     {"uint16", ModbusType::uint16},
                                                     {"int32", ModbusType::int32},
                                                     {"uint32", ModbusType::uint32},
                                                     {"int64", ModbusType::int64},
                                                     {"uint64", ModbusType::uint64},
                                                     {"float32", ModbusType::float32},
                                                     {"float64", ModbusType::float64},
                                                     {"string", ModbusType::string}}};

bool is_bit_function(ModbusFunction f) {
  return f == ModbusFunction::coil || f == ModbusFunction::discrete_input;
}

bool is_16bit(ModbusType t) {
  return t == ModbusType::int16 || t == ModbusType::uint16;
}

model::ValueType value_type_of(ModbusType t) {
  if (t == ModbusType::boolean || t == ModbusType::bit) return model::ValueType::boolean;
  if (t == ModbusType::string) return model::ValueType::text;
  return model::ValueType::number;
}

// Reads `modbus = { ... }` of one metric. Everything that cannot be read off a real device is
// refused here, at start-up, rather than discovered as a bad reading later.
RegisterSpec read_register(Section& metric, const toml::table& t, const Profile& p) {
  Section s(metric.file(), t, metric.full("modbus"));
  RegisterSpec r;
  r.line = s.line(nullptr);
  {
    const auto f = s.string("function");
    if (!f) s.fail(nullptr, "function", "is required (coil, discrete_input, holding or input)");
    const auto it = std::find_if(modbus_functions.begin(), modbus_functions.end(),
                                 [&](const auto& nf) { return nf.name == *f; });
    if (it == modbus_functions.end()) {
      s.fail(t.get("function"), "function", "must be coil, discrete_input, holding or input");
    }
    r.function = it->function;
  }
  const bool bits = is_bit_function(r.function);
  {
    const auto a = s.integer("address", 0, 65535);
    if (!a) s.fail(nullptr, "address", "is required (0-based wire address)");
    r.address = static_cast<std::uint16_t>(*a);
  }
  const auto type = s.string("type");
  if (type) {
    const auto it = std::find_if(modbus_types.begin(), modbus_types.end(),
                                 [&](const auto& nt) { return nt.name == *type; });
    if (it == modbus_types.end()) {
      s.fail(t.get("type"), "type",
             "must be bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, float64 or "
             "string");
    }
    r.type = it->type;
  } else {
    r.type = bits ? ModbusType::boolean : ModbusType::uint16;
  }
  if (bits && r.type != ModbusType::boolean) {
    s.fail(t.get("type"), "type", "a coil or discrete input holds one bit: type must be \"bool\"");
  }
  if (!bits && r.type == ModbusType::boolean) {
    s.fail(t.get("type"), "type",
           "a register holds 16 bits: use type = \"bit\" with bit = 0..15, or a number type");
  }
  if (auto bit = s.integer("bit", 0, 15)) {
    if (r.type != ModbusType::bit) s.fail(t.get("bit"), "bit", "only for type \"bit\"");
    r.bit = static_cast<std::uint8_t>(*bit);
  } else if (r.type == ModbusType::bit) {
    s.fail(nullptr, "bit", "is required for type \"bit\" (0 = least significant)");
  }
  if (auto length = s.integer("length", 1, 125)) {
    if (r.type != ModbusType::string) s.fail(t.get("length"), "length", "only for type \"string\"");
    r.length = static_cast<std::uint16_t>(*length);
  } else if (r.type == ModbusType::string) {
    s.fail(nullptr, "length", "is required for type \"string\" (registers, two characters each)");
  }
  if (auto order = s.string("order")) {
    const toml::node* n = t.get("order");
    if (*order == "ABCD") {
      r.order = ByteOrder::abcd;
    } else if (*order == "CDAB") {
      r.order = ByteOrder::cdab;
    } else if (*order == "BADC") {
      r.order = ByteOrder::badc;
    } else if (*order == "DCBA") {
      r.order = ByteOrder::dcba;
    } else {
      s.fail(n, "order", "must be ABCD, CDAB, BADC or DCBA");
    }
    if (r.type == ModbusType::boolean || r.type == ModbusType::bit) {
      s.fail(n, "order", "a bit has no byte order");
    }
    if ((is_16bit(r.type) || r.type == ModbusType::string) &&
        (r.order == ByteOrder::cdab || r.order == ByteOrder::dcba)) {
      s.fail(n, "order",
             "a word order cannot apply to " +
                 std::string(r.type == ModbusType::string ? "a string" : "a 16-bit register") +
                 ": use ABCD, or BADC to swap the two bytes of each register");
    }
  }
  const bool numeric = value_type_of(r.type) == model::ValueType::number;
  if (auto scale = s.number("scale")) {
    if (!numeric) s.fail(t.get("scale"), "scale", "only number types have a scale");
    if (*scale == 0.0) s.fail(t.get("scale"), "scale", "must not be 0");
    r.scale = *scale;
  }
  if (auto offset = s.number("offset")) {
    if (!numeric) s.fail(t.get("offset"), "offset", "only number types have an offset");
    r.offset = *offset;
  }
  if (auto group = s.string("group")) {
    if (p.modbus.group(*group) == nullptr) {
      s.fail(t.get("group"), "group",
             "no group '" + *group + "' in [modbus.groups] (declare it with its interval)");
    }
    r.group = *group;
  }
  if (auto writable = s.boolean("writable")) {
    if (*writable &&
        (r.function == ModbusFunction::discrete_input || r.function == ModbusFunction::input)) {
      s.fail(t.get("writable"), "writable", "only coils and holding registers can be written");
    }
    r.writable = *writable;
  }
  if (static_cast<std::uint32_t>(r.address) + r.width() > 65536) {
    s.fail(t.get("address"), "address",
           std::to_string(r.address) + " + " + std::to_string(r.width()) +
               " registers runs past the last address 65535");
  }
  const std::uint16_t cap = bits ? p.modbus.max_bits_per_read : p.modbus.max_registers_per_read;
  if (r.width() > cap) {
    s.fail(t.get("length"), "length",
           std::to_string(r.width()) + " registers do not fit one read of " + std::to_string(cap));
  }
  s.check_unknown();
  return r;
}

// Two metrics may share registers only when they read them the same way: the same value with
// another scale, bits of one status word, or a status word and its bits. Anything else (a float32
// across half of an int32, a string over a counter) is a mistake in the map.
void check_register_overlaps(const fs::path& file, const Profile& p) {
  for (std::size_t j = 0; j < p.registers.size(); ++j) {
    const RegisterSpec& b = p.registers[j];
    for (std::size_t i = 0; i < j; ++i) {
      const RegisterSpec& a = p.registers[i];
      if (a.function != b.function) continue;
      const std::uint32_t a_end = std::uint32_t{a.address} + a.width();
      const std::uint32_t b_end = std::uint32_t{b.address} + b.width();
      if (a_end <= b.address || b_end <= a.address) continue;
      const bool same_layout = a.address == b.address && a.type == b.type && a.order == b.order &&
                               a.length == b.length && a.bit == b.bit;
      const bool bit_of_word =
          a.address == b.address &&
          ((a.type == ModbusType::bit && (b.type == ModbusType::bit || is_16bit(b.type))) ||
           (b.type == ModbusType::bit && is_16bit(a.type)));
      if (same_layout || bit_of_word) continue;
      const std::string key =
          "metrics[" + std::to_string(p.registers[j].metric_index) + "].modbus.address";
      throw ConfigError(file.string() + ":" + std::to_string(b.line) + ": key '" + key +
                        "': metric '" + b.metric + "' overlaps metric '" + a.metric + "' (line " +
                        std::to_string(a.line) + ") with a different type or order");
    }
  }
}

void read_metrics(Section& profile, Profile& p) {
  const toml::array* metrics = profile.array_of_tables("metrics");
  if (metrics == nullptr) return;
  const bool json = p.mqtt.format == PayloadFormat::json;
  std::size_t index = 0;
  for (const auto& node : *metrics) {
    const auto& t = *node.as_table();
    Section s(profile.file(), t, "metrics[" + std::to_string(index++) + "]");
    MetricSpec m;
    m.name = s.required_string("name");
    if (!is_metric_name(m.name)) {
      s.fail(t.get("name"), "name", "'" + m.name + "' must be lower-case letters, digits and _");
    }
    if (p.metric(m.name) != nullptr) {
      s.fail(t.get("name"), "name", "metric '" + m.name + "' is defined twice");
    }
    std::optional<RegisterSpec> reg;
    if (const toml::table* modbus = s.subtable("modbus")) reg = read_register(s, *modbus, p);
    const char* inferred = "number";
    if (reg) {
      const auto vt = value_type_of(reg->type);
      inferred = vt == model::ValueType::boolean ? "bool"
                 : vt == model::ValueType::text  ? "text"
                                                 : "number";
    }
    const auto type = s.string("type").value_or(inferred);
    if (reg && type != inferred) {
      s.fail(t.get("type"), "type",
             "the register type makes this a \"" + std::string(inferred) + "\" metric");
    }
    if (type == "number") {
      m.type = model::ValueType::number;
    } else if (type == "bool") {
      m.type = model::ValueType::boolean;
    } else if (type == "text") {
      m.type = model::ValueType::text;
    } else {
      s.fail(t.get("type"), "type", "must be number, bool or text");
    }
    m.unit = s.string("unit").value_or("");
    if (!is_known_unit(m.unit)) {
      s.fail(
          t.get("unit"), "unit",
          "'" + m.unit + "' is not a known unit (known: " + std::string(known_units_list()) + ")");
    }
    if (m.type != model::ValueType::number && !m.unit.empty()) {
      s.fail(t.get("unit"), "unit", "only number metrics have a unit");
    }
    m.path = s.string("path").value_or(json ? m.name : "values." + m.name);
    if (!is_path(m.path)) s.fail(t.get("path"), "path", "'" + m.path + "' is not a dotted path");
    if (!json && m.path != "values." + m.name) {
      s.fail(t.get("path"), "path",
             "format \"fieldhub\" reads values.<name>; path is for \"json\"");
    }
    m.scale = s.number("scale").value_or(1.0);
    m.offset = s.number("offset").value_or(0.0);
    m.min = s.number("min");
    m.max = s.number("max");
    m.counter = s.boolean("counter").value_or(false);
    if (m.type != model::ValueType::number) {
      for (const std::string_view key : {"scale", "offset", "min", "max", "counter"}) {
        if (t.get(key) != nullptr)
          s.fail(t.get(key), key, "only number metrics have " + std::string(key));
      }
    }
    if (m.scale == 0.0) s.fail(t.get("scale"), "scale", "must not be 0");
    if (m.min && m.max && *m.min > *m.max) s.fail(t.get("max"), "max", "must be >= min");
    if (reg) {
      // One place for scaling: the register's, applied by the codec for reads and writes alike.
      for (const std::string_view key : {"scale", "offset"}) {
        if (t.get(key) != nullptr) {
          s.fail(t.get(key), key, "put " + std::string(key) + " in modbus = { ... }");
        }
      }
      reg->metric = m.name;
      reg->metric_index = p.metrics.size();
      p.registers.push_back(std::move(*reg));
    }
    s.check_unknown();
    p.metrics.push_back(std::move(m));
  }
}

void read_events(Section& profile, Profile& p) {
  const toml::array* events = profile.array_of_tables("events");
  if (events == nullptr) return;
  const bool json = p.mqtt.format == PayloadFormat::json;
  std::size_t index = 0;
  for (const auto& node : *events) {
    const auto& t = *node.as_table();
    Section s(profile.file(), t, "events[" + std::to_string(index++) + "]");
    EventSpec e;
    e.type = s.required_string("type");
    if (!is_metric_name(e.type)) {
      s.fail(t.get("type"), "type", "'" + e.type + "' must be lower-case letters, digits and _");
    }
    if (p.event(e.type) != nullptr) {
      s.fail(t.get("type"), "type", "event '" + e.type + "' is defined twice");
    }
    if (auto priority = s.string("priority")) {
      const auto parsed = model::parse_priority(*priority);
      if (!parsed) s.fail(t.get("priority"), "priority", "must be high, medium, low or none");
      e.priority = *parsed;
    }
    if (auto path = s.string("path")) {
      if (!json)
        s.fail(t.get("path"), "path", "only for format \"json\" (fieldhub sends \"type\")");
      if (!is_path(*path)) s.fail(t.get("path"), "path", "'" + *path + "' is not a dotted path");
      e.path = *path;
    } else if (json) {
      s.fail(nullptr, "path", "is required for format \"json\"");
    }
    s.check_unknown();
    p.events.push_back(std::move(e));
  }
}

const AlarmRule* find_alarm(const Profile& p, std::string_view name) {
  for (const auto& a : p.alarms) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

void read_alarms(Section& profile, Profile& p) {
  const toml::array* alarms = profile.array_of_tables("alarms");
  if (alarms == nullptr) return;
  std::size_t index = 0;
  for (const auto& node : *alarms) {
    const auto& t = *node.as_table();
    Section s(profile.file(), t, "alarms[" + std::to_string(index++) + "]");
    AlarmRule a;
    a.line = s.line(nullptr);
    const auto event = s.string("event");
    const auto metric = s.string("metric");
    const auto health = s.string("health");
    if (int{event.has_value()} + int{metric.has_value()} + int{health.has_value()} != 1) {
      s.fail(nullptr, "event", "an alarm has exactly one of event, metric or health");
    }
    std::optional<model::Priority> default_priority;
    if (event) {
      a.trigger = AlarmRule::Trigger::event;
      const EventSpec* spec = p.event(*event);
      if (spec == nullptr) {
        s.fail(t.get("event"), "event", "'" + *event + "' is not an event of this profile");
      }
      a.event = *event;
      if (spec->priority != model::Priority::none) default_priority = spec->priority;
      if (auto clear = s.string("clear_event")) {
        if (p.event(*clear) == nullptr || *clear == *event) {
          s.fail(t.get("clear_event"), "clear_event",
                 "'" + *clear + "' is not another event of this profile");
        }
        a.clear_event = *clear;
      }
      a.name = *event;
    } else if (metric) {
      a.trigger = AlarmRule::Trigger::threshold;
      const MetricSpec* spec = p.metric(*metric);
      if (spec == nullptr || spec->type != model::ValueType::number) {
        s.fail(t.get("metric"), "metric",
               "'" + *metric + "' is not a number metric of this profile");
      }
      a.metric = *metric;
      a.above = s.number("above");
      a.below = s.number("below");
      if (!a.above && !a.below) s.fail(nullptr, "above", "a threshold needs above or below");
      if (a.above && a.below && *a.below >= *a.above) {
        s.fail(t.get("below"), "below", "must be less than above");
      }
      a.hold = s.duration("for", milliseconds{0}, std::chrono::hours{24}).value_or(milliseconds{0});
      a.deadband = s.number("deadband").value_or(0.0);
      if (a.deadband < 0) s.fail(t.get("deadband"), "deadband", "must be >= 0");
      a.name = *metric + (a.above && a.below ? "_out_of_range" : a.above ? "_high" : "_low");
    } else {
      a.trigger = AlarmRule::Trigger::health;
      if (*health != "offline" && *health != "stale") {
        s.fail(t.get("health"), "health", "must be offline or stale");
      }
      a.event = *health;
      a.name = "device_" + *health;
    }
    if (a.trigger != AlarmRule::Trigger::event) {
      for (const std::string_view key : {"clear_event"}) {
        if (t.get(key) != nullptr)
          s.fail(t.get(key), key, "only event alarms have " + std::string(key));
      }
    }
    if (a.trigger != AlarmRule::Trigger::threshold) {
      for (const std::string_view key : {"above", "below", "for", "deadband"}) {
        if (t.get(key) != nullptr)
          s.fail(t.get(key), key, "only metric alarms have " + std::string(key));
      }
    }
    if (auto name = s.string("name")) {
      if (!is_metric_name(*name)) {
        s.fail(t.get("name"), "name", "'" + *name + "' must be lower-case letters, digits and _");
      }
      a.name = *name;
    }
    if (find_alarm(p, a.name) != nullptr) {
      s.fail(t.get("name"), "name", "alarm '" + a.name + "' is defined twice (give it a name)");
    }
    if (auto priority = s.string("priority")) {
      const auto parsed = model::parse_priority(*priority);
      if (!parsed || *parsed == model::Priority::none) {
        s.fail(t.get("priority"), "priority", "must be high, medium or low");
      }
      a.priority = *parsed;
    } else if (default_priority) {
      a.priority = *default_priority;
    } else {
      s.fail(nullptr, "priority", "is required (the event has no priority)");
    }
    a.latch = s.boolean("latch").value_or(false);
    a.message = s.string("message").value_or("");
    if (auto priority = s.string("escalate_priority")) {
      const auto parsed = model::parse_priority(*priority);
      if (!parsed || *parsed == model::Priority::none) {
        s.fail(t.get("escalate_priority"), "escalate_priority", "must be high, medium or low");
      }
      a.escalate_priority = *parsed;
    }
    const bool high =
        a.priority == model::Priority::high || a.escalate_priority == model::Priority::high;
    a.renotify = s.duration("renotify", milliseconds{0}, std::chrono::hours{24})
                     .value_or(high ? milliseconds{std::chrono::seconds{30}} : milliseconds{0});
    if (const toml::node* n = s.find("escalate")) {
      const toml::array* tiers = n->as_array();
      if (tiers == nullptr)
        s.fail(n, "escalate", "must be an array of durations such as [\"30s\"]");
      for (const auto& tier : *tiers) {
        const auto* text = tier.as_string();
        const auto d = text != nullptr ? parse_duration(text->get()) : std::nullopt;
        if (!d || d->count() <= 0) s.fail(&tier, "escalate", "each tier is a positive duration");
        if (!a.escalate.empty() && *d <= a.escalate.back()) {
          s.fail(&tier, "escalate", "tiers must be in increasing order");
        }
        a.escalate.push_back(*d);
      }
    } else if (a.priority == model::Priority::high) {
      using std::chrono::seconds;
      a.escalate = {seconds{30}, seconds{60}, seconds{120}};
    }
    if (a.escalate_priority && a.escalate.empty()) {
      s.fail(t.get("escalate_priority"), "escalate_priority", "needs escalate tiers");
    }
    s.check_unknown();
    p.alarms.push_back(std::move(a));
  }
}

// Most general first, so a location reads campus → building → ... → bed whatever the TOML order.
constexpr std::array<std::string_view, 13> location_hierarchy = {
    "campus", "building", "floor", "wing", "ward",    "area",    "department",
    "room",   "bed",      "line",  "cell", "station", "position"};

model::Location read_location(Section& device, const toml::table& t) {
  Section s(device.file(), t, device.full("location"));
  model::Location location;
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    s.find(key);
    if (const auto* str = v.as_string()) {
      if (str->get().empty()) s.fail(&v, key, "must not be empty");
      location.emplace_back(key, str->get());
    } else if (const auto* i = v.as_integer()) {
      location.emplace_back(key, std::to_string(i->get()));
    } else {
      s.fail(&v, key, "must be a string or an integer");
    }
  }
  auto rank = [](const std::string& key) {
    const auto it = std::find(location_hierarchy.begin(), location_hierarchy.end(), key);
    return static_cast<std::size_t>(it - location_hierarchy.begin());
  };
  std::stable_sort(location.begin(), location.end(), [&](const auto& a, const auto& b) {
    const auto ra = rank(a.first);
    const auto rb = rank(b.first);
    if (ra != rb) return ra < rb;
    return a.first < b.first;
  });
  return location;
}

constexpr std::array<std::string_view, 5> known_protocols = {"mqtt", "modbus_tcp", "modbus_rtu",
                                                             "websocket", "ble"};

void read_serial_buses(Section& root, Config& c) {
  const toml::array* buses = root.array_of_tables("serial_buses");
  if (buses == nullptr) return;
  std::size_t index = 0;
  for (const auto& node : *buses) {
    const auto& t = *node.as_table();
    Section s(root.file(), t, "serial_buses[" + std::to_string(index++) + "]");
    SerialBus b;
    b.name = s.required_string("name");
    if (!is_plain_name(b.name) || b.name.find(':') != std::string::npos) {
      s.fail(t.get("name"), "name",
             "'" + b.name + "' may hold only letters, digits, '-', '_', '.'");
    }
    if (c.serial_bus(b.name) != nullptr) {
      s.fail(t.get("name"), "name", "serial bus '" + b.name + "' is defined twice");
    }
    b.device = s.required_string("device");
    for (const auto& other : c.serial_buses) {
      if (other.device == b.device) {
        s.fail(t.get("device"), "device",
               "'" + b.device + "' is already bus '" + other.name + "' (one port, one bus)");
      }
    }
    if (auto baud = s.integer("baud", 300, 4000000)) b.baud = static_cast<unsigned>(*baud);
    if (auto parity = s.string("parity")) {
      if (*parity != "N" && *parity != "E" && *parity != "O") {
        s.fail(t.get("parity"), "parity", "must be \"N\", \"E\" or \"O\"");
      }
      b.parity = parity->front();
    }
    if (auto bits = s.integer("data_bits", 7, 8)) b.data_bits = static_cast<unsigned>(*bits);
    if (auto bits = s.integer("stop_bits", 1, 2)) b.stop_bits = static_cast<unsigned>(*bits);
    if (auto echo = s.boolean("echo")) b.echo = *echo;
    if (auto d = s.duration("response_timeout", milliseconds{10}, milliseconds{60000})) {
      b.response_timeout = *d;
    }
    if (auto d = s.duration("late_reply_window", milliseconds{0}, milliseconds{60000})) {
      b.late_reply_window = *d;
    }
    s.check_unknown();
    c.serial_buses.push_back(std::move(b));
  }
}

// Reads unit_id / bus of a Modbus device and rewrites d.address to its canonical form, so the
// duplicate-address check catches two devices on one target. TCP: address = "host[:port][/unit]"
// (port 502 by default); RTU: bus = "<serial bus>", no address.
ModbusEndpoint read_modbus_endpoint(Section& s, const toml::table& t, model::Device& d,
                                    const Config& c) {
  ModbusEndpoint e;
  e.device_id = d.id;
  e.rtu = d.protocol == "modbus_rtu";
  // Modbus over serial line §2.2: 1..247 are slave addresses (0 is broadcast); over TCP the unit
  // id routes through gateways and 0 or 255 reach the server itself.
  const auto unit = s.integer("unit_id", e.rtu ? 1 : 0, e.rtu ? 247 : 255);
  if (e.rtu) {
    if (t.get("address") != nullptr) {
      s.fail(t.get("address"), "address", "an RTU device is addressed by bus and unit_id");
    }
    const auto bus = s.string("bus");
    if (!bus) s.fail(nullptr, "bus", "is required for modbus_rtu (a [[serial_buses]] name)");
    if (c.serial_bus(*bus) == nullptr) {
      s.fail(t.get("bus"), "bus", "no serial bus '" + *bus + "' in [[serial_buses]]");
    }
    if (!unit) s.fail(nullptr, "unit_id", "is required for modbus_rtu (1..247)");
    e.bus = *bus;
    e.unit_id = static_cast<std::uint8_t>(*unit);
    d.address = e.bus + "/" + std::to_string(e.unit_id);
    return e;
  }
  if (t.get("bus") != nullptr) s.fail(t.get("bus"), "bus", "only for modbus_rtu");
  if (t.get("address") == nullptr) s.fail(nullptr, "address", "is required (host:port)");
  std::string_view rest = d.address;
  std::optional<unsigned> unit_in_address;
  auto number = [&](std::string_view text, unsigned max) -> std::optional<unsigned> {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v > max) return std::nullopt;
    return v;
  };
  if (const auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    unit_in_address = number(rest.substr(slash + 1), 255);
    if (!unit_in_address) s.fail(t.get("address"), "address", "unit after '/' must be 0..255");
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  if (const auto colon = rest.rfind(':');
      colon != std::string_view::npos && rest.find(']', colon) == std::string_view::npos) {
    const auto port = number(rest.substr(colon + 1), 65535);
    if (!port || *port == 0) s.fail(t.get("address"), "address", "port must be 1..65535");
    e.port = static_cast<std::uint16_t>(*port);
    host = rest.substr(0, colon);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) s.fail(t.get("address"), "address", "must be host:port");
  e.host = std::string(host);
  if (unit && unit_in_address && *unit != static_cast<std::int64_t>(*unit_in_address)) {
    s.fail(t.get("unit_id"), "unit_id", "differs from the unit in address");
  }
  e.unit_id = static_cast<std::uint8_t>(unit ? *unit : unit_in_address.value_or(1));
  e.response_timeout = s.duration("response_timeout", milliseconds{10}, milliseconds{60000});
  e.connect_timeout = s.duration("connect_timeout", milliseconds{100}, milliseconds{60000});
  if (auto n = s.integer("max_in_flight", 1, 64)) e.max_in_flight = static_cast<std::size_t>(*n);
  // One connection per host:port, so one value per setting: devices sharing it must agree.
  for (const auto& other : c.modbus_devices) {
    if (other.rtu || other.host != e.host || other.port != e.port) continue;
    const auto clash = [&](std::string_view key, bool differs) {
      if (differs) {
        s.fail(t.get(key), key,
               "differs from device '" + other.device_id + "' on the same connection " + e.host +
                   ":" + std::to_string(e.port));
      }
    };
    clash("response_timeout", e.response_timeout && other.response_timeout &&
                                  *e.response_timeout != *other.response_timeout);
    clash("connect_timeout", e.connect_timeout && other.connect_timeout &&
                                 *e.connect_timeout != *other.connect_timeout);
    clash("max_in_flight",
          e.max_in_flight && other.max_in_flight && *e.max_in_flight != *other.max_in_flight);
  }
  const bool v6 = e.host.find(':') != std::string::npos;
  d.address = (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port) + "/" +
              std::to_string(e.unit_id);
  return e;
}

// Where a device was declared, for errors found after the whole list was read.
struct DeviceSource {
  std::uint32_t id_line = 0;
  std::uint32_t profile_line = 0;
};

void read_devices(Section& root, Config& c) {
  const toml::array* devices = root.array_of_tables("devices");
  if (devices == nullptr) return;
  std::unordered_map<std::string, std::size_t> by_id;
  std::map<std::pair<std::string, std::string>, std::size_t> by_address;
  std::vector<DeviceSource> sources;
  std::size_t index = 0;
  for (const auto& node : *devices) {
    const auto& t = *node.as_table();
    Section s(root.file(), t, "devices[" + std::to_string(index++) + "]");
    model::Device d;
    d.id = s.required_string("id");
    if (!is_plain_name(d.id)) {
      s.fail(t.get("id"), "id", "'" + d.id + "' may hold only letters, digits, '-', '_', '.', ':'");
    }
    d.site = s.required_string("site");
    if (!is_plain_name(d.site)) {
      s.fail(t.get("site"), "site",
             "'" + d.site + "' may hold only letters, digits, '-', '_', '.', ':'");
    }
    d.profile = s.required_string("profile");
    if (!is_plain_name(d.profile) || d.profile.find(':') != std::string::npos) {
      s.fail(t.get("profile"), "profile", "'" + d.profile + "' is not a profile name");
    }
    d.kind = s.string("kind").value_or("");
    d.protocol = s.string("protocol").value_or("mqtt");
    if (std::find(known_protocols.begin(), known_protocols.end(), d.protocol) ==
        known_protocols.end()) {
      s.fail(t.get("protocol"), "protocol",
             "must be mqtt, modbus_tcp, modbus_rtu, websocket or ble");
    }
    d.address = s.string("address").value_or(d.id);
    if (d.address.empty()) s.fail(t.get("address"), "address", "must not be empty");
    if (d.protocol == "mqtt" && d.address.find_first_of("/+#") != std::string::npos) {
      s.fail(t.get("address"), "address", "an MQTT address is one topic level: no '/', '+', '#'");
    }
    if (auto interval =
            s.duration("expected_interval", milliseconds{0}, std::chrono::hours{24 * 30})) {
      d.expected_interval = *interval;
    }
    if (const toml::table* location = s.subtable("location"))
      d.location = read_location(s, *location);
    std::optional<ModbusEndpoint> endpoint;
    if (d.protocol == "modbus_tcp" || d.protocol == "modbus_rtu") {
      endpoint = read_modbus_endpoint(s, t, d, c);
    } else {
      for (const std::string_view key : {"unit_id", "bus"}) {
        if (t.get(key) != nullptr) s.fail(t.get(key), key, "only for Modbus devices");
      }
    }
    if (d.protocol == "websocket") {
      if (!c.websocket.enabled) {
        s.fail(t.get("protocol"), "protocol",
               "a websocket device needs the [websocket] section (its listener)");
      }
      c.websocket_credentials.push_back({d.id, s.required_string("token")});
    } else if (t.get("token") != nullptr) {
      s.fail(t.get("token"), "token", "only for websocket devices");
    }
    s.check_unknown();

    const auto id_line = s.line(t.get("id"));
    if (auto [it, fresh] = by_id.emplace(d.id, c.devices.size()); !fresh) {
      s.fail(t.get("id"), "id",
             "duplicate device id '" + d.id + "' (first at line " +
                 std::to_string(sources[it->second].id_line) + ")");
    }
    if (auto [it, fresh] = by_address.emplace(std::pair{d.protocol, d.address}, c.devices.size());
        !fresh) {
      s.fail(t.get("address") != nullptr ? t.get("address") : t.get("id"), "address",
             "device '" + d.id + "' has the same " + d.protocol + " address '" + d.address +
                 "' as device '" + c.devices[it->second].id + "' (line " +
                 std::to_string(sources[it->second].id_line) + ")");
    }
    sources.push_back({id_line, s.line(t.get("profile"))});
    if (endpoint) c.modbus_devices.push_back(std::move(*endpoint));
    c.devices.push_back(std::move(d));
  }

  // Each profile once, in the order devices first name them.
  for (std::size_t i = 0; i < c.devices.size(); ++i) {
    auto& d = c.devices[i];
    if (c.profile(d.profile) == nullptr) {
      const fs::path file = c.profiles_dir / (d.profile + ".toml");
      std::error_code ec;
      if (!fs::is_regular_file(file, ec)) {
        throw ConfigError(c.file.string() + ":" + std::to_string(sources[i].profile_line) +
                          ": key 'devices[" + std::to_string(i) + "].profile': no profile '" +
                          d.profile + "' (" + file.string() + " does not exist)");
      }
      c.profiles.push_back(load_profile(file));
    }
    const Profile& p = *c.profile(d.profile);
    if (d.kind.empty()) d.kind = p.kind;
    if (d.expected_interval.count() == 0) d.expected_interval = p.expected_interval;
  }
}

// "listen" = "host:port" (IPv6 as "[::1]:port").
void read_listen(Section& s, std::string& address, std::uint16_t& port_out) {
  const auto listen = s.string("listen");
  if (!listen) return;
  const toml::node* n = s.table().get("listen");
  const auto colon = listen->rfind(':');
  if (colon == std::string::npos || colon == 0) s.fail(n, "listen", "must be host:port");
  std::string host = listen->substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = std::string_view(*listen).substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    s.fail(n, "listen", "port must be 1..65535");
  }
  address = host;
  port_out = static_cast<std::uint16_t>(port);
}

void read_server(Section& root, Config& c, const fs::path& config_dir) {
  const toml::table* t = root.subtable("server");
  if (t == nullptr) return;
  Section s(root.file(), *t, "server");
  read_listen(s, c.server.listen_address, c.server.listen_port);
  if (auto dir = s.string("static_dir")) c.server.static_dir = resolve(config_dir, *dir);
  if (auto dir = s.string("vendor_dir")) c.server.vendor_dir = resolve(config_dir, *dir);
  s.check_unknown();
}

void read_mqtt(Section& root, Config& c) {
  const toml::table* t = root.subtable("mqtt");
  if (t == nullptr) return;
  Section s(root.file(), *t, "mqtt");
  auto& m = c.mqtt;
  if (auto host = s.string("host")) {
    if (host->empty()) s.fail(t->get("host"), "host", "must not be empty");
    m.host = *host;
  }
  if (auto port = s.integer("port", 1, 65535)) m.port = static_cast<std::uint16_t>(*port);
  if (auto id = s.string("client_id")) {
    // MQTT 3.1.1 §3.1.3.1: servers must accept 1..23 characters; Mosquitto takes more.
    if (id->empty() || id->size() > 256)
      s.fail(t->get("client_id"), "client_id", "must be 1..256 bytes");
    m.client_id = *id;
  }
  if (auto user = s.string("username")) m.username = *user;
  if (auto password = s.string("password")) m.password = *password;
  // MQTT keep alive is a 16-bit count of seconds.
  if (auto keepalive = s.duration("keepalive", milliseconds{0}, std::chrono::seconds{65535})) {
    if (keepalive->count() % 1000 != 0)
      s.fail(t->get("keepalive"), "keepalive", "must be whole seconds");
    m.keepalive = std::chrono::duration_cast<std::chrono::seconds>(*keepalive);
  }
  if (auto clean = s.boolean("clean_session")) m.clean_session = *clean;
  if (auto d = s.duration("reconnect_min", milliseconds{10}, std::chrono::hours{1}))
    m.reconnect_min = *d;
  if (auto d = s.duration("reconnect_max", milliseconds{10}, std::chrono::hours{1}))
    m.reconnect_max = *d;
  if (m.reconnect_max < m.reconnect_min) {
    s.fail(t->get("reconnect_max"), "reconnect_max", "must be >= reconnect_min");
  }
  // MQTT's remaining-length field caps a packet at 256 MiB.
  if (auto max = s.integer("max_payload", 1, 268435455))
    m.max_payload = static_cast<std::size_t>(*max);
  s.check_unknown();
}

void read_websocket(Section& root, Config& c) {
  const toml::table* t = root.subtable("websocket");
  if (t == nullptr) return;
  Section s(root.file(), *t, "websocket");
  auto& w = c.websocket;
  w.enabled = true;
  read_listen(s, w.listen_address, w.listen_port);
  if (auto path = s.string("path")) {
    if (path->empty() || path->front() != '/' || path->find_first_of("?#") != std::string::npos) {
      s.fail(t->get("path"), "path", "must start with '/' and hold no '?' or '#'");
    }
    w.path = *path;
    while (w.path.size() > 1 && w.path.back() == '/') w.path.pop_back();
  }
  if (auto max = s.integer("max_message", 64, 16 * 1024 * 1024)) {
    w.max_message = static_cast<std::size_t>(*max);
  }
  if (auto d = s.duration("idle_timeout", milliseconds{100}, std::chrono::hours{1})) {
    w.idle_timeout = *d;
  }
  if (auto d = s.duration("ping_interval", milliseconds{100}, std::chrono::hours{1})) {
    w.ping_interval = *d;
  }
  if (w.ping_interval >= w.idle_timeout) {
    s.fail(t->get("ping_interval"), "ping_interval",
           "must be shorter than idle_timeout (the pong keeps a quiet connection alive)");
  }
  s.check_unknown();
}

void read_alarm_settings(Section& root, Config& c) {
  const toml::table* t = root.subtable("alarms");
  if (t == nullptr) return;
  Section s(root.file(), *t, "alarms");
  if (auto d = s.duration("chatter_window", milliseconds{0}, std::chrono::hours{24})) {
    c.alarms.chatter_window = *d;
  }
  if (auto priority = s.string("link_down")) {
    const auto parsed = model::parse_priority(*priority);
    if (!parsed) s.fail(t->get("link_down"), "link_down", "must be high, medium, low or none");
    c.alarms.link_down = *parsed;
  }
  if (auto priority = s.string("system")) {
    const auto parsed = model::parse_priority(*priority);
    if (!parsed) s.fail(t->get("system"), "system", "must be high, medium, low or none");
    c.alarms.system = *parsed;
  }
  s.check_unknown();
}

void read_pipeline(Section& root, Config& c) {
  const toml::table* t = root.subtable("pipeline");
  if (t == nullptr) return;
  Section s(root.file(), *t, "pipeline");
  auto& p = c.pipeline;
  if (auto v = s.integer("queue_capacity", 1, 100'000'000))
    p.queue_capacity = static_cast<std::size_t>(*v);
  if (auto v = s.integer("queue_readings", 1, 1'000'000'000))
    p.queue_readings = static_cast<std::size_t>(*v);
  if (auto v = s.integer("batch_max", 1, 1'000'000)) p.batch_max = static_cast<std::size_t>(*v);
  if (auto d = s.duration("batch_interval", milliseconds{1}, std::chrono::seconds{60}))
    p.batch_interval = *d;
  if (auto d = s.duration("max_future_skew", milliseconds{0}, std::chrono::hours{24 * 365})) {
    p.max_future_skew = *d;
  }
  if (auto d = s.duration("max_past_age", milliseconds{1}, std::chrono::hours{24 * 365 * 10})) {
    p.max_past_age = *d;
  }
  if (auto v = s.integer("dead_letter_payload_cap", 0, 1 << 20)) {
    p.dead_letter_payload_cap = static_cast<std::size_t>(*v);
  }
  s.check_unknown();
}

void read_history(Section& root, Config& c) {
  const toml::table* t = root.subtable("history");
  if (t == nullptr) return;
  Section s(root.file(), *t, "history");
  if (const toml::table* r = s.subtable("retention")) {
    Section rs(root.file(), *r, "history.retention");
    // At least an hour: a shorter retention would delete data about as fast as it lands.
    constexpr milliseconds min = std::chrono::hours{1};
    constexpr milliseconds max = std::chrono::hours{24 * 365 * 100};
    auto& h = c.history;
    if (auto d = rs.duration("raw", min, max)) h.retention_raw = *d;
    if (auto d = rs.duration("minute", min, max)) h.retention_minute = *d;
    if (auto d = rs.duration("hour", min, max)) h.retention_hour = *d;
    rs.check_unknown();
  }
  s.check_unknown();
}

void read_stores(Section& root, Config& c, const fs::path& config_dir) {
  c.stores.history_url = "sqlite:" + (c.data_dir / "history.db").string();
  const toml::table* t = root.subtable("stores");
  if (t == nullptr) return;
  Section s(root.file(), *t, "stores");
  if (auto live = s.string("live")) {
    if (*live != "memory:" && live->rfind("redis://", 0) != 0) {
      s.fail(t->get("live"), "live", "must be \"memory:\" or a redis:// URL");
    }
    c.stores.live_url = *live;
  }
  if (auto history = s.string("history")) {
    if (history->rfind("sqlite:", 0) == 0) {
      const std::string path = history->substr(7);
      if (path.empty()) s.fail(t->get("history"), "history", "sqlite: needs a file path");
      c.stores.history_url = "sqlite:" + resolve(config_dir, path).string();
    } else if (history->rfind("postgresql://", 0) == 0 || history->rfind("postgres://", 0) == 0) {
      c.stores.history_url = *history;
    } else {
      s.fail(t->get("history"), "history", "must be sqlite:<path> or a postgresql:// URL");
    }
  }
  if (auto sync = s.string("sqlite_synchronous")) {
    if (*sync != "full" && *sync != "normal") {
      s.fail(t->get("sqlite_synchronous"), "sqlite_synchronous", "must be \"full\" or \"normal\"");
    }
    c.stores.sqlite_synchronous = *sync;
  }
  if (const toml::table* pt = s.subtable("postgres")) {
    Section ps(root.file(), *pt, "stores.postgres");
    auto& pg = c.stores.postgres;
    pg.timeout = ps.duration("timeout", milliseconds{100}, std::chrono::minutes{10});
    pg.replay_digest_retention = ps.duration("replay_digest_retention", std::chrono::minutes{1},
                                             std::chrono::hours{24 * 30});
    if (auto v = ps.integer("partitions_ahead", 0, 60)) pg.partitions_ahead = static_cast<int>(*v);
    pg.maintenance_interval =
        ps.duration("maintenance_interval", std::chrono::minutes{1}, std::chrono::hours{24});
    pg.rollup_fold_interval =
        ps.duration("rollup_fold_interval", milliseconds{0}, std::chrono::minutes{10});
    pg.rollup_fold_rows = ps.integer("rollup_fold_rows", 100, 1'000'000);
    ps.check_unknown();
  }
  if (const toml::table* rt = s.subtable("redis")) {
    Section rs(root.file(), *rt, "stores.redis");
    auto& r = c.stores.redis;
    r.connect_timeout = rs.duration("connect_timeout", milliseconds{10}, std::chrono::minutes{1});
    r.command_timeout = rs.duration("command_timeout", milliseconds{10}, std::chrono::minutes{1});
    r.heartbeat_interval =
        rs.duration("heartbeat_interval", milliseconds{100}, std::chrono::minutes{1});
    r.reconnect_min = rs.duration("reconnect_min", milliseconds{10}, std::chrono::minutes{10});
    r.reconnect_max = rs.duration("reconnect_max", milliseconds{10}, std::chrono::minutes{10});
    if (r.reconnect_min && r.reconnect_max && *r.reconnect_min > *r.reconnect_max) {
      rs.fail(rt->get("reconnect_min"), "reconnect_min", "must not exceed reconnect_max");
    }
    if (auto v = rs.integer("max_pending", 1000, 100'000'000)) {
      r.max_pending = static_cast<std::size_t>(*v);
    }
    if (auto v = rs.integer("devices_per_round", 1, 100'000)) {
      r.devices_per_round = static_cast<std::size_t>(*v);
    }
    rs.check_unknown();
  }
  s.check_unknown();
}

void read_spool(Section& root, Config& c, const fs::path& config_dir) {
  auto& sp = c.spool;
  sp.enabled = c.stores.history_url.rfind("postgres", 0) == 0;
  sp.dir = c.data_dir / "spool";
  const toml::table* t = root.subtable("spool");
  if (t == nullptr) return;
  Section s(root.file(), *t, "spool");
  if (auto v = s.boolean("enabled")) sp.enabled = *v;
  if (auto dir = s.string("dir")) {
    if (dir->empty()) s.fail(t->get("dir"), "dir", "must not be empty");
    sp.dir = resolve(config_dir, *dir);
  }
  constexpr std::int64_t kib = 1024;
  if (auto v = s.integer("max_bytes", 64 * kib, kib * kib * kib * kib)) {
    sp.max_bytes = static_cast<std::uint64_t>(*v);
  }
  if (auto v = s.integer("segment_bytes", 4 * kib, kib * kib * kib)) {
    sp.segment_bytes = static_cast<std::uint64_t>(*v);
  }
  // Room for at least four segments: the oldest ones are rewritten when the spool is full.
  if (sp.segment_bytes * 4 > sp.max_bytes) {
    s.fail(t->get("segment_bytes") != nullptr ? t->get("segment_bytes") : t->get("max_bytes"),
           "segment_bytes", "must be at most a quarter of max_bytes");
  }
  if (auto d = s.duration("sync_interval", milliseconds{0}, std::chrono::seconds{1})) {
    sp.sync_interval = *d;
  }
  s.check_unknown();
}

Profile build_profile(const toml::table& root, const fs::path& file) {
  Section s(file, root, "");
  Profile p;
  p.file = file;
  p.name = file.stem().string();
  p.kind = s.required_string("kind");
  if (!is_metric_name(p.kind))
    s.fail(root.get("kind"), "kind", "must be lower-case letters, digits and _");
  p.description = s.string("description").value_or("");
  p.source = s.string("source").value_or("");
  if (auto d = s.duration("expected_interval", milliseconds{0}, std::chrono::hours{24 * 30})) {
    p.expected_interval = *d;
  }
  read_mqtt_mapping(s, p);
  read_modbus_settings(s, p);
  read_metrics(s, p);
  check_register_overlaps(file, p);
  read_events(s, p);
  read_alarms(s, p);
  if (p.metrics.empty() && p.events.empty()) {
    s.fail(nullptr, "metrics", "a profile needs at least one metric or event");
  }
  s.check_unknown();
  return p;
}

Config build_config(const toml::table& root, const fs::path& file) {
  Section s(file, root, "");
  Config c;
  c.file = file;
  const fs::path dir = fs::absolute(file).parent_path();
  c.data_dir = resolve(dir, s.string("data_dir").value_or("data"));
  c.profiles_dir = resolve(dir, s.string("profiles_dir").value_or("profiles"));
  read_server(s, c, dir);
  read_mqtt(s, c);
  read_websocket(s, c);
  read_pipeline(s, c);
  read_alarm_settings(s, c);
  read_stores(s, c, dir);
  read_history(s, c);
  read_spool(s, c, dir);
  read_serial_buses(s, c);
  read_devices(s, c);
  s.check_unknown();
  return c;
}

}  // namespace

Profile load_profile(const fs::path& file) {
  return build_profile(parse_toml(file, nullptr), file);
}

Config load_config(const fs::path& file) {
  return build_config(parse_toml(file, nullptr), file);
}

Profile parse_profile(std::string_view text, const fs::path& file) {
  return build_profile(parse_toml(file, &text), file);
}

Config parse_config(std::string_view text, const fs::path& file) {
  return build_config(parse_toml(file, &text), file);
}

}  // namespace fieldhub::config
