// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "health/health_tracker.h"
#include "model/time.h"

namespace fieldhub::health {

// Pure: true when most of the most active devices on a link have been silent for several of
// their expected intervals — the sign of a subscription that silently stopped delivering.
struct WatchdogOptions {
  std::size_t most_active = 10;       // how many of the shortest-interval devices to watch
  std::size_t min_devices = 3;        // fewer candidates than this: no verdict
  double silent_fraction = 0.8;       // share of the watched devices that must be silent
  double silent_after_intervals = 3;  // "silent" = no data for this many expected intervals
};
bool subscription_silent(const std::vector<Activity>& activity, model::Timestamp now,
                         const WatchdogOptions& options = {});

// Stateful watchdog over one link (the broker): check() on a timer; true means "resubscribe now".
// After a true it stays quiet for a cool-down (the watched intervals × silent_after_intervals,
// at least `min_cooldown`), so a resubscription gets the chance to bring traffic back. It never
// fires while the link is down: reconnecting is the adapter's job then. io thread only.
class SubscriptionWatchdog {
 public:
  SubscriptionWatchdog(std::string link, WatchdogOptions options = {},
                       std::chrono::milliseconds min_cooldown = std::chrono::seconds(30));
  bool check(const HealthTracker& tracker, model::Timestamp now);
  std::uint64_t fired() const { return fired_; }

 private:
  std::string link_;
  WatchdogOptions options_;
  std::chrono::milliseconds min_cooldown_;
  std::optional<model::Timestamp> quiet_until_;
  std::uint64_t fired_ = 0;
};

}  // namespace fieldhub::health
