// SPDX-License-Identifier: Apache-2.0
#include "pipeline/history_writer.h"

#include <boost/asio/post.hpp>

#include "common/log.h"

namespace fieldhub::pipeline {

using std::chrono::steady_clock;

HistoryWriter::HistoryWriter(boost::asio::any_io_executor io, stores::HistoryStore& store,
                             const config::PipelineConfig& config, common::Metrics& metrics,
                             std::function<void(Completion&&)> on_durable)
    : io_(std::move(io)),
      store_(store),
      config_(config),
      on_durable_(std::move(on_durable)),
      depth_gauge_(metrics.gauge("fieldhub_queue_depth", "Envelopes waiting in a pipeline queue",
                                 {{"queue", "history"}})),
      healthy_gauge_(metrics.gauge("fieldhub_history_healthy",
                                   "1 while history writes succeed, 0 while they fail")),
      commit_seconds_(metrics.histogram("fieldhub_history_commit_seconds",
                                        "Time to write and commit one history batch")),
      write_errors_(metrics.counter("fieldhub_history_write_errors_total",
                                    "History batches that failed and were retried")),
      batches_(metrics.counter("fieldhub_history_batches_total", "History batches committed")) {
  healthy_gauge_.set(1);
}

HistoryWriter::~HistoryWriter() {
  stop();
}

void HistoryWriter::start() {
  thread_ = std::thread([this] { run(); });
}

void HistoryWriter::stop(std::chrono::milliseconds drain_deadline) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    drain_deadline_ = steady_clock::now() + drain_deadline;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HistoryWriter::push(Envelope&& env) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(env));
    depth_.store(queue_.size(), std::memory_order_relaxed);
  }
  depth_gauge_.set(static_cast<std::int64_t>(depth()));
  wake_.notify_one();
}

std::vector<Envelope> HistoryWriter::take_batch(std::unique_lock<std::mutex>& /*lock held*/) {
  std::vector<Envelope> batch;
  std::size_t records = 0;
  while (!queue_.empty() && (batch.empty() || records < config_.batch_max)) {
    records += queue_.front().readings.size() + queue_.front().events.size() + 1;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  depth_.store(queue_.size(), std::memory_order_relaxed);
  return batch;
}

void HistoryWriter::run() {
  using namespace std::chrono_literals;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    std::vector<Envelope> batch = take_batch(lock);
    lock.unlock();
    depth_gauge_.set(static_cast<std::int64_t>(depth()));

    auto backoff = 100ms;
    stores::WriteResult result;
    while (true) {
      const auto started = steady_clock::now();
      result = store_.write(batch);
      if (result.ok) {
        commit_seconds_.observe(
            std::chrono::duration<double>(steady_clock::now() - started).count());
        break;
      }
      write_errors_.inc();
      if (healthy_.exchange(false)) {
        healthy_gauge_.set(0);
        common::log(common::LogLevel::error, "history", "write failed, retrying: " + result.error);
      }
      lock.lock();
      if (stopping_ && steady_clock::now() >= drain_deadline_) {
        // Unacknowledged: the broker redelivers these on the next start.
        common::log(common::LogLevel::error, "history",
                    "stopping with " + std::to_string(batch.size() + queue_.size()) +
                        " messages not written; they stay unacknowledged");
        return;
      }
      wake_.wait_for(lock, backoff, [&] { return stopping_; });
      lock.unlock();
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 5s);
    }
    if (!healthy_.exchange(true)) {
      healthy_gauge_.set(1);
      common::log(common::LogLevel::info, "history", "writes succeed again");
    }
    batches_.inc();

    Completion done;
    done.result = std::move(result);
    done.acks.reserve(batch.size());
    for (const auto& env : batch) {
      if (env.ack.target != nullptr) done.acks.push_back(env.ack);
    }
    boost::asio::post(io_, [on_durable = on_durable_, done = std::move(done)]() mutable {
      on_durable(std::move(done));
    });
    lock.lock();
  }
}

}  // namespace fieldhub::pipeline
