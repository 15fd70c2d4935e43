// SPDX-License-Identifier: Apache-2.0
#include "sim/modbus/sim_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <set>

namespace fieldhub::sim {

namespace {

constexpr std::string_view templates_text = R"toml(
# Eastron SDM630-like three-phase meter: input registers (FC04), float32 ABCD, already in units.
[template.sdm630]
signal = [
  { table = "input", address = 0x0000, type = "float32", shape = "wave", base = 230.0, amplitude = 2.5, period_s = 97 },   # L1 voltage V
  { table = "input", address = 0x0002, type = "float32", shape = "wave", base = 231.0, amplitude = 2.0, period_s = 89 },   # L2 voltage V
  { table = "input", address = 0x0004, type = "float32", shape = "wave", base = 229.5, amplitude = 2.2, period_s = 83 },   # L3 voltage V
  { table = "input", address = 0x0006, type = "float32", shape = "wave", base = 12.0, amplitude = 4.0, period_s = 45 },    # L1 current A
  { table = "input", address = 0x0008, type = "float32", shape = "wave", base = 11.0, amplitude = 3.0, period_s = 41 },    # L2 current A
  { table = "input", address = 0x000A, type = "float32", shape = "wave", base = 9.0, amplitude = 3.0, period_s = 37 },     # L3 current A
  { table = "input", address = 0x000C, type = "float32", shape = "wave", base = 2700.0, amplitude = 900.0, period_s = 45 }, # L1 power W
  { table = "input", address = 0x000E, type = "float32", shape = "wave", base = 2500.0, amplitude = 700.0, period_s = 41 }, # L2 power W
  { table = "input", address = 0x0010, type = "float32", shape = "wave", base = 2050.0, amplitude = 650.0, period_s = 37 }, # L3 power W
  { table = "input", address = 0x0034, type = "float32", shape = "wave", base = 7250.0, amplitude = 2000.0, period_s = 45 }, # total power W
  { table = "input", address = 0x0046, type = "float32", shape = "wave", base = 50.0, amplitude = 0.05, period_s = 31 },   # frequency Hz
  { table = "input", address = 0x0048, type = "float32", shape = "counter", base = 12345.6, rate = 0.002 },               # import kWh
  { table = "input", address = 0x004A, type = "float32", shape = "counter", base = 10.25, rate = 0.00001 },               # export kWh
  { table = "input", address = 0x0156, type = "float32", shape = "counter", base = 12355.85, rate = 0.00201 },            # total kWh
]

# Water meter behind a Modbus converter: holding registers (FC03).
[template.water_meter]
signal = [
  { table = "holding", address = 0x0000, type = "uint32", shape = "counter", base = 1234567, rate = 0.05 },  # volume litres
  { table = "holding", address = 0x0002, type = "uint16", shape = "wave", base = 180, amplitude = 60, period_s = 300 },  # flow l/h
  { table = "holding", address = 0x0003, type = "int16", shape = "wave", base = 12.5, amplitude = 1.5, period_s = 600, scale = 100 },  # water temperature 0.01 °C
]
registers = [ { table = "coil", address = 0, values = [1] } ]  # valve open

# Gas meter: input registers, values with the low word first (CDAB) as many meters send them.
[template.gas_meter]
signal = [
  { table = "input", address = 0x0000, type = "float32", order = "CDAB", shape = "counter", base = 8421.5, rate = 0.0003 },  # volume m³
  { table = "input", address = 0x0002, type = "int32", order = "CDAB", shape = "wave", base = 21.0, amplitude = 0.3, period_s = 120, scale = 10 },  # pressure 0.1 mbar
  { table = "input", address = 0x0004, type = "int16", shape = "wave", base = 9.5, amplitude = 2.0, period_s = 900, scale = 10 },  # gas temperature 0.1 °C
]

# A small PLC: signed and 32/64-bit holding registers, a writable setpoint, coils and inputs.
[template.plc]
signal = [
  { table = "holding", address = 0x0000, type = "int16", shape = "wave", base = -5.0, amplitude = 15.0, period_s = 240, scale = 10 },  # outdoor temperature 0.1 °C
  { table = "holding", address = 0x0002, type = "uint32", shape = "counter", base = 100000, rate = 2 },  # parts produced
  { table = "holding", address = 0x0004, type = "int32", order = "CDAB", shape = "wave", base = 0, amplitude = 50000, period_s = 60 },  # axis position µm
  { table = "holding", address = 0x0006, type = "float32", order = "BADC", shape = "wave", base = 4.2, amplitude = 0.4, period_s = 50 },  # pressure bar
  { table = "holding", address = 0x0008, type = "int64", shape = "counter", base = 5000000000, rate = 1500 },  # energy Wh
  { table = "discrete", address = 0, type = "bit", shape = "toggle", period_s = 10 },
  { table = "discrete", address = 1, type = "bit", shape = "toggle", period_s = 20 },
  { table = "discrete", address = 2, type = "bit", shape = "toggle", period_s = 60 },
]
registers = [
  { table = "holding", address = 0x0001, values = [1] },    # status: running
  { table = "holding", address = 0x0010, values = [215] },  # setpoint 21.5 °C (writable)
  { table = "coil", address = 0, values = [1, 0, 1, 0, 0, 0, 0, 0] },
]
)toml";

constexpr std::string_view default_text = R"toml(# fieldhub-modbus-sim built-in demo configuration
[[tcp]]
port = 5020

[[unit]]
id = 1
name = "kwh-meter"
template = "sdm630"

[[unit]]
id = 2
name = "water-meter"
template = "water_meter"

[[unit]]
id = 3
name = "gas-meter"
template = "gas_meter"

[[unit]]
id = 4
name = "plc"
template = "plc"
)toml";

