// SPDX-License-Identifier: Apache-2.0
#include "stores/memory/memory_live_store.h"

#include <utility>

namespace fieldhub::stores {

namespace {

void see(DeviceState& d, model::Timestamp received_ts) {
  if (!d.last_seen || *d.last_seen < received_ts) d.last_seen = received_ts;
}

LatestValue latest_from(const model::Reading& r) {
  return LatestValue{r.value, r.unit, r.ts(), r.received_ts, r.quality, r.quality_reason};
}

}  // namespace

DeviceState& MemoryLiveStore::device(std::string_view device_id) {
  if (auto it = devices_.find(device_id); it != devices_.end()) return it->second;
  std::string key(device_id);
  DeviceState state;
  state.device_id = key;
  return devices_.emplace(std::move(key), std::move(state)).first->second;
}

std::size_t MemoryLiveStore::apply(std::span<const model::Reading> readings) {
  std::size_t became_latest = 0;
  for (const auto& r : readings) {
    DeviceState& d = device(r.device_id);
    see(d, r.received_ts);
    const model::Timestamp ts = r.ts();
    auto it = d.metrics.find(r.metric);
    if (it == d.metrics.end()) {
      d.metrics.emplace_hint(it, r.metric, latest_from(r));
      ++became_latest;
      continue;
    }
    LatestValue& held = it->second;
    // Out-of-order data never regresses "latest"; at the same ts the later receipt is the
    // correction (a device re-sending a value it fixed), so it wins.
    const bool newer = ts > held.ts || (ts == held.ts && r.received_ts >= held.received_ts);
    if (!newer) continue;
    held.value = r.value;
    held.unit = r.unit;
    held.ts = ts;
    held.received_ts = r.received_ts;
    held.quality = r.quality;
    held.quality_reason = r.quality_reason;
    ++became_latest;
  }
  return became_latest;
}

void MemoryLiveStore::touch(std::string_view device_id, model::Timestamp received_ts) {
  see(device(device_id), received_ts);
}

std::optional<DeviceState> MemoryLiveStore::get(std::string_view device_id) const {
  if (auto it = devices_.find(device_id); it != devices_.end()) return it->second;
  return std::nullopt;
}

std::vector<DeviceState> MemoryLiveStore::all() const {
  std::vector<DeviceState> out;
  out.reserve(devices_.size());
  for (const auto& [id, state] : devices_) out.push_back(state);
  return out;
}

}  // namespace fieldhub::stores
