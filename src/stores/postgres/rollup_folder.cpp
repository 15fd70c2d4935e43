// SPDX-License-Identifier: Apache-2.0
#include "stores/postgres/rollup_folder.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "stores/rollup.h"

namespace fieldhub::stores {

namespace {

using pg::Params;
using pg::Status;

// The start of the hour holding a minute bucket, in SQL (floor, also before 1970).
constexpr std::string_view hour_of_bucket =
    "bucket - ((bucket % 3600000000) + 3600000000) % 3600000000";

// Rows per retention DELETE of a rollup tier (one short implicit transaction each).
constexpr std::int64_t rollup_retention_chunk = 10000;

// Merges the minute rows of `moved`, grouped by `bucket` (an SQL expression), into a tier's
// stored buckets: Aggregate::merge in SQL (SET sees the row as it was before the update). A
// group's first and last values are those of its rows with the oldest first_ts and the newest
// last_ts, found by joining back on (series, time): unique, since each such time is one stored
// reading's. (A hash join; array_agg(... ORDER BY) sorts every group apart, and costs more.)
// In (series, bucket) order, so every merge locks the buckets it updates in the same order.
std::string tier_merge(std::string_view table, std::string_view bucket) {
  return std::string("INSERT INTO ")
      .append(table)
      .append(
          " AS r SELECT g.series_id, g.b, g.mn, g.mx, g.sm, g.c, g.f, fv.first_value, g.l, "
          "lv.last_value FROM (SELECT series_id, ")
      .append(bucket)
      .append(
          " AS b, min(value_min) AS mn, max(value_max) AS mx, sum(value_sum) AS sm, "
          "sum(value_count)::bigint AS c, min(first_ts) AS f, max(last_ts) AS l FROM moved "
          "GROUP BY series_id, b) g "
          "JOIN moved fv ON fv.series_id = g.series_id AND fv.first_ts = g.f "
          "JOIN moved lv ON lv.series_id = g.series_id AND lv.last_ts = g.l "
          "ORDER BY g.series_id, g.b "
          "ON CONFLICT (series_id, bucket) DO UPDATE SET "
          "value_min = least(r.value_min, excluded.value_min), "
          "value_max = greatest(r.value_max, excluded.value_max), "
          "value_sum = r.value_sum + excluded.value_sum, "
          "value_count = r.value_count + excluded.value_count, "
          "first_ts = least(r.first_ts, excluded.first_ts), "
          "first_value = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_value "
          "ELSE r.first_value END, "
          "last_ts = greatest(r.last_ts, excluded.last_ts), "
          "last_value = CASE WHEN excluded.last_ts > r.last_ts THEN excluded.last_value "
          "ELSE r.last_value END");
}

std::string_view rollup_table(Resolution r) {
  return r == Resolution::minute ? "rollup_1m" : "rollup_1h";
}

}  // namespace

std::string rollup_merge_statement(std::string_view source) {
  return std::string("WITH moved AS (")
      .append(source)
      .append("), minutes AS (")
      .append(tier_merge("rollup_1m", "bucket"))
      .append("), hours AS (")
      .append(tier_merge("rollup_1h", hour_of_bucket))
      .append(") SELECT count(*) FROM moved");
}

RollupFolder::RollupFolder(RollupFolderOptions options)
    : options_(std::move(options)),
      fold_seconds_((options_.metrics ? *options_.metrics : own_metrics_)
                        .histogram("fieldhub_history_fold_seconds",
                                   "Time to fold the pending PostgreSQL rollup rows into the "
                                   "minute and hour buckets, per fold")),
      fold_errors_((options_.metrics ? *options_.metrics : own_metrics_)
                       .counter("fieldhub_history_fold_errors_total",
                                "PostgreSQL rollup folds that failed (retried with backoff)")),
      folded_rows_((options_.metrics ? *options_.metrics : own_metrics_)
                       .counter("fieldhub_history_folded_rows_total",
                                "Pending PostgreSQL rollup rows folded into the buckets")),
      // One slice: at most slice_rows pending rows that no other folder holds, by their
      // physical address (a TID scan), deleted and merged in one statement.
      slice_sql_(rollup_merge_statement(
          "DELETE FROM rollup_pending WHERE ctid = ANY(ARRAY(SELECT ctid FROM rollup_pending "
          "LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING *")) {
  last_expire_ = now();
}

RollupFolder::~RollupFolder() {
  stop();
}

void RollupFolder::start() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void RollupFolder::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RollupFolder::nudge() {
  if (options_.interval.count() > 0) return;
  {
    std::lock_guard lock(wake_mutex_);
    nudged_ = true;
  }
  wake_.notify_all();
}

model::Timestamp RollupFolder::now() const {
  return options_.clock != nullptr ? options_.clock->now() : system_clock_.now();
}

void RollupFolder::run() {
  constexpr std::chrono::milliseconds first_backoff{1000};
  constexpr std::chrono::milliseconds max_backoff{60000};
  std::chrono::milliseconds backoff{0};  // zero: the last round succeeded
  std::unique_lock lock(wake_mutex_);
  for (;;) {
    const auto woken = [this] { return stopping_ || nudged_; };
    if (backoff.count() > 0) {
      wake_.wait_for(lock, backoff, [this] { return stopping_; });
    } else if (options_.interval.count() > 0) {
      wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
    } else {
      wake_.wait(lock, woken);
    }
    if (stopping_) return;
    nudged_ = false;
    lock.unlock();
    Status s = fold();
    if (s.ok()) {
      std::lock_guard conn(conn_mutex_);
      if (now() - last_expire_ >= options_.maintenance_interval) s = expire_locked();
    }
    lock.lock();
    if (s.ok()) {
      backoff = std::chrono::milliseconds{0};
    } else {
      backoff = std::clamp(backoff * 2, first_backoff, max_backoff);
      common::log(common::LogLevel::warn, "postgres_history",
                  "rollup fold: " + s.message() + " (again in " +
                      std::to_string(backoff.count() / 1000) + " s; the pending rows stay)");
    }
  }
}

pg::Status RollupFolder::connect_locked() {
  if (conn_.healthy()) return {};
  auto c = pg::Connection::open({options_.url, "fieldhub-folder", options_.timeout});
  if (!c.ok()) return c.status();
  conn_ = std::move(c.value());
  return {};
}

pg::Status RollupFolder::fold() {
  std::lock_guard lock(conn_mutex_);
  const auto start = std::chrono::steady_clock::now();
  Status s = fold_locked();
  if (s.ok()) {
    fold_seconds_.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  } else {
    fold_errors_.inc();
  }
  return s;
}

pg::Status RollupFolder::fold_locked() {
  if (Status s = connect_locked(); !s.ok()) return s;
  for (;;) {
    auto folded = conn_.query(slice_sql_, Params().int8(options_.slice_rows));
    if (!folded.ok()) return folded.status();
    const std::int64_t rows = folded.value().int8(0, 0);
    folded_rows_.inc(static_cast<std::uint64_t>(rows));
    if (rows < options_.slice_rows) return {};
    std::lock_guard wake(wake_mutex_);
    if (stopping_) return {};
  }
}

pg::Status RollupFolder::expire() {
  std::lock_guard lock(conn_mutex_);
  return expire_locked();
}

pg::Status RollupFolder::expire_locked() {
  if (Status s = connect_locked(); !s.ok()) return s;
  const model::Timestamp t = now();
  const std::int64_t now_us = model::to_micros(t);
  for (const auto& [r, keep] : {std::pair{Resolution::minute, options_.retention.minute},
                                std::pair{Resolution::hour, options_.retention.hour}}) {
    if (keep.count() <= 0) continue;
    // A bucket goes once all of it is older than the retention. Through the primary key of each
    // series, in chunks: no scan of the table, no long transaction.
    const std::int64_t cutoff = now_us - keep.count() - bucket_width_us(r) + 1;
    const std::string table(rollup_table(r));
    const std::string sql = "DELETE FROM " + table +
                            " WHERE (series_id, bucket) IN (SELECT s.id, x.bucket FROM series s "
                            "CROSS JOIN LATERAL (SELECT bucket FROM " +
                            table +
                            " WHERE series_id = s.id AND bucket < $1 ORDER BY bucket LIMIT $2) x "
                            "LIMIT $2)";
    for (;;) {
      auto deleted = conn_.query(sql, Params().int8(cutoff).int8(rollup_retention_chunk));
      if (!deleted.ok()) return deleted.status();
      if (deleted.value().affected() < static_cast<std::uint64_t>(rollup_retention_chunk)) break;
    }
  }
  last_expire_ = t;
  return {};
}

}  // namespace fieldhub::stores
