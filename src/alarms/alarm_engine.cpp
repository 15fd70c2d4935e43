// SPDX-License-Identifier: Apache-2.0
#include "alarms/alarm_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/hash.h"
#include "common/log.h"
#include "common/utf8.h"

namespace fieldhub::alarms {

namespace {

constexpr std::size_t max_origins = 16;

int rank(model::Priority p) {
  return static_cast<int>(p);  // high 0, medium 1, low 2
}

// "code_blue" → "Code blue".
std::string humanize(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', ' ');
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string threshold_message(const config::AlarmRule& rule, const config::MetricSpec* spec,
                              double value) {
  std::string unit = spec != nullptr && !spec->unit.empty() ? " " + spec->unit : std::string();
  std::string m = rule.message.empty() ? std::string() : rule.message + ": ";
  m.append(rule.metric);
  m.append(" ").append(format_number(value)).append(unit);
  if (rule.above && value > *rule.above) {
    m.append(" above ").append(format_number(*rule.above)).append(unit);
  } else if (rule.below) {
    m.append(" below ").append(format_number(*rule.below)).append(unit);
  }
  return m;
}

std::uint64_t event_identity(const model::Event& e, std::uint64_t message_digest) {
  if (!e.source_ts_trusted) return message_digest;  // the same message redelivered
  return common::Fnv1a()
      .add(e.device_id)
      .add(std::string_view{"\0", 1})
      .add(e.type)
      .add(static_cast<std::uint64_t>(model::to_micros(e.source_ts)))
      .value();
}

std::string source_of(std::string_view device, std::string_view rule) {
  std::string s(device);
  s.append("/").append(rule);
  return s;
}

}  // namespace

AlarmEngine::AlarmEngine(const config::Config& config, const common::Clock& clock,
                         common::Metrics& metrics, AlarmJournal& journal, AlarmSink& sink)
    : config_(config),
      clock_(clock),
      journal_(journal),
      sink_(sink),
      raised_(metrics.counter("fieldhub_alarms_raised_total",
                              "Alarms raised (new, or reopened within the chatter window)")),
      redeliveries_(metrics.counter(
          "fieldhub_alarm_redeliveries_ignored_total",
          "Events that had already raised their alarm (a broker redelivery after a restart)")),
      renotified_(metrics.counter("fieldhub_alarm_renotifications_total",
                                  "Unacknowledged high alarms sounded again")),
      escalated_(metrics.counter("fieldhub_alarm_escalations_total",
                                 "Escalation tiers reached by unacknowledged alarms")),
      open_gauge_(metrics.gauge("fieldhub_alarms_open", "Alarms not yet cleared and closed")),
      unacked_gauge_(metrics.gauge("fieldhub_alarms_unacknowledged",
                                   "Alarms waiting for an acknowledgement")) {
  for (const auto& d : config.devices) {
    const config::Profile* p = config.profile(d.profile);
    if (p == nullptr || p->alarms.empty()) continue;
    DeviceRules dr;
    dr.device = &d;
    for (const auto& rule : p->alarms) {
      dr.rules.push_back(&rule);
      dr.has_thresholds |= rule.trigger == config::AlarmRule::Trigger::threshold;
    }
    devices_.emplace(d.id, std::move(dr));
  }
}

std::size_t AlarmEngine::restore() {
  JournalLoad loaded = journal_.load();
  const model::Timestamp now = clock_.now();
  for (auto& a : loaded.alarms) {
    next_id_ = std::max(next_id_, a.id + 1);
    last_change_ = std::max(last_change_, a.changed_at);
    if (a.open()) {
      open_[a.source] = a.id;
    } else if (a.cleared_at && *a.cleared_at + config_.alarms.chatter_window > now) {
      recent_[a.source] = a.id;
    } else {
      continue;
    }
    const std::uint64_t id = a.id;
    alarms_.emplace(id, std::move(a));
  }
  if (loaded.malformed > 0) {
    common::log(common::LogLevel::warn, "alarms",
                std::to_string(loaded.malformed) + " malformed lines skipped in " +
                    journal_.file().string() + " (a torn write at a crash is one)");
  }
  std::vector<const Alarm*> keep;
  for (const auto& [id, a] : alarms_) keep.push_back(&a);
  if (loaded.lines > keep.size()) journal_.compact(keep);
  std::int64_t unacked = 0;
  for (const auto& [id, a] : alarms_) unacked += a.unacked() ? 1 : 0;
  open_gauge_.set(static_cast<std::int64_t>(open_.size()));
  unacked_gauge_.set(unacked);
  common::log(
      common::LogLevel::info, "alarms",
      "restored " + std::to_string(open_.size()) + " open alarms from " + journal_.file().string());
  return open_.size();
}

Alarm* AlarmEngine::open_alarm(const std::string& source) {
  const auto it = open_.find(source);
  return it == open_.end() ? nullptr : &alarms_.at(it->second);
}

const Alarm* AlarmEngine::find(std::uint64_t id) const {
  const auto it = alarms_.find(id);
  return it == alarms_.end() ? nullptr : &it->second;
}

const config::AlarmRule* AlarmEngine::rule_of(const Alarm& a) const {
  const auto it = devices_.find(a.device);
  if (it == devices_.end()) return nullptr;
  for (const auto* rule : it->second.rules) {
    if (rule->name == a.type) return rule;
  }
  return nullptr;
}

void AlarmEngine::changed(Alarm& a, Change change, std::string_view by, std::string_view text) {
  // Strictly increasing, so every change is its own row in history (unique device, type, time).
  a.changed_at = std::max(clock_.now(), last_change_ + std::chrono::microseconds{1});
  last_change_ = a.changed_at;
  journal_.append(a);
  if (change == Change::raised) raise_mark_ = journal_.mark();
  std::int64_t unacked = 0;
  for (const auto& [source, id] : open_) unacked += alarms_.at(id).unacked() ? 1 : 0;
  open_gauge_.set(static_cast<std::int64_t>(open_.size()));
  unacked_gauge_.set(unacked);
  sink_.alarm_changed(a, change, by, text);
}

void AlarmEngine::close(Alarm& a, model::Timestamp at) {
  a.state = State::cleared;
  a.cleared_at = at;
  open_.erase(a.source);
  recent_[a.source] = a.id;
}

void AlarmEngine::raise(const config::AlarmRule* rule, const model::Device* device,
                        std::string_view link, std::string source, model::Timestamp at,
                        std::uint64_t origin, std::string message, std::string_view system_type) {
  const auto remember = [origin](Alarm& a) {
    if (origin == 0) return;
    if (a.origins.size() == max_origins) a.origins.erase(a.origins.begin());
    a.origins.push_back(origin);
  };
  const auto known = [origin](const Alarm& a) {
    return origin != 0 && std::find(a.origins.begin(), a.origins.end(), origin) != a.origins.end();
  };

  if (Alarm* a = open_alarm(source)) {
    if (known(*a)) {
      redeliveries_.inc();
      return;
    }
    remember(*a);
    ++a->count;
    a->normal = false;
    if (a->state == State::cleared_unacked) {
      // Active again before anyone acknowledged it: it sounds and escalates anew.
      a->state = State::active_unacked;
      a->cleared_at.reset();
      a->escalation_from = at;
      a->notified_at = at;
      a->tier = 0;
      a->priority = a->base_priority;
    }
    if (!message.empty()) a->message = std::move(message);
    changed(*a, Change::repeat);
    return;
  }

  const model::Priority priority = rule != nullptr       ? rule->priority
                                   : system_type.empty() ? config_.alarms.link_down
                                                         : config_.alarms.system;
  if (const auto it = recent_.find(source); it != recent_.end()) {
    Alarm& a = alarms_.at(it->second);
    if (known(a)) {
      redeliveries_.inc();
      return;
    }
    if (a.cleared_at && *a.cleared_at + config_.alarms.chatter_window > at) {
      // Chattering: the same alarm again, counted, not a new one.
      recent_.erase(it);
      remember(a);
      ++a.count;
      a.state = State::active_unacked;
      a.normal = false;
      a.cleared_at.reset();
      a.acked_at.reset();
      a.acked_by.clear();
      a.escalation_from = at;
      a.notified_at = at;
      a.tier = 0;
      a.priority = a.base_priority = priority;
      if (!message.empty()) a.message = std::move(message);
      open_[a.source] = a.id;
      raised_.inc();
      changed(a, Change::raised);
      return;
    }
    alarms_.erase(it->second);
    recent_.erase(it);
  }

  Alarm a;
  a.id = next_id_++;
  a.source = std::move(source);
  if (device != nullptr) {
    a.device = device->id;
    a.site = device->site;
    a.location = device->location;
  }
  a.link = std::string(link);
  if (rule == nullptr && !system_type.empty()) {
    a.kind = Kind::system;
    a.type = std::string(system_type);
  } else if (rule == nullptr) {
    a.kind = Kind::health;
    a.type = "link_down";
  } else {
    a.kind = rule->trigger == config::AlarmRule::Trigger::event       ? Kind::event
             : rule->trigger == config::AlarmRule::Trigger::threshold ? Kind::threshold
                                                                      : Kind::health;
    a.type = rule->name;
    a.latch = rule->latch;
  }
  a.priority = a.base_priority = priority;
  a.message = !message.empty()                            ? std::move(message)
              : rule != nullptr && !rule->message.empty() ? rule->message
                                                          : humanize(a.type);
  a.raised_at = a.escalation_from = a.notified_at = a.changed_at = at;
  remember(a);
  const std::uint64_t id = a.id;
  open_[a.source] = id;
  Alarm& stored = alarms_.emplace(id, std::move(a)).first->second;
  raised_.inc();
  changed(stored, Change::raised);
}

void AlarmEngine::to_normal(const std::string& source, model::Timestamp at) {
  pending_.erase(source);
  Alarm* a = open_alarm(source);
  if (a == nullptr || a->normal) return;
  a->normal = true;
  if (a->latch) {
    changed(*a, Change::normal);
    return;
  }
  if (a->state == State::active_unacked) {
    a->state = State::cleared_unacked;  // stays on the console until acknowledged
    a->cleared_at = at;
  } else if (a->state == State::active_acked) {
    close(*a, at);
  }
  changed(*a, Change::cleared);
}

void AlarmEngine::on_events(std::span<const model::Event> events, std::uint64_t message_digest) {
  for (const auto& e : events) {
    const auto it = devices_.find(e.device_id);
    if (it == devices_.end()) continue;
    const DeviceRules& dr = it->second;
    for (const auto* rule : dr.rules) {
      if (rule->trigger != config::AlarmRule::Trigger::event) continue;
      if (rule->event == e.type) {
        raise(rule, dr.device, {}, source_of(e.device_id, rule->name), e.received_ts,
              event_identity(e, message_digest), {});
      } else if (rule->clear_event == e.type) {
        to_normal(source_of(e.device_id, rule->name), e.received_ts);
      }
    }
  }
}

void AlarmEngine::threshold(const DeviceRules& dr, const config::AlarmRule& rule,
                            const model::Reading& r) {
  const double* value = std::get_if<double>(&r.value);
  if (value == nullptr || r.quality == model::Quality::bad) return;
  const double v = *value;
  const bool in = (rule.above && v > *rule.above) || (rule.below && v < *rule.below);
  std::string source = source_of(r.device_id, rule.name);
  if (!in) {
    pending_.erase(source);
    const bool normal = (!rule.above || v <= *rule.above - rule.deadband) &&
                        (!rule.below || v >= *rule.below + rule.deadband);
    if (normal) to_normal(source, r.received_ts);
    return;
  }
  if (const Alarm* a = open_alarm(source); a != nullptr && !a->normal) return;  // still in alarm
  const config::Profile* profile = config_.profile(dr.device->profile);
  const config::MetricSpec* spec = profile != nullptr ? profile->metric(rule.metric) : nullptr;
  if (rule.hold.count() > 0) {
    const auto [it, inserted] =
        pending_.try_emplace(source, Pending{r.received_ts, &rule, dr.device, v});
    it->second.value = v;
    if (inserted || r.received_ts - it->second.since < rule.hold) return;
    pending_.erase(it);
  }
  raise(&rule, dr.device, {}, std::move(source), r.received_ts, 0,
        threshold_message(rule, spec, v));
}

void AlarmEngine::on_readings(std::span<const model::Reading> readings) {
  const std::string* last = nullptr;
  const DeviceRules* dr = nullptr;
  for (const auto& r : readings) {
    if (last == nullptr || *last != r.device_id) {
      last = &r.device_id;
      const auto it = devices_.find(r.device_id);
      dr = it == devices_.end() || !it->second.has_thresholds ? nullptr : &it->second;
    }
    if (dr == nullptr) continue;
    for (const auto* rule : dr->rules) {
      if (rule->trigger == config::AlarmRule::Trigger::threshold && rule->metric == r.metric) {
        threshold(*dr, *rule, r);
      }
    }
  }
}

void AlarmEngine::on_device_health(const health::HealthChange& c) {
  const auto it = devices_.find(std::string(c.device));
  if (it == devices_.end()) return;
  const DeviceRules& dr = it->second;
  for (const auto* rule : dr.rules) {
    if (rule->trigger != config::AlarmRule::Trigger::health) continue;
    const bool bad = rule->event == "offline"
                         ? c.to == health::State::offline
                         : c.to == health::State::stale || c.to == health::State::offline;
    std::string source = source_of(c.device, rule->name);
    if (bad) {
      // Devices behind a link that went down are one link alarm, not one alarm each.
      if (c.reason == health::reason::link_down) continue;
      std::string message = rule->message.empty() ? humanize(rule->name) : rule->message;
      if (!c.reason.empty()) message.append(" (").append(c.reason).append(")");
      raise(rule, dr.device, {}, std::move(source), c.at, 0, std::move(message));
    } else if (c.to == health::State::online) {
      to_normal(source, c.at);
    }
  }
}

void AlarmEngine::on_link(const health::LinkChange& c) {
  if (config_.alarms.link_down == model::Priority::none) return;
  std::string source = "link:" + std::string(c.link);
  if (c.to == health::LinkState::down) {
    std::string message = "Link down: " + std::string(c.link);
    if (!c.reason.empty()) message.append(" (").append(c.reason).append(")");
    raise(nullptr, nullptr, c.link, std::move(source), c.at, 0, std::move(message));
  } else if (c.to == health::LinkState::up) {
    to_normal(source, c.at);
  }
}

void AlarmEngine::on_system(std::string_view component, bool ok, std::string_view state,
                            model::Timestamp at) {
  if (config_.alarms.system == model::Priority::none) return;
  std::string source = "system:" + std::string(component);
  if (ok) {
    to_normal(source, at);
    return;
  }
  std::string type = std::string(component) + "_degraded";
  // "degraded: writes failing" → "History degraded: writes failing".
  std::string message = humanize(type);
  if (const auto colon = state.find(": "); colon != std::string_view::npos) {
    message.append(": ").append(state.substr(colon + 2));
  }
  raise(nullptr, nullptr, {}, std::move(source), at, 0, std::move(message), type);
}

void AlarmEngine::tick(model::Timestamp now) {
  // Threshold conditions that have now held long enough.
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Pending p = it->second;
    if (now - p.since < p.rule->hold) {
      ++it;
      continue;
    }
    std::string source = it->first;
    it = pending_.erase(it);
    const config::Profile* profile = config_.profile(p.device->profile);
    const config::MetricSpec* spec = profile != nullptr ? profile->metric(p.rule->metric) : nullptr;
    raise(p.rule, p.device, {}, std::move(source), now, 0,
          threshold_message(*p.rule, spec, p.value));
  }

