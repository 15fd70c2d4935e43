// SPDX-License-Identifier: Apache-2.0
#pragma once

// The client's timing rules as pure values (no timers), so they are unit-tested without sleeping:
// reconnect backoff and keepalive. The client feeds them steady-clock time points.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace fieldhub::mqtt {

// Delay before each reconnect attempt: min, 2·min, 4·min … capped at max, each with ±20 % jitter
// so a fleet of clients does not reconnect in lockstep after a broker restart. reset() after a
// successful connect starts again at min.
class ReconnectBackoff {
 public:
  ReconnectBackoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint64_t seed)
      : min_(std::max(min, std::chrono::milliseconds{1})),
        max_(std::max(max, min_)),
        base_(min_),
        rng_(static_cast<std::uint_fast32_t>(seed ^ (seed >> 32))) {}

  std::chrono::milliseconds next() {
    const double u = static_cast<double>(rng_() - std::minstd_rand::min()) /
                     static_cast<double>(std::minstd_rand::max() - std::minstd_rand::min());
    const double factor = 0.8 + 0.4 * u;
    const auto delay = std::chrono::milliseconds{
        static_cast<std::int64_t>(static_cast<double>(base_.count()) * factor)};
    base_ = std::min(base_ * 2, max_);
    return delay;
  }
  void reset() { base_ = min_; }
  // The un-jittered delay next() will use.
  std::chrono::milliseconds base() const { return base_; }

 private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds base_;
  std::minstd_rand rng_;
};

// MQTT keepalive from the client's side (3.1.2.10). A PINGREQ goes out when we have written
// nothing for one keepalive (the broker needs a packet from us within 1.5 × keepalive), and once
// when we have received nothing for one keepalive (a pure publisher of QoS 0 would otherwise never
// hear from a dead broker). The link is dead when nothing at all arrived for 1.5 × keepalive —
// except while reading is paused for backpressure, when unread bytes are not silence.
// A keepalive of zero disables both.
class KeepaliveSchedule {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  enum class Action { none, send_ping, dead };

  explicit KeepaliveSchedule(std::chrono::milliseconds keepalive) : keepalive_(keepalive) {}

  void reset(time_point now) {
    last_sent_ = last_received_ = now;
    pinged_since_receive_ = false;
  }
  void on_sent(time_point now) { last_sent_ = now; }
  void on_received(time_point now) {
    last_received_ = now;
    pinged_since_receive_ = false;
  }
  // Reading resumes after a pause: the silence while paused was ours, not the broker's.
  void on_resume(time_point now) { on_received(now); }

  // What to do at `now`. send_ping means the caller writes a PINGREQ now (and calls on_sent).
  Action check(time_point now, bool reading_paused) {
    if (keepalive_.count() <= 0) return Action::none;
    if (!reading_paused && now - last_received_ >= dead_after()) return Action::dead;
    if (now - last_sent_ >= keepalive_) {
      pinged_since_receive_ = true;
      return Action::send_ping;
    }
    if (!pinged_since_receive_ && now - last_received_ >= keepalive_) {
      pinged_since_receive_ = true;
      return Action::send_ping;
    }
    return Action::none;
  }

  // When check() next has something to do (time_point::max() if keepalive is off).
  time_point next_deadline(bool reading_paused) const {
    if (keepalive_.count() <= 0) return time_point::max();
    time_point t = last_sent_ + keepalive_;
    if (!pinged_since_receive_) t = std::min(t, last_received_ + keepalive_);
    if (!reading_paused) t = std::min(t, last_received_ + dead_after());
    return t;
  }

 private:
  std::chrono::milliseconds dead_after() const { return keepalive_ * 3 / 2; }

  std::chrono::milliseconds keepalive_;
  time_point last_sent_{};
  time_point last_received_{};
  bool pinged_since_receive_ = false;
};

}  // namespace fieldhub::mqtt
