// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "alarms/alarm.h"
#include "alarms/alarm_journal.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/result.h"
#include "config/config.h"
#include "health/health_tracker.h"
#include "pipeline/pipeline.h"

namespace fieldhub::alarms {

// Where alarm changes go: the live feed (every console) and history (the audit trail). `by` is the
// operator for acked/reset/shelved/unshelved/comment ("system" for an expiry), `text` the comment.
class AlarmSink {
 public:
  virtual ~AlarmSink() = default;
  virtual void alarm_changed(const Alarm& alarm, Change change, std::string_view by,
                             std::string_view text) = 0;
};

struct ActionError {
  enum class Code : std::uint8_t { not_found, conflict, bad_request };
  Code code = Code::bad_request;
  std::string message;
};
using ActionResult = common::Result<Alarm, ActionError>;

struct AlarmFilter {
  enum class Scope : std::uint8_t { open, active, unacked, all };
  Scope scope = Scope::open;
  std::optional<model::Priority> priority;
  std::string site;
  std::string device;
  std::size_t limit = 1000;
};

// The alarm engine: rules from the devices' profiles turn events, readings and health changes
// into alarms, and carries each alarm through its ISA-18.2 lifecycle, re-notification and
// escalation. Operators act through ack/shelve/unshelve/comment/reset.
//
// Threads: everything on the io executor, like the pipeline that feeds it; it never waits on a
// store. Its state is its own journal (alarm_journal.h), written before the message that raised
// an alarm is acknowledged, so alarms, their timers and their audit survive a restart or a kill
// whatever the history store is doing. Every change also goes to the sink (feed + history).
// Cost: a reading costs one hash lookup of its device when the device has no threshold rule.
class AlarmEngine final : public pipeline::RecordObserver, public pipeline::DurabilityGate {
 public:
  static constexpr std::size_t max_comment_bytes = 2000;
  static constexpr std::size_t max_operator_bytes = 100;
  static constexpr std::size_t max_comments = 200;

  AlarmEngine(const config::Config& config, const common::Clock& clock, common::Metrics& metrics,
              AlarmJournal& journal, AlarmSink& sink);

  // Rebuilds the alarms from the journal (call once, before anything else); returns how many
  // open alarms it restored.
  std::size_t restore();

  // pipeline::RecordObserver: accepted records, right after the live feed got them.
  void on_events(std::span<const model::Event> events, std::uint64_t message_digest) override;
  void on_readings(std::span<const model::Reading> readings) override;

  void on_device_health(const health::HealthChange& change);
  void on_link(const health::LinkChange& change);
  // fieldhub's own component (web::SystemStatus: "history", "live") changed state: not ok raises
  // a technical alarm "<component>_degraded" (priority [alarms] system), ok returns it to normal.
  void on_system(std::string_view component, bool ok, std::string_view state, model::Timestamp at);

  // Timers: re-notification, escalation, shelving expiry, threshold hold times. Call it often
  // (every 250-500 ms); each call is O(open alarms + pending thresholds).
  void tick(model::Timestamp now);

  ActionResult ack(std::uint64_t id, std::string_view by, std::string_view comment);
  ActionResult reset(std::uint64_t id, std::string_view by, std::string_view comment);
  ActionResult shelve(std::uint64_t id, std::string_view by, model::Timestamp until,
                      std::string_view comment);
  ActionResult unshelve(std::uint64_t id, std::string_view by);
  ActionResult comment(std::uint64_t id, std::string_view by, std::string_view text);

  const Alarm* find(std::uint64_t id) const;
  // Sorted as a console shows them: high first, unacknowledged first, newest first.
  std::vector<const Alarm*> list(const AlarmFilter& filter) const;
  std::size_t open_count() const { return open_.size(); }

  // pipeline::DurabilityGate: only a raised (new or reopened) alarm holds its message's
  // acknowledgement until the journal has it; a repeat, escalation or clear does not (after a
  // crash the broker's redelivery would at most recount a repeat), so a chattering source never
  // ties ingest to the journal's fsync.
  std::uint64_t mark() const override { return raise_mark_; }
  std::uint64_t durable() const override { return journal_.durable(); }

 private:
  struct DeviceRules {
    const model::Device* device = nullptr;
    std::vector<const config::AlarmRule*> rules;
    bool has_thresholds = false;
  };
  struct Pending {  // a threshold condition waiting for its hold time
    model::Timestamp since;
    const config::AlarmRule* rule = nullptr;
    const model::Device* device = nullptr;
    double value = 0;
  };

  // rule null: a link alarm, or with system_type a system alarm of that type.
  void raise(const config::AlarmRule* rule, const model::Device* device, std::string_view link,
             std::string source, model::Timestamp at, std::uint64_t origin, std::string message,
             std::string_view system_type = {});
  void to_normal(const std::string& source, model::Timestamp at);
  void threshold(const DeviceRules& dr, const config::AlarmRule& rule, const model::Reading& r);
  Alarm* open_alarm(const std::string& source);
  void changed(Alarm& a, Change change, std::string_view by = {}, std::string_view text = {});
  void close(Alarm& a, model::Timestamp at);
  ActionResult checked(std::uint64_t id, std::string_view by, std::string_view text, Alarm*& out);
  const config::AlarmRule* rule_of(const Alarm& a) const;

  const config::Config& config_;
  const common::Clock& clock_;
  AlarmJournal& journal_;
  AlarmSink& sink_;
  std::unordered_map<std::string, DeviceRules> devices_;
  std::uint64_t next_id_ = 1;
  model::Timestamp last_change_{};
  std::uint64_t raise_mark_ = 0;  // the journal's mark after the last raise  // changes get
                                  // strictly increasing times (unique audit keys)
  std::map<std::uint64_t, Alarm> alarms_;                  // open + recently closed
  std::unordered_map<std::string, std::uint64_t> open_;    // source → open alarm
  std::unordered_map<std::string, std::uint64_t> recent_;  // source → closed within the window
  std::unordered_map<std::string, Pending> pending_;       // source → threshold in hold time
  common::Counter& raised_;
  common::Counter& redeliveries_;
  common::Counter& renotified_;
  common::Counter& escalated_;
  common::Gauge& open_gauge_;
  common::Gauge& unacked_gauge_;
};

}  // namespace fieldhub::alarms
