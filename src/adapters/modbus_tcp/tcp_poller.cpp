// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/tcp_poller.h"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <deque>

#include "adapters/modbus/readings.h"
#include "common/log.h"

namespace fieldhub::modbus {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

struct TcpPoller::Device : std::enable_shared_from_this<TcpPoller::Device> {
  // One unit of work in a cycle: a planned read, or one item of a split one.
  struct Work {
    ReadRequest read;
    std::size_t plan_index = 0;
    bool split_piece = false;
    bool retried = false;
    unsigned busy = 0;
  };

  Device(asio::any_io_executor io, TcpDeviceTarget t, std::shared_ptr<TcpLink> l,
         const TcpPollerOptions& o, common::Metrics& m, const common::Clock& c, CycleSink& s,
         TcpStatusHooks& h)
      : target(std::move(t)),
        link(std::move(l)),
        options(o),
        metrics(m),
        clock(c),
        sink(s),
        hooks(h),
        timer(io),
        busy_timer(io),
        plan(plan_reads(*target.profile)) {
    next_due.assign(plan.size(), SteadyClock::now());
  }

  TcpDeviceTarget target;
  std::shared_ptr<TcpLink> link;
  const TcpPollerOptions& options;
  common::Metrics& metrics;
  const common::Clock& clock;
  CycleSink& sink;
  TcpStatusHooks& hooks;
  asio::steady_timer timer;
  asio::steady_timer busy_timer;
  std::vector<ReadRequest> plan;
  std::vector<SteadyClock::time_point> next_due;
  bool stopped = false;
  bool online = false;
  bool in_cycle = false;
  unsigned failed_cycles = 0;

  // The current cycle.
  std::deque<Work> work;
  std::vector<model::Reading> out;
  std::map<std::size_t, std::vector<ReadRequest>> splits;  // plan index -> per-item reads
  bool any_reply = false;
  bool any_failure = false;
  bool target_offline = false;
  std::string abandon_reason;
  std::string first_failure;

  ReadingContext context() const {
    return ReadingContext{target.device_id, clock.now(), "modbus_tcp", link->target()};
  }

  void schedule() {
    if (stopped || plan.empty()) return;
    auto next = *std::min_element(next_due.begin(), next_due.end());
    timer.expires_at(next);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (e || self->stopped) return;
      self->tick();
    });
  }

  // Polls an offline device now (its link just came back).
  void poke() {
    if (stopped || online || in_cycle) return;
    std::fill(next_due.begin(), next_due.end(), SteadyClock::now());
    schedule();
  }

  void tick() {
    if (in_cycle || stopped) return;
    const auto now = SteadyClock::now();
    const bool offline = failed_cycles >= options.offline_after;
    work.clear();
    for (std::size_t i = 0; i < plan.size(); ++i) {
      if (!offline && next_due[i] > now) continue;
      Work w;
      w.read = plan[i];
      w.plan_index = i;
      work.push_back(std::move(w));
      auto interval = std::chrono::duration_cast<SteadyClock::duration>(plan[i].interval);
      if (offline) {
        // Backoff: interval × 2^(cycles past the threshold), capped.
        const unsigned extra = std::min(failed_cycles - options.offline_after + 1, 10u);
        interval =
            std::min<SteadyClock::duration>(interval * (1u << extra), options.offline_poll_max);
      }
      next_due[i] = std::max(next_due[i] + interval, now + interval / 2);
      if (offline) next_due[i] = now + interval;
    }
    if (work.empty()) return schedule();
    in_cycle = true;
    out.clear();
    splits.clear();
    any_reply = any_failure = target_offline = false;
    abandon_reason.clear();
    first_failure.clear();
    next();
  }

  void next() {
    if (stopped) return;
    if (work.empty()) return finish();
    Work& w = work.front();
    if (!abandon_reason.empty()) {
      // The device is unreachable: one timeout per cycle, the rest marked without asking.
      append_failed(*target.profile, w.read, abandon_reason, context(), out);
      work.pop_front();
      return next();
    }
    send(w);
  }

  void send(const Work& w) {
    link->send(to_request(target.unit, w.read),
               [self = shared_from_this()](const TcpResult& r) { self->on_result(r); });
  }

  void on_result(const TcpResult& r) {
    if (stopped) return;
    Work& w = work.front();
    if (r.outcome == Outcome::reply && hooks.rtt) hooks.rtt(link->target(), r.rtt);
    if (r.outcome == Outcome::reply && r.reply.status == ReplyStatus::ok) {
      any_reply = true;
      append_readings(*target.profile, w.read, r.reply, context(), out);
      work.pop_front();
      return next();
    }
    const FaultAction a = r.outcome == Outcome::reply ? classify(r.reply) : classify(r.outcome);
    if (r.outcome == Outcome::reply && r.reply.status == ReplyStatus::exception) {
      char code[8];
      std::snprintf(code, sizeof code, "%02X", r.reply.exception);
      metrics
          .counter("fieldhub_modbus_exceptions_total", "Modbus exception replies", {{"code", code}})
          .inc();
      // An exception is an answer: the device (or its gateway) is there.
      if (!a.target_offline) any_reply = true;
    }
    if (a.retry && !w.retried) {
      w.retried = true;
      return send(w);
    }
    if (a.busy_retry && w.busy < options.busy_retries) {
      ++w.busy;
      busy_timer.expires_after(options.busy_delay);
      busy_timer.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
        if (e || self->stopped) return;
        self->send(self->work.front());
      });
      return;
    }
    if (a.misconfigured && w.read.items.size() > 1) {
      // Which of the merged registers (or the hole between them) is refused? Read each alone.
      const Work parent = w;
      work.pop_front();
      auto pieces = split_per_item(*target.profile, parent.read);
      splits[parent.plan_index] = pieces;
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        Work piece;
        piece.read = *it;
        piece.plan_index = parent.plan_index;
        piece.split_piece = true;
        work.push_front(std::move(piece));
      }
      return next();
    }
    append_failed(*target.profile, w.read, a.reason.empty() ? "bad_reply" : a.reason, context(),
                  out);
    if (a.counts_failure) {
      any_failure = true;
      if (first_failure.empty()) first_failure = std::string(a.reason);
    }
    if (a.target_offline) target_offline = true;
    if (a.abandon_cycle) abandon_reason = std::string(a.reason);
    work.pop_front();
    next();
  }

  void finish() {
    in_cycle = false;
    if (!splits.empty()) apply_splits();
    const bool was_online = online;
    if (target_offline) {
      online = false;
      failed_cycles = std::max(failed_cycles + 1, options.offline_after);
    } else if (any_reply) {
      online = true;
      failed_cycles = 0;
    } else if (any_failure) {
      ++failed_cycles;
      if (failed_cycles >= options.offline_after) online = false;
    }
    if (was_online != online) {
      common::log(online ? common::LogLevel::info : common::LogLevel::warn, "modbus_tcp",
                  target.device_id + (online ? " online" : " offline") + " (" + link->target() +
                      " unit " + std::to_string(target.unit) + ")");
    }
    if (!out.empty()) sink(target.device_id, link->target(), std::move(out));
    out.clear();
    // After the readings: the pipeline's observation of them comes first, the verdict last.
    const bool failed = target_offline || (!any_reply && any_failure);
    if (hooks.cycle) hooks.cycle(target.device_id, failed, target_offline, first_failure);
    schedule();
  }

  // The per-item reads replace the merged one for good: the map does not change at run time.
  void apply_splits() {
    std::vector<ReadRequest> new_plan;
    std::vector<SteadyClock::time_point> new_due;
    for (std::size_t i = 0; i < plan.size(); ++i) {
      auto it = splits.find(i);
      if (it == splits.end()) {
        new_plan.push_back(std::move(plan[i]));
        new_due.push_back(next_due[i]);
        continue;
      }
      for (auto& piece : it->second) {
        new_plan.push_back(std::move(piece));
        new_due.push_back(next_due[i]);
      }
    }
    plan = std::move(new_plan);
    next_due = std::move(new_due);
  }
};

