// SPDX-License-Identifier: Apache-2.0
#include "alarms/alarm.h"

#include <array>

namespace fieldhub::alarms {

namespace {

constexpr std::array<std::string_view, 4> state_names = {"active_unacked", "active_acked",
                                                         "cleared_unacked", "cleared"};
constexpr std::array<std::string_view, 4> kind_names = {"event", "threshold", "health", "system"};
constexpr std::array<std::string_view, 11> change_names = {
    "raised",  "repeat",    "acked",   "cleared",  "normal",   "reset",
    "shelved", "unshelved", "comment", "renotify", "escalated"};

std::string_view sv(const std::string& s) {
  return s;
}

void optional_time(common::JsonWriter& w, std::string_view key,
                   const std::optional<model::Timestamp>& t) {
  if (t) {
    w.field(key, *t);
  } else {
    w.key(key).null();
  }
}

void optional_text(common::JsonWriter& w, std::string_view key, const std::string& s) {
  if (s.empty()) {
    w.key(key).null();
  } else {
    w.field(key, sv(s));
  }
}

}  // namespace

std::string_view to_string(State s) {
  return state_names[static_cast<std::size_t>(s)];
}
std::string_view to_string(Kind k) {
  return kind_names[static_cast<std::size_t>(k)];
}
std::string_view to_string(Change c) {
  return change_names[static_cast<std::size_t>(c)];
}

std::optional<State> parse_state(std::string_view text) {
  for (std::size_t i = 0; i < state_names.size(); ++i) {
    if (state_names[i] == text) return static_cast<State>(i);
  }
  return std::nullopt;
}

std::optional<Kind> parse_kind(std::string_view text) {
  for (std::size_t i = 0; i < kind_names.size(); ++i) {
    if (kind_names[i] == text) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

std::string place_of(std::string_view site, const model::Location& location) {
  std::string place(site);
  for (const auto& [level, name] : location) {
    if (!place.empty()) place += " / ";
    place.append(level).append(" ").append(name);
  }
  return place;
}

void write_alarm(common::JsonWriter& w, const Alarm& a) {
  w.begin_object().key("id").value(std::to_string(a.id));
  optional_text(w, "device", a.device);
  if (!a.link.empty()) w.field("link", sv(a.link));
  w.field("site", sv(a.site));
  w.key("location").begin_object();
  if (!a.site.empty()) w.field("site", sv(a.site));
  for (const auto& [level, name] : a.location) w.field(level, sv(name));
  w.end_object();
  w.key("place").value(a.kind == Kind::system ? std::string("fieldhub")
                       : a.link.empty()       ? place_of(a.site, a.location)
                                              : "link " + a.link);
  w.field("kind", to_string(a.kind)).field("type", sv(a.type));
  w.field("priority", model::to_string(a.priority)).field("state", to_string(a.state));
  w.field("latched", a.latch).field("normal", a.normal);
  w.field("shelved", a.shelved());
  optional_time(w, "shelved_until", a.shelved_until);
  optional_text(w, "shelved_by", a.shelved_by);
  w.field("message", sv(a.message));
  w.field("raised_at", a.raised_at).field("changed_at", a.changed_at);
  optional_time(w, "acked_at", a.acked_at);
  optional_text(w, "acked_by", a.acked_by);
  optional_time(w, "cleared_at", a.cleared_at);
  w.field("count", static_cast<std::uint64_t>(a.count));
  w.field("tier", static_cast<std::uint64_t>(a.tier));
  w.field("notified_at", a.notified_at);
  w.key("comments").begin_array();
  for (const auto& c : a.comments) {
    w.begin_object().field("by", sv(c.by)).field("at", c.at).field("text", sv(c.text)).end_object();
  }
  w.end_array().end_object();
}

}  // namespace fieldhub::alarms
