// SPDX-License-Identifier: Apache-2.0
#include "health/health_tracker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

struct Change {
  std::string device;
  State from;
  State to;
  std::string reason;
  Timestamp at;
};

// A tracker on a fake clock that records every transition. Thresholds are the defaults:
// stale after 2 intervals + 1 s grace, offline after 5 (push) or 3 (polled) intervals + 1 s.
class HealthTrackerTest : public ::testing::Test {
 protected:
  HealthTrackerTest() : HealthTrackerTest(Thresholds{}) {}
  explicit HealthTrackerTest(Thresholds t) : clock_(t0), tracker_(clock_, t) {
    tracker_.on_change([this](const HealthChange& c) {
      changes_.push_back({std::string(c.device), c.from, c.to, std::string(c.reason), c.at});
    });
  }

  // Moves the fake clock and runs the timer, as the io thread's health tick would.
  std::size_t tick(std::chrono::microseconds d) {
    clock_.advance(d);
    return tracker_.advance(clock_.now());
  }
  void see(std::string_view id) { ASSERT_TRUE(tracker_.observe(id, clock_.now())); }
  State state(std::string_view id) { return tracker_.device(id)->state; }
  std::string reason(std::string_view id) { return tracker_.device(id)->reason; }
  std::vector<Change> take() { return std::exchange(changes_, {}); }

  common::FakeClock clock_;
  HealthTracker tracker_;
  std::vector<Change> changes_;
};

TEST_F(HealthTrackerTest, NewDeviceIsUnknownThenOnlineOnFirstData) {
  tracker_.register_device("m1", 10s, "broker");
  EXPECT_EQ(state("m1"), State::unknown);
  EXPECT_FALSE(tracker_.device("m1")->last_seen.has_value());
  tick(3s);
  see("m1");
  auto c = take();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].device, "m1");
  EXPECT_EQ(c[0].from, State::unknown);
  EXPECT_EQ(c[0].to, State::online);
  EXPECT_EQ(c[0].reason, "data");
  EXPECT_EQ(c[0].at, t0 + 3s);
  EXPECT_EQ(tracker_.device("m1")->since, t0 + 3s);
  EXPECT_EQ(tracker_.device("m1")->last_seen, t0 + 3s);
}

TEST_F(HealthTrackerTest, OnlineToStaleToOfflineAtTheThresholds) {
  tracker_.register_device("m1", 10s, "broker");
  see("m1");
  take();
  // Stale after 2 × 10 s + 1 s grace: not a microsecond before.
  EXPECT_EQ(tick(21s - 1us), 0u);
  EXPECT_EQ(state("m1"), State::online);
  EXPECT_EQ(tick(1us), 1u);
  EXPECT_EQ(state("m1"), State::stale);
  EXPECT_EQ(reason("m1"), "timeout");
  // Offline after 5 × 10 s + 1 s after the last data.
  EXPECT_EQ(tick(30s - 1us), 0u);
  EXPECT_EQ(tick(1us), 1u);
  EXPECT_EQ(state("m1"), State::offline);
  auto c = take();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].from, State::online);
  EXPECT_EQ(c[0].to, State::stale);
  EXPECT_EQ(c[0].at, t0 + 21s);
  EXPECT_EQ(c[1].from, State::stale);
  EXPECT_EQ(c[1].to, State::offline);
  EXPECT_EQ(c[1].reason, "timeout");
  EXPECT_EQ(c[1].at, t0 + 51s);
  // Nothing more happens to an offline device until it reports.
  EXPECT_EQ(tick(1h), 0u);
}

TEST_F(HealthTrackerTest, StaleAndOfflineReturnToOnlineOnFreshData) {
  tracker_.register_device("m1", 10s, "broker");
  see("m1");
  tick(25s);
  ASSERT_EQ(state("m1"), State::stale);
  see("m1");
  EXPECT_EQ(state("m1"), State::online);
  tick(60s);
  ASSERT_EQ(state("m1"), State::offline);
  see("m1");
  EXPECT_EQ(state("m1"), State::online);
  EXPECT_EQ(reason("m1"), "data");
}

TEST_F(HealthTrackerTest, NeverSeenDeviceGoesOfflineAfterTheOfflineThreshold) {
  tracker_.register_device("m1", 10s, "broker");
  EXPECT_EQ(tick(51s - 1us), 0u);
  EXPECT_EQ(state("m1"), State::unknown);
  tick(1us);
  EXPECT_EQ(state("m1"), State::offline);
  EXPECT_EQ(reason("m1"), "never seen");
}

