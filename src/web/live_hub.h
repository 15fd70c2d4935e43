// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "model/event.h"
#include "model/reading.h"
#include "stores/live_store.h"

namespace fieldhub::web {

// Where one live session's frames go. The WebSocket session implements it; tests use a fake.
// Called on the io executor. Implementations must not call back into the LiveHub from inside
// send() or close_slow(); they report completion later (on_sent, detach).
class LiveSink {
 public:
  virtual ~LiveSink() = default;
  // Starts writing one text frame; the hub never has more than one outstanding per sink. When
  // the write completes the sink calls LiveHub::on_sent(id); on failure it calls detach(id).
  virtual void send(std::shared_ptr<const std::string> frame) = 0;
  // The hub gave up on this client (too far behind). Drop the connection at once, without a
  // closing handshake (its write is stalled); the client reconnects and resyncs. The sink
  // still calls detach(id) when its socket operations have ended.
  virtual void close_slow() = 0;
};

// What a session subscribed to: empty fields match everything.
struct LiveFilter {
  std::string device;
  std::string site;
};

struct LiveHubLimits {
  std::size_t max_event_backlog = 10000;      // queued events+status frames; past it: close
  std::size_t max_pending_readings = 100000;  // distinct device+metric keys waiting per session
  std::size_t max_items_per_frame = 1000;     // readings per batched frame
  std::chrono::milliseconds write_stall = std::chrono::seconds{30};  // one write longer: close
};

// The live feed's fan-out to dashboard sessions.
// Threads: everything runs on the io executor (a single thread): the pipeline calls publish_*,
// the WebSocket sessions call attach/on_sent/detach, the server's 1 s timer calls heartbeat().
// publish_* never block and do O(sessions × records) work: each session has its own queue.
// Per session, frames go out in this order of precedence: events and status frames (FIFO,
// never dropped or merged), then a pending heartbeat, then telemetry. Telemetry waiting while
// the session is busy writing is coalesced to the newest value per device+metric, so a slow
// client gets fewer, newer frames and memory stays bounded by the number of metrics. A session
// whose event backlog passes max_event_backlog, or whose write has stalled for write_stall, is
// closed (counted) without affecting the others.
class LiveHub {
 public:
  using SessionId = std::uint64_t;
  static constexpr std::chrono::milliseconds heartbeat_interval{1000};

  LiveHub(const config::Config& config, const stores::LiveStore& live, common::Metrics& metrics,
          const common::Clock& clock, LiveHubLimits limits = {});
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  // Registers a session and queues its "hello" and a snapshot of the live state (filtered), so
  // a reconnecting client resyncs. The sink must stay valid until detach().
  SessionId attach(LiveSink& sink, LiveFilter filter);
  // A frame every new session gets right after its snapshot (the open alarms), made at attach.
  void set_attach_frame(std::function<std::string()> make) { attach_frame_ = std::move(make); }
  void detach(SessionId id);
  // The sink's last send() completed: the next frame, if any, is sent now.
  void on_sent(SessionId id);

  void publish_readings(std::span<const model::Reading> readings);
  void publish_event(const model::Event& event);
  // A status change (health, alarms) for every session, as a complete JSON object frame with its
  // own "type" member. Never dropped, like events.
  void publish_status(std::string_view json);

  // Called every heartbeat_interval: queues a {"type":"heartbeat"} frame for every session (at
  // most one waits per session) and closes sessions whose write has stalled.
  void heartbeat();

  std::size_t session_count() const { return sessions_.size(); }
  std::string_view site_of(std::string_view device_id) const;

 private:
  struct PendingReading {
    std::shared_ptr<const std::string> item;  // rendered JSON object
    model::Timestamp ts;
  };
  struct Session {
    LiveSink* sink = nullptr;
    LiveFilter filter;
    bool busy = false;
    bool closed = false;
    model::Timestamp busy_since;
    std::deque<std::shared_ptr<const std::string>> urgent;  // hello, snapshot, events, status
    // Telemetry waiting to be sent, coalesced by device '\x1f' metric. A newer value replaces the
    // waiting one in place, keeping its turn: frames take the oldest-waiting first, so no
    // device starves behind busier ones.
    std::unordered_map<std::string, PendingReading> readings;
    std::deque<std::string> reading_order;  // keys in order of first arrival
    // Health changes waiting, the newest per device (a link dropping takes thousands of devices
    // offline at once: they must not fill the event lane and close the session as slow).
    std::unordered_map<std::string, std::shared_ptr<const std::string>> health;
    std::deque<std::string> health_order;
    bool heartbeat_pending = false;
  };

  bool matches(const LiveFilter& f, std::string_view device_id, std::string_view site) const;
  void queue_urgent(Session& s, std::shared_ptr<const std::string> frame);
  void pump(Session& s);
  void close_slow(Session& s);
  std::string render_snapshot(const LiveFilter& filter) const;

  const stores::LiveStore& live_;
  const common::Clock& clock_;
  std::function<std::string()> attach_frame_;
  LiveHubLimits limits_;
  std::unordered_map<std::string, std::string> site_by_device_;
  std::map<SessionId, Session> sessions_;
  SessionId next_id_ = 1;

  common::Gauge& sessions_gauge_;
  common::Counter& frames_sent_;
  common::Counter& readings_coalesced_;
  common::Counter& health_coalesced_;
  common::Counter& closed_slow_;
};

}  // namespace fieldhub::web
