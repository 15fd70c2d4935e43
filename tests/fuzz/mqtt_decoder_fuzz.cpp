// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the MQTT broker→client decoder and the topic rules.
// Input: byte 0 picks the fragment size (1..256) the stream is fed in; the rest is the stream.
// Every decoded PUBLISH topic must satisfy the topic-name rules, and the decoder never buffers
// more than its maximum packet size plus one fragment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "adapters/mqtt/mqtt_codec.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fieldhub::mqtt;
  if (size == 0) return 0;
  const std::size_t fragment = static_cast<std::size_t>(data[0]) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  constexpr std::size_t max_packet = 4096;
  PacketDecoder decoder(max_packet);
  bool failed = false;
  for (std::size_t pos = 0; pos < stream.size() && !failed; pos += fragment) {
    decoder.feed(stream.substr(pos, fragment));
    check(decoder.buffered() <= max_packet + fragment);
    while (true) {
      DecodeResult r = decoder.next();
      if (r.need_more()) break;
      if (!r.packet) {
        check(r.error != ProtocolError::none && !to_string(r.error).empty());
        failed = true;
        break;
      }
      if (const auto* p = std::get_if<Publish>(&*r.packet)) {
        check(is_valid_topic_name(p->topic));
        check(p->qos <= 2);
        check((p->qos == 0) == (p->packet_id == 0));
        for (std::string_view filter : {"#", "+/#", "a/+/c", "$SYS/#"}) {
          (void)topic_matches(filter, p->topic);
        }
        check(topic_matches("#", p->topic) == (p->topic.front() != '$'));
      }
    }
  }
  // The same bytes as a topic filter and name must never crash the matcher.
  const auto split = stream.find('\0');
  if (split != std::string_view::npos) {
    const auto filter = stream.substr(0, split);
    const auto topic = stream.substr(split + 1);
    if (topic_matches(filter, topic)) {
      check(is_valid_topic_filter(filter) && is_valid_topic_name(topic));
    }
  }
  return 0;
}
