// SPDX-License-Identifier: Apache-2.0
#include "pipeline/history_writer.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/utf8.h"

namespace fieldhub::pipeline {

using std::chrono::steady_clock;

HistoryWriter::HistoryWriter(boost::asio::any_io_executor io, stores::HistoryStore& store,
                             const config::PipelineConfig& config, common::Metrics& metrics,
                             std::function<void(Completion&&)> on_durable, Spool* spool,
                             Backoff backoff)
    : io_(std::move(io)),
      store_(store),
      config_(config),
      on_durable_(std::move(on_durable)),
      spool_(spool),
      backoff_(backoff),
      depth_gauge_(metrics.gauge("fieldhub_queue_depth", "Envelopes waiting in a pipeline queue",
                                 {{"queue", "history"}})),
      healthy_gauge_(metrics.gauge("fieldhub_history_healthy",
                                   "1 while history writes succeed, 0 while they fail")),
      commit_seconds_(metrics.histogram("fieldhub_history_commit_seconds",
                                        "Time to write and commit one history batch")),
      write_errors_(metrics.counter("fieldhub_history_write_errors_total",
                                    "History batches that failed and were retried")),
      batches_(metrics.counter("fieldhub_history_batches_total", "History batches committed")),
      rejected_(metrics.counter(
          "fieldhub_history_rejected_total",
          "Messages the history store refused alone, kept as dead letters (history_rejected)")),
      breaker_trips_(metrics.counter(
          "fieldhub_history_breaker_trips_total",
          "Times a run of refused messages was taken for an outage and held instead of "
          "dead-lettered")) {
  healthy_gauge_.set(1);
}

HistoryWriter::~HistoryWriter() {
  stop();
}

void HistoryWriter::start() {
  thread_ = std::thread([this] {
    if (spool_ != nullptr) {
      run_from_spool();
    } else {
      run();
    }
  });
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
    readings_depth_.fetch_add(env.readings.size(), std::memory_order_relaxed);
    queue_.push_back(std::move(env));
    depth_.store(queue_.size(), std::memory_order_relaxed);
  }
  depth_gauge_.set(static_cast<std::int64_t>(depth()));
  wake_.notify_one();
}

