// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/event.h"
#include "model/reading.h"
#include "model/time.h"
#include "pipeline/envelope.h"

namespace fieldhub::stores {

// Why a write failed, as the store judges it from its own error (see
// docs/decisions/0015-store-refusals.md).
enum class WriteFailure {
  // The store cannot take writes now, whatever they hold: down, unreachable, hung, full,
  // read-only, no privilege, out of connections, or a failure the store does not know. The
  // writer holds the data and retries; the default, because a held record can still be written
  // later while a dead-lettered one is out of the history for good.
  outage,
  // The store refuses something in the batch itself (a value it cannot represent, a constraint):
  // the writer looks for the record and dead-letters it alone.
  refused_data,
};

// What one write made durable.
struct WriteResult {
  bool ok = false;
  std::string error;                            // set when !ok: nothing of the batch was written
  WriteFailure failure = WriteFailure::outage;  // when !ok
  std::uint64_t readings_stored = 0;
  std::uint64_t readings_duplicate = 0;  // same device, metric and time already stored
  std::uint64_t events_stored = 0;
  std::uint64_t events_duplicate = 0;
  std::uint64_t envelopes_duplicate = 0;  // redelivered messages recognised by replay digest
  std::uint64_t dead_letters_stored = 0;
};

struct ReadingQuery {
  std::string device_id;
  std::string metric;
  model::Timestamp from;
  model::Timestamp to;  // exclusive
  std::size_t limit = 10000;
};

// The rollup tiers: fixed buckets aligned to the UTC epoch (a minute or an hour, no time zones).
enum class Resolution { minute, hour };

struct RollupQuery {
  std::string device_id;
  std::string metric;
  Resolution resolution = Resolution::minute;
  model::Timestamp from;  // buckets whose start is in [from, to)
  model::Timestamp to;    // exclusive
  std::size_t limit = 10000;
};

// One bucket of one series, over the readings stored in it that are numbers, finite and not of
// bad quality (booleans, text and bad readings are not aggregated). Only readings actually stored
// count: a repeat of a stored (device, metric, time) adds nothing.
struct RollupBucket {
  model::Timestamp start;  // bucket start, UTC
  double min = 0;
  double max = 0;
  double sum = 0;
  std::uint64_t count = 0;
  model::Timestamp first_ts;  // the oldest reading in the bucket and its value
  double first = 0;
  model::Timestamp last_ts;  // the newest reading in the bucket and its value
  double last = 0;
  // last - the last of the nearest earlier bucket of the series (for a counter, the consumption
  // since then); nullopt when there is no earlier bucket or the difference is negative (a meter
  // reset or replacement is not a negative consumption).
  std::optional<double> delta;

  double mean() const { return sum / static_cast<double>(count); }
};

// How long each tier is kept; zero keeps it forever.
struct Retention {
  std::chrono::microseconds raw{0};
  std::chrono::microseconds minute{0};
  std::chrono::microseconds hour{0};
};

struct EventQuery {
  std::optional<std::string> device_id;
  std::optional<std::string> type;
  model::Timestamp from;
  model::Timestamp to;       // exclusive
  std::size_t limit = 1000;  // newest first
};

struct DeadLetterQuery {
  std::optional<std::string> reason;
  std::size_t limit = 100;  // newest first
};

// Durable history for trends, reports and audits. Besides the raw readings it keeps per-minute
// and per-hour rollups (RollupBucket) of every series, maintained in the same transaction as the
// readings they summarise, so they are exactly as durable, and merged correctly for late data.
// Threads: write() is called from the history writer thread only; the queries may be called from
// any one other thread concurrently with write(). Implementations keep a connection per role.
// write() is all or nothing: when it returns ok, every record of the batch is durable (committed,
// fsync'd as the store's durability setting says) and a repeat of a stored record was counted as a
// duplicate instead of stored twice; when !ok, nothing of the batch is visible.
class HistoryStore {
 public:
  virtual ~HistoryStore() = default;
  virtual WriteResult write(std::span<const pipeline::Envelope> batch) = 0;
  virtual std::vector<model::Reading> readings(const ReadingQuery& q) = 0;  // oldest first
  virtual std::vector<RollupBucket> rollups(const RollupQuery& q) = 0;      // oldest first
  virtual std::vector<model::Event> events(const EventQuery& q) = 0;
  virtual std::vector<pipeline::DeadLetter> dead_letters(const DeadLetterQuery& q) = 0;
  // The store's periodic upkeep (retention of every tier, partitions ahead) if it is due by the
  // store's own schedule and clock. write() runs it too; the history writer also calls this while
  // idle, so that a system without traffic still prunes. Writer thread only; a failure is logged
  // and tried again when due.
  virtual void maintain_if_due() {}
};

}  // namespace fieldhub::stores
