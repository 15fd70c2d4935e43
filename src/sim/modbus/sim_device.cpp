// SPDX-License-Identifier: Apache-2.0
#include "sim/modbus/sim_device.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numbers>

namespace fieldhub::sim {

namespace {

std::uint16_t be16(std::span<const std::uint8_t> p, std::size_t at) {
  return static_cast<std::uint16_t>((p[at] << 8) | p[at + 1]);
}

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

template <typename Int>
std::uint64_t saturate(double v) {
  const double r = std::nearbyint(v);
  if (std::isnan(r)) return 0;
  if (r <= static_cast<double>(std::numeric_limits<Int>::min())) {
    return static_cast<std::uint64_t>(std::numeric_limits<Int>::min());
  }
  // The double nearest Int's max may round above it: compare with >=.
  if (r >= static_cast<double>(std::numeric_limits<Int>::max())) {
    return static_cast<std::uint64_t>(std::numeric_limits<Int>::max());
  }
  return static_cast<std::uint64_t>(static_cast<Int>(r));
}

// Modbus caps a register read at 125 and a bit read at 2000 (V1.1b3, 6.1-6.4).
constexpr std::uint16_t max_read_registers = 125;
constexpr std::uint16_t max_read_bits = 2000;
constexpr std::uint16_t max_write_registers = 123;
constexpr std::uint16_t max_write_bits = 1968;

}  // namespace

std::uint16_t crc16_modbus(std::span<const std::uint8_t> bytes) {
  std::uint16_t crc = 0xFFFF;
  for (const std::uint8_t b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i)
      crc = (crc & 1) ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001)
                      : static_cast<std::uint16_t>(crc >> 1);
  }
  return crc;
}

void append_crc(std::vector<std::uint8_t>& frame) {
  const std::uint16_t crc = crc16_modbus(frame);
  frame.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  frame.push_back(static_cast<std::uint8_t>(crc >> 8));
}

bool crc_ok(std::span<const std::uint8_t> frame) {
  if (frame.size() < 3) return false;
  const std::uint16_t crc = crc16_modbus(frame.first(frame.size() - 2));
  return frame[frame.size() - 2] == (crc & 0xFF) && frame[frame.size() - 1] == (crc >> 8);
}

std::optional<std::size_t> mbap_frame_size(std::span<const std::uint8_t> stream) {
  if (stream.size() < 6) return 0;
  const std::uint16_t protocol = be16(stream, 2);
  const std::uint16_t length = be16(stream, 4);
  // length counts the unit id and the PDU; a PDU is 1..253 bytes (V1.1b3, 4.1).
  if (protocol != 0 || length < 2 || length > 254) return std::nullopt;
  const std::size_t total = 6 + std::size_t{length};
  return stream.size() >= total ? total : 0;
}

std::optional<Table> parse_table(std::string_view name) {
  if (name == "coil" || name == "coils") return Table::coil;
  if (name == "discrete" || name == "discrete_input" || name == "discrete_inputs") {
    return Table::discrete_input;
  }
  if (name == "holding") return Table::holding;
  if (name == "input") return Table::input;
  return std::nullopt;
}

std::string_view to_string(Table table) {
  switch (table) {
    case Table::coil:
      return "coil";
    case Table::discrete_input:
      return "discrete";
    case Table::holding:
      return "holding";
    case Table::input:
      return "input";
  }
  return "?";
}

std::optional<ValueType> parse_value_type(std::string_view name) {
  if (name == "uint16") return ValueType::u16;
  if (name == "int16") return ValueType::i16;
  if (name == "uint32") return ValueType::u32;
  if (name == "int32") return ValueType::i32;
  if (name == "uint64") return ValueType::u64;
  if (name == "int64") return ValueType::i64;
  if (name == "float32") return ValueType::f32;
  if (name == "float64") return ValueType::f64;
  if (name == "bit" || name == "bool") return ValueType::bit;
  return std::nullopt;
}

unsigned register_count(ValueType type) {
  switch (type) {
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::f32:
      return 2;
    case ValueType::u64:
    case ValueType::i64:
    case ValueType::f64:
      return 4;
    default:
      return 1;
  }
}

