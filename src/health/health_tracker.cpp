// SPDX-License-Identifier: Apache-2.0
#include "health/health_tracker.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <limits>

namespace fieldhub::health {

namespace {

constexpr std::int64_t us_per_ms = 1000;

// Observations closer than this are one report (a message fanned out into several records).
constexpr std::int64_t same_report_us = 10 * us_per_ms;

bool deadline_after(const auto& a, const auto& b) {
  return a.at_us > b.at_us;
}

void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char n = s[++i];
    out += n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n;
  }
  return out;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    std::size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) return fields;
    start = tab + 1;
  }
}

constexpr std::string_view snapshot_header = "fieldhub-health 1";

}  // namespace

std::string_view to_string(State s) {
  switch (s) {
    case State::unknown:
      return "unknown";
    case State::online:
      return "online";
    case State::stale:
      return "stale";
    case State::offline:
      return "offline";
  }
  return "unknown";
}

std::optional<State> parse_state(std::string_view text) {
  for (State s : {State::unknown, State::online, State::stale, State::offline}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view to_string(LinkState s) {
  switch (s) {
    case LinkState::unknown:
      return "unknown";
    case LinkState::up:
      return "up";
    case LinkState::down:
      return "down";
  }
  return "unknown";
}

HealthTracker::HealthTracker(const common::Clock& clock, Thresholds thresholds)
    : clock_(clock), t_(thresholds) {
  intern("");  // reason 0: none
  for (std::string_view r : {reason::data, reason::timeout, reason::never_seen, reason::link_down,
                             reason::gateway_offline, reason::failed_cycles, reason::recovering}) {
    intern(r);
  }
}

std::uint16_t HealthTracker::intern(std::string_view why) {
  if (auto it = reason_ids_.find(why); it != reason_ids_.end()) return it->second;
  if (reasons_.size() >= max_reasons) return intern("other");
  const std::string& stored = reasons_.emplace_back(why);
  auto id = static_cast<std::uint16_t>(reasons_.size() - 1);
  reason_ids_.emplace(stored, id);
  return id;
}

std::uint32_t HealthTracker::find_link(std::string_view name) const {
  auto it = links_by_name_.find(name);
  return it == links_by_name_.end() ? npos : it->second;
}

std::uint32_t HealthTracker::link_index(std::string_view name) {
  if (std::uint32_t i = find_link(name); i != npos) return i;
  Link& l = links_.emplace_back();
  l.name = name;
  l.since_us = model::to_micros(clock_.now());
  auto i = static_cast<std::uint32_t>(links_.size() - 1);
  links_by_name_.emplace(l.name, i);
  return i;
}

void HealthTracker::register_link(std::string_view link) {
  link_index(link);
}

HealthTracker::DeviceRef HealthTracker::register_device(std::string_view id,
                                                        std::chrono::milliseconds expected_interval,
                                                        std::string_view link,
                                                        std::string_view gateway, Cadence cadence) {
  std::uint32_t index;
  if (auto it = by_id_.find(id); it != by_id_.end()) {
    index = it->second;
  } else {
    Entry& e = devices_.emplace_back();
    e.id = id;
    e.since_us = model::to_micros(clock_.now());
    index = static_cast<std::uint32_t>(devices_.size() - 1);
    by_id_.emplace(e.id, index);
    ++counts_[static_cast<std::size_t>(State::unknown)];
    if (auto w = waiting_for_gateway_.find(e.id); w != waiting_for_gateway_.end()) {
      auto& behind = behind_gateway_[index];
      for (std::uint32_t child : w->second) {
        devices_[child].gateway = index;
        behind.push_back(child);
      }
      waiting_for_gateway_.erase(w);
    }
  }
  Entry& e = devices_[index];
  e.declared_ms = static_cast<std::uint32_t>(std::clamp<std::int64_t>(
      expected_interval.count(), 0, std::numeric_limits<std::int32_t>::max()));
  e.cadence = cadence;

  std::uint32_t new_link = link.empty() ? npos : link_index(link);
  if (new_link != e.link) {
    if (e.link != npos) std::erase(links_[e.link].devices, index);
    if (new_link != npos) links_[new_link].devices.push_back(index);
    e.link = new_link;
  }

  std::uint32_t new_gateway = npos;
  if (!gateway.empty() && gateway != id) {
    if (auto g = by_id_.find(gateway); g != by_id_.end()) new_gateway = g->second;
  }
  if (new_gateway != e.gateway || (new_gateway == npos && !gateway.empty())) {
    if (e.gateway != npos) std::erase(behind_gateway_[e.gateway], index);
    for (auto& [name, waiting] : waiting_for_gateway_) std::erase(waiting, index);
    e.gateway = new_gateway;
    if (new_gateway != npos) {
      behind_gateway_[new_gateway].push_back(index);
    } else if (!gateway.empty() && gateway != id) {
      waiting_for_gateway_[std::string(gateway)].push_back(index);
    }
  }
  arm(index);
  return DeviceRef{index};
}

HealthTracker::DeviceRef HealthTracker::find(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? DeviceRef{} : DeviceRef{it->second};
}

// --- thresholds and deadlines ---

std::int64_t HealthTracker::interval_us(const Entry& e) const {
  if (e.declared_ms != 0) return std::int64_t{e.declared_ms} * us_per_ms;
  if (e.learned_ms != 0) return std::int64_t{e.learned_ms} * us_per_ms;
  return std::chrono::duration_cast<std::chrono::microseconds>(t_.unlearned_interval).count();
}

std::int64_t HealthTracker::stale_after_us(const Entry& e) const {
  auto grace = std::chrono::duration_cast<std::chrono::microseconds>(t_.grace).count();
  return static_cast<std::int64_t>(static_cast<double>(interval_us(e)) * t_.stale_after_intervals) +
         grace;
}

std::int64_t HealthTracker::offline_after_us(const Entry& e) const {
  auto grace = std::chrono::duration_cast<std::chrono::microseconds>(t_.grace).count();
  double factor = e.cadence == Cadence::polled ? t_.polled_offline_after_intervals
                                               : t_.push_offline_after_intervals;
  return static_cast<std::int64_t>(static_cast<double>(interval_us(e)) * factor) + grace;
}

std::int64_t HealthTracker::deadline_for(const Entry& e) const {
  std::int64_t base = e.last_seen_us == never ? e.since_us : e.last_seen_us;
  switch (e.state) {
    case State::unknown:
      return e.since_us + offline_after_us(e);
    case State::online:
      return base + stale_after_us(e);
    case State::stale:
      return base + offline_after_us(e);
    case State::offline:
      return no_deadline;
  }
  return no_deadline;
}

// Pushes a heap entry only when the deadline moves earlier. A later deadline is found lazily:
// the old entry comes due, expire() sees the device is not due yet and re-arms it.
void HealthTracker::arm(std::uint32_t index) {
  Entry& e = devices_[index];
  std::int64_t d = deadline_for(e);
  if (d == no_deadline || d >= e.armed_us) return;
  e.armed_us = d;
  heap_.push_back(Deadline{d, index});
  std::push_heap(heap_.begin(), heap_.end(),
                 [](const Deadline& a, const Deadline& b) { return deadline_after(a, b); });
}

std::optional<model::Timestamp> HealthTracker::next_deadline() const {
  if (heap_.empty()) return std::nullopt;
  return model::from_micros(heap_.front().at_us);
}

void HealthTracker::learn_gap(Entry& e, std::int64_t gap_us) {
  if (gap_us < same_report_us) return;
  auto max_ms = t_.max_learned_interval.count();
  auto gap_ms = static_cast<std::uint32_t>(std::min<std::int64_t>(gap_us / us_per_ms, max_ms));
  e.gaps_ms[e.gap_next] = gap_ms;
  e.gap_next = static_cast<std::uint8_t>((e.gap_next + 1) % gap_ring);
  if (e.gap_count < gap_ring) ++e.gap_count;
  if (e.gap_count < 2) return;
  // Upper median of the recent gaps: one lost report or one burst does not move it, and with
  // few samples it errs long (late "stale" rather than false "stale").
  std::array<std::uint32_t, gap_ring> sorted = e.gaps_ms;
  auto mid = sorted.begin() + e.gap_count / 2;
  std::nth_element(sorted.begin(), mid, sorted.begin() + e.gap_count);
  e.learned_ms = static_cast<std::uint32_t>(std::clamp<std::int64_t>(
      *mid, t_.min_learned_interval.count(), t_.max_learned_interval.count()));
}

// --- transitions ---

void HealthTracker::transition(std::uint32_t index, State to, std::uint16_t why,
                               std::int64_t at_us) {
  Entry& e = devices_[index];
  e.reason = why;
  if (e.state == to) return;
  State from = e.state;
  --counts_[static_cast<std::size_t>(from)];
  ++counts_[static_cast<std::size_t>(to)];
  e.state = to;
  e.since_us = at_us;
  ++transitions_;
  if (on_change_) {
    on_change_(HealthChange{e.id, from, to, reason_text(why), model::from_micros(at_us)});
  }
}

bool HealthTracker::blocked(const Entry& e) const {
  return (e.link != npos && links_[e.link].state == LinkState::down) ||
         (e.gateway != npos && devices_[e.gateway].hard_offline);
}

std::uint16_t HealthTracker::block_reason(const Entry& e) const {
  if (e.link != npos && links_[e.link].state == LinkState::down) {
    return reason_ids_.at(reason::link_down);
  }
  return reason_ids_.at(reason::gateway_offline);
}

void HealthTracker::force_offline(std::uint32_t index, std::uint16_t why, std::int64_t at_us) {
  // Worklist, not recursion: gateways may chain.
  std::vector<std::pair<std::uint32_t, std::uint16_t>> work{{index, why}};
  std::uint16_t gateway_reason = intern(reason::gateway_offline);
  while (!work.empty()) {
    auto [i, r] = work.back();
    work.pop_back();
    Entry& e = devices_[i];
    bool was_hard = e.hard_offline;
    e.hard_offline = true;
    e.failed_cycles = 0;
    e.recover_count = 0;
    transition(i, State::offline, r, at_us);
    if (was_hard) continue;
    if (auto it = behind_gateway_.find(i); it != behind_gateway_.end()) {
      for (std::uint32_t child : it->second) {
        if (!devices_[child].hard_offline) work.emplace_back(child, gateway_reason);
      }
    }
  }
}

void HealthTracker::note_timeout_leave(Entry& e, std::int64_t now_us) {
  auto window =
      static_cast<std::int64_t>(static_cast<double>(interval_us(e)) * t_.flap_window_intervals);
  if (e.left_online_us != never && now_us - e.left_online_us <= window) {
    if (e.flaps < 255) ++e.flaps;
  } else {
    e.flaps = 1;
  }
  e.left_online_us = now_us;
}

void HealthTracker::expire(std::uint32_t index, std::int64_t now_us) {
  Entry& e = devices_[index];
  std::int64_t due = deadline_for(e);
  if (due == no_deadline) return;
  if (due > now_us) {
    arm(index);
    return;
  }
  std::int64_t base = e.last_seen_us == never ? e.since_us : e.last_seen_us;
  switch (e.state) {
    case State::unknown:
      transition(index, State::offline, intern(reason::never_seen), now_us);
      break;
    case State::online: {
      note_timeout_leave(e, now_us);
      // Long overdue (a restore after downtime, a stalled timer): straight to offline.
      State to = now_us - base >= offline_after_us(e) ? State::offline : State::stale;
      transition(index, to, intern(reason::timeout), now_us);
      break;
    }
    case State::stale:
      transition(index, State::offline, intern(reason::timeout), now_us);
      break;
    case State::offline:
      break;
  }
  arm(index);
}

std::size_t HealthTracker::advance(model::Timestamp now) {
  std::int64_t now_us = model::to_micros(now);
  std::uint64_t before = transitions_;
  auto later = [](const Deadline& a, const Deadline& b) { return deadline_after(a, b); };
  while (!heap_.empty() && heap_.front().at_us <= now_us) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    Deadline d = heap_.back();
    heap_.pop_back();
    Entry& e = devices_[d.index];
    if (e.armed_us != d.at_us) continue;  // superseded by an earlier deadline
    e.armed_us = no_deadline;
    expire(d.index, now_us);
  }
  return static_cast<std::size_t>(transitions_ - before);
}

// --- inputs ---

bool HealthTracker::observe(std::string_view id, model::Timestamp received) {
  DeviceRef ref = find(id);
  if (!ref) return false;
  observe(ref, received);
  return true;
}

void HealthTracker::observe(DeviceRef ref, model::Timestamp received) {
  assert(ref.index < devices_.size());
  Entry& e = devices_[ref.index];
  std::int64_t now_us = model::to_micros(received);
  std::int64_t previous = e.last_seen_us;
  if (blocked(e)) {
    // Data through a dead link or gateway (buffered, or relayed by a gateway that lost its
    // uplink) proves nothing about the device: it stays offline.
    e.last_seen_us = std::max(previous, now_us);
    if (e.state != State::offline) force_offline(ref.index, block_reason(e), now_us);
    return;
  }
  if (previous != never && now_us > previous && e.declared_ms == 0 && !e.hard_offline) {
    learn_gap(e, now_us - previous);
  }
  e.last_seen_us = std::max(previous, now_us);
  e.failed_cycles = 0;
  e.hard_offline = false;
  if (e.state == State::online) {
    arm(ref.index);  // pushes only if a shorter learned interval moved the deadline earlier
    return;
  }
  if (e.flaps >= t_.flap_limit) {
    bool on_time = previous != never && now_us - previous <= stale_after_us(e);
    bool recovering = e.state == State::stale && reason_text(e.reason) == reason::recovering;
    e.recover_count = recovering && on_time ? static_cast<std::uint8_t>(e.recover_count + 1) : 1;
    if (e.recover_count < t_.recover_reports) {
      transition(ref.index, State::stale, intern(reason::recovering), now_us);
      arm(ref.index);
      return;
    }
    // Back, but on probation: one more timeout within the flap window makes it flapping again.
    e.flaps = static_cast<std::uint8_t>(t_.flap_limit - 1);
  }
  e.recover_count = 0;
  transition(ref.index, State::online, intern(reason::data), now_us);
  arm(ref.index);
}

void HealthTracker::device_offline(std::string_view id, std::string_view why) {
  DeviceRef ref = find(id);
  if (!ref) return;
  force_offline(ref.index, intern(why), model::to_micros(clock_.now()));
}

void HealthTracker::device_online(std::string_view id) {
  observe(id, clock_.now());
}

void HealthTracker::cycle_failed(std::string_view id, std::string_view why) {
  DeviceRef ref = find(id);
  if (!ref) return;
  Entry& e = devices_[ref.index];
  if (e.state == State::offline) return;
  if (e.failed_cycles < 255) ++e.failed_cycles;
  std::int64_t now_us = model::to_micros(clock_.now());
  std::uint16_t r = intern(why.empty() ? reason::failed_cycles : why);
  if (e.failed_cycles >= t_.offline_after_failed_cycles) {
    if (e.state == State::online) note_timeout_leave(e, now_us);
    transition(ref.index, State::offline, r, now_us);
  } else if (e.failed_cycles >= t_.stale_after_failed_cycles && e.state != State::stale) {
    if (e.state == State::online) note_timeout_leave(e, now_us);
    transition(ref.index, State::stale, r, now_us);
    arm(ref.index);
  }
}

void HealthTracker::link_up(std::string_view name) {
  std::uint32_t i = link_index(name);
  Link& l = links_[i];
  if (l.state == LinkState::up) return;
  LinkState from = l.state;
  l.state = LinkState::up;
  l.since_us = model::to_micros(clock_.now());
  l.reason = 0;
  if (on_link_change_) {
    on_link_change_(LinkChange{l.name, from, l.state, "", model::from_micros(l.since_us)});
  }
}

void HealthTracker::link_down(std::string_view name, std::string_view why) {
  std::uint32_t i = link_index(name);
  std::int64_t now_us = model::to_micros(clock_.now());
  {
    Link& l = links_[i];
    l.reason = intern(why);
    if (l.state == LinkState::down) return;
    LinkState from = l.state;
    l.state = LinkState::down;
    l.since_us = now_us;
    ++l.downs;
    if (on_link_change_) {
      on_link_change_(
          LinkChange{l.name, from, l.state, reason_text(l.reason), model::from_micros(now_us)});
    }
  }
  std::uint16_t r = intern(reason::link_down);
  for (std::uint32_t d : links_[i].devices) force_offline(d, r, now_us);
}

void HealthTracker::link_reconnect_attempt(std::string_view name) {
  ++links_[link_index(name)].reconnect_attempts;
}

void HealthTracker::link_error(std::string_view name, std::string_view kind) {
  auto& errors = links_[link_index(name)].errors;
  for (auto& [k, n] : errors) {
    if (k == kind) {
      ++n;
      return;
    }
  }
  errors.emplace_back(std::string(kind), 1);
}

void HealthTracker::link_rtt(std::string_view name, std::chrono::microseconds rtt) {
  RttStats& s = links_[link_index(name)].rtt;
  if (s.samples == 0) {
    s.min = s.max = s.mean = rtt;
  } else {
    s.min = std::min(s.min, rtt);
    s.max = std::max(s.max, rtt);
    s.mean += (rtt - s.mean) / 8;
  }
  s.last = rtt;
  ++s.samples;
}

// --- queries ---

DeviceHealth HealthTracker::view(const Entry& e) const {
  DeviceHealth h;
  h.id = e.id;
  h.state = e.state;
  h.since = model::from_micros(e.since_us);
  if (e.last_seen_us != never) h.last_seen = model::from_micros(e.last_seen_us);
  h.expected_interval = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::microseconds(interval_us(e)));
  h.interval_declared = e.declared_ms != 0;
  h.interval_learned = e.declared_ms == 0 && e.learned_ms != 0;
  h.reason = reason_text(e.reason);
  if (e.link != npos) h.link = links_[e.link].name;
  if (e.gateway != npos) h.gateway = devices_[e.gateway].id;
  return h;
}

