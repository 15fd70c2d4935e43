// SPDX-License-Identifier: Apache-2.0
#pragma once

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

// What one write made durable.
struct WriteResult {
  bool ok = false;
  std::string error;  // set when !ok: nothing of the batch was written
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

// Durable history for trends, reports and audits.
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
  virtual std::vector<model::Event> events(const EventQuery& q) = 0;
  virtual std::vector<pipeline::DeadLetter> dead_letters(const DeadLetterQuery& q) = 0;
};

}  // namespace fieldhub::stores
