// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/envelope.h"
#include "stores/history_store.h"

namespace fieldhub::pipeline {

// Makes envelopes durable in the HistoryStore, in arrival order, on its own thread. Group commit:
// whatever queued while one transaction ran goes into the next (up to batch_max readings), so a
// trickle commits at once and a flood commits in large batches.
//
// push() is called on the io executor. After a batch is committed, on_durable runs on the io
// executor with that batch's acknowledgement tokens (in order) and the store's counts. A failed
// write is retried with capped backoff and never skipped: nothing queued is lost, and nothing is
// acknowledged before it is durable.
class HistoryWriter {
 public:
  struct Completion {
    std::vector<AckToken> acks;
    stores::WriteResult result;
  };

  HistoryWriter(boost::asio::any_io_executor io, stores::HistoryStore& store,
                const config::PipelineConfig& config, common::Metrics& metrics,
                std::function<void(Completion&&)> on_durable);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  void start();
  // Writes what is queued (giving up only if the store keeps failing for drain_deadline), then
  // joins the thread. Completions of the final batches are still posted to the io executor.
  void stop(std::chrono::milliseconds drain_deadline = std::chrono::seconds{10});
  void push(Envelope&& env);
  std::size_t depth() const { return depth_.load(std::memory_order_relaxed); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }

 private:
  void run();
  std::vector<Envelope> take_batch(std::unique_lock<std::mutex>& lock);

  boost::asio::any_io_executor io_;
  stores::HistoryStore& store_;
  const config::PipelineConfig& config_;
  std::function<void(Completion&&)> on_durable_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Envelope> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::atomic<std::size_t> depth_{0};
  std::atomic<bool> healthy_{true};
  std::thread thread_;

  common::Gauge& depth_gauge_;
  common::Gauge& healthy_gauge_;
  common::Histogram& commit_seconds_;
  common::Counter& write_errors_;
  common::Counter& batches_;
};

}  // namespace fieldhub::pipeline
