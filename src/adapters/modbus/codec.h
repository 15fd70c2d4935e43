// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "model/quality.h"
#include "model/value.h"

namespace fieldhub::modbus {

// A register value turned into a metric value. A value that cannot be trusted (NaN, infinity)
// carries no number and quality bad with a reason: an error is never stored as 0.
struct DecodedValue {
  model::Value value;
  model::Quality quality = model::Quality::good;
  std::string_view reason;  // empty when good; "not_a_number", "short_response"
};

// Decodes one register-typed spec (bit, int*, uint*, float*, string) from `words`, which start at
// spec.address and hold at least spec.width() registers (fewer: bad "short_response").
// Applies scale and offset. Pure.
DecodedValue decode_registers(const config::RegisterSpec& spec,
                              std::span<const std::uint16_t> words);

// A coil or discrete input.
DecodedValue decode_bit(bool on);

// The register words a write of `value` puts on the wire, through the same byte orders and the
// inverse of scale/offset, so what is written reads back as the same value.
struct EncodedValue {
  std::vector<std::uint16_t> words;  // spec.width() words; empty on error
  std::string error;                 // empty on success: "not a number", "out of range for int16"
};

// Register types except bit (which needs the register's current value: use set_bit).
EncodedValue encode_registers(const config::RegisterSpec& spec, const model::Value& value);

// Read-modify-write of one bit of a holding register.
std::uint16_t set_bit(std::uint16_t word, std::uint8_t bit, bool on);

// The raw byte shuffles, exposed for tests and tools: `bytes` is the value big-endian (ABCD...);
// the result is the register words as they travel in `order`, and back.
std::vector<std::uint16_t> to_wire_words(std::span<const std::uint8_t> big_endian,
                                         config::ByteOrder order);
std::vector<std::uint8_t> from_wire_words(std::span<const std::uint16_t> words,
                                          config::ByteOrder order);

std::string_view to_string(config::ModbusType type);
std::string_view to_string(config::ByteOrder order);
std::string_view to_string(config::ModbusFunction function);

}  // namespace fieldhub::modbus
