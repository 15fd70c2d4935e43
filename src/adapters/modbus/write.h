// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adapters/modbus/frame.h"
#include "config/config.h"
#include "model/value.h"

namespace fieldhub::modbus {

// A command's write, planned: the request to send and the words it puts in the registers (what the
// read-back must find). RELIABILITY.md: writes are read back; a mismatch fails the command.
struct WritePlan {
  Request request;
  std::vector<std::uint16_t> words;  // registers written (coil: {0 or 1})
  std::string error;                 // empty when the write can be sent
};

// FC05 for a coil, FC06 for one register, FC16 for more. A bit of a holding register is a
// read-modify-write: pass the register's current value as `current_word` (read it first);
// without it the plan fails. Refuses specs not marked writable and values the register cannot
// hold (through the same codec as reads).
WritePlan plan_write(std::uint8_t unit, const config::RegisterSpec& spec, const model::Value& value,
                     std::optional<std::uint16_t> current_word = std::nullopt);

// The read that checks a write (FC01 for a coil, FC03 for registers).
Request read_back_request(std::uint8_t unit, const config::RegisterSpec& spec);

// Whether the read-back reply holds what was written. For a bit, only that bit is compared (the
// device may change the others meanwhile).
bool read_back_matches(const config::RegisterSpec& spec, const WritePlan& plan, const Reply& reply);

}  // namespace fieldhub::modbus