// Default size of each table of a unit; larger where a signal or register needs it.
constexpr std::size_t default_table_size = 100;
constexpr unsigned max_units_per_listener = 247;  // unit ids 1..247 (V1.1b3, serial line 2.2)

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const toml::node* at, std::string_view key, std::string_view msg) const {
    std::string where = source_;
    if (at != nullptr && at->source().begin.line > 0) {
      where += ":" + std::to_string(at->source().begin.line);
    }
    throw ConfigError(where + ": " + std::string(key) + ": " + std::string(msg));
  }

  const toml::table& table(const toml::node& n, std::string_view key) const {
    if (!n.is_table()) fail(&n, key, "expected a table");
    return *n.as_table();
  }

  const toml::array* array(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array()) fail(n, key, "expected an array");
    return n->as_array();
  }

  std::optional<std::int64_t> integer(const toml::table& t, std::string_view key, std::int64_t min,
                                      std::int64_t max) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    const auto v = n->value<std::int64_t>();
    if (!n->is_integer() || !v) fail(n, key, "expected an integer");
    if (*v < min || *v > max) {
      fail(n, key, "out of range " + std::to_string(min) + ".." + std::to_string(max));
    }
    return *v;
  }

  std::optional<double> real(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_number()) fail(n, key, "expected a number");
    return n->value<double>();
  }

  std::optional<std::string> string(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_string()) fail(n, key, "expected a string");
    return std::string(*n->value<std::string_view>());
  }

  std::optional<bool> boolean(const toml::table& t, std::string_view key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_boolean()) fail(n, key, "expected true or false");
    return n->value<bool>();
  }

  void only_keys(const toml::table& t, std::string_view where,
                 std::initializer_list<std::string_view> keys) const {
    for (const auto& [k, v] : t) {
      bool known = false;
      for (const auto key : keys) known = known || key == k.str();
      if (!known) fail(&v, std::string(where) + "." + std::string(k.str()), "unknown key");
    }
  }

  Signal signal(const toml::table& t) const {
    only_keys(t, "signal",
              {"table", "address", "type", "order", "shape", "base", "amplitude", "period_s",
               "rate", "scale", "phase"});
    Signal s;
    s.table = table_of(t);
    s.address = static_cast<std::uint16_t>(integer(t, "address", 0, 0xFFFF).value_or(0));
    const auto type_name = string(t, "type").value_or(is_bit_table(s.table) ? "bit" : "uint16");
    const auto type = parse_value_type(type_name);
    if (!type) fail(t.get("type"), "type", "unknown type '" + type_name + "'");
    if (is_bit_table(s.table) != (*type == ValueType::bit)) {
      fail(t.get("type"), "type", "coil and discrete tables take type \"bit\" only");
    }
    s.type = *type;
    if (std::size_t{s.address} + s.width() > 0x10000) fail(t.get("address"), "address", "too high");
    const auto order_name = string(t, "order").value_or("ABCD");
    const auto order = parse_byte_order(order_name);
    if (!order) fail(t.get("order"), "order", "expected ABCD, CDAB, BADC or DCBA");
    s.order = *order;
    const auto shape_name = string(t, "shape").value_or("constant");
    const auto shape = parse_shape(shape_name);
    if (!shape) fail(t.get("shape"), "shape", "expected constant, wave, counter or toggle");
    s.shape = *shape;
    s.base = real(t, "base").value_or(0);
    s.amplitude = real(t, "amplitude").value_or(0);
    s.period_s = real(t, "period_s").value_or(60);
    if (!(s.period_s > 0)) fail(t.get("period_s"), "period_s", "must be > 0");
    s.rate = real(t, "rate").value_or(0);
    s.scale = real(t, "scale").value_or(1);
    s.phase = real(t, "phase").value_or(0);
    return s;
  }

  Table table_of(const toml::table& t) const {
    const auto name = string(t, "table");
    if (!name) fail(&t, "table", "missing (coil, discrete, holding or input)");
    const auto table = parse_table(*name);
    if (!table) fail(t.get("table"), "table", "expected coil, discrete, holding or input");
    return *table;
  }

  // signal = [...], registers = [...], size = N of a template or a unit.
  void device_body(const toml::table& t, Unit& unit) const {
    if (const auto* signals = array(t, "signal")) {
      for (const auto& n : *signals) unit.signals.push_back(signal(table(n, "signal")));
    }
    const auto size = integer(t, "size", 1, 0x10000).value_or(default_table_size);
    unit.fit_tables(static_cast<std::size_t>(size));
    if (const auto* regs = array(t, "registers")) {
      for (const auto& n : *regs) {
        const auto& r = table(n, "registers");
        only_keys(r, "registers", {"table", "address", "values"});
        const Table tab = table_of(r);
        const auto address = integer(r, "address", 0, 0xFFFF).value_or(0);
        std::vector<std::uint16_t> values;
        if (const auto* vs = array(r, "values")) {
          for (const auto& v : *vs) {
            const auto x = v.value<std::int64_t>();
            if (!v.is_integer() || !x || *x < 0 || *x > 0xFFFF) fail(&v, "values", "0..65535");
            values.push_back(static_cast<std::uint16_t>(*x));
          }
        }
        auto& data = unit.table(tab);
        if (data.size() < static_cast<std::size_t>(address) + values.size()) {
          if (static_cast<std::size_t>(address) + values.size() > 0x10000) {
            fail(&r, "address", "too high");
          }
          data.resize(static_cast<std::size_t>(address) + values.size());
        }
        // Static values: signals there stop being generated.
        unit.set(tab, static_cast<std::uint16_t>(address), values);
      }
    }
  }

  std::vector<std::uint8_t> unit_list(const toml::table& t) const {
    std::vector<std::uint8_t> ids;
    if (const auto* a = array(t, "units")) {
      for (const auto& v : *a) {
        const auto x = v.value<std::int64_t>();
        if (!v.is_integer() || !x || *x < 1 || *x > 255) fail(&v, "units", "unit ids 1..255");
        ids.push_back(static_cast<std::uint8_t>(*x));
      }
    }
    return ids;
  }

 private:
  std::string source_;
};

