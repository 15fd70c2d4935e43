// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the spool's record decoder (src/pipeline/spool_codec.h), fed a segment
// file's bytes. Scanning never reads outside the input and always moves forward; a record the
// checksum accepts either fails to decode or decodes to an envelope that encodes to the same
// payload again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipeline/spool_codec.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace codec = fieldhub::pipeline::spool_codec;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The payload decoder alone, on the raw input.
  if (auto env = codec::decode_payload(bytes)) {
    std::string again;
    codec::encode_payload(*env, again);
    check(again == bytes);
  }
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const codec::RecordView v = codec::parse_record(bytes.substr(pos));
    if (v.status == codec::Parse::ok) {
      check(v.size >= codec::header_bytes && v.size <= bytes.size() - pos);
      if (auto env = codec::decode_payload(v.payload)) {
        std::string again;
        codec::encode_payload(*env, again);
        check(again == v.payload);
      }
      pos += v.size;
      continue;
    }
    const std::size_t next = codec::resync(bytes.substr(pos));
    if (next == std::string_view::npos) break;
    check(next > 0);
    pos += next;
  }
  return 0;
}
