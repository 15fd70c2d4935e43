// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fieldhub::common {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count. Lock-free; any thread.
class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down (queue depth, connected clients). Lock-free; any thread.
class Gauge {
 public:
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Latency distribution in seconds with fixed buckets (Prometheus histogram). Lock-free.
class Histogram {
 public:
  static constexpr std::size_t bucket_count = 14;
  // Upper bounds in seconds: 0.5 ms ... 10 s.
  static constexpr double bounds[bucket_count] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  void observe(double seconds);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Upper bound of the bucket holding quantile q (0..1); +inf past the last bucket.
  double quantile_upper_bound(double q) const;

 private:
  friend class Metrics;
  std::atomic<std::uint64_t> buckets_[bucket_count + 1] = {};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

// The process's metric registry, rendered as Prometheus text on GET /metrics. Registration
// (counter(), gauge(), histogram()) takes a lock and returns a reference that stays valid for the
// registry's life: components register once at construction and then update lock-free.
// The same name and labels always return the same metric.
class Metrics {
 public:
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels = {});

  // Value of a registered counter, or 0 if none (tests and the API's summaries).
  std::uint64_t counter_value(std::string_view name, const Labels& labels = {}) const;

  std::string render_prometheus() const;

 private:
  enum class Type { counter, gauge, histogram };
  struct Entry {
    std::string name;
    std::string help;
    Type type;
    std::string labels;  // rendered: a="x",b="y"
    Counter counter;
    Gauge gauge;
    Histogram histogram;
  };
  Entry& find_or_add(std::string_view name, std::string_view help, Type type, const Labels& labels);

  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // deque: references stay valid as it grows
};

}  // namespace fieldhub::common
