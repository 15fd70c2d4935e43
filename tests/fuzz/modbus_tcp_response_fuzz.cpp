// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the Modbus TCP reply path: MBAP stream decoder + reply check. Input:
// byte 0 = function (low 3 bits pick FC01/02/03/04/05/06/15/16), byte 1 = quantity, byte 2 =
// chunk size the stream arrives in; the rest is the byte stream from the server. Whatever the
// bytes, the decoder must never read out of bounds, loop, or take a frame over 260 bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "adapters/modbus/frame.h"
#include "modbus_fuzz_request.h"

#ifdef FIELDHUB_MODBUS_FUZZ_REPLAY
#define FIELDHUB_FUZZ_ENTRY modbus_tcp_response_fuzz_one
#else
#define FIELDHUB_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

extern "C" int FIELDHUB_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  using namespace fieldhub::modbus;
  if (size < 3) return 0;
  const Request request = fuzz_request(data[0], data[1]);
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