TEST_F(HealthTrackerTest, LongOverdueOnlineDeviceGoesStraightToOffline) {
  tracker_.register_device("m1", 10s, "broker");
  see("m1");
  take();
  clock_.advance(10min);  // the timer did not run (a stalled loop)
  tracker_.advance(clock_.now());
  auto c = take();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].from, State::online);
  EXPECT_EQ(c[0].to, State::offline);
}

TEST_F(HealthTrackerTest, JitterAroundTheIntervalNeverFlaps) {
  tracker_.register_device("m1", 10s, "broker");
  see("m1");
  take();
  // Reports arrive up to 90 % late (19 s gaps against a 21 s stale threshold), ticking every
  // 250 ms: no transition at all.
  const std::chrono::microseconds gaps[] = {10s, 19s, 3s, 19s, 12s, 18s, 7s, 19s};
  for (int round = 0; round < 20; ++round) {
    for (auto gap : gaps) {
      for (auto t = 0us; t < gap; t += 250ms) tick(250ms);
      see("m1");
    }
  }
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(state("m1"), State::online);
}

TEST_F(HealthTrackerTest, FlappingDeviceNeedsConsecutiveOnTimeReportsToBeOnline) {
  tracker_.register_device("ble1", 10s, "ble");
  see("ble1");
  // Three timeouts within the flap window (20 intervals = 200 s).
  for (int i = 0; i < 2; ++i) {
    tick(22s);
    ASSERT_EQ(state("ble1"), State::stale);
    see("ble1");
    ASSERT_EQ(state("ble1"), State::online);
  }
  tick(22s);
  ASSERT_EQ(state("ble1"), State::stale);
  take();
  // Now it is flapping: the next report does not bring it back, nor does the second…
  see("ble1");
  EXPECT_EQ(state("ble1"), State::stale);
  EXPECT_EQ(reason("ble1"), "recovering");
  tick(10s);
  see("ble1");
  EXPECT_EQ(state("ble1"), State::stale);
  // …a late one restarts the count…
  tick(25s);
  see("ble1");
  EXPECT_EQ(state("ble1"), State::stale);
  tick(10s);
  see("ble1");
  EXPECT_EQ(state("ble1"), State::stale);
  // …the third consecutive on-time report does.
  tick(10s);
  see("ble1");
  EXPECT_EQ(state("ble1"), State::online);
  // On probation: one more timeout soon makes it flapping again.
  tick(22s);
  see("ble1");
  EXPECT_EQ(state("ble1"), State::stale);
  EXPECT_EQ(reason("ble1"), "recovering");
}

TEST_F(HealthTrackerTest, TimeoutsFarApartAreNotFlapping) {
  tracker_.register_device("m1", 10s, "broker");
  see("m1");
  for (int i = 0; i < 5; ++i) {
    tick(22s);
    ASSERT_EQ(state("m1"), State::stale);
    see("m1");
    ASSERT_EQ(state("m1"), State::online) << i;
    for (int k = 0; k < 30; ++k) {  // 300 s of steady reports: longer than the flap window
      tick(10s);
      see("m1");
    }
  }
}

TEST_F(HealthTrackerTest, LearnsTheIntervalFromTheReportingRhythm) {
  tracker_.register_device("m1", 0ms, "broker");
  see("m1");
  EXPECT_FALSE(tracker_.device("m1")->interval_learned);
  EXPECT_EQ(tracker_.device("m1")->expected_interval, 5min);  // conservative until learned
  for (int i = 0; i < 4; ++i) {
    tick(30s);
    see("m1");
  }
  auto h = tracker_.device("m1");
  EXPECT_TRUE(h->interval_learned);
  EXPECT_FALSE(h->interval_declared);
  EXPECT_EQ(h->expected_interval, 30s);
  // One outlier gap (a lost report) and a burst of records from one message do not move it.
  tick(95s);
  see("m1");
  see("m1");
  see("m1");
  EXPECT_EQ(tracker_.device("m1")->expected_interval, 30s);
  // And the learned interval drives staleness: stale after 2 × 30 s + 1 s.
  take();
  EXPECT_EQ(tick(61s - 1us), 0u);
  EXPECT_EQ(tick(1us), 1u);
  EXPECT_EQ(state("m1"), State::stale);
}

