// SPDX-License-Identifier: Apache-2.0
#pragma once

// The server side of Modbus, written independently of src/adapters/modbus so that a framing or
// decoding bug is not mirrored on both ends of a test. Everything here is pure (no I/O, no clock):
// the caller passes the simulation time in seconds.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fieldhub::sim {

// CRC-16/Modbus (poly 0xA001 reflected, init 0xFFFF); on the wire low byte first.
std::uint16_t crc16_modbus(std::span<const std::uint8_t> bytes);
void append_crc(std::vector<std::uint8_t>& frame);
bool crc_ok(std::span<const std::uint8_t> frame);  // the last two bytes are the CRC of the rest

// Modbus TCP application header: transaction, protocol (0), length (unit + PDU), unit.
inline constexpr std::size_t mbap_size = 7;
// Bytes of the first complete MBAP frame at the front of `stream`; 0 while incomplete;
// nullopt if the header cannot be Modbus (protocol id != 0, length outside 2..254).
std::optional<std::size_t> mbap_frame_size(std::span<const std::uint8_t> stream);

enum class Table : std::uint8_t { coil, discrete_input, holding, input };
std::optional<Table> parse_table(std::string_view name);  // coil, discrete, holding, input
std::string_view to_string(Table table);
inline bool is_bit_table(Table t) {
  return t == Table::coil || t == Table::discrete_input;
}

enum class ValueType : std::uint8_t { u16, i16, u32, i32, u64, i64, f32, f64, bit };
std::optional<ValueType> parse_value_type(std::string_view name);
unsigned register_count(ValueType type);  // 1 for bit and 16-bit types

// ABCD: big-endian; CDAB: words swapped; BADC: bytes swapped in each word; DCBA: both.
// For 64-bit types the same rule applies to four words.
enum class ByteOrder : std::uint8_t { abcd, cdab, badc, dcba };
std::optional<ByteOrder> parse_byte_order(std::string_view name);
// The registers holding `value` (rounded to the type, saturated) in the given order.
std::vector<std::uint16_t> encode_value(double value, ValueType type, ByteOrder order);

// How a simulated value moves with time t (seconds since start):
// constant: base; wave: base + amplitude·sin(2πt/period + phase); counter: base + rate·t;
// toggle: alternates between 0 and 1 every period/2 seconds (phase shifts it).
enum class Shape : std::uint8_t { constant, wave, counter, toggle };
std::optional<Shape> parse_shape(std::string_view name);

struct Signal {
  Table table = Table::holding;
  std::uint16_t address = 0;
  ValueType type = ValueType::u16;
  ByteOrder order = ByteOrder::abcd;
  Shape shape = Shape::constant;
  double base = 0;
  double amplitude = 0;
  double period_s = 60;
  double rate = 0;          // per second, counter only
  double scale = 1;         // raw = value · scale (e.g. an int32 voltage in 0.1 V: scale 10)
  double phase = 0;         // radians
  bool overridden = false;  // written by a client or the control port: no longer generated

  std::uint16_t width() const { return static_cast<std::uint16_t>(register_count(type)); }
  double value_at(double t) const;
};

// One simulated device: four tables (bits stored one per element) plus generated signals.
struct Unit {
  std::uint8_t id = 1;
  std::string name;
  std::array<std::vector<std::uint16_t>, 4> tables;
  std::vector<Signal> signals;
  bool stopped = false;  // "device gone": no reply at all until started again

  std::vector<std::uint16_t>& table(Table t) { return tables[static_cast<std::size_t>(t)]; }
  const std::vector<std::uint16_t>& table(Table t) const {
    return tables[static_cast<std::size_t>(t)];
  }
  // Grows tables so every signal fits, and to at least `min_size` entries each.
  void fit_tables(std::size_t min_size);
  // Writes raw values (registers, or 0/1 for bit tables); signals overlapping them stop being
  // generated. False if out of range.
  bool set(Table t, std::uint16_t address, std::span<const std::uint16_t> values);
};

// Modbus exception codes (Modbus Application Protocol V1.1b3, 7).
namespace exception {
inline constexpr std::uint8_t illegal_function = 0x01;
inline constexpr std::uint8_t illegal_data_address = 0x02;
inline constexpr std::uint8_t illegal_data_value = 0x03;
inline constexpr std::uint8_t gateway_target_failed = 0x0B;
}  // namespace exception

// The address range a request touches, when its function has one (for fault matching).
struct RequestRange {
  std::uint16_t first = 0;
  std::uint16_t count = 0;
};
std::optional<RequestRange> request_range(std::span<const std::uint8_t> pdu);

// Serves one request PDU (function code first) against `unit` at simulation time t: reads render
// the signals they touch, writes change the tables. Returns the response PDU, which is an
// exception response (function | 0x80, code) for unknown functions, bad quantities or addresses.
// Supported: 01, 02, 03, 04, 05, 06, 0F, 10.
std::vector<std::uint8_t> serve_pdu(Unit& unit, std::span<const std::uint8_t> pdu, double t);

std::vector<std::uint8_t> exception_pdu(std::uint8_t function, std::uint8_t code);

}  // namespace fieldhub::sim
