// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/device_poller.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>

#include "adapters/modbus/readings.h"
#include "common/log.h"

namespace fieldhub::modbus {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

DevicePoller::DevicePoller(asio::any_io_executor io, Identity identity, SendFunction send,
                           const PollOptions& options, common::Metrics& metrics,
                           const common::Clock& clock, const CycleSink& sink,
                           const PollHooks& hooks)
    : io_(io),
      id_(std::move(identity)),
      send_(std::move(send)),
      options_(options),
      metrics_(metrics),
      clock_(clock),
      sink_(sink),
      hooks_(hooks),
      timer_(io),
      busy_timer_(io),
      plan_(plan_reads(*id_.profile)),
      cycles_(metrics.counter("fieldhub_modbus_cycles_total", "Modbus poll cycles completed",
                              {{"adapter", id_.adapter}})),
      cycles_missed_(metrics.counter(
          "fieldhub_modbus_cycles_missed_total",
          "Modbus poll cycles never started: the device was an interval or more behind schedule",
          {{"adapter", id_.adapter}})),
      cycle_lag_(metrics.histogram("fieldhub_modbus_cycle_lag_seconds",
                                   "How long after its due time a Modbus poll cycle started",
                                   {{"adapter", id_.adapter}})) {
  next_due_.assign(plan_.size(), SteadyClock::now());
}

ReadingContext DevicePoller::context() const {
  return ReadingContext{id_.device_id, clock_.now(), id_.adapter, id_.link};
}

void DevicePoller::start() {
  stopped_ = false;
  // Every device of an adapter starts at once. Each one's first cycle is put at its own point of
  // the first interval (capped at 1 s), by a hash of its id, and the schedule keeps that phase:
  // links and the pipeline then see a steady flow instead of every device due at the same
  // instant of each second (docs/PERFORMANCE.md, Modbus TCP at scale).
  const auto now = SteadyClock::now();
  const auto slot = std::hash<std::string>{}(id_.device_id) % 1024;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    const auto spread = std::min<SteadyClock::duration>(plan_[i].interval, std::chrono::seconds{1});
    next_due_[i] = now + spread * static_cast<SteadyClock::rep>(slot) / 1024;
  }
  schedule();
}

void DevicePoller::stop() {
  stopped_ = true;
  timer_.cancel();
  busy_timer_.cancel();
  std::deque<PendingWrite> left;
  left.swap(writes_);
  for (auto& w : left) {
    asio::post(io_, [done = std::move(w.done)] { done({WriteError::stopped, "poller stopped"}); });
  }
}

void DevicePoller::schedule() {
  if (stopped_ || plan_.empty() || in_cycle_ || writing_) return;
  const auto next = *std::min_element(next_due_.begin(), next_due_.end());
  timer_.expires_at(next);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
    if (e || self->stopped_) return;
    self->tick();
  });
}

void DevicePoller::poke() {
  if (stopped_ || online_ || in_cycle_) return;
  std::fill(next_due_.begin(), next_due_.end(), SteadyClock::now());
  schedule();
}

void DevicePoller::tick() {
  if (in_cycle_ || writing_ || stopped_) return;
  const auto now = SteadyClock::now();
  const bool offline = failed_cycles_ >= options_.offline_after;
  const bool held = hooks_.hold && hooks_.hold();
  work_.clear();
  SteadyClock::duration lag{0};
  std::uint64_t missed = 0;
  bool any_due = false;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    if (!offline && next_due_[i] > now) continue;
    if (!offline) {
      // An offline device is polled at backoff rate on purpose: not late, not missed.
      const auto behind = now - next_due_[i];
      lag = std::max(lag, behind);
      missed =
          std::max<std::uint64_t>(missed, static_cast<std::uint64_t>(behind / plan_[i].interval));
    }
    any_due = true;
    if (!held) {
      Work w;
      w.read = plan_[i];
      w.plan_index = i;
      work_.push_back(std::move(w));
    }
    auto interval = std::chrono::duration_cast<SteadyClock::duration>(plan_[i].interval);
    if (offline) {
      // Backoff: interval × 2^(cycles past the threshold), capped.
      const unsigned extra = std::min(failed_cycles_ - options_.offline_after + 1, 10u);
      interval =
          std::min<SteadyClock::duration>(interval * (1u << extra), options_.offline_poll_max);
      next_due_[i] = now + interval;
    } else {
      next_due_[i] = std::max(next_due_[i] + interval, now + interval / 2);
    }
  }
  if (held && any_due) ++missed;  // this cycle, not polled
  if (!offline && missed > 0) cycles_missed_.inc(missed);
  if (work_.empty()) return schedule();
  if (!offline) cycle_lag_.observe(std::chrono::duration<double>(lag).count());
  in_cycle_ = true;
  out_.clear();
  splits_.clear();
  any_reply_ = any_failure_ = target_offline_ = false;
  abandon_reason_.clear();
  first_failure_.clear();
  next();
}

