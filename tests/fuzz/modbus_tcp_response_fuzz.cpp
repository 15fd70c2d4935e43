// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the Modbus TCP reply path: MBAP stream decoder + reply check. Input:
// byte 0 = function (low 3 bits pick FC01/02/03/04/05/06/15/16), byte 1 = quantity, byte 2 =
// chunk size the stream arrives in; the rest is the byte stream from the server. Whatever the
// bytes, the decoder must never read out of bounds, loop, or take a frame over 260 bytes.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "adapters/modbus/frame.h"

#ifdef FIELDHUB_MODBUS_FUZZ_REPLAY
#define FIELDHUB_FUZZ_ENTRY modbus_tcp_response_fuzz_one
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
  if (size < 3) return 0;
  const Request request = pick_request(data[0], data[1]);
  const std::size_t chunk = std::max<std::size_t>(1, data[2]);
  const std::span<const std::uint8_t> stream(data + 3, size - 3);
  TcpFrameDecoder decoder;
  std::size_t frames = 0;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    decoder.feed(stream.subspan(at, std::min(chunk, stream.size() - at)));
    while (auto frame = decoder.next()) {
      if (frame->pdu.size() > max_tcp_adu - 7) std::abort();
      const Reply reply = check_tcp_reply(1, request, *frame);
      if (reply.status == ReplyStatus::ok && reply.registers.size() + reply.bits.size() > 2000) {
        std::abort();
      }
      ++frames;
    }
    if (decoder.failed()) break;
  }
  if (frames > stream.size()) std::abort();
  (void)check_pdu(request, stream);
  return 0;
}
