// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the Modbus RTU reply parser. Input: byte 0 = function selector (low 3
// bits: FC01/02/03/04/05/06/15/16; bit 3: the bus echoes), byte 1 = quantity; the rest is what
// arrived on the bus. The parse loop is the transport's: drop `consumed` bytes after noise, echo
// and wrong_unit and parse again. It must terminate, consume within bounds and never crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "adapters/modbus/frame.h"
#include "modbus_fuzz_request.h"

#ifdef FIELDHUB_MODBUS_FUZZ_REPLAY
#define FIELDHUB_FUZZ_ENTRY modbus_rtu_response_fuzz_one
#else
#define FIELDHUB_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int FIELDHUB_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  using namespace fieldhub::modbus;
  if (size < 2) return 0;
  const Request request = fuzz_request(data[0], data[1]);
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