TcpPoller::TcpPoller(asio::any_io_executor io, std::vector<TcpDeviceTarget> devices,
                     TcpPollerOptions options, common::Metrics& metrics, const common::Clock& clock,
                     CycleSink sink)
    : options_(std::move(options)), sink_(std::move(sink)) {
  for (auto& d : devices) {
    const std::string key = d.host + ":" + std::to_string(d.port);
    auto it = links_.find(key);
    if (it == links_.end()) {
      it =
          links_.emplace(key, std::make_shared<TcpLink>(io, d.host, d.port, options_.link, metrics))
              .first;
    }
    devices_.push_back(std::make_shared<Device>(io, std::move(d), it->second, options_, metrics,
                                                clock, sink_, hooks_));
  }
  for (auto& [key, link] : links_) {
    std::vector<std::weak_ptr<Device>> mine;
    for (auto& d : devices_) {
      if (d->link == link) mine.push_back(d);
    }
    link->on_link([this, mine, target = key](bool up, const std::string& reason) {
      if (hooks_.link) hooks_.link(target, up, reason);
      if (!up) return;
      for (auto& w : mine) {
        if (auto d = w.lock()) d->poke();
      }
    });
  }
}

TcpPoller::~TcpPoller() {
  stop();
}

void TcpPoller::start() {
  for (auto& [key, link] : links_) link->start();
  for (auto& d : devices_) d->schedule();
}

void TcpPoller::stop() {
  for (auto& d : devices_) {
    d->stopped = true;
    d->timer.cancel();
    d->busy_timer.cancel();
  }
  for (auto& [key, link] : links_) {
    link->stop();
    link->on_link(nullptr);  // the link may outlive the poller in pending handlers
  }
}

bool TcpPoller::device_online(std::string_view device_id) const {
  for (const auto& d : devices_) {
    if (d->target.device_id == device_id) return d->online;
  }
  return false;
}

bool TcpPoller::link_up(std::string_view target) const {
  auto it = links_.find(target);
  return it != links_.end() && it->second->up();
}

std::uint64_t TcpPoller::late_replies(std::string_view target) const {
  auto it = links_.find(target);
  return it == links_.end() ? 0 : it->second->late_replies();
}

}  // namespace fieldhub::modbus
