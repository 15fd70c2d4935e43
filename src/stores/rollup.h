// SPDX-License-Identifier: Apache-2.0
#pragma once

// Rollup arithmetic shared by the history stores: which readings are aggregated, how a reading
// finds its bucket, and how partial aggregates of one bucket merge. The stores keep the same merge
// in SQL (ON CONFLICT DO UPDATE) for buckets already stored; the two must agree.

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/reading.h"
#include "stores/history_store.h"

namespace fieldhub::stores {

constexpr std::int64_t minute_us = 60'000'000;
constexpr std::int64_t hour_us = 3'600'000'000;
// Readings older than this (about 283,000 years BC) are not aggregated: a bucket start below it
// could leave the range of a 64-bit microsecond count.
constexpr std::int64_t min_rollup_ts_us = -9'000'000'000'000'000'000;

constexpr std::int64_t bucket_width_us(Resolution r) {
  return r == Resolution::minute ? minute_us : hour_us;
}

// The start of the bucket holding ts, rounding toward minus infinity.
constexpr std::int64_t bucket_start(std::int64_t ts_us, std::int64_t width_us) {
  const std::int64_t rem = ((ts_us % width_us) + width_us) % width_us;
  return ts_us - rem;
}

// The value a reading adds to the rollups, or nullopt when it adds nothing: not a number, not
// finite, bad quality, or a time before min_rollup_ts_us.
std::optional<double> rollup_value(const model::Reading& r);
std::optional<double> rollup_value(double value, model::ValueType type, model::Quality quality,
                                   std::int64_t ts_us);

// A bucket's aggregate. Merging is associative and commutative, so a late reading or a bucket
// written in two batches gives the same result as one pass over all readings.
struct Aggregate {
  double min = 0;
  double max = 0;
  double sum = 0;
  std::int64_t count = 0;
  std::int64_t first_ts = 0;
  double first = 0;
  std::int64_t last_ts = 0;
  double last = 0;

  static Aggregate of(std::int64_t ts_us, double v) { return {v, v, v, 1, ts_us, v, ts_us, v}; }
  void merge(const Aggregate& o);
};

// The rollups of the readings one batch stored, per tier, keyed by (series id, bucket start).
class RollupBatch {
 public:
  struct Row {
    std::int64_t series_id;
    std::int64_t bucket;
    Aggregate agg;
  };

  void clear();
  void add(std::int64_t series_id, std::int64_t ts_us, double value);
  const std::vector<Row>& rows(Resolution r) const { return tiers_[tier(r)].rows; }
  bool empty() const { return tiers_[0].rows.empty(); }

 private:
  struct Key {
    std::int64_t series_id;
    std::int64_t bucket;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Tier {
    std::vector<Row> rows;
    std::unordered_map<Key, std::size_t, KeyHash> index;
  };
  static std::size_t tier(Resolution r) { return r == Resolution::minute ? 0 : 1; }
  Tier tiers_[2];
};

// Fills each bucket's delta from its last and the previous bucket's (previous_last for the first
// one); a negative difference is a meter reset and leaves delta empty.
void fill_deltas(std::span<RollupBucket> buckets, std::optional<double> previous_last);

}  // namespace fieldhub::stores
