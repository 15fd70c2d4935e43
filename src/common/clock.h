// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>

#include "model/time.h"

namespace fieldhub::common {

// The time source every time-dependent component takes instead of calling system_clock itself,
// so tests drive staleness, skew checks, batching and backoff with a FakeClock.
// Thread-safe: now() may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual model::Timestamp now() const = 0;
};

class SystemClock final : public Clock {
 public:
  model::Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
  }
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(model::Timestamp start) : now_us_(model::to_micros(start)) {}
  model::Timestamp now() const override { return model::from_micros(now_us_.load()); }
  void advance(std::chrono::microseconds d) { now_us_ += d.count(); }
  void set(model::Timestamp t) { now_us_ = model::to_micros(t); }

 private:
  std::atomic<std::int64_t> now_us_;
};

}  // namespace fieldhub::common