TEST_F(HealthTrackerTest, LearnedIntervalIsBounded) {
  tracker_.register_device("fast", 0ms, "broker");
  see("fast");
  for (int i = 0; i < 5; ++i) {
    tick(100ms);
    see("fast");
  }
  EXPECT_EQ(tracker_.device("fast")->expected_interval, 1s);  // min_learned_interval
}

TEST_F(HealthTrackerTest, SlowButHealthyDeviceIsNeverStaleEarly) {
  // One report per 10 min, declared. Ticking every second for hours.
  tracker_.register_device("slow", 10min, "broker");
  see("slow");
  take();
  for (int report = 0; report < 6; ++report) {
    for (int s = 0; s < 600; ++s) tick(1s);
    see("slow");
  }
  // A late report (19 min) still does not make it stale.
  for (int s = 0; s < 19 * 60; ++s) tick(1s);
  see("slow");
  EXPECT_TRUE(take().empty());
  // Only after 2 × 10 min + 1 s of silence.
  for (int s = 0; s < 20 * 60; ++s) tick(1s);
  EXPECT_EQ(state("slow"), State::online);
  tick(1s);
  EXPECT_EQ(state("slow"), State::stale);
}

TEST_F(HealthTrackerTest, LastWillIsOfflineAtOnceAndFreshDataBringsItBack) {
  tracker_.register_device("m1", 10min, "broker");
  see("m1");
  take();
  tick(1s);
  tracker_.device_offline("m1", "last will");
  auto c = take();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].to, State::offline);
  EXPECT_EQ(c[0].reason, "last will");
  EXPECT_EQ(c[0].at, t0 + 1s);
  tick(5s);
  tracker_.device_online("m1");
  EXPECT_EQ(state("m1"), State::online);
}

TEST_F(HealthTrackerTest, LinkDownMarksEveryDeviceBehindItOfflineAtOnce) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    ids.push_back(named("m", i));
    tracker_.register_device(ids.back(), 10min, "broker");
    see(ids.back());
  }
  tracker_.register_device("plc", 1s, "modbus:10.0.0.5:502", {}, Cadence::polled);
  see("plc");
  tracker_.link_up("broker");
  take();
  tick(2s);
  see("plc");
  tracker_.link_down("broker", "connection reset");
  auto c = take();
  ASSERT_EQ(c.size(), 100u);  // in this one call, not one by one after their 10 min timeouts
  for (const auto& ch : c) {
    EXPECT_EQ(ch.to, State::offline);
    EXPECT_EQ(ch.reason, "link down");
    EXPECT_EQ(ch.at, t0 + 2s);
  }
  EXPECT_EQ(state("plc"), State::online);
  auto link = tracker_.link("broker");
  EXPECT_EQ(link->state, LinkState::down);
  EXPECT_EQ(link->reason, "connection reset");
  EXPECT_EQ(link->since, t0 + 2s);
  EXPECT_EQ(tracker_.summary().count(State::offline), 100u);

  // Data still arriving from the dead link (buffered) does not bring a device back.
  see("m1");
  EXPECT_EQ(state("m1"), State::offline);
  // Link up changes no device…
  tick(1s);
  tracker_.link_up("broker");
  EXPECT_EQ(state("m1"), State::offline);
  EXPECT_EQ(reason("m1"), "link down");
  EXPECT_TRUE(take().empty());
  // …each returns on its own fresh data.
  see("m1");
  EXPECT_EQ(state("m1"), State::online);
  EXPECT_EQ(state("m2"), State::offline);
}

TEST_F(HealthTrackerTest, DeviceBehindAGatewayWithItsLinkDownIsNeverOnline) {
  // Register the child first: the gateway reference resolves when the gateway registers.
  tracker_.register_device("meter-7", 1min, "broker", "gw-1");
  tracker_.register_device("gw-1", 1min, "lora:gw-1");
  see("gw-1");
  see("meter-7");
  EXPECT_EQ(tracker_.device("meter-7")->gateway, "gw-1");
  take();
  tracker_.link_down("lora:gw-1", "uplink lost");
  auto c = take();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].device, "gw-1");
  EXPECT_EQ(c[0].reason, "link down");
  EXPECT_EQ(c[1].device, "meter-7");
  EXPECT_EQ(c[1].reason, "gateway offline");
  // The child keeps "reporting" (a relay replaying its cache): still not online.
  for (int i = 0; i < 5; ++i) {
    tick(1min);
    see("meter-7");
    EXPECT_EQ(state("meter-7"), State::offline);
  }
  // The gateway's link and the gateway come back; the child needs its own fresh data.
  tracker_.link_up("lora:gw-1");
  see("gw-1");
  EXPECT_EQ(state("gw-1"), State::online);
  EXPECT_EQ(state("meter-7"), State::offline);
  see("meter-7");
  EXPECT_EQ(state("meter-7"), State::online);
  // The gateway's own last will takes its devices with it.
  take();
  tracker_.device_offline("gw-1", "last will");
  c = take();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].device, "meter-7");
  EXPECT_EQ(c[1].reason, "gateway offline");
}

