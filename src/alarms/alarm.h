// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "model/device.h"
#include "model/event.h"
#include "model/time.h"

namespace fieldhub::alarms {

// ISA-18.2 states. "cleared" is closed: it leaves the console and is history.
enum class State : std::uint8_t { active_unacked, active_acked, cleared_unacked, cleared };
enum class Kind : std::uint8_t { event, threshold, health, system };
// What happened to an alarm: each change is pushed on the live feed and stored in history.
enum class Change : std::uint8_t {
  raised,     // a new alarm, or a closed one reopened within the chatter window
  repeat,     // its source raised again while it was open: count + 1
  acked,      // an operator acknowledged it
  cleared,    // its source returned to normal, or an acknowledgement closed it
  normal,     // a latched alarm's source returned to normal: it stays active until reset
  reset,      // an operator reset a latched alarm
  shelved,    // hidden and silenced until an expiry
  unshelved,  // by an operator or at the expiry
  comment,
  renotify,   // still unacknowledged: sound again now
  escalated,  // the next escalation tier (maybe a higher priority)
};

std::string_view to_string(State s);
std::string_view to_string(Kind k);
std::string_view to_string(Change c);
std::optional<State> parse_state(std::string_view text);
std::optional<Kind> parse_kind(std::string_view text);

struct Comment {
  std::string by;
  model::Timestamp at;
  std::string text;
};

struct Alarm {
  std::uint64_t id = 0;
  // "<device>/<rule>", "link:<link>" or "system:<component>": one open alarm per source
  std::string source;
  std::string device;  // empty for a link alarm
  std::string link;    // link alarms
  std::string site;
  model::Location location;
  Kind kind = Kind::event;
  std::string
      type;  // the rule's name: code_blue, call, temperature_high, device_offline, link_down
  model::Priority priority = model::Priority::medium;
  model::Priority base_priority = model::Priority::medium;
  State state = State::active_unacked;
  bool latch = false;   // needs an operator reset after its source returns to normal
  bool normal = false;  // its source has returned to normal (a latched alarm stays active)
  std::string message;
  model::Timestamp raised_at;
  model::Timestamp changed_at;
  model::Timestamp escalation_from;  // tiers count from here (the raise or the reopening)
  model::Timestamp notified_at;      // last time it sounded (raise, renotify, escalation)
  std::optional<model::Timestamp> acked_at;
  std::string acked_by;
  std::optional<model::Timestamp> cleared_at;
  std::optional<model::Timestamp> shelved_until;
  std::string shelved_by;
  std::uint32_t count = 1;
  std::uint32_t tier = 0;
  std::vector<Comment> comments;
  std::vector<std::uint64_t> origins;  // identities of the events that raised it (redeliveries)

  bool open() const { return state != State::cleared; }
  bool active() const { return state == State::active_unacked || state == State::active_acked; }
  bool unacked() const { return state == State::active_unacked || state == State::cleared_unacked; }
  bool shelved() const { return shelved_until.has_value(); }
};

// "st-mary / ward 3 / room 12 / bed 2": the place an operator goes to.
std::string place_of(std::string_view site, const model::Location& location);

// The alarm as the API and the live feed show it (docs in src/web/README.md).
void write_alarm(common::JsonWriter& w, const Alarm& a);

}  // namespace fieldhub::alarms
