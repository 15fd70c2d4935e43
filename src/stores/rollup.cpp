// SPDX-License-Identifier: Apache-2.0
#include "stores/rollup.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace fieldhub::stores {

std::optional<double> rollup_value(double value, model::ValueType type, model::Quality quality,
                                   std::int64_t ts_us) {
  if (type != model::ValueType::number || quality == model::Quality::bad) return std::nullopt;
  if (!std::isfinite(value) || ts_us < min_rollup_ts_us) return std::nullopt;
  return value;
}

std::optional<double> rollup_value(const model::Reading& r) {
  if (model::type_of(r.value) != model::ValueType::number) return std::nullopt;
  return rollup_value(std::get<double>(r.value), model::ValueType::number, r.quality,
                      model::to_micros(r.ts()));
}

void Aggregate::merge(const Aggregate& o) {
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  sum += o.sum;
  count += o.count;
  if (o.first_ts < first_ts) {
    first_ts = o.first_ts;
    first = o.first;
  }
  if (o.last_ts > last_ts) {
    last_ts = o.last_ts;
    last = o.last;
  }
}

std::size_t RollupBatch::KeyHash::operator()(const Key& k) const noexcept {
  const auto h = std::hash<std::int64_t>{};
  return h(k.series_id) * 1'000'003U ^ h(k.bucket);
}

void RollupBatch::clear() {
  for (auto& t : tiers_) {
    t.rows.clear();
    t.index.clear();
  }
}

void RollupBatch::add(std::int64_t series_id, std::int64_t ts_us, double value) {
  for (const Resolution r : {Resolution::minute, Resolution::hour}) {
    Tier& t = tiers_[tier(r)];
    const Key key{series_id, bucket_start(ts_us, bucket_width_us(r))};
    const auto [it, inserted] = t.index.try_emplace(key, t.rows.size());
    if (inserted) {
      t.rows.push_back({key.series_id, key.bucket, Aggregate::of(ts_us, value)});
    } else {
      t.rows[it->second].agg.merge(Aggregate::of(ts_us, value));
    }
  }
}

void fill_deltas(std::span<RollupBucket> buckets, std::optional<double> previous_last) {
  for (auto& b : buckets) {
    b.delta.reset();
    if (previous_last && b.last >= *previous_last) b.delta = b.last - *previous_last;
    previous_last = b.last;
  }
}

}  // namespace fieldhub::stores
