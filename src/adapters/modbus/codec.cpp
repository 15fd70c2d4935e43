// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "common/utf8.h"

namespace fieldhub::modbus {

using config::ByteOrder;
using config::ModbusType;

namespace {

bool swaps_words(ByteOrder order) {
  return order == ByteOrder::cdab || order == ByteOrder::dcba;
}

bool swaps_bytes(ByteOrder order) {
  return order == ByteOrder::badc || order == ByteOrder::dcba;
}

std::vector<std::uint8_t> u64_to_be(std::uint64_t v, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = n; i-- > 0;) {
    out[i] = static_cast<std::uint8_t>(v & 0xFF);
    v >>= 8;
  }
  return out;
}

DecodedValue bad(std::string_view reason) {
  return {std::monostate{}, model::Quality::bad, reason};
}

DecodedValue number(double raw, const config::RegisterSpec& spec) {
  // NaN and infinity are what meters send for "no measurement" (and what a misread word order
  // produces); they must never be shown as a number (RELIABILITY.md: errors are never 0).
  if (!std::isfinite(raw)) return bad("not_a_number");
  const double v = raw * spec.scale + spec.offset;
  if (!std::isfinite(v)) return bad("not_a_number");
  return {v, model::Quality::good, {}};
}

}  // namespace

std::vector<std::uint16_t> to_wire_words(std::span<const std::uint8_t> big_endian,
                                         ByteOrder order) {
  std::vector<std::uint16_t> words(big_endian.size() / 2);
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::uint8_t hi = big_endian[2 * i];
    std::uint8_t lo = big_endian[2 * i + 1];
    if (swaps_bytes(order)) std::swap(hi, lo);
    words[i] = static_cast<std::uint16_t>((hi << 8) | lo);
  }
  if (swaps_words(order)) std::reverse(words.begin(), words.end());
  return words;
}

namespace {

// Wire words → big-endian bytes, into `out` (2 bytes per word).
void gather(std::span<const std::uint16_t> words, ByteOrder order, std::span<std::uint8_t> out) {
  const std::size_t n = words.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t w = swaps_words(order) ? words[n - 1 - i] : words[i];
    std::uint8_t hi = static_cast<std::uint8_t>(w >> 8);
    std::uint8_t lo = static_cast<std::uint8_t>(w & 0xFF);
    if (swaps_bytes(order)) std::swap(hi, lo);
    out[2 * i] = hi;
    out[2 * i + 1] = lo;
  }
}

}  // namespace

std::vector<std::uint8_t> from_wire_words(std::span<const std::uint16_t> words, ByteOrder order) {
  std::vector<std::uint8_t> bytes(words.size() * 2);
  gather(words, order, bytes);
  return bytes;
}

DecodedValue decode_bit(bool on) {
  return {on, model::Quality::good, {}};
}

