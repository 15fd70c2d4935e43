// SPDX-License-Identifier: Apache-2.0
#pragma once
// The request a Modbus reply fuzz input is checked against: the input's first byte picks the
// function (low 3 bits: FC01/02/03/04/05/06/15/16), the second the quantity. Shared by the TCP
// and RTU reply fuzz targets.

#include <algorithm>
#include <array>
#include <cstdint>

#include "adapters/modbus/frame.h"

namespace fieldhub::modbus {

inline Request fuzz_request(std::uint8_t selector, std::uint8_t quantity) {
  const std::uint16_t q = static_cast<std::uint16_t>(quantity == 0 ? 1 : quantity);
  static constexpr std::array<bool, 3> coils = {true, false, true};
  static constexpr std::array<std::uint16_t, 2> words = {0x1234, 0xABCD};
  switch (selector & 7) {
    case 0:
      return read_request(1, FunctionCode::read_coils, 0, q);
    case 1:
      return read_request(1, FunctionCode::read_discrete_inputs, 10, q);
    case 2:
      return read_request(1, FunctionCode::read_holding_registers, 0,
                          std::min<std::uint16_t>(q, 125));
    case 3:
      return read_request(1, FunctionCode::read_input_registers, 0,
                          std::min<std::uint16_t>(q, 125));
    case 4:
      return write_single_coil(1, q, true);
    case 5:
      return write_single_register(1, q, 0x0102);
    case 6:
      return write_multiple_coils(1, q, coils);
    default:
      return write_multiple_registers(1, q, words);
  }
}

}  // namespace fieldhub::modbus