LinkHealth HealthTracker::view(const Link& l) const {
  LinkHealth h;
  h.name = l.name;
  h.state = l.state;
  h.since = model::from_micros(l.since_us);
  h.reason = reason_text(l.reason);
  h.reconnect_attempts = l.reconnect_attempts;
  h.downs = l.downs;
  h.errors = l.errors;
  h.rtt = l.rtt;
  h.devices = l.devices.size();
  return h;
}

std::optional<DeviceHealth> HealthTracker::device(std::string_view id) const {
  DeviceRef ref = find(id);
  if (!ref) return std::nullopt;
  return view(devices_[ref.index]);
}

std::vector<DeviceHealth> HealthTracker::devices(std::optional<State> only) const {
  std::vector<DeviceHealth> out;
  for (const Entry& e : devices_) {
    if (!only || e.state == *only) out.push_back(view(e));
  }
  return out;
}

HealthSummary HealthTracker::summary() const {
  HealthSummary s;
  s.counts = counts_;
  for (const Link& l : links_) s.links.push_back(view(l));
  return s;
}

std::optional<LinkHealth> HealthTracker::link(std::string_view name) const {
  std::uint32_t i = find_link(name);
  if (i == npos) return std::nullopt;
  return view(links_[i]);
}

LinkState HealthTracker::link_state(std::string_view name) const {
  std::uint32_t i = find_link(name);
  return i == npos ? LinkState::unknown : links_[i].state;
}

