// SPDX-License-Identifier: Apache-2.0
#include "health/subscription_watchdog.h"

#include <gtest/gtest.h>

#include <string>

#include "common/clock.h"

namespace fieldhub::health {
namespace {

using namespace std::chrono_literals;
using model::Timestamp;

const Timestamp t0 = model::from_micros(1'790'000'000'000'000);

// Built with append, not "literal" + std::string: GCC 12 warns falsely on that (-Wrestrict, PR
// 105329).
std::string named(std::string_view prefix, int i, std::string_view suffix = {}) {
  std::string s(prefix);
  s += std::to_string(i);
  s += suffix;
  return s;
}

Activity act(std::chrono::milliseconds interval, std::optional<Timestamp> last_seen,
             bool expected_silent = false) {
  return Activity{interval, last_seen, expected_silent};
}

TEST(SubscriptionSilent, MostActiveDevicesSilentForSeveralIntervals) {
  std::vector<Activity> a;
  for (int i = 0; i < 10; ++i) a.push_back(act(1s, t0));
  EXPECT_FALSE(subscription_silent(a, t0 + 3s));  // exactly 3 intervals: not yet
  EXPECT_TRUE(subscription_silent(a, t0 + 3s + 1ms));
}

TEST(SubscriptionSilent, AFewSilentDevicesAreNotASilentSubscription) {
  std::vector<Activity> a;
  for (int i = 0; i < 10; ++i) a.push_back(act(1s, i < 7 ? t0 : t0 + 9s));
  EXPECT_FALSE(subscription_silent(a, t0 + 10s));  // 7 of 10 silent, 8 needed
  a[7].last_seen = t0;
  EXPECT_TRUE(subscription_silent(a, t0 + 10s));
}

TEST(SubscriptionSilent, OnlyTheMostActiveAreWatched) {
  // Slow devices (10 min) are quiet for 5 s as a matter of course; the fast ones decide.
  std::vector<Activity> a;
  for (int i = 0; i < 50; ++i) a.push_back(act(10min, t0));
  for (int i = 0; i < 10; ++i) a.push_back(act(1s, t0 + 5s));
  EXPECT_FALSE(subscription_silent(a, t0 + 6s));
  for (int i = 50; i < 60; ++i) a[i].last_seen = t0;
  EXPECT_TRUE(subscription_silent(a, t0 + 6s));
}

TEST(SubscriptionSilent, DevicesExpectedToBeSilentAreLeftOut) {
  std::vector<Activity> a;
  for (int i = 0; i < 10; ++i) a.push_back(act(1s, t0, /*expected_silent=*/true));  // last wills
  for (int i = 0; i < 5; ++i) a.push_back(act(2s, t0 + 9s));
  EXPECT_FALSE(subscription_silent(a, t0 + 10s));
}

TEST(SubscriptionSilent, NoVerdictWithoutEnoughKnownDevices) {
  std::vector<Activity> a = {act(1s, t0), act(1s, t0), act(0ms, t0), act(1s, std::nullopt)};
  EXPECT_FALSE(subscription_silent(a, t0 + 1h));
  EXPECT_FALSE(subscription_silent({}, t0));
}

TEST(SubscriptionSilent, LongDeadDevicesSayNothingAboutTheSubscription) {
  std::vector<Activity> a;
  for (int i = 0; i < 10; ++i) a.push_back(act(1s, t0));
  for (int i = 0; i < 10; ++i) a.push_back(act(2s, t0 + 2h));
  // The 1 s devices died two hours ago; the 2 s devices are fine.
  EXPECT_FALSE(subscription_silent(a, t0 + 2h + 3s));
}

TEST(SubscriptionWatchdog, FiresOnceThenCoolsDownAndNeverWhileTheLinkIsDown) {
  common::FakeClock clock(t0);
  HealthTracker tracker(clock);
  for (int i = 0; i < 20; ++i) tracker.register_device(named("m", i), 2s, "broker");
  tracker.link_up("broker");
  SubscriptionWatchdog watchdog("broker", {}, 30s);

  // Traffic flows for a minute: no alarm.
  for (int s = 0; s < 60; s += 2) {
    for (int i = 0; i < 20; ++i) tracker.observe(named("m", i), clock.now());
    clock.advance(2s);
    tracker.advance(clock.now());
    EXPECT_FALSE(watchdog.check(tracker, clock.now()));
  }
  // The subscription dies silently: the session is up, nothing arrives.
  int fired_at = -1;
  for (int s = 0; s < 60; ++s) {
    clock.advance(1s);
    tracker.advance(clock.now());
    if (watchdog.check(tracker, clock.now())) {
      fired_at = s;
      break;
    }
  }
  EXPECT_GE(fired_at, 4);  // after 3 intervals of 2 s from the last report (2 s before)
  EXPECT_LE(fired_at, 5);
  EXPECT_EQ(watchdog.fired(), 1u);
  // Quiet during the cool-down (30 s), then again if still silent.
  clock.advance(29s);
  EXPECT_FALSE(watchdog.check(tracker, clock.now()));
  clock.advance(2s);
  EXPECT_TRUE(watchdog.check(tracker, clock.now()));
  // With the link down it is the reconnect's job, not the watchdog's.
  tracker.link_down("broker", "keepalive timeout");
  clock.advance(1min);
  EXPECT_FALSE(watchdog.check(tracker, clock.now()));
  EXPECT_EQ(watchdog.fired(), 2u);
}

}  // namespace
}  // namespace fieldhub::health