std::optional<ByteOrder> parse_byte_order(std::string_view name) {
  if (name == "ABCD" || name == "abcd") return ByteOrder::abcd;
  if (name == "CDAB" || name == "cdab") return ByteOrder::cdab;
  if (name == "BADC" || name == "badc") return ByteOrder::badc;
  if (name == "DCBA" || name == "dcba") return ByteOrder::dcba;
  return std::nullopt;
}

std::vector<std::uint16_t> encode_value(double value, ValueType type, ByteOrder order) {
  std::uint64_t bits = 0;
  switch (type) {
    case ValueType::bit:
      return {static_cast<std::uint16_t>(value != 0 ? 1 : 0)};
    case ValueType::u16:
      bits = saturate<std::uint16_t>(value);
      break;
    case ValueType::i16:
      bits = saturate<std::int16_t>(value) & 0xFFFF;
      break;
    case ValueType::u32:
      bits = saturate<std::uint32_t>(value);
      break;
    case ValueType::i32:
      bits = saturate<std::int32_t>(value) & 0xFFFFFFFF;
      break;
    case ValueType::u64:
      bits = saturate<std::uint64_t>(value);
      break;
    case ValueType::i64:
      bits = saturate<std::int64_t>(value);
      break;
    case ValueType::f32:
      bits = std::bit_cast<std::uint32_t>(static_cast<float>(value));
      break;
    case ValueType::f64:
      bits = std::bit_cast<std::uint64_t>(value);
      break;
  }
  const unsigned n = register_count(type);
  std::vector<std::uint16_t> words(n);
  for (unsigned i = 0; i < n; ++i) {
    words[i] = static_cast<std::uint16_t>(bits >> (16 * (n - 1 - i)));  // ABCD: high word first
  }
  if (order == ByteOrder::cdab || order == ByteOrder::dcba)
    std::reverse(words.begin(), words.end());
  if (order == ByteOrder::badc || order == ByteOrder::dcba) {
    for (auto& w : words) w = static_cast<std::uint16_t>((w << 8) | (w >> 8));
  }
  return words;
}

std::optional<Shape> parse_shape(std::string_view name) {
  if (name == "constant") return Shape::constant;
  if (name == "wave") return Shape::wave;
  if (name == "counter") return Shape::counter;
  if (name == "toggle") return Shape::toggle;
  return std::nullopt;
}

double Signal::value_at(double t) const {
  const double period = period_s > 0 ? period_s : 1;
  switch (shape) {
    case Shape::constant:
      return base;
    case Shape::wave:
      return base + amplitude * std::sin(2 * std::numbers::pi * t / period + phase);
    case Shape::counter:
      return base + rate * t;
    case Shape::toggle: {
      const double cycles = t / period + phase / (2 * std::numbers::pi);
      return (cycles - std::floor(cycles)) < 0.5 ? base : (base == 0 ? 1 : 0);
    }
  }
  return base;
}

void Unit::fit_tables(std::size_t min_size) {
  for (auto& t : tables) {
    if (t.size() < min_size) t.resize(min_size);
  }
  for (const auto& s : signals) {
    auto& t = table(s.table);
    const std::size_t end = std::size_t{s.address} + s.width();
    if (t.size() < end) t.resize(end);
  }
}

bool Unit::set(Table t, std::uint16_t address, std::span<const std::uint16_t> values) {
  auto& data = table(t);
  const std::size_t end = std::size_t{address} + values.size();
  if (end > data.size()) return false;
  for (std::size_t i = 0; i < values.size(); ++i) {
    data[address + i] = is_bit_table(t) ? (values[i] != 0 ? 1 : 0) : values[i];
  }
  for (auto& s : signals) {
    if (s.table == t && s.address < end && address < s.address + s.width()) s.overridden = true;
  }
  return true;
}

std::optional<RequestRange> request_range(std::span<const std::uint8_t> pdu) {
  if (pdu.size() < 5) return std::nullopt;
  switch (pdu[0]) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x0F:
    case 0x10:
      return RequestRange{be16(pdu, 1), be16(pdu, 3)};
    case 0x05:
    case 0x06:
      return RequestRange{be16(pdu, 1), 1};
    default:
      return std::nullopt;
  }
}

std::vector<std::uint8_t> exception_pdu(std::uint8_t function, std::uint8_t code) {
  return {static_cast<std::uint8_t>(function | 0x80), code};
}