std::vector<Envelope> HistoryWriter::take_batch(std::unique_lock<std::mutex>& /*lock held*/) {
  std::vector<Envelope> batch;
  std::size_t records = 0;
  std::size_t readings = 0;
  while (!queue_.empty() && (batch.empty() || records < config_.batch_max)) {
    readings += queue_.front().readings.size();
    records += queue_.front().readings.size() + queue_.front().events.size() + 1;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  depth_.store(queue_.size(), std::memory_order_relaxed);
  readings_depth_.fetch_sub(readings, std::memory_order_relaxed);
  return batch;
}

bool HistoryWriter::stopping() const {
  const std::lock_guard lock(mutex_);
  return stopping_;
}

bool HistoryWriter::wait_to_retry(std::chrono::milliseconds backoff) {
  std::unique_lock lock(mutex_);
  if (stopping_ && steady_clock::now() >= drain_deadline_) return false;
  wake_.wait_for(lock, backoff, [&] { return stopping_; });
  return true;
}

stores::WriteResult HistoryWriter::attempt(std::span<const Envelope> part, bool probing) {
  const auto started = steady_clock::now();
  stores::WriteResult result = store_.write(part);
  if (result.ok) {
    // A probe that commits shows the store up, not that history is written again.
    if (probing) return result;
    commit_seconds_.observe(std::chrono::duration<double>(steady_clock::now() - started).count());
    failing_since_ = {};
    if (!healthy_.exchange(true)) {
      healthy_gauge_.set(1);
      common::log(common::LogLevel::info, "history", "writes succeed again");
    }
    return result;
  }
  write_errors_.inc();
  if (failing_since_ == steady_clock::time_point{}) {
    failing_since_ = started;
    common::log(common::LogLevel::warn, "history", "write failed, retrying: " + result.error);
  }
  if (steady_clock::now() - failing_since_ >= degraded_after) set_degraded(result.error);
  return result;
}

void HistoryWriter::set_degraded(const std::string& error) {
  if (!healthy()) return;
  {
    // Before healthy() turns false, so a degraded writer always has its reason.
    const std::lock_guard lock(reason_mutex_);
    degraded_reason_ = error.empty() ? std::string("writes failing") : error;
  }
  if (healthy_.exchange(false)) {
    healthy_gauge_.set(0);
    common::log(common::LogLevel::error, "history", "degraded, writes failing: " + error);
  }
}

std::string HistoryWriter::degraded_reason() const {
  const std::lock_guard lock(reason_mutex_);
  if (healthy()) return {};
  return degraded_reason_;
}

bool HistoryWriter::breaker_holds() {
  if (rejected_in_a_row_ < backoff_.breaker_after) return false;
  const auto now = steady_clock::now();
  if (breaker_since_ == steady_clock::time_point{}) {
    breaker_since_ = now;
    breaker_trips_.inc();
    common::log(common::LogLevel::error, "history",
                std::to_string(rejected_in_a_row_) +
                    " messages in a row refused as bad data: holding the rest as an outage");
  }
  return now - breaker_since_ < backoff_.breaker_hold;
}

namespace {

void add(stores::WriteResult& total, const stores::WriteResult& r) {
  total.readings_stored += r.readings_stored;
  total.readings_duplicate += r.readings_duplicate;
  total.events_stored += r.events_stored;
  total.events_duplicate += r.events_duplicate;
  total.envelopes_duplicate += r.envelopes_duplicate;
  total.dead_letters_stored += r.dead_letters_stored;
}

// Text any store takes: invalid UTF-8 and NUL become '?'.
void append_clean(std::string& out, std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = common::utf8_sequence_length(s, i);
    if (n == 0 || s[i] == '\0') {
      out += '?';
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
}

}  // namespace

Envelope HistoryWriter::rejected(const Envelope& env, const std::string& error) const {
  DeadLetter d;
  d.received_ts = !env.readings.empty()       ? env.readings.front().received_ts
                  : !env.events.empty()       ? env.events.front().received_ts
                  : !env.dead_letters.empty() ? env.dead_letters.front().received_ts
                                              : model::Timestamp{};
  d.source = "history";
  d.reason = "history_rejected";
  append_clean(d.detail, std::string_view(error).substr(0, 1024));
  // What the message held, readable: one line per record.
  std::string text;
  for (const auto& r : env.readings) {
    text.append("reading ").append(r.device_id).append(" ").append(r.metric).append(" = ");
    if (const auto* v = std::get_if<double>(&r.value)) {
      char num[32];
      std::snprintf(num, sizeof num, "%.17g", *v);
      text.append(num);
    } else if (const auto* b = std::get_if<bool>(&r.value)) {
      text.append(*b ? "true" : "false");
    } else if (const auto* t = std::get_if<std::string>(&r.value)) {
      text.append("\"").append(*t).append("\"");
    }
    text.append(" ").append(r.unit).append(" at ").append(model::format_rfc3339(r.ts()));
    text += '\n';
  }
  for (const auto& e : env.events) {
    text.append("event ").append(e.device_id).append(" ").append(e.type).append(" at ");
    text.append(model::format_rfc3339(e.ts())).append(" ").append(e.attributes_json);
    text += '\n';
  }
  for (const auto& l : env.dead_letters) {
    text.append("dead letter ").append(l.reason).append(" from ").append(l.source).append(": ");
    text.append(l.payload);
    text += '\n';
  }
  append_clean(d.payload, std::string_view(text).substr(0, config_.dead_letter_payload_cap));
  Envelope out;
  out.dead_letters.push_back(std::move(d));
  // Replayed after a crash, it is recognised like the message would have been.
  out.replay_digest = env.replay_digest;
  return out;
}

void HistoryWriter::stored(stores::WriteResult& total, const stores::WriteResult& r) {
  add(total, r);
  rejected_in_a_row_ = 0;
  if (breaker_since_ != steady_clock::time_point{}) {
    breaker_since_ = {};
    common::log(common::LogLevel::info, "history", "messages are stored again: breaker closed");
  }
}

bool HistoryWriter::probe() {
  const Envelope empty;
  const stores::WriteResult r = attempt(std::span<const Envelope>(&empty, 1), true);
  if (!r.ok) set_degraded(r.error);
  return r.ok;
}

std::optional<stores::WriteResult> HistoryWriter::write_batch(std::span<const Envelope> batch) {
  stores::WriteResult total;
  total.ok = true;
  struct Part {
    std::span<const Envelope> envelopes;
    bool refused = false;  // split off a part the store refused while it was up
  };
  // Parts still to write, the next at the back.
  std::vector<Part> parts{{batch}};
  auto backoff = backoff_.first;
  while (!parts.empty()) {
    const Part part = parts.back();
    parts.pop_back();
    int failures = 0;
    bool look_now = part.refused;
    while (true) {
      stores::WriteResult r = attempt(part.envelopes);
      if (r.ok) {
        stored(total, r);
        backoff = backoff_.first;
        break;
      }
      ++failures;
      if (r.failure == stores::WriteFailure::outage) {
        // The store cannot take anything now: the part is held and retried, never split.
        if (failures >= split_after) set_degraded(r.error);
      } else if (breaker_holds()) {
        set_degraded(std::to_string(rejected_in_a_row_) +
                     " messages in a row refused, held as an outage: " + r.error);
      } else if (look_now || failures >= split_after) {
        // A refusal of the data. The probe tells a store that is down from one that refuses
        // this part; a part of a refused batch is looked into at once.
        if (probe()) {
          if (part.envelopes.size() > 1) {
            const std::size_t half = part.envelopes.size() / 2;
            parts.push_back({part.envelopes.subspan(half), true});
            parts.push_back({part.envelopes.first(half), true});
            break;
          }
          // One envelope refused while the store is up: once more, then it is given up as a
          // dead letter that says what it held.
          r = attempt(part.envelopes);
          if (r.ok) {
            stored(total, r);
            backoff = backoff_.first;
            break;
          }
          if (r.failure == stores::WriteFailure::refused_data) {
            const Envelope replacement = rejected(part.envelopes.front(), r.error);
            const stores::WriteResult rr = attempt(std::span<const Envelope>(&replacement, 1));
            if (rr.ok) {
              add(total, rr);
              rejected_.inc();
              // Past the breaker's bound this was the one let through after breaker_hold.
              if (++rejected_in_a_row_ > backoff_.breaker_after)
                breaker_since_ = steady_clock::now();
              common::log(common::LogLevel::error, "history",
                          "a message the store refuses was kept as a dead letter "
                          "(history_rejected): " +
                              r.error);
              backoff = backoff_.first;
              break;
            }
            // Not even its dead letter goes in: no longer a matter of this message.
            set_degraded("the store refuses a message and its dead letter: " + rr.error);
          }
        }
        // The store is down: probe again after the next failure.
        look_now = true;
      }
      if (!wait_to_retry(backoff)) return std::nullopt;
      backoff = std::min(backoff * 2, backoff_.max);
    }
  }
  batches_.inc();
  return total;
}

void HistoryWriter::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (!wake_.wait_for(lock, idle_tick, [&] { return stopping_ || !queue_.empty(); })) {
      lock.unlock();
      store_.maintain_if_due();
      lock.lock();
      continue;
    }
    if (queue_.empty()) return;  // stopping and drained
    std::vector<Envelope> batch = take_batch(lock);
    lock.unlock();
    depth_gauge_.set(static_cast<std::int64_t>(depth()));

    std::optional<stores::WriteResult> result = write_batch(batch);
    if (!result) {
      lock.lock();
      // Unacknowledged: the broker redelivers these on the next start.
      common::log(common::LogLevel::error, "history",
                  "stopping with " + std::to_string(batch.size() + queue_.size()) +
                      " messages not written; they stay unacknowledged");
      return;
    }
    Completion done;
    done.result = std::move(*result);
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

void HistoryWriter::run_from_spool() {
  while (true) {
    const bool draining = stopping();
    Spool::Batch batch = spool_->take(config_.batch_max, idle_tick);
    depth_.store(static_cast<std::size_t>(spool_->backlog()), std::memory_order_relaxed);
    depth_gauge_.set(static_cast<std::int64_t>(depth()));
    if (batch.envelopes.empty()) {
      if (draining) return;  // everything synced is committed
      store_.maintain_if_due();
      continue;
    }
    std::optional<stores::WriteResult> result = write_batch(batch.envelopes);
    if (!result) {
      common::log(common::LogLevel::warn, "history",
                  "stopping with " + std::to_string(spool_->backlog()) +
                      " spooled messages not written; they are written on the next start");
      return;
    }
    spool_->committed(batch.last_seq);
    Completion done;
    done.result = std::move(*result);
    boost::asio::post(io_, [on_durable = on_durable_, done = std::move(done)]() mutable {
      on_durable(std::move(done));
    });
  }
}

}  // namespace fieldhub::pipeline