TEST_F(HealthTrackerTest, GatewayTimeoutAloneDoesNotBlockItsDevices) {
  // A gateway whose own heartbeat is late while its devices' data flows through it is evidently
  // relaying: its devices stay online on their own data.
  tracker_.register_device("gw-1", 10s, "broker");
  tracker_.register_device("meter-7", 10s, "broker", "gw-1");
  see("gw-1");
  for (int i = 0; i < 10; ++i) {
    tick(10s);
    see("meter-7");
  }
  EXPECT_EQ(state("gw-1"), State::offline);
  EXPECT_EQ(state("meter-7"), State::online);
}

TEST_F(HealthTrackerTest, PolledDeviceOfflineAfterThreeFailedCycles) {
  tracker_.register_device("plc", 1s, "modbus:10.0.0.5:502", {}, Cadence::polled);
  see("plc");
  take();
  tick(1s);
  tracker_.cycle_failed("plc", "timeout");
  EXPECT_EQ(state("plc"), State::online);
  tick(1s);
  tracker_.cycle_failed("plc", "timeout");
  EXPECT_EQ(state("plc"), State::stale);
  tick(1s);
  tracker_.cycle_failed("plc", "timeout");
  EXPECT_EQ(state("plc"), State::offline);
  EXPECT_EQ(reason("plc"), "timeout");
  // Back on the first good cycle.
  tick(1s);
  see("plc");
  EXPECT_EQ(state("plc"), State::online);
  // A good cycle resets the count: failures that are not consecutive change nothing.
  for (int i = 0; i < 10; ++i) {
    tick(1s);
    tracker_.cycle_failed("plc", "crc");
    tick(1s);
    see("plc");
  }
  EXPECT_EQ(state("plc"), State::online);
}

TEST_F(HealthTrackerTest, PolledDeviceGoesOfflineByTimeWithinFiveSeconds) {
  // RELIABILITY.md: poll 1 s, slave gone → offline ≤ 5 s, even if the poller reports nothing.
  tracker_.register_device("plc", 1s, "modbus:10.0.0.5:502", {}, Cadence::polled);
  see("plc");
  take();
  for (int i = 0; i < 20; ++i) tick(250ms);
  EXPECT_EQ(state("plc"), State::offline);
  auto c = take();
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].to, State::stale);
  EXPECT_EQ(c[0].at, t0 + 3s);
  EXPECT_EQ(c[1].to, State::offline);
  EXPECT_EQ(c[1].at, t0 + 4s);
}

TEST_F(HealthTrackerTest, ReRegistrationChangesTheInterval) {
  tracker_.register_device("m1", 1min, "broker");
  see("m1");
  tracker_.register_device("m1", 10s, "broker");
  EXPECT_EQ(tracker_.device_count(), 1u);
  tick(21s);
  EXPECT_EQ(state("m1"), State::stale);
}

TEST_F(HealthTrackerTest, ReRegistrationMovesTheDeviceToItsNewLink) {
  tracker_.register_device("m1", 1min, "modbus:10.0.0.5:502");
  tracker_.register_device("m1", 1min, "modbus:10.0.0.6:502");
  see("m1");
  tracker_.link_down("modbus:10.0.0.5:502", "connection refused");
  EXPECT_EQ(state("m1"), State::online);
  EXPECT_EQ(tracker_.link("modbus:10.0.0.5:502")->devices, 0u);
  tracker_.link_down("modbus:10.0.0.6:502", "connection refused");
  EXPECT_EQ(state("m1"), State::offline);
}

TEST_F(HealthTrackerTest, OutagesDoNotTeachTheInterval) {
  tracker_.register_device("m1", 0ms, "broker");
  for (int i = 0; i < 3; ++i) {
    see("m1");
    tick(30s);
  }
  see("m1");
  ASSERT_EQ(tracker_.device("m1")->expected_interval, 30s);
  // Two long link outages: the gaps across them are not the device's rhythm.
  for (int i = 0; i < 2; ++i) {
    tracker_.link_down("broker", "keepalive timeout");
    tick(10min);
    tracker_.link_up("broker");
    see("m1");
  }
  EXPECT_EQ(tracker_.device("m1")->expected_interval, 30s);
}

