// SPDX-License-Identifier: Apache-2.0
#pragma once

// How live state looks in Redis and on the pub/sub channel. No I/O: pure functions, unit-tested.
//
// Hash per device, key "<prefix>dev:<device_id>":
//   last_seen   = receipt time of the newest record, microseconds since the epoch (decimal)
//   m:<metric>  =
//   {"ts":<µs>,"rts":<µs>,"v":<number|bool|string|null>,"u":"kWh","q":"good","qr":".."}
// "ts" and "rts" come first so the Lua script compares them with one string.match (no JSON
// decode on the hot path). "qr" is left out when empty.
//
// Update frame on "<prefix>updates" (one per writer round, at most max_frame_bytes):
//   {"src":"<instance id>","dev":[{"id":"meter-1","seen":<µs>,"m":{"energy":<metric json>}}]}

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stores/live_store.h"

namespace fieldhub::stores::redis_codec {

constexpr std::string_view last_seen_field = "last_seen";
constexpr std::string_view metric_field_prefix = "m:";

// What one device's hash or frame entry says: merged into the mirror by newest-wins.
struct DeviceUpdate {
  std::string device_id;
  std::optional<model::Timestamp> last_seen;
  std::vector<std::pair<std::string, LatestValue>> metrics;
};

// Appends the metric's JSON (the hash field's value) to out.
void encode_metric(const LatestValue& v, std::string& out);
std::optional<LatestValue> decode_metric(std::string_view json);

// Builds a DeviceUpdate from HGETALL's field/value pairs; unknown or undecodable fields are
// skipped (and counted in *skipped when given).
DeviceUpdate decode_hash(std::string device_id,
                         const std::vector<std::pair<std::string, std::string>>& fields,
                         std::size_t* skipped = nullptr);

// Writes update frames. begin_device()/metric() append to the current frame; take() returns
// the finished frames. A frame is closed once it passes max_bytes (a single device larger than
// that still goes out whole, in a frame of its own).
class FrameWriter {
 public:
  FrameWriter(std::string_view source, std::size_t max_bytes);
  void device(std::string_view device_id, std::optional<model::Timestamp> last_seen,
              std::span<const std::pair<std::string_view, std::string_view>> metric_json);
  std::vector<std::string> take();

 private:
  void close_frame();
  std::string source_;
  std::size_t max_bytes_;
  std::string current_;
  std::vector<std::string> frames_;
};

struct Frame {
  std::string source;
  std::vector<DeviceUpdate> devices;
};
// nullopt for a frame that is not one of ours (malformed JSON, wrong shape).
std::optional<Frame> decode_frame(std::string_view json);

}  // namespace fieldhub::stores::redis_codec