DecodedValue decode_registers(const config::RegisterSpec& spec,
                              std::span<const std::uint16_t> words) {
  const std::size_t width = spec.width();
  if (words.size() < width || width == 0) return bad("short_response");
  words = words.first(width);
  if (spec.type == ModbusType::bit) return decode_bit(((words[0] >> spec.bit) & 1U) != 0);
  if (spec.type == ModbusType::boolean) return decode_bit(words[0] != 0);
  if (spec.type == ModbusType::string) {
    // Two characters per register, padded with NUL or spaces.
    std::string text(width * 2, '\0');
    gather(words, spec.order, std::span(reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
    text.resize(std::min(text.find('\0'), text.size()));
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (!common::is_valid_utf8(text)) return bad("invalid_text");
    return {std::move(text), model::Quality::good, {}};
  }
  // Numbers are at most four registers: assemble the big-endian value in place.
  std::uint64_t u = 0;
  for (std::size_t i = 0; i < width; ++i) {
    std::uint16_t w = swaps_words(spec.order) ? words[width - 1 - i] : words[i];
    if (swaps_bytes(spec.order)) w = static_cast<std::uint16_t>((w << 8) | (w >> 8));
    u = (u << 16) | w;
  }
  switch (spec.type) {
    case ModbusType::int16:
      return number(static_cast<std::int16_t>(u), spec);
    case ModbusType::uint16:
      return number(static_cast<double>(static_cast<std::uint16_t>(u)), spec);
    case ModbusType::int32:
      return number(static_cast<std::int32_t>(static_cast<std::uint32_t>(u)), spec);
    case ModbusType::uint32:
      return number(static_cast<double>(static_cast<std::uint32_t>(u)), spec);
    case ModbusType::int64:
      // Above 2^53 a double keeps 15-16 significant digits; energy counters stay far below.
      return number(static_cast<double>(static_cast<std::int64_t>(u)), spec);
    case ModbusType::uint64:
      return number(static_cast<double>(u), spec);
    case ModbusType::float32:
      return number(std::bit_cast<float>(static_cast<std::uint32_t>(u)), spec);
    case ModbusType::float64:
      return number(std::bit_cast<double>(u), spec);
    case ModbusType::string:
    case ModbusType::boolean:
    case ModbusType::bit:
      break;
  }
  return bad("unsupported_type");
}

std::uint16_t set_bit(std::uint16_t word, std::uint8_t bit, bool on) {
  const auto mask = static_cast<std::uint16_t>(1U << (bit & 15U));
  return static_cast<std::uint16_t>(on ? (word | mask) : (word & ~mask));
}

namespace {

EncodedValue fail(std::string message) {
  return {{}, std::move(message)};
}

template <typename Int>
bool fits(double raw) {
  // Compare in double against exact powers of two so the 64-bit bounds are not rounded inwards.
  const double lo = static_cast<double>(std::numeric_limits<Int>::min());
  const double hi_exclusive = std::ldexp(1.0, std::numeric_limits<Int>::digits);
  return raw >= lo && raw < hi_exclusive;
}

}  // namespace

EncodedValue encode_registers(const config::RegisterSpec& spec, const model::Value& value) {
  const ByteOrder order = spec.order;
  const std::size_t width = spec.width();
  if (spec.type == ModbusType::bit) return fail("a bit is written with set_bit on the register");
  if (spec.type == ModbusType::boolean) {
    const bool* b = std::get_if<bool>(&value);
    if (b == nullptr) return fail("needs true or false");
    return {{static_cast<std::uint16_t>(*b ? 1 : 0)}, {}};
  }
  if (spec.type == ModbusType::string) {
    const std::string* s = std::get_if<std::string>(&value);
    if (s == nullptr) return fail("needs text");
    if (s->size() > width * 2) {
      return fail("text longer than " + std::to_string(width * 2) + " bytes");
    }
    std::vector<std::uint8_t> bytes(width * 2, 0);
    std::copy(s->begin(), s->end(), bytes.begin());
    return {to_wire_words(bytes, order), {}};
  }
  const double* v = std::get_if<double>(&value);
  if (v == nullptr) return fail("needs a number");
  if (!std::isfinite(*v)) return fail("not a finite number");
  const double raw = (*v - spec.offset) / spec.scale;
  if (!std::isfinite(raw)) return fail("not a finite number after scale");
  std::uint64_t bits = 0;
  const double rounded = std::nearbyint(raw);
  auto out_of_range = [&] {
    return fail(std::string("out of range for ") + std::string(to_string(spec.type)));
  };
  switch (spec.type) {
    case ModbusType::int16:
      if (!fits<std::int16_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint16_t>(static_cast<std::int16_t>(rounded));
      break;
    case ModbusType::uint16:
      if (!fits<std::uint16_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint16_t>(rounded);
      break;
    case ModbusType::int32:
      if (!fits<std::int32_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(rounded));
      break;
    case ModbusType::uint32:
      if (!fits<std::uint32_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint32_t>(rounded);
      break;
    case ModbusType::int64:
      if (!fits<std::int64_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(rounded));
      break;
    case ModbusType::uint64:
      if (!fits<std::uint64_t>(rounded)) return out_of_range();
      bits = static_cast<std::uint64_t>(rounded);
      break;
    case ModbusType::float32:
      if (std::fabs(raw) > std::numeric_limits<float>::max()) return out_of_range();
      bits = std::bit_cast<std::uint32_t>(static_cast<float>(raw));
      break;
    case ModbusType::float64:
      bits = std::bit_cast<std::uint64_t>(raw);
      break;
    default:
      return fail("unsupported type");
  }
  return {to_wire_words(u64_to_be(bits, width * 2), order), {}};
}

std::string_view to_string(ModbusType type) {
  switch (type) {
    case ModbusType::boolean:
      return "bool";
    case ModbusType::bit:
      return "bit";
    case ModbusType::int16:
      return "int16";
    case ModbusType::uint16:
      return "uint16";
    case ModbusType::int32:
      return "int32";
    case ModbusType::uint32:
      return "uint32";
    case ModbusType::int64:
      return "int64";
    case ModbusType::uint64:
      return "uint64";
    case ModbusType::float32:
      return "float32";
    case ModbusType::float64:
      return "float64";
    case ModbusType::string:
      return "string";
  }
  return "?";
}

std::string_view to_string(ByteOrder order) {
  switch (order) {
    case ByteOrder::abcd:
      return "ABCD";
    case ByteOrder::cdab:
      return "CDAB";
    case ByteOrder::badc:
      return "BADC";
    case ByteOrder::dcba:
      return "DCBA";
  }
  return "?";
}

std::string_view to_string(config::ModbusFunction function) {
  switch (function) {
    case config::ModbusFunction::coil:
      return "coil";
    case config::ModbusFunction::discrete_input:
      return "discrete_input";
    case config::ModbusFunction::holding:
      return "holding";
    case config::ModbusFunction::input:
      return "input";
  }
  return "?";
}

}  // namespace fieldhub::modbus