toml::table parse(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ": " +
                      std::string(e.description()));
  }
}

// Copies the units named in `ids` (all when empty) into a new bus.
Bus make_bus(Framing framing, const std::map<std::uint8_t, SimUnit>& units,
             const std::vector<std::uint8_t>& ids, const Reader& reader, const toml::node* at) {
  Bus bus;
  bus.framing = framing;
  if (ids.empty()) {
    for (const auto& [id, u] : units) bus.units.push_back(u);
  } else {
    for (const auto id : ids) {
      const auto it = units.find(id);
      if (it == units.end()) reader.fail(at, "units", "no [[unit]] with id " + std::to_string(id));
      bus.units.push_back(it->second);
    }
  }
  return bus;
}

std::map<std::uint8_t, SimUnit> parse_units(const toml::table& doc, const Reader& reader,
                                            const std::map<std::string, Unit>& templates) {
  std::map<std::uint8_t, SimUnit> units;
  if (const auto* list = reader.array(doc, "unit")) {
    for (const auto& n : *list) {
      const auto& t = reader.table(n, "unit");
      reader.only_keys(
          t, "unit", {"id", "name", "template", "stopped", "signal", "registers", "size", "fault"});
      SimUnit su;
      if (const auto tname = reader.string(t, "template")) {
        const auto it = templates.find(*tname);
        if (it == templates.end())
          reader.fail(t.get("template"), "template", "unknown template '" + *tname + "'");
        su.device = it->second;
      }
      const auto id = reader.integer(t, "id", 1, 255);
      if (!id) reader.fail(&t, "unit.id", "missing");
      su.device.id = static_cast<std::uint8_t>(*id);
      if (units.contains(su.device.id)) reader.fail(t.get("id"), "unit.id", "duplicate id");
      su.device.name = reader.string(t, "name").value_or(
          su.device.name.empty() ? "unit" + std::to_string(*id) : su.device.name);
      su.device.stopped = reader.boolean(t, "stopped").value_or(false);
      reader.device_body(t, su.device);
      if (const auto* faults = reader.array(t, "fault")) {
        for (const auto& fn : *faults) {
          const auto& ft = reader.table(fn, "fault");
          reader.only_keys(
              ft, "fault",
              {"kind", "delay_ms", "code", "from", "to", "every", "bytes", "function", "times"});
          std::vector<std::string> words{reader.string(ft, "kind").value_or("")};
          for (const auto key :
               {"delay_ms", "code", "from", "to", "every", "bytes", "function", "times"}) {
            if (const auto v = reader.integer(ft, key, 0, 100'000'000)) {
              words.push_back(std::string(key) + "=" + std::to_string(*v));
            }
          }
          std::vector<std::string_view> views(words.begin(), words.end());
          std::string error;
          auto fault = parse_fault(views, error);
          if (!fault) reader.fail(&ft, "fault", error);
          su.faults.push_back(*fault);
        }
      }
      units[su.device.id] = std::move(su);
    }
  }
  return units;
}

}  // namespace