  for (const auto& [source, id] : open_) {
    Alarm& a = alarms_.at(id);
    if (a.shelved_until && now >= *a.shelved_until) {
      a.shelved_until.reset();
      a.shelved_by.clear();
      changed(a, Change::unshelved, "system", "shelving expired");
    }
    if (a.shelved() || a.state != State::active_unacked) continue;
    const config::AlarmRule* rule = rule_of(a);
    bool sounded = false;
    while (rule != nullptr && a.tier < rule->escalate.size() &&
           now >= a.escalation_from + rule->escalate[a.tier]) {
      ++a.tier;
      if (a.tier == 1 && rule->escalate_priority) a.priority = *rule->escalate_priority;
      a.notified_at = now;
      sounded = true;
      escalated_.inc();
      changed(a, Change::escalated);
    }
    const auto renotify = rule != nullptr ? rule->renotify : std::chrono::milliseconds{0};
    if (!sounded && a.priority == model::Priority::high && renotify.count() > 0 &&
        now >= a.notified_at + renotify) {
      a.notified_at = now;
      renotified_.inc();
      changed(a, Change::renotify);
    }
  }

  // Closed alarms leave memory once a repeat could no longer reopen them (they are history).
  for (auto it = recent_.begin(); it != recent_.end();) {
    const Alarm& a = alarms_.at(it->second);
    if (a.cleared_at && *a.cleared_at + config_.alarms.chatter_window > now) {
      ++it;
      continue;
    }
    alarms_.erase(it->second);
    it = recent_.erase(it);
  }
  if (journal_.lines_written() > 1000 + 4 * alarms_.size()) {
    std::vector<const Alarm*> keep;
    for (const auto& [id, a] : alarms_) keep.push_back(&a);
    journal_.compact(keep);
  }
}

ActionResult AlarmEngine::checked(std::uint64_t id, std::string_view by, std::string_view text,
                                  Alarm*& out) {
  const auto it = alarms_.find(id);
  if (it == alarms_.end()) {
    return ActionError{ActionError::Code::not_found, "no alarm " + std::to_string(id)};
  }
  if (by.empty() || by.size() > max_operator_bytes || !common::is_valid_utf8(by)) {
    return ActionError{ActionError::Code::bad_request,
                       "field 'by': the operator's name, 1 to 100 bytes of UTF-8"};
  }
  if (text.size() > max_comment_bytes || !common::is_valid_utf8(text)) {
    return ActionError{ActionError::Code::bad_request,
                       "field 'comment': at most 2000 bytes of UTF-8"};
  }
  out = &it->second;
  return *out;
}

ActionResult AlarmEngine::ack(std::uint64_t id, std::string_view by, std::string_view comment) {
  Alarm* a = nullptr;
  if (auto r = checked(id, by, comment, a); !r.ok()) return r;
  if (!a->unacked()) {
    return ActionError{ActionError::Code::conflict,
                       a->open() ? "alarm already acknowledged" : "alarm is closed"};
  }
  const model::Timestamp now = clock_.now();
  a->acked_at = now;
  a->acked_by = std::string(by);
  if (!comment.empty()) a->comments.push_back({std::string(by), now, std::string(comment)});
  const config::AlarmRule* rule = rule_of(*a);
  const bool momentary =
      a->kind == Kind::event && !a->latch && (rule == nullptr || rule->clear_event.empty());
  if (a->state == State::cleared_unacked || momentary) {
    // Nothing will return it to normal later: acknowledging closes it.
    close(*a, now);
  } else {
    a->state = State::active_acked;
  }
  changed(*a, Change::acked, by, comment);
  return *a;
}

ActionResult AlarmEngine::reset(std::uint64_t id, std::string_view by, std::string_view comment) {
  Alarm* a = nullptr;
  if (auto r = checked(id, by, comment, a); !r.ok()) return r;
  if (!a->latch || a->state != State::active_acked) {
    return ActionError{ActionError::Code::conflict,
                       "only an acknowledged latched alarm can be reset"};
  }
  const model::Timestamp now = clock_.now();
  if (!comment.empty()) a->comments.push_back({std::string(by), now, std::string(comment)});
  close(*a, now);
  changed(*a, Change::reset, by, comment);
  return *a;
}

ActionResult AlarmEngine::shelve(std::uint64_t id, std::string_view by, model::Timestamp until,
                                 std::string_view comment) {
  Alarm* a = nullptr;
  if (auto r = checked(id, by, comment, a); !r.ok()) return r;
  const model::Timestamp now = clock_.now();
  if (until <= now || until > now + std::chrono::hours{24}) {
    return ActionError{ActionError::Code::bad_request,
                       "field 'minutes': shelving lasts from 1 minute to 24 hours"};
  }
  if (!a->open()) return ActionError{ActionError::Code::conflict, "alarm is closed"};
  a->shelved_until = until;
  a->shelved_by = std::string(by);
  if (!comment.empty()) a->comments.push_back({std::string(by), now, std::string(comment)});
  changed(*a, Change::shelved, by, comment);
  return *a;
}

ActionResult AlarmEngine::unshelve(std::uint64_t id, std::string_view by) {
  Alarm* a = nullptr;
  if (auto r = checked(id, by, {}, a); !r.ok()) return r;
  if (!a->shelved()) return ActionError{ActionError::Code::conflict, "alarm is not shelved"};
  a->shelved_until.reset();
  a->shelved_by.clear();
  changed(*a, Change::unshelved, by, {});
  return *a;
}

ActionResult AlarmEngine::comment(std::uint64_t id, std::string_view by, std::string_view text) {
  Alarm* a = nullptr;
  if (auto r = checked(id, by, text, a); !r.ok()) return r;
  if (text.empty()) return ActionError{ActionError::Code::bad_request, "field 'text': required"};
  if (a->comments.size() >= max_comments) {
    return ActionError{ActionError::Code::conflict, "alarm has too many comments"};
  }
  a->comments.push_back({std::string(by), clock_.now(), std::string(text)});
  changed(*a, Change::comment, by, text);
  return *a;
}

std::vector<const Alarm*> AlarmEngine::list(const AlarmFilter& f) const {
  std::vector<const Alarm*> out;
  for (const auto& [id, a] : alarms_) {
    const bool in_scope = f.scope == AlarmFilter::Scope::all      ? true
                          : f.scope == AlarmFilter::Scope::open   ? a.open()
                          : f.scope == AlarmFilter::Scope::active ? a.active()
                                                                  : a.unacked();
    if (!in_scope) continue;
    if (f.priority && a.priority != *f.priority) continue;
    if (!f.site.empty() && a.site != f.site) continue;
    if (!f.device.empty() && a.device != f.device) continue;
    out.push_back(&a);
  }
  std::sort(out.begin(), out.end(), [](const Alarm* x, const Alarm* y) {
    if (rank(x->priority) != rank(y->priority)) return rank(x->priority) < rank(y->priority);
    if (x->unacked() != y->unacked()) return x->unacked();
    if (x->raised_at != y->raised_at) return x->raised_at > y->raised_at;
    return x->id > y->id;
  });
  if (out.size() > f.limit) out.resize(f.limit);
  return out;
}

}  // namespace fieldhub::alarms