TEST_F(HealthTrackerTest, UnknownIdsAreIgnored) {
  EXPECT_FALSE(tracker_.observe("nobody", clock_.now()));
  tracker_.device_offline("nobody", "last will");
  tracker_.cycle_failed("nobody", "timeout");
  EXPECT_FALSE(tracker_.device("nobody").has_value());
  EXPECT_TRUE(take().empty());
}

TEST_F(HealthTrackerTest, SummaryCountsAndLinkCounters) {
  tracker_.register_device("a", 10s, "broker");
  tracker_.register_device("b", 10s, "broker");
  tracker_.register_device("c", 10s, "modbus:10.0.0.5:502");
  tracker_.register_link("ws:client-1");
  see("a");
  see("c");
  tracker_.device_offline("c", "last will");
  tracker_.link_up("broker");
  tracker_.link_reconnect_attempt("modbus:10.0.0.5:502");
  tracker_.link_reconnect_attempt("modbus:10.0.0.5:502");
  tracker_.link_error("modbus:10.0.0.5:502", "timeout");
  tracker_.link_error("modbus:10.0.0.5:502", "crc");
  tracker_.link_error("modbus:10.0.0.5:502", "timeout");
  tracker_.link_rtt("broker", 4ms);
  tracker_.link_rtt("broker", 12ms);

  auto s = tracker_.summary();
  EXPECT_EQ(s.count(State::online), 1u);
  EXPECT_EQ(s.count(State::unknown), 1u);
  EXPECT_EQ(s.count(State::offline), 1u);
  EXPECT_EQ(s.count(State::stale), 0u);
  ASSERT_EQ(s.links.size(), 3u);
  auto broker = tracker_.link("broker");
  EXPECT_EQ(broker->state, LinkState::up);
  EXPECT_EQ(broker->devices, 2u);
  EXPECT_EQ(broker->rtt.samples, 2u);
  EXPECT_EQ(broker->rtt.last, 12ms);
  EXPECT_EQ(broker->rtt.min, 4ms);
  EXPECT_EQ(broker->rtt.max, 12ms);
  EXPECT_EQ(broker->rtt.mean, 5ms);
  auto modbus = tracker_.link("modbus:10.0.0.5:502");
  EXPECT_EQ(modbus->state, LinkState::unknown);
  EXPECT_EQ(modbus->reconnect_attempts, 2u);
  ASSERT_EQ(modbus->errors.size(), 2u);
  EXPECT_EQ(modbus->errors[0], (std::pair<std::string, std::uint64_t>{"timeout", 2}));
  EXPECT_EQ(modbus->errors[1], (std::pair<std::string, std::uint64_t>{"crc", 1}));
  EXPECT_EQ(tracker_.link("ws:client-1")->devices, 0u);
  EXPECT_EQ(tracker_.devices(State::offline).size(), 1u);
  EXPECT_EQ(tracker_.devices(State::offline)[0].id, "c");
  EXPECT_EQ(tracker_.devices().size(), 3u);
}

TEST_F(HealthTrackerTest, LinkChangesAreReported) {
  std::vector<std::string> seen;
  tracker_.on_link_change([&](const LinkChange& c) {
    seen.push_back(std::string(c.link) + ":" + std::string(to_string(c.from)) + "->" +
                   std::string(to_string(c.to)) + ":" + std::string(c.reason));
  });
  tracker_.link_up("broker");
  tracker_.link_up("broker");
  tracker_.link_down("broker", "keepalive timeout");
  tracker_.link_down("broker", "connection refused");
  tracker_.link_up("broker");
  EXPECT_EQ(seen,
            (std::vector<std::string>{"broker:unknown->up:", "broker:up->down:keepalive timeout",
                                      "broker:down->up:"}));
  EXPECT_EQ(tracker_.link("broker")->downs, 1u);
}

