// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/modbus/faults.h"
#include "adapters/modbus/read_plan.h"
#include "adapters/modbus/readings.h"
#include "adapters/modbus/write.h"
#include "adapters/writable.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "model/reading.h"
#include "model/value.h"

namespace fieldhub::modbus {

// Scheduling and fault rules of one polled device, the same on TCP and RTU (RELIABILITY.md,
// Modbus defaults).
struct PollOptions {
  unsigned offline_after = 3;  // failed cycles in a row before the device is offline
  // An offline device is polled at a slower, doubling rate, up to this; a link coming back polls
  // its offline devices at once.
  std::chrono::milliseconds offline_poll_max{10000};
  // A request answered 05 acknowledge / 06 busy (a read or any step of a write) is re-sent after
  // busy_delay, doubling with each attempt, at most busy_retries times.
  std::chrono::milliseconds busy_delay{200};
  unsigned busy_retries = 3;
};

// Receives each device's cycle: every reading of the requests due in that cycle, good or bad.
using CycleSink = std::function<void(const std::string& device_id, const std::string& link,
                                     std::vector<model::Reading>&& readings)>;

// Link and device state changes, for the health tracker. Each optional; called on the poller's
// executor.
struct PollHooks {
  // A link ("host:port" or a serial bus name) came up or went down, with the reason.
  std::function<void(const std::string& link, bool up, const std::string& reason)> link;
  // A device's cycle ended. failed: no request was answered (timeouts, lost link, 0A/0B);
  // reason: the first failure's reason. target_offline: a gateway said the device is absent.
  std::function<void(const std::string& device_id, bool failed, bool target_offline,
                     const std::string& reason)>
      cycle;
  // The round-trip time of an answered request.
  std::function<void(const std::string& link, std::chrono::microseconds rtt)> rtt;
  // A link-level error by kind (RTU: "crc", "wrong_unit", "timeout", "noise", "late_reply").
  std::function<void(const std::string& link, std::string_view kind)> error;
  // True while the readings cannot be taken (the pipeline is saturated): a cycle that falls due
  // then is not polled and counts as missed, so memory stays bounded and nothing read is lost.
  std::function<bool()> hold;
};

using adapters::WriteCallback;
using adapters::WriteError;
using adapters::WriteResult;

// Sends one request on the device's link; `done` is called exactly once, never inside the call.
using SendFunction = std::function<void(Request, std::function<void(const LinkResult&)>)>;

// One Modbus device's poll loop over a link it shares with others: the core's plan_reads()
// requests at their group intervals, one request of this device in flight at a time. Faults
// follow classify(): timeouts and 04 are retried once, 05/06 re-sent after a pause, 01/02/03
// split a merged read per item to find the misconfigured register (remembered; the rest is
// still read), 0A/0B mark the device offline, and a device failing offline_after cycles in a row
// is offline and polled at backoff rate. An unreachable device gives up the rest of its cycle,
// so it costs its link one timeout per cycle. Every failure leaves bad-quality readings with a
// reason, never a value.
//
// Writes queue behind the current cycle and run between cycles on the same link, through the
// same codec as reads (write.h); each is read back and a mismatch fails it. 05/06 on any step of a
// write is busy-retried like a read.
//
// Single-threaded: every call and callback on the executor given. Owned through shared_ptr
// (timers hold it); after stop() the sink and hooks are never called again.
class DevicePoller : public std::enable_shared_from_this<DevicePoller> {
 public:
  struct Identity {
    std::string device_id;
    const config::Profile* profile = nullptr;  // outlives the poller
    std::uint8_t unit = 1;
    std::string adapter;  // provenance: "modbus_tcp", "modbus_rtu"
    std::string link;     // provenance and hooks: "host:port", bus name
  };

  DevicePoller(boost::asio::any_io_executor io, Identity identity, SendFunction send,
               const PollOptions& options, common::Metrics& metrics, const common::Clock& clock,
               const CycleSink& sink, const PollHooks& hooks);

  void start();
  void stop();
  // Polls an offline device now (its link just came back).
  void poke();
  // Queues a write of `value` to `metric`; `done` is called exactly once, never inside write().
  void write(std::string_view metric, model::Value value, WriteCallback done);

  bool online() const { return online_; }
  const std::string& device_id() const { return id_.device_id; }

 private:
  // One unit of work in a cycle: a planned read, or one item of a split one.
  struct Work {
    ReadRequest read;
    std::size_t plan_index = 0;
    bool retried = false;
    unsigned busy = 0;
  };
  struct PendingWrite {
    const config::RegisterSpec* spec = nullptr;
    model::Value value;
    WriteCallback done;
    WritePlan plan;
  };

  ReadingContext context() const;
  void schedule();
  void tick();
  void next();
  void send(const Work& w);
  void on_result(const LinkResult& r);
  void finish();
  void apply_splits();
  void count_exception(const LinkResult& r);

  std::chrono::milliseconds busy_pause(unsigned attempt) const;
  void run_write();
  // Sends one step of the write in progress; 05/06 answers are re-sent after busy_pause().
  void send_write_step(Request request, std::function<void(const LinkResult&)> then,
                       unsigned busy = 0);
  void send_write();
  void read_back();
  void end_write(WriteResult result);

  boost::asio::any_io_executor io_;
  Identity id_;
  SendFunction send_;
  const PollOptions& options_;
  common::Metrics& metrics_;
  const common::Clock& clock_;
  const CycleSink& sink_;
  const PollHooks& hooks_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer busy_timer_;
  std::vector<ReadRequest> plan_;
  std::vector<std::chrono::steady_clock::time_point> next_due_;
  bool stopped_ = true;
  bool online_ = false;
  bool in_cycle_ = false;
  bool writing_ = false;
  unsigned failed_cycles_ = 0;

  // The current cycle.
  std::deque<Work> work_;
  std::vector<model::Reading> out_;
  std::map<std::size_t, std::vector<ReadRequest>> splits_;  // plan index -> per-item reads
  bool any_reply_ = false;
  bool any_failure_ = false;
  bool target_offline_ = false;
  std::string abandon_reason_;
  std::string first_failure_;

  std::deque<PendingWrite> writes_;

  // Schedule figures, shared by every device of the adapter (the benchmark reads them).
  common::Counter& cycles_;
  common::Counter& cycles_missed_;
  common::Histogram& cycle_lag_;
};

}  // namespace fieldhub::modbus