std::vector<Activity> HealthTracker::activity(std::string_view name) const {
  std::vector<Activity> out;
  std::uint32_t i = find_link(name);
  if (i == npos) return out;
  out.reserve(links_[i].devices.size());
  for (std::uint32_t d : links_[i].devices) {
    const Entry& e = devices_[d];
    Activity a;
    if (e.declared_ms != 0 || e.learned_ms != 0) {
      a.expected_interval =
          std::chrono::milliseconds(e.declared_ms != 0 ? e.declared_ms : e.learned_ms);
    }
    if (e.last_seen_us != never) a.last_seen = model::from_micros(e.last_seen_us);
    a.expected_silent = e.hard_offline || blocked(e);
    out.push_back(a);
  }
  return out;
}

// --- snapshot ---

// One line per device that is not unknown:
//   d <id> <state> <since µs> <last seen µs or -> <learned ms> <flaps> <hard 0|1> <reason>
// tab-separated, with \\ \t \n \r escaped in the text fields.
std::string HealthTracker::snapshot() const {
  std::string out;
  out.reserve(64 + devices_.size() * 64);
  out += snapshot_header;
  out += '\n';
  for (const Entry& e : devices_) {
    if (e.state == State::unknown) continue;
    out += "d\t";
    append_escaped(out, e.id);
    out += '\t';
    out += to_string(e.state);
    out += '\t';
    out += std::to_string(e.since_us);
    out += '\t';
    out += e.last_seen_us == never ? std::string("-") : std::to_string(e.last_seen_us);
    out += '\t';
    out += std::to_string(e.declared_ms == 0 ? e.learned_ms : 0);
    out += '\t';
    out += std::to_string(e.flaps);
    out += '\t';
    out += e.hard_offline ? '1' : '0';
    out += '\t';
    append_escaped(out, reason_text(e.reason));
    out += '\n';
  }
  return out;
}

