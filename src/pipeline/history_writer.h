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
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/envelope.h"
#include "pipeline/spool.h"
#include "stores/history_store.h"

namespace fieldhub::pipeline {

// The history writer's wait between attempts: `first`, doubled after each failure up to `max`,
// back to `first` after a success.
struct HistoryBackoff {
  std::chrono::milliseconds first{100};
  std::chrono::milliseconds max{5000};
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
// nothing is acknowledged before it is durable. When a batch fails split_after times in a row, an
// empty probe transaction tells a store that is down (the probe fails too: keep retrying) from
// one that refuses something in the batch (the probe commits): then the batch is split in halves
// at once, and a half that fails is probed and split again without waiting, so one envelope the
// store can never take is found in about 2·log2(batch) transactions. If the store refuses that
// envelope once more, it is replaced by a dead letter "history_rejected" that describes it, and
// the rest flows on.
class HistoryWriter {
 public:
  struct Completion {
    std::vector<AckToken> acks;
    stores::WriteResult result;
  };

  static constexpr int split_after = 3;
  // History is shown degraded (healthy() false) once the probe finds the store down, or once
  // writes have kept failing this long (a hung store: one attempt lasts a timeout). A batch the
  // store refuses while it is up is bisected without that: one bad record is not an outage.
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

 private:
  void run();
  void run_from_spool();
  std::vector<Envelope> take_batch(std::unique_lock<std::mutex>& lock);
  // Writes the batch (bisecting a part that keeps failing); nullopt when stopping and the
  // drain deadline passed first.
  std::optional<stores::WriteResult> write_batch(std::span<const Envelope> batch);
  stores::WriteResult attempt(std::span<const Envelope> part);
  // Waits `backoff` unless stopping; false when stopping and the drain deadline has passed.
  bool wait_to_retry(std::chrono::milliseconds backoff);
  // An empty transaction: true when the store is up and takes it; false marks history degraded.
  bool probe();
  void set_degraded(const std::string& error);
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
  std::thread thread_;

  common::Gauge& depth_gauge_;
  common::Gauge& healthy_gauge_;
  common::Histogram& commit_seconds_;
  common::Counter& write_errors_;
  common::Counter& batches_;
  common::Counter& rejected_;
};

}  // namespace fieldhub::pipeline
