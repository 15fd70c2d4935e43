// SPDX-License-Identifier: Apache-2.0
#include "health/subscription_watchdog.h"

#include <algorithm>
#include <cmath>

namespace fieldhub::health {

namespace {

struct Verdict {
  bool silent = false;
  std::chrono::milliseconds longest_watched{0};
};

Verdict judge(const std::vector<Activity>& activity, model::Timestamp now,
              const WatchdogOptions& o) {
  // Candidates: devices with a known rhythm that have reported and are not expected to be silent
  // (their own last will, a dead link or gateway). A device silent for far longer than the
  // watchdog looks at died on its own long ago and says nothing about the subscription.
  constexpr double forget_after_factor = 20.0;
  std::vector<const Activity*> candidates;
  for (const Activity& a : activity) {
    if (a.expected_silent || !a.last_seen || a.expected_interval.count() <= 0) continue;
    auto silent_for = now - *a.last_seen;
    if (silent_for > a.expected_interval * forget_after_factor * o.silent_after_intervals) continue;
    candidates.push_back(&a);
  }
  Verdict v;
  if (candidates.size() < std::max<std::size_t>(o.min_devices, 1)) return v;
  std::size_t watched = std::min(o.most_active, candidates.size());
  std::partial_sort(candidates.begin(), candidates.begin() + watched, candidates.end(),
                    [](const Activity* a, const Activity* b) {
                      return a->expected_interval < b->expected_interval;
                    });
  std::size_t silent = 0;
  for (std::size_t i = 0; i < watched; ++i) {
    const Activity& a = *candidates[i];
    v.longest_watched = std::max(v.longest_watched, a.expected_interval);
    auto limit = std::chrono::duration_cast<std::chrono::microseconds>(a.expected_interval *
                                                                       o.silent_after_intervals);
    if (now - *a.last_seen > limit) ++silent;
  }
  auto needed =
      static_cast<std::size_t>(std::ceil(o.silent_fraction * static_cast<double>(watched)));
  v.silent = silent >= std::max<std::size_t>(needed, 1);
  return v;
}

}  // namespace

bool subscription_silent(const std::vector<Activity>& activity, model::Timestamp now,
                         const WatchdogOptions& options) {
  return judge(activity, now, options).silent;
}

SubscriptionWatchdog::SubscriptionWatchdog(std::string link, WatchdogOptions options,
                                           std::chrono::milliseconds min_cooldown)
    : link_(std::move(link)), options_(options), min_cooldown_(min_cooldown) {}

bool SubscriptionWatchdog::check(const HealthTracker& tracker, model::Timestamp now) {
  if (tracker.link_state(link_) != LinkState::up) return false;
  if (quiet_until_ && now < *quiet_until_) return false;
  Verdict v = judge(tracker.activity(link_), now, options_);
  if (!v.silent) return false;
  auto cooldown = std::max(min_cooldown_, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              v.longest_watched * options_.silent_after_intervals));
  quiet_until_ = now + std::chrono::duration_cast<std::chrono::microseconds>(cooldown);
  ++fired_;
  return true;
}

}  // namespace fieldhub::health
