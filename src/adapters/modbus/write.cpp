// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/write.h"

#include "adapters/modbus/codec.h"

namespace fieldhub::modbus {

using config::ModbusFunction;
using config::ModbusType;

namespace {

WritePlan refused(std::string why) {
  WritePlan p;
  p.error = std::move(why);
  return p;
}

}  // namespace

WritePlan plan_write(std::uint8_t unit, const config::RegisterSpec& spec, const model::Value& value,
                     std::optional<std::uint16_t> current_word) {
  if (!spec.writable) return refused("metric '" + spec.metric + "' is not writable");
  if (spec.function == ModbusFunction::coil) {
    const bool* on = std::get_if<bool>(&value);
    if (on == nullptr) return refused("a coil needs true or false");
    WritePlan p;
    p.request = write_single_coil(unit, spec.address, *on);
    p.words = {static_cast<std::uint16_t>(*on ? 1 : 0)};
    return p;
  }
  if (spec.function != ModbusFunction::holding) return refused("only coils and holding registers");
  if (spec.type == ModbusType::bit) {
    const bool* on = std::get_if<bool>(&value);
    if (on == nullptr) return refused("a bit needs true or false");
    if (!current_word)
      return refused("a bit is written read-modify-write: read the register first");
    WritePlan p;
    p.words = {set_bit(*current_word, spec.bit, *on)};
    p.request = write_single_register(unit, spec.address, p.words[0]);
    return p;
  }
  EncodedValue encoded = encode_registers(spec, value);
  if (!encoded.error.empty()) return refused(std::move(encoded.error));
  WritePlan p;
  p.words = std::move(encoded.words);
  p.request = p.words.size() == 1 ? write_single_register(unit, spec.address, p.words[0])
                                  : write_multiple_registers(unit, spec.address, p.words);
  return p;
}

Request read_back_request(std::uint8_t unit, const config::RegisterSpec& spec) {
  if (spec.function == ModbusFunction::coil) {
    return read_request(unit, FunctionCode::read_coils, spec.address, 1);
  }
  return read_request(unit, FunctionCode::read_holding_registers, spec.address, spec.width());
}

bool read_back_matches(const config::RegisterSpec& spec, const WritePlan& plan,
                       const Reply& reply) {
  if (reply.status != ReplyStatus::ok || plan.words.empty()) return false;
  if (spec.function == ModbusFunction::coil) {
    return reply.bits.size() == 1 && reply.bits[0] == (plan.words[0] != 0);
  }
  if (reply.registers.size() != plan.words.size()) return false;
  if (spec.type == ModbusType::bit) {
    const auto mask = static_cast<std::uint16_t>(1U << spec.bit);
    return (reply.registers[0] & mask) == (plan.words[0] & mask);
  }
  return reply.registers == plan.words;
}

}  // namespace fieldhub::modbus