void DevicePoller::next() {
  if (stopped_) return;
  if (work_.empty()) return finish();
  Work& w = work_.front();
  if (!abandon_reason_.empty()) {
    // The device is unreachable: one timeout per cycle, the rest marked without asking.
    append_failed(*id_.profile, w.read, abandon_reason_, context(), out_);
    work_.pop_front();
    return next();
  }
  send(w);
}

void DevicePoller::send(const Work& w) {
  send_(to_request(id_.unit, w.read),
        [self = shared_from_this()](const LinkResult& r) { self->on_result(r); });
}

void DevicePoller::count_exception(const LinkResult& r) {
  if (r.outcome != Outcome::reply || r.reply.status != ReplyStatus::exception) return;
  char code[8];
  std::snprintf(code, sizeof code, "%02X", r.reply.exception);
  metrics_.counter("fieldhub_modbus_exceptions_total", "Modbus exception replies", {{"code", code}})
      .inc();
}

void DevicePoller::on_result(const LinkResult& r) {
  if (stopped_) return;
  Work& w = work_.front();
  if (r.outcome == Outcome::reply && hooks_.rtt) hooks_.rtt(id_.link, r.rtt);
  if (r.outcome == Outcome::reply && r.reply.status == ReplyStatus::ok) {
    any_reply_ = true;
    append_readings(*id_.profile, w.read, r.reply, context(), out_);
    work_.pop_front();
    return next();
  }
  const FaultAction a = r.outcome == Outcome::reply ? classify(r.reply) : classify(r.outcome);
  count_exception(r);
  // An exception is an answer: the device (or its gateway) is there.
  if (r.outcome == Outcome::reply && r.reply.status == ReplyStatus::exception &&
      !a.target_offline) {
    any_reply_ = true;
  }
  // Retried once, but not for an offline device: it would double what it costs its link.
  if (a.retry && !w.retried && failed_cycles_ < options_.offline_after) {
    w.retried = true;
    return send(w);
  }
  if (a.busy_retry && w.busy < options_.busy_retries) {
    busy_timer_.expires_after(busy_pause(w.busy++));
    busy_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (e || self->stopped_) return;
      self->send(self->work_.front());
    });
    return;
  }
  if (a.misconfigured && w.read.items.size() > 1) {
    // Which of the merged registers (or the hole between them) is refused? Read each alone.
    const Work parent = w;
    work_.pop_front();
    auto pieces = split_per_item(*id_.profile, parent.read);
    splits_[parent.plan_index] = pieces;
    for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
      Work piece;
      piece.read = *it;
      piece.plan_index = parent.plan_index;
      work_.push_front(std::move(piece));
    }
    return next();
  }
  append_failed(*id_.profile, w.read, a.reason.empty() ? "bad_reply" : a.reason, context(), out_);
  if (a.counts_failure) {
    any_failure_ = true;
    if (first_failure_.empty()) first_failure_ = std::string(a.reason);
  }
  if (a.target_offline) target_offline_ = true;
  if (a.abandon_cycle) abandon_reason_ = std::string(a.reason);
  work_.pop_front();
  next();
}

