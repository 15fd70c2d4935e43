// SPDX-License-Identifier: Apache-2.0
#include "web/system_status.h"

#include "common/json_writer.h"

namespace fieldhub::web {

void SystemStatus::add(std::string name, bool critical, std::function<Probe()> probe) {
  components_.push_back({.name = std::move(name), .critical = critical, .probe = std::move(probe)});
}

bool SystemStatus::poll(model::Timestamp now) {
  bool changed = !polled_;
  for (Component& c : components_) {
    Probe p = c.probe();
    if (!polled_ || p.ok != c.last.ok || p.state != c.last.state) {
      changed = true;
      c.since = now;
      c.last = std::move(p);
      if (on_change_) on_change_(c.name, c.last, now);
    }
  }
  polled_ = true;
  return changed;
}

bool SystemStatus::ok() const {
  for (const Component& c : components_) {
    if (c.critical && !c.last.ok) return false;
  }
  return true;
}

std::string SystemStatus::frame() const {
  std::string out;
  common::JsonWriter w(out);
  w.begin_object().field("type", "system").field("ok", ok());
  w.key("components").begin_object();
  for (const Component& c : components_) {
    w.key(c.name).begin_object();
    w.field("ok", c.last.ok).field("state", c.last.state).field("since", c.since);
    w.end_object();
  }
  w.end_object().end_object();
  return out;
}

HealthReport SystemStatus::report() const {
  HealthReport r;
  r.ok = ok();
  for (const Component& c : components_) r.components.emplace_back(c.name, c.last.state);
  return r;
}

}  // namespace fieldhub::web
