// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the live-state codec: what another instance publishes on the update
// channel, and what is stored in a device hash, is input. The first byte chooses the decoder
// ('f' frame, 'h' hash field value, anything else a metric); the rest is the text. Whatever
// decodes must encode again to something that decodes to the same values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stores/redis/live_codec.h"

namespace {

using namespace fieldhub::stores;

void check_round_trip(const LatestValue& v) {
  std::string json;
  redis_codec::encode_metric(v, json);
  const auto again = redis_codec::decode_metric(json);
  if (!again || again->ts != v.ts || again->received_ts != v.received_ts ||
      again->quality != v.quality || again->value.index() != v.value.index()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 'f') {
    const auto frame = redis_codec::decode_frame(text);
    if (!frame) return 0;
    for (const auto& d : frame->devices) {
      for (const auto& [metric, v] : d.metrics) check_round_trip(v);
    }
  } else if (data[0] == 'h') {
    const auto u = redis_codec::decode_hash("d", {{"m:x", std::string(text)}, {"last_seen", "1"}});
    for (const auto& [metric, v] : u.metrics) check_round_trip(v);
  } else if (const auto v = redis_codec::decode_metric(text)) {
    check_round_trip(*v);
  }
  return 0;
}
