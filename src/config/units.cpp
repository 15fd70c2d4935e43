// SPDX-License-Identifier: Apache-2.0
#include "config/units.h"

#include <algorithm>
#include <array>
#include <string>

namespace fieldhub::config {

namespace {

// Symbols as SI and IEC 60050 write them: case matters (kW, not KW; m³ with a superscript).
constexpr std::array<std::string_view, 48> known_units = {
    // energy, power, electricity
    "Wh", "kWh", "MWh", "W", "kW", "MW", "VA", "kVA", "var", "kvar", "varh", "kvarh", "V", "kV",
    "mV", "A", "mA", "Hz",
    // volume and flow
    "m³", "l", "m³/h", "l/min", "l/h",
    // temperature, pressure, air
    "°C", "K", "Pa", "hPa", "kPa", "bar", "mbar", "ppm", "ppb", "µg/m³", "lx",
    // radio, time
    "dBm", "dB", "s", "ms", "min", "h",
    // mechanics
    "m", "mm", "m/s", "rpm", "kg", "g",
    // ratios
    "%",
    // unitless (power factor, counts, states)
    ""};

}  // namespace

bool is_known_unit(std::string_view unit) {
  return std::find(known_units.begin(), known_units.end(), unit) != known_units.end();
}

std::string_view known_units_list() {
  static const std::string list = [] {
    std::string out;
    for (const auto u : known_units) {
      if (u.empty()) continue;
      if (!out.empty()) out += ", ";
      out += u;
    }
    out += ", or \"\" for none";
    return out;
  }();
  return list;
}

}  // namespace fieldhub::config