TEST_F(HealthTrackerTest, SnapshotRestoreKeepsStatesAndMovesOverdueDevicesOn) {
  tracker_.register_device("online-fresh", 10min, "broker");
  tracker_.register_device("online-overdue", 10s, "broker");
  tracker_.register_device("will", 10s, "broker");
  tracker_.register_device("learned", 0ms, "broker");
  tracker_.register_device("never", 10min, "broker");
  tracker_.register_device("odd\tid\\x", 10s, "broker");
  for (int i = 0; i < 5; ++i) {
    if (i > 0) tick(20s);
    for (const char* id : {"online-fresh", "online-overdue", "will", "learned", "odd\tid\\x"}) {
      see(id);
    }
  }
  tracker_.device_offline("will", "last will");
  std::string snap = tracker_.snapshot();

  // A restart 2 minutes later.
  common::FakeClock clock2(clock_.now() + 2min);
  HealthTracker restored(clock2);
  std::vector<Change> changes;
  restored.on_change([&](const HealthChange& c) {
    changes.push_back({std::string(c.device), c.from, c.to, std::string(c.reason), c.at});
  });
  for (const char* id : {"online-fresh", "online-overdue", "will", "learned", "never", "new"}) {
    restored.register_device(id,
                             id == std::string("learned")        ? 0ms
                             : id == std::string("online-fresh") ? 10min
                                                                 : 10s,
                             "broker");
  }
  restored.register_device("odd\tid\\x", 10s, "broker");
  auto r = restored.restore(snap + "d\tgone\tonline\t1\t1\t0\t0\t0\tdata\nd\tbroken line\n",
                            clock2.now());
  EXPECT_EQ(r.restored, 5u);
  EXPECT_EQ(r.unknown_devices, 1u);
  EXPECT_EQ(r.malformed_lines, 1u);

  // Before the first advance: states as they were, no "unknown" storm, no change events.
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(restored.device("online-fresh")->state, State::online);
  EXPECT_EQ(restored.device("online-fresh")->since, tracker_.device("online-fresh")->since);
  EXPECT_EQ(restored.device("online-fresh")->last_seen, tracker_.device("online-fresh")->last_seen);
  EXPECT_EQ(restored.device("will")->state, State::offline);
  EXPECT_EQ(restored.device("will")->reason, "last will");
  EXPECT_EQ(restored.device("learned")->expected_interval, 20s);
  EXPECT_TRUE(restored.device("learned")->interval_learned);
  EXPECT_EQ(restored.device("odd\tid\\x")->state, State::online);
  EXPECT_EQ(restored.device("never")->state, State::unknown);
  EXPECT_EQ(restored.summary().count(State::unknown), 2u);  // "never" and "new"

  // The first advance moves the overdue ones on, and only them: no false "online".
  restored.advance(clock2.now());
  EXPECT_EQ(restored.device("online-fresh")->state, State::online);
  EXPECT_EQ(restored.device("online-overdue")->state, State::offline);
  EXPECT_EQ(restored.device("learned")->state, State::offline);
  EXPECT_EQ(restored.device("odd\tid\\x")->state, State::offline);
  EXPECT_EQ(restored.device("will")->state, State::offline);
  for (const auto& c : changes) EXPECT_EQ(c.from, State::online) << c.device;

  // The restored tracker's own snapshot carries the moved-on states.
  std::string again = restored.snapshot();
  EXPECT_NE(again.find("online-fresh\tonline\t"), std::string::npos);
  EXPECT_NE(again.find("online-overdue\toffline\t"), std::string::npos);
  EXPECT_NE(again.find("odd\\tid\\\\x\toffline\t"), std::string::npos);
}

TEST_F(HealthTrackerTest, RestoreRefusesAnotherFormat) {
  tracker_.register_device("m1", 10s, "broker");
  auto r = tracker_.restore("something else\nd\tm1\tonline\t1\t1\t0\t0\t0\tdata\n", clock_.now());
  EXPECT_EQ(r.restored, 0u);
  EXPECT_EQ(r.malformed_lines, 1u);
  EXPECT_EQ(state("m1"), State::unknown);
}

TEST_F(HealthTrackerTest, ManyDevicesStayOnlineWhileReporting) {
  // The lazy deadline heap: steady reporters never fire, whatever the phase.
  for (int i = 0; i < 1000; ++i) tracker_.register_device(named("d", i), 5s, "broker");
  for (int step = 0; step < 200; ++step) {
    for (int i = step % 5; i < 1000; i += 5) see(named("d", i));
    tick(1s);
  }
  EXPECT_EQ(tracker_.summary().count(State::online), 1000u);
  ASSERT_TRUE(tracker_.next_deadline().has_value());
  EXPECT_GT(*tracker_.next_deadline(), clock_.now());
}

}  // namespace
}  // namespace fieldhub::health