std::vector<std::uint8_t> serve_pdu(Unit& unit, std::span<const std::uint8_t> pdu, double t) {
  if (pdu.empty()) return exception_pdu(0, exception::illegal_function);
  const std::uint8_t fc = pdu[0];
  Table table{};
  switch (fc) {
    case 0x01:
    case 0x05:
    case 0x0F:
      table = Table::coil;
      break;
    case 0x02:
      table = Table::discrete_input;
      break;
    case 0x03:
    case 0x06:
    case 0x10:
      table = Table::holding;
      break;
    case 0x04:
      table = Table::input;
      break;
    default:
      return exception_pdu(fc, exception::illegal_function);
  }
  if (pdu.size() < 5) return exception_pdu(fc, exception::illegal_data_value);
  const std::uint16_t address = be16(pdu, 1);
  const std::uint16_t field = be16(pdu, 3);  // quantity, or the value for 05/06
  auto& data = unit.table(table);
  auto in_range = [&](std::size_t count) { return std::size_t{address} + count <= data.size(); };

  std::vector<std::uint8_t> out{fc};
  switch (fc) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04: {
      const bool bits = fc <= 0x02;
      if (pdu.size() != 5 || field == 0 || field > (bits ? max_read_bits : max_read_registers)) {
        return exception_pdu(fc, exception::illegal_data_value);
      }
      if (!in_range(field)) return exception_pdu(fc, exception::illegal_data_address);
      for (const auto& s : unit.signals) {
        if (s.overridden || s.table != table) continue;
        if (s.address >= address + field || address >= s.address + s.width()) continue;
        const auto regs = encode_value(s.value_at(t) * s.scale, s.type, s.order);
        std::copy(regs.begin(), regs.end(), data.begin() + s.address);
      }
      if (bits) {
        out.push_back(static_cast<std::uint8_t>((field + 7) / 8));
        for (std::uint16_t i = 0; i < field; i += 8) {
          std::uint8_t byte = 0;
          for (std::uint16_t b = 0; b < 8 && i + b < field; ++b) {
            if (data[address + i + b] != 0) byte |= static_cast<std::uint8_t>(1u << b);
          }
          out.push_back(byte);
        }
      } else {
        out.push_back(static_cast<std::uint8_t>(2 * field));
        for (std::uint16_t i = 0; i < field; ++i) put16(out, data[address + i]);
      }
      return out;
    }
    case 0x05:
    case 0x06: {
      if (pdu.size() != 5) return exception_pdu(fc, exception::illegal_data_value);
      if (fc == 0x05 && field != 0xFF00 && field != 0x0000) {
        return exception_pdu(fc, exception::illegal_data_value);
      }
      if (!in_range(1)) return exception_pdu(fc, exception::illegal_data_address);
      const std::uint16_t value = fc == 0x05 ? (field == 0xFF00 ? 1 : 0) : field;
      unit.set(table, address, std::span(&value, 1));
      return {pdu.begin(), pdu.end()};  // the reply echoes the request
    }
    default: {  // 0x0F, 0x10
      const bool bits = fc == 0x0F;
      if (pdu.size() < 6) return exception_pdu(fc, exception::illegal_data_value);
      const std::size_t byte_count = pdu[5];
      const std::size_t expected = bits ? (std::size_t{field} + 7) / 8 : 2 * std::size_t{field};
      if (field == 0 || field > (bits ? max_write_bits : max_write_registers) ||
          byte_count != expected || pdu.size() != 6 + byte_count) {
        return exception_pdu(fc, exception::illegal_data_value);
      }
      if (!in_range(field)) return exception_pdu(fc, exception::illegal_data_address);
      std::vector<std::uint16_t> values(field);
      for (std::uint16_t i = 0; i < field; ++i) {
        values[i] = bits ? static_cast<std::uint16_t>((pdu[6 + i / 8] >> (i % 8)) & 1)
                         : be16(pdu, 6 + 2 * std::size_t{i});
      }
      unit.set(table, address, values);
      out.insert(out.end(), pdu.begin() + 1, pdu.begin() + 5);  // address and quantity
      return out;
    }
  }
}

}  // namespace fieldhub::sim