RestoreResult HealthTracker::restore(std::string_view text, model::Timestamp now) {
  RestoreResult result;
  std::int64_t now_us = model::to_micros(now);
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (first) {
      first = false;
      if (line != snapshot_header) {
        ++result.malformed_lines;
        return result;  // another format or version: start fresh rather than misread it
      }
      continue;
    }
    if (line.empty()) continue;
    auto f = split_tabs(line);
    std::optional<State> state = f.size() == 9 ? parse_state(f[2]) : std::nullopt;
    std::int64_t since = 0, last_seen = never;
    std::uint32_t learned = 0;
    unsigned flaps = 0;
    if (f.size() != 9 || f[0] != "d" || !state || !parse_number(f[3], since) ||
        (f[4] != "-" && !parse_number(f[4], last_seen)) || !parse_number(f[5], learned) ||
        !parse_number(f[6], flaps) || (f[7] != "0" && f[7] != "1")) {
      ++result.malformed_lines;
      continue;
    }
    DeviceRef ref = find(unescape(f[1]));
    if (!ref) {
      ++result.unknown_devices;
      continue;
    }
    Entry& e = devices_[ref.index];
    --counts_[static_cast<std::size_t>(e.state)];
    ++counts_[static_cast<std::size_t>(*state)];
    e.state = *state;
    // A clock that went backwards across the restart must not leave times in the future.
    e.since_us = std::min(since, now_us);
    e.last_seen_us = last_seen == never ? never : std::min(last_seen, now_us);
    e.flaps = static_cast<std::uint8_t>(std::min(flaps, 255u));
    e.hard_offline = f[7] == "1";
    e.reason = intern(unescape(f[8]));
    if (learned != 0 && e.declared_ms == 0) {
      // Seed the learning ring so the learned interval holds until new gaps replace it.
      e.gaps_ms.fill(0);
      for (std::size_t k = 0; k < 3; ++k) e.gaps_ms[k] = learned;
      e.gap_count = 3;
      e.gap_next = 3;
      e.learned_ms = learned;
    }
    arm(ref.index);
    ++result.restored;
  }
  return result;
}

}  // namespace fieldhub::health
