// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_timing.h"

#include <gtest/gtest.h>

namespace fieldhub::mqtt {
namespace {

using namespace std::chrono_literals;
using Action = KeepaliveSchedule::Action;

TEST(ReconnectBackoff, DoublesToTheCapWithTwentyPercentJitter) {
  ReconnectBackoff b(500ms, 30s, 42);
  const std::chrono::milliseconds bases[] = {500ms, 1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
  for (auto base : bases) {
    const auto d = b.next();
    EXPECT_GE(d.count(), base.count() * 8 / 10) << base.count();
    EXPECT_LE(d.count(), base.count() * 12 / 10) << base.count();
  }
  b.reset();
  EXPECT_EQ(b.base(), 500ms);
  const auto d = b.next();
  EXPECT_GE(d, 400ms);
  EXPECT_LE(d, 600ms);
}

TEST(ReconnectBackoff, JitterSpreadsClients) {
  // Two clients seeded differently do not retry in lockstep, and jitter covers most of ±20 %.
  ReconnectBackoff a(1000ms, 1000ms, 1);
  ReconnectBackoff b(1000ms, 1000ms, 2);
  int differ = 0;
  std::int64_t lo = 2000, hi = 0;
  for (int i = 0; i < 200; ++i) {
    const auto x = a.next().count();
    if (x != b.next().count()) ++differ;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GT(differ, 150);
  EXPECT_LT(lo, 850);
  EXPECT_GT(hi, 1150);
}

TEST(ReconnectBackoff, MaxBelowMinIsClampedToMin) {
  ReconnectBackoff b(2s, 1s, 7);
  b.next();
  EXPECT_EQ(b.base(), 2s);
}

TEST(Keepalive, PingAfterWriteSilence) {
  KeepaliveSchedule k(10s);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  k.on_received(t0 + 9s);
  EXPECT_EQ(k.check(t0 + 9s, false), Action::none);
  EXPECT_EQ(k.next_deadline(false), t0 + 10s);
  EXPECT_EQ(k.check(t0 + 10s, false), Action::send_ping);
  k.on_sent(t0 + 10s);
  EXPECT_EQ(k.check(t0 + 11s, false), Action::none);
}

TEST(Keepalive, NoFalsePingWhileWritingAndReceiving) {
  KeepaliveSchedule k(10s);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  for (int s = 1; s < 100; ++s) {
    k.on_sent(t0 + std::chrono::seconds{s});
    k.on_received(t0 + std::chrono::seconds{s});
    EXPECT_EQ(k.check(t0 + std::chrono::seconds{s}, false), Action::none);
  }
}

TEST(Keepalive, PublisherThatNeverHearsBackPingsOnceThenDeclaresDead) {
  KeepaliveSchedule k(10s);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  k.on_sent(t0 + 9s);  // QoS 0 publishing keeps the write side busy
  EXPECT_EQ(k.check(t0 + 10s, false), Action::send_ping);  // read silence
  k.on_sent(t0 + 10s);
  k.on_sent(t0 + 12s);
  EXPECT_EQ(k.check(t0 + 12s, false), Action::none);  // only one ping per silence
  EXPECT_EQ(k.next_deadline(false), t0 + 15s);
  EXPECT_EQ(k.check(t0 + 15s, false), Action::dead);  // 1.5 × keepalive
}

TEST(Keepalive, AnyPacketClearsTheDeadline) {
  KeepaliveSchedule k(10s);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  EXPECT_EQ(k.check(t0 + 10s, false), Action::send_ping);
  k.on_sent(t0 + 10s);
  k.on_received(t0 + 10100ms);  // PINGRESP
  EXPECT_EQ(k.check(t0 + 15s, false), Action::none);
  EXPECT_EQ(k.next_deadline(false), t0 + 20s);
}

TEST(Keepalive, PausedReadingIsNotSilence) {
  KeepaliveSchedule k(10s);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  EXPECT_EQ(k.check(t0 + 10s, true), Action::send_ping);
  k.on_sent(t0 + 10s);
  EXPECT_EQ(k.check(t0 + 16s, true), Action::none);       // would be dead if reading
  EXPECT_EQ(k.check(t0 + 20s, true), Action::send_ping);  // still ping the broker
  k.on_sent(t0 + 20s);
  k.on_resume(t0 + 25s);
  EXPECT_EQ(k.check(t0 + 26s, false), Action::none);
  EXPECT_EQ(k.check(t0 + 40s, false), Action::dead);
}

TEST(Keepalive, ZeroDisables) {
  KeepaliveSchedule k(0ms);
  const KeepaliveSchedule::time_point t0{};
  k.reset(t0);
  EXPECT_EQ(k.check(t0 + 1000s, false), Action::none);
  EXPECT_EQ(k.next_deadline(false), KeepaliveSchedule::time_point::max());
}

}  // namespace
}  // namespace fieldhub::mqtt
