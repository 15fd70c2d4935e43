// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/time.h"
#include "web/api.h"

namespace fieldhub::web {

// What an operator must know about fieldhub itself, beside the devices: is history being written,
// does live state reach Redis, is the broker session up. Each component is a probe the
// composition root supplies; poll() re-reads them (io executor, every 500 ms) and says whether
// anything changed, so the change goes to every dashboard as one "system" frame at once and a new
// dashboard gets the current frame right after its snapshot. GET /healthz reads the same state.
//
// A component that is not ok and `critical` makes /healthz answer 503 ("degraded"); a non-critical
// one (live state on Redis: the in-process mirror keeps serving) is shown but keeps 200.
class SystemStatus {
 public:
  struct Probe {
    bool ok = true;
    std::string state;  // "ok", "up", or why not: "degraded: writes failing"
  };

  void add(std::string name, bool critical, std::function<Probe()> probe);
  // Called from poll() for every component whose state changed (at the first poll: every one).
  void on_change(
      std::function<void(const std::string& name, const Probe& now, model::Timestamp at)> handler) {
    on_change_ = std::move(handler);
  }

  // Re-reads every probe; a component whose state changed gets `now` as its `since`. True if
  // anything changed since the last poll (the first poll always counts as a change).
  bool poll(model::Timestamp now);

  // {"type":"system","ok":bool,"components":{"<name>":{"ok":bool,"state":"…","since":"…"},…}}
  std::string frame() const;
  HealthReport report() const;

 private:
  struct Component {
    std::string name;
    bool critical = true;
    std::function<Probe()> probe;
    Probe last;
    model::Timestamp since{};
  };
  bool ok() const;

  std::vector<Component> components_;
  std::function<void(const std::string&, const Probe&, model::Timestamp)> on_change_;
  bool polled_ = false;
};

}  // namespace fieldhub::web
