// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for a WebSocket device message: the envelope decoder, then (as the adapter
// does) the Normalizer's decoding for the smart lock of src/adapters/websocket/example.toml.
// Input: the raw text message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/websocket/ws_message.h"
#include "config/config.h"
#include "normalize/normalizer.h"

namespace {

using fieldhub::adapters::websocket::MessageHeader;
using fieldhub::adapters::websocket::MessageKind;

struct Target {
  fieldhub::config::Config config = fieldhub::config::load_config(FIELDHUB_WEBSOCKET_EXAMPLE);
  fieldhub::adapters::websocket::MessageDecoder decoder{config.websocket.max_message * 4};
  fieldhub::normalize::Normalizer normalizer{config};
};

Target& target() {
  static Target t;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Target& t = target();
  const MessageHeader h = t.decoder.decode(input);
  if (h.outcome == MessageHeader::Outcome::invalid && h.detail.empty()) __builtin_trap();
  if (h.outcome == MessageHeader::Outcome::ok && h.kind == MessageKind::status) return 0;
  if (h.outcome == MessageHeader::Outcome::invalid) return 0;
  const auto kind = h.outcome == MessageHeader::Outcome::ok && h.kind == MessageKind::event
                        ? fieldhub::normalize::Normalizer::Kind::event
                        : fieldhub::normalize::Normalizer::Kind::telemetry;
  const auto env =
      t.normalizer.normalize_device("lock-3b-med", kind, input, fieldhub::model::from_micros(0),
                                    {"ws:lock-3b-med", "websocket", "ws:lock-3b-med"});
  // Not JSON: refused whole, with a reason. Whatever is kept belongs to the device.
  if (h.outcome == MessageHeader::Outcome::not_json &&
      (!env.readings.empty() || !env.events.empty() || env.dead_letters.empty())) {
    __builtin_trap();
  }
  for (const auto& r : env.readings) {
    if (r.device_id != "lock-3b-med" || r.metric.empty()) __builtin_trap();
  }
  for (const auto& e : env.events) {
    if (e.device_id != "lock-3b-med" || e.type.empty()) __builtin_trap();
  }
  for (const auto& d : env.dead_letters) {
    if (d.reason.empty()) __builtin_trap();
  }
  return 0;
}