void DevicePoller::finish() {
  in_cycle_ = false;
  cycles_.inc();
  if (!splits_.empty()) apply_splits();
  const bool was_online = online_;
  if (target_offline_) {
    online_ = false;
    failed_cycles_ = std::max(failed_cycles_ + 1, options_.offline_after);
  } else if (any_reply_) {
    online_ = true;
    failed_cycles_ = 0;
  } else if (any_failure_) {
    ++failed_cycles_;
    if (failed_cycles_ >= options_.offline_after) online_ = false;
  }
  if (was_online != online_) {
    common::log(online_ ? common::LogLevel::info : common::LogLevel::warn, id_.adapter,
                id_.device_id + (online_ ? " online" : " offline") + " (" + id_.link + " unit " +
                    std::to_string(id_.unit) + ")");
  }
  if (!out_.empty()) sink_(id_.device_id, id_.link, std::move(out_));
  out_.clear();
  // After the readings: the pipeline's observation of them comes first, the verdict last.
  const bool failed = target_offline_ || (!any_reply_ && any_failure_);
  if (hooks_.cycle) hooks_.cycle(id_.device_id, failed, target_offline_, first_failure_);
  if (!writes_.empty()) return run_write();
  schedule();
}

std::chrono::milliseconds DevicePoller::busy_pause(unsigned attempt) const {
  return options_.busy_delay * (1U << std::min(attempt, 10U));
}

// The per-item reads replace the merged one for good: the map does not change at run time.
void DevicePoller::apply_splits() {
  std::vector<ReadRequest> new_plan;
  std::vector<SteadyClock::time_point> new_due;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    auto it = splits_.find(i);
    if (it == splits_.end()) {
      new_plan.push_back(std::move(plan_[i]));
      new_due.push_back(next_due_[i]);
      continue;
    }
    for (auto& piece : it->second) {
      new_plan.push_back(std::move(piece));
      new_due.push_back(next_due_[i]);
    }
  }
  plan_ = std::move(new_plan);
  next_due_ = std::move(new_due);
}

// --- writes -----------------------------------------------------------------------------------

void DevicePoller::write(std::string_view metric, model::Value value, WriteCallback done) {
  const auto refuse = [&](WriteError error, std::string detail) {
    asio::post(io_, [done = std::move(done), error, detail = std::move(detail)] {
      done({error, detail});
    });
  };
  if (stopped_) return refuse(WriteError::stopped, "poller stopped");
  const config::RegisterSpec* spec = nullptr;
  for (const auto& s : id_.profile->registers) {
    if (s.metric == metric) spec = &s;
  }
  if (spec == nullptr || !spec->writable) {
    return refuse(WriteError::not_writable, "metric '" + std::string(metric) +
                                                "' is not a writable register of profile '" +
                                                id_.profile->name + "'");
  }
  if (spec->type != config::ModbusType::bit) {
    // Refused before anything is sent: the codec decides whether the register can hold it.
    WritePlan check = plan_write(id_.unit, *spec, value);
    if (!check.error.empty()) return refuse(WriteError::invalid_value, check.error);
  }
  writes_.push_back(PendingWrite{spec, std::move(value), std::move(done), {}});
  if (!in_cycle_ && !writing_) {
    // Between cycles: run now (the poll timer waits until the write is done).
    timer_.cancel();
    asio::post(io_, [self = shared_from_this()] {
      if (!self->stopped_ && !self->in_cycle_ && !self->writing_ && !self->writes_.empty()) {
        self->run_write();
      }
    });
  }
}

void DevicePoller::run_write() {
  if (stopped_ || writes_.empty()) return schedule();
  writing_ = true;
  PendingWrite& w = writes_.front();
  if (w.spec->type != config::ModbusType::bit) {
    w.plan = plan_write(id_.unit, *w.spec, w.value);
    return send_write();
  }
  // A bit of a holding register: read the word, change the bit, write the word.
  send_write_step(
      read_back_request(id_.unit, *w.spec), [self = shared_from_this()](const LinkResult& r) {
        PendingWrite& pw = self->writes_.front();
        if (r.outcome != Outcome::reply || r.reply.status != ReplyStatus::ok ||
            r.reply.registers.empty()) {
          const FaultAction a =
              r.outcome == Outcome::reply ? classify(r.reply) : classify(r.outcome);
          const WriteError e = r.outcome == Outcome::timeout           ? WriteError::timeout
                               : r.outcome == Outcome::connection_lost ? WriteError::connection_lost
                               : r.reply.status == ReplyStatus::exception ? WriteError::exception
                                                                          : WriteError::bad_reply;
          return self->end_write(
              {e, "reading the register before the bit write: " + std::string(a.reason)});
        }
        pw.plan = plan_write(self->id_.unit, *pw.spec, pw.value, r.reply.registers[0]);
        if (!pw.plan.error.empty())
          return self->end_write({WriteError::invalid_value, pw.plan.error});
        self->send_write();
      });
}

