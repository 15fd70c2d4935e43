// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/envelope.h"
#include "pipeline/spool.h"
#include "stores/history_store.h"

namespace fieldhub::pipeline {

// The history writer's wait between attempts: `first`, doubled after each failure up to `max`,
// back to `first` after a success. And its breaker: once `breaker_after` messages in a row were
// dead-lettered as refused with no message stored between them, refusals are no longer taken for
// bad data but held as an outage (history degraded, retried with backoff); after `breaker_hold`
// of that, one more may be dead-lettered, and a stored message closes the breaker again.
struct HistoryBackoff {
  std::chrono::milliseconds first{100};
  std::chrono::milliseconds max{5000};
  std::size_t breaker_after = 100;
  std::chrono::milliseconds breaker_hold{60000};
};

// Makes envelopes durable in the HistoryStore, in arrival order, on its own thread. Group commit:
// whatever queued while one transaction ran goes into the next (up to batch_max readings), so a
// trickle commits at once and a flood commits in large batches.
//
// Without a spool, push() is called on the io executor and after a batch is committed, on_durable
// runs on the io executor with that batch's acknowledgement tokens (in order) and the store's
// counts. With a spool, the writer takes synced records from the spool in sequence order instead
// (the spool has released their acknowledgements already), reports each commit to it, and
// on_durable gets the counts only.
//
// A failed write is retried with capped backoff and never skipped: nothing queued is lost, and
// nothing is acknowledged before it is durable. The store says what kind of failure it was
// (stores::WriteFailure). An outage (down, hung, read-only, full, no privilege, anything unknown)
// is only ever retried. A refusal of the data itself, split_after times in a row, is looked into:
// an empty probe transaction tells a store that is down (the probe fails too: keep retrying) from
// one that refuses something in the batch (the probe commits): then the batch is split in halves
// at once, and a half that fails is probed and split again without waiting, so one envelope the
// store can never take is found in about 2·log2(batch) transactions. If the store refuses that
// envelope once more, it is replaced by a dead letter "history_rejected" that describes it, and
// the rest flows on. A breaker (HistoryBackoff) stops a run of such dead letters from emptying
// the stream into them when the store refuses everything under a data error.
class HistoryWriter {
 public:
  struct Completion {
    std::vector<AckToken> acks;
    stores::WriteResult result;
  };

  static constexpr int split_after = 3;
  // History is shown degraded (healthy() false) after split_after outage failures in a row or a
  // failed probe, once writes have kept failing this long (a hung store: one attempt lasts a
  // timeout), or while the breaker holds. A batch the store refuses as data while it is up is
  // bisected without that: one bad record is not an outage.
  static constexpr std::chrono::seconds degraded_after{2};
  // While idle the writer wakes this often to run the store's upkeep when due
  // (HistoryStore::maintain_if_due: retention must not wait for traffic).
  static constexpr std::chrono::milliseconds idle_tick{100};

  using Backoff = HistoryBackoff;

  // `spool` null: the writer keeps its own queue fed by push().
  HistoryWriter(boost::asio::any_io_executor io, stores::HistoryStore& store,
                const config::PipelineConfig& config, common::Metrics& metrics,
                std::function<void(Completion&&)> on_durable, Spool* spool = nullptr,
                Backoff backoff = {});
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  void start();
  // Writes what is queued (giving up only if the store keeps failing for drain_deadline), then
  // joins the thread. Completions of the final batches are still posted to the io executor.
  void stop(std::chrono::milliseconds drain_deadline = std::chrono::seconds{10});
  void push(Envelope&& env);
  std::size_t depth() const { return depth_.load(std::memory_order_relaxed); }
  // Readings in the envelopes of depth() (0 with a spool: the spool counts its own).
  std::size_t readings_depth() const { return readings_depth_.load(std::memory_order_relaxed); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  // Why history became degraded (the store's message), empty while healthy.
  std::string degraded_reason() const;

 private:
  void run();
  void run_from_spool();
  std::vector<Envelope> take_batch(std::unique_lock<std::mutex>& lock);
  // Writes the batch (bisecting a part that keeps failing); nullopt when stopping and the
  // drain deadline passed first.
  std::optional<stores::WriteResult> write_batch(std::span<const Envelope> batch);
  // One write; a success marks history healthy again unless `probing`.
  stores::WriteResult attempt(std::span<const Envelope> part, bool probing = false);
  // Waits `backoff` unless stopping; false when stopping and the drain deadline has passed.
  bool wait_to_retry(std::chrono::milliseconds backoff);
  // An empty transaction: true when the store is up and takes it; false marks history degraded.
  bool probe();
  void set_degraded(const std::string& error);
  // Adds a committed part of the batch to `total`; a stored message closes the breaker.
  void stored(stores::WriteResult& total, const stores::WriteResult& r);
  // True while the breaker holds data refusals as an outage (opening it when the run of dead
  // letters has reached breaker_after).
  bool breaker_holds();
  Envelope rejected(const Envelope& env, const std::string& error) const;
  bool stopping() const;

  boost::asio::any_io_executor io_;
  stores::HistoryStore& store_;
  const config::PipelineConfig& config_;
  std::function<void(Completion&&)> on_durable_;
  Spool* spool_;
  Backoff backoff_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Envelope> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::atomic<std::size_t> depth_{0};
  std::atomic<std::size_t> readings_depth_{0};
  std::atomic<bool> healthy_{true};
  // When the current run of failed writes began (the start of its first attempt); writer thread.
  std::chrono::steady_clock::time_point failing_since_{};
  // Messages dead-lettered in a row with none stored between them, and since when the breaker
  // holds (epoch: closed); writer thread.
  std::size_t rejected_in_a_row_ = 0;
  std::chrono::steady_clock::time_point breaker_since_{};
  mutable std::mutex reason_mutex_;
  std::string degraded_reason_;
  std::thread thread_;

  common::Gauge& depth_gauge_;
  common::Gauge& healthy_gauge_;
  common::Histogram& commit_seconds_;
  common::Counter& write_errors_;
  common::Counter& batches_;
  common::Counter& rejected_;
  common::Counter& breaker_trips_;
};

}  // namespace fieldhub::pipeline
