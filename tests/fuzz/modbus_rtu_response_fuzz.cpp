// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the Modbus RTU reply parser. Input: byte 0 = function selector (low 3
// bits: FC01/02/03/04/05/06/15/16; bit 3: the bus echoes), byte 1 = quantity; the rest is what
// arrived on the bus. The parse loop is the transport's: drop `consumed` bytes after noise, echo
// and wrong_unit and parse again. It must terminate, consume within bounds and never crash.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "adapters/modbus/frame.h"

#ifdef FIELDHUB_MODBUS_FUZZ_REPLAY
#define FIELDHUB_FUZZ_ENTRY modbus_rtu_response_fuzz_one
#else
#define FIELDHUB_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace {

fieldhub::modbus::Request pick_request(std::uint8_t selector, std::uint8_t quantity) {
  using namespace fieldhub::modbus;
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

}  // namespace

extern "C" int FIELDHUB_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  using namespace fieldhub::modbus;
  if (size < 2) return 0;
  const Request request = pick_request(data[0], data[1]);
  bool echo_pending = (data[0] & 8) != 0;
  std::span<const std::uint8_t> buffer(data + 2, size - 2);
  while (!buffer.empty()) {
    const Reply reply = parse_rtu(request, buffer, echo_pending);
    if (reply.consumed > buffer.size()) std::abort();
    if (reply.status == ReplyStatus::echo) echo_pending = false;
    const bool skip = reply.status == ReplyStatus::noise || reply.status == ReplyStatus::echo ||
                      reply.status == ReplyStatus::wrong_unit;
    if (!skip) break;
    if (reply.consumed == 0) std::abort();  // no progress would loop forever
    buffer = buffer.subspan(reply.consumed);
  }
  return 0;
}