std::string_view default_config_text() {
  return default_text;
}
std::string_view builtin_templates_text() {
  return templates_text;
}

SimConfig load_sim_config(std::string_view text, const std::string& source,
                          const CliOverrides& cli) {
  std::map<std::string, Unit> templates;
  {
    const Reader builtin("<built-in templates>");
    const auto doc = parse(templates_text, "<built-in templates>");
    for (const auto& [name, n] : *doc["template"].as_table()) {
      Unit u;
      u.name = std::string(name.str());
      builtin.device_body(builtin.table(n, "template"), u);
      templates[u.name] = std::move(u);
    }
  }

  const Reader reader(source);
  const auto doc = parse(text, source);
  reader.only_keys(doc, "", {"control", "tcp", "rtu", "unit", "template", "fleet"});
  if (const auto* user_templates = doc["template"].as_table()) {
    for (const auto& [name, n] : *user_templates) {
      const auto& t = reader.table(n, "template");
      reader.only_keys(t, "template", {"signal", "registers", "size"});
      Unit u;
      u.name = std::string(name.str());
      reader.device_body(t, u);
      templates[u.name] = std::move(u);
    }
  }

  SimConfig config;
  if (const auto* control = doc["control"].as_table()) {
    reader.only_keys(*control, "control", {"port"});
    config.control_port =
        static_cast<std::uint16_t>(reader.integer(*control, "port", 0, 65535).value_or(0));
  }
  if (cli.control_port) config.control_port = cli.control_port;

  auto units = parse_units(doc, reader, templates);
  if (units.empty()) {
    // No [[unit]]: the demo's four devices.
    units = parse_units(parse(default_text, "<built-in config>"), Reader("<built-in config>"),
                        templates);
  }

  if (const auto* list = reader.array(doc, "tcp")) {
    for (const auto& n : *list) {
      const auto& t = reader.table(n, "tcp");
      reader.only_keys(t, "tcp", {"host", "port", "units", "unknown_unit"});
      Bus bus = make_bus(Framing::tcp, units, reader.unit_list(t), reader, &t);
      bus.host = reader.string(t, "host").value_or("127.0.0.1");
      bus.port = static_cast<std::uint16_t>(reader.integer(t, "port", 0, 65535).value_or(0));
      const auto unknown = reader.string(t, "unknown_unit").value_or("exception");
      if (unknown != "exception" && unknown != "silence") {
        reader.fail(t.get("unknown_unit"), "unknown_unit", "expected exception or silence");
      }
      bus.unknown_unit_exception = unknown == "exception";
      config.buses.push_back(std::move(bus));
    }
  }
  if (const auto* list = reader.array(doc, "rtu")) {
    for (const auto& n : *list) {
      const auto& t = reader.table(n, "rtu");
      reader.only_keys(t, "rtu",
                       {"device", "baud", "parity", "stop_bits", "turnaround_ms", "units"});
      Bus bus = make_bus(Framing::rtu, units, reader.unit_list(t), reader, &t);
      bus.device = reader.string(t, "device").value_or("");
      bus.baud = static_cast<unsigned>(reader.integer(t, "baud", 300, 4'000'000).value_or(9600));
      const auto parity = reader.string(t, "parity").value_or("N");
      if (parity != "N" && parity != "E" && parity != "O")
        reader.fail(t.get("parity"), "parity", "N, E or O");
      bus.parity = parity[0];
      bus.stop_bits = static_cast<unsigned>(reader.integer(t, "stop_bits", 1, 2).value_or(1));
      bus.turnaround =
          std::chrono::milliseconds{reader.integer(t, "turnaround_ms", 0, 10'000).value_or(0)};
      config.buses.push_back(std::move(bus));
    }
  }

  if (cli.tcp_port) {
    auto it = std::find_if(config.buses.begin(), config.buses.end(),
                           [](const Bus& b) { return b.framing == Framing::tcp; });
    if (it != config.buses.end()) {
      it->port = *cli.tcp_port;
    } else {
      Bus bus = make_bus(Framing::tcp, units, {}, reader, nullptr);
      bus.port = *cli.tcp_port;
      config.buses.push_back(std::move(bus));
    }
  }
  if (!cli.rtu_device.empty()) {
    auto it = std::find_if(config.buses.begin(), config.buses.end(),
                           [](const Bus& b) { return b.framing == Framing::rtu; });
    if (it == config.buses.end()) {
      config.buses.push_back(make_bus(Framing::rtu, units, {}, reader, nullptr));
      it = config.buses.end() - 1;
    }
    it->device = cli.rtu_device;
    if (cli.baud) it->baud = *cli.baud;
  }
  for (const auto& b : config.buses) {
    if (b.framing == Framing::rtu && b.device.empty()) {
      throw ConfigError(source + ": rtu.device: missing (or pass --rtu DEVICE)");
    }
  }

  struct Fleet {
    unsigned count;
    unsigned per_listener;
    std::uint16_t port_base;
    std::string template_name;
  };
  std::vector<Fleet> fleets;
  if (const auto* list = reader.array(doc, "fleet")) {
    for (const auto& n : *list) {
      const auto& t = reader.table(n, "fleet");
      reader.only_keys(t, "fleet", {"units", "units_per_listener", "template", "port_base"});
      const auto count = reader.integer(t, "units", 1, 1'000'000);
      if (!count) reader.fail(&t, "fleet.units", "missing");
      const auto per =
          reader.integer(t, "units_per_listener", 1, max_units_per_listener).value_or(200);
      const auto tname = reader.string(t, "template").value_or("sdm630");
      if (!templates.contains(tname))
        reader.fail(t.get("template"), "template", "unknown template '" + tname + "'");
      const auto base =
          static_cast<std::uint16_t>(reader.integer(t, "port_base", 0, 65535).value_or(0));
      fleets.push_back({static_cast<unsigned>(*count), static_cast<unsigned>(per), base, tname});
    }
  }
  if (cli.fleet > 0) {
    fleets.push_back({cli.fleet, 200, cli.fleet_port_base, "sdm630"});
  }
  // A fleet: `units` copies of a template, ids 1..N on each of ceil(units / N) listeners.
  std::uint64_t serial = 0;
  for (const auto& fleet : fleets) {
    const unsigned count = fleet.count;
    const unsigned per = fleet.per_listener;
    const std::uint16_t port_base = fleet.port_base;
    const Unit& tmpl = templates.at(fleet.template_name);
    for (unsigned first = 0, l = 0; first < count; first += per, ++l) {
      Bus bus;
      bus.framing = Framing::tcp;
      bus.port = port_base == 0 ? 0 : static_cast<std::uint16_t>(port_base + l);
      for (unsigned i = 0; i < per && first + i < count; ++i, ++serial) {
        SimUnit su;
        su.device = tmpl;
        su.device.id = static_cast<std::uint8_t>(i + 1);
        su.device.name = fleet.template_name + "-" + std::to_string(first + i);
        // Devices of a fleet differ a little, as real ones do.
        for (auto& s : su.device.signals) {
          s.phase += static_cast<double>(serial % 97) * 0.0647;
          if (s.shape == Shape::counter) s.base += static_cast<double>(serial % 1000);
        }
        bus.units.push_back(std::move(su));
      }
      config.buses.push_back(std::move(bus));
    }
  }

  if (config.buses.empty()) {
    Bus bus = make_bus(Framing::tcp, units, {}, reader, nullptr);
    bus.port = 5020;
    config.buses.push_back(std::move(bus));
  }
  for (auto& b : config.buses) b.reindex();
  return config;
}

}  // namespace fieldhub::sim
