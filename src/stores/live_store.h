// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/event.h"
#include "model/reading.h"
#include "model/time.h"

namespace fieldhub::stores {

struct LatestValue {
  model::Value value;
  std::string unit;
  model::Timestamp ts;  // ordering time (Reading::ts())
  model::Timestamp received_ts;
  model::Quality quality = model::Quality::good;
  std::string quality_reason;
};

struct DeviceState {
  std::string device_id;
  std::optional<model::Timestamp> last_seen;  // receipt time of the newest record of any kind
  std::map<std::string, LatestValue, std::less<>> metrics;
};

// What each device is doing right now: the hot path. Written by the pipeline, read by the API
// and the live feed. Called on the io executor only; implementations need not be thread-safe.
// After apply() returns, get() reflects every reading that is newer than what was held: a
// reading older than the held value of its metric never replaces it (out-of-order data never
// regresses "latest"), but still counts as the device being seen.
class LiveStore {
 public:
  virtual ~LiveStore() = default;
  // Returns how many readings became the latest value of their metric.
  virtual std::size_t apply(std::span<const model::Reading> readings) = 0;
  // Records that the device was heard from (events and any other traffic).
  virtual void touch(std::string_view device_id, model::Timestamp received_ts) = 0;
  virtual std::optional<DeviceState> get(std::string_view device_id) const = 0;
  virtual std::vector<DeviceState> all() const = 0;
};

}  // namespace fieldhub::stores