namespace {

WriteResult failure(const LinkResult& r, std::string_view step) {
  std::string prefix(step);
  switch (r.outcome) {
    case Outcome::timeout:
      return {WriteError::timeout, prefix + ": no reply within the response timeout"};
    case Outcome::connection_lost:
      return {WriteError::connection_lost, prefix + ": link down"};
    case Outcome::ok:
    case Outcome::reply:
      break;
  }
  if (r.reply.status == ReplyStatus::exception) {
    return {WriteError::exception, prefix + ": " + std::string(exception_name(r.reply.exception))};
  }
  return {WriteError::bad_reply, prefix + ": " + std::string(to_string(r.reply.status))};
}

}  // namespace

void DevicePoller::send_write_step(Request request, std::function<void(const LinkResult&)> then,
                                   unsigned busy) {
  send_(request, [self = shared_from_this(), request, then = std::move(then),
                  busy](const LinkResult& r) mutable {
    if (self->stopped_) return;
    self->count_exception(r);
    const bool device_busy = r.outcome == Outcome::reply && classify(r.reply).busy_retry;
    if (!device_busy || busy >= self->options_.busy_retries) return then(r);
    self->busy_timer_.expires_after(self->busy_pause(busy));
    self->busy_timer_.async_wait([self, request = std::move(request), then = std::move(then),
                                  busy](const boost::system::error_code& e) mutable {
      if (e || self->stopped_) return;
      self->send_write_step(std::move(request), std::move(then), busy + 1);
    });
  });
}

void DevicePoller::send_write() {
  send_write_step(writes_.front().plan.request, [self = shared_from_this()](const LinkResult& r) {
    if (r.outcome != Outcome::reply || r.reply.status != ReplyStatus::ok) {
      return self->end_write(failure(r, "write"));
    }
    self->read_back();
  });
}

void DevicePoller::read_back() {
  send_write_step(read_back_request(id_.unit, *writes_.front().spec),
                  [self = shared_from_this()](const LinkResult& r) {
                    if (r.outcome != Outcome::reply || r.reply.status != ReplyStatus::ok) {
                      return self->end_write(failure(r, "read-back"));
                    }
                    const PendingWrite& pw = self->writes_.front();
                    if (!read_back_matches(*pw.spec, pw.plan, r.reply)) {
                      std::string detail = "read back";
                      const auto& got =
                          pw.spec->function == config::ModbusFunction::coil
                              ? std::vector<std::uint16_t>(r.reply.bits.begin(), r.reply.bits.end())
                              : r.reply.registers;
                      for (auto word : got) detail.append(" ").append(std::to_string(word));
                      detail.append(", wrote");
                      for (auto word : pw.plan.words)
                        detail.append(" ").append(std::to_string(word));
                      return self->end_write({WriteError::mismatch, std::move(detail)});
                    }
                    self->end_write({});
                  });
}

void DevicePoller::end_write(WriteResult result) {
  PendingWrite w = std::move(writes_.front());
  writes_.pop_front();
  writing_ = false;
  metrics_
      .counter("fieldhub_modbus_writes_total", "Modbus writes (read back), by adapter and result",
               {{"adapter", id_.adapter}, {"result", std::string(to_string(result.error))}})
      .inc();
  if (!result.ok()) {
    common::log(common::LogLevel::warn, id_.adapter,
                id_.device_id + " write " + w.spec->metric + " failed: " +
                    std::string(to_string(result.error)) + " (" + result.detail + ")");
  }
  w.done(result);
  if (stopped_) return;
  if (!writes_.empty()) return run_write();
  schedule();
}

}  // namespace fieldhub::modbus
