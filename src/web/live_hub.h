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
#include <utility>
#include <vector>

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

// What a session subscribed to. Empty site/devices match everything; alarm and status frames go
// to every session whatever its filter.
struct LiveFilter {
  std::string site;
  std::vector<std::string> devices;  // sorted, unique
  // false: no telemetry (no snapshot, no readings frames): events, health and alarms only — what
  // an alarm console needs.
  bool telemetry = true;
  // Telemetry at most this often: the newest value per device+metric over each interval, in one
  // frame (a board showing thousands of devices needs a few updates a second, not every reading).
  // 0: every telemetry tick. Parsed from `interval_ms` (0, or tick..max_interval).
  std::chrono::milliseconds interval{0};

  bool operator==(const LiveFilter&) const = default;
};

// The longest telemetry interval a session may ask for.
inline constexpr std::chrono::milliseconds max_live_interval{10000};

// The filter in a feed URL's query (?site=&device=&devices=a,b&telemetry=off&interval_ms=250),
// or an error message naming the parameter. Repeated or unknown parameters are errors.
struct LiveFilterParse {
  LiveFilter filter;
  std::string error;  // empty: ok
};
LiveFilterParse parse_live_filter(std::span<const std::pair<std::string, std::string>> query);

struct LiveHubLimits {
  std::size_t max_event_backlog = 10000;      // queued events+status frames; past it: close
  std::size_t max_pending_readings = 100000;  // distinct device+metric keys waiting per session
  std::size_t max_items_per_frame = 1000;     // readings per telemetry frame
  std::size_t max_keys = 1000000;             // distinct device+metric keys the hub interns
  std::chrono::milliseconds write_stall = std::chrono::seconds{30};  // one write longer: close
  // Telemetry published within one tick goes out as one frame per session filter, shared by
  // every session with that filter (used when a flush scheduler is set).
  std::chrono::milliseconds telemetry_tick{10};
};

// The live feed's fan-out to dashboard sessions.
// Threads: everything runs on the io executor (a single thread): the pipeline calls publish_*,
// the WebSocket sessions call attach/on_sent/on_message/detach, the server's timers call
// heartbeat() and flush_telemetry().
// Telemetry: publish_readings() renders each reading once into the hub's batches (one per
// telemetry interval the sessions asked for, the tick's included: the newest per device+metric;
// O(readings × intervals), independent of the number of sessions) and asks the flush scheduler
// for a flush when the earliest batch is due (one telemetry_tick later for the tick's batch).
// flush_telemetry() sends the tick's batch and every interval batch that is due, each rendered
// once per distinct session filter into shared frames; a session that has sent everything before
// gets those frames, a session still behind (its earlier telemetry unsent) merges the batch into
// its own queue of the newest value per device+metric (coalesced: fewer, newer frames, memory
// bounded by the number of metrics). Without a flush scheduler every publish is flushed at once.
// Events and status frames never wait for the tick: they are queued at once and, per session,
// go out ahead of everything else (FIFO, never dropped or merged); then a pending heartbeat,
// then health changes (newest per device), then telemetry. A session whose event backlog passes
// max_event_backlog, or whose write has stalled for write_stall, is closed (counted) without
// affecting the others.
class LiveHub {
 public:
  using SessionId = std::uint64_t;
  static constexpr std::chrono::milliseconds heartbeat_interval{1000};

  LiveHub(const config::Config& config, const stores::LiveStore& live, common::Metrics& metrics,
          const common::Clock& clock, LiveHubLimits limits = {});
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  // Registers a session and queues its "hello" and, if it wants telemetry, a snapshot of the live
  // state (filtered), so a reconnecting client resyncs. The sink must stay valid until detach().
  SessionId attach(LiveSink& sink, LiveFilter filter);
  // A frame every new session gets right after its snapshot (the open alarms, the system
  // status), made at attach; several go out in the order they were added.
  void add_attach_frame(std::function<std::string()> make) {
    attach_frames_.push_back(std::move(make));
  }
  // Who runs flush_telemetry(): called with the delay when telemetry starts waiting (at most once
  // until the next flush_telemetry()). An empty function: telemetry is flushed at each publish.
  void set_flush_scheduler(std::function<void(std::chrono::milliseconds)> schedule);
  void detach(SessionId id);
  // The sink's last send() completed: the next frame, if any, is sent now.
  void on_sent(SessionId id);
  // A text message from the client: {"type":"subscribe", "site"?, "devices"?, "telemetry"?}
  // replaces the session's filter (absent members: everything) and is answered by "subscribed"
  // and, with telemetry, a new snapshot. Anything else: an "error" frame, counted.
  void on_message(SessionId id, std::string_view text);

  void publish_readings(std::span<const model::Reading> readings);
  void publish_event(const model::Event& event);
  // A status change (health, alarms) for every session, as a complete JSON object frame with its
  // own "type" member. Never dropped, like events.
  void publish_status(std::string_view json);
  // Sends the telemetry batched since the last flush (see the class comment).
  void flush_telemetry();

  // Called every heartbeat_interval: queues a {"type":"heartbeat"} frame for every session (at
  // most one waits per session) and closes sessions whose write has stalled.
  void heartbeat();

  std::size_t session_count() const { return sessions_.size(); }
  std::string_view site_of(std::string_view device_id) const;

 private:
  using Key = std::uint32_t;  // an interned device+metric
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
  struct DeviceInfo {
    std::string site;
    NameMap<Key> keys;  // metric → key
  };
  // One reading waiting for the next flush: rendered once, shared by every session.
  struct BatchItem {
    Key key;
    std::string_view device;  // the devices_ map's key: stable
    const DeviceInfo* info;
    model::Timestamp ts;
    std::shared_ptr<const std::string> json;
  };
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
    // Telemetry frames of the last flush, shared with the other sessions of the same filter.
    std::deque<std::shared_ptr<const std::string>> telemetry;
    // Telemetry of later flushes while the session was behind, coalesced by key. A newer value
    // replaces the waiting one in place, keeping its turn: frames take the oldest-waiting first,
    // so no device starves behind busier ones.
    std::unordered_map<Key, PendingReading> readings;
    std::deque<Key> reading_order;  // keys in order of first arrival
    // Health changes waiting, the newest per device (a link dropping takes thousands of devices
    // offline at once: they must not fill the event lane and close the session as slow).
    std::unordered_map<std::string, std::shared_ptr<const std::string>> health;
    std::deque<std::string> health_order;
    bool heartbeat_pending = false;
  };

  bool matches(const LiveFilter& f, std::string_view device_id, std::string_view site) const;
  // The readings waiting for one telemetry interval.
  struct Batch {
    std::vector<BatchItem> items;
    // Per key: its index in items + 1, or 0 when the key is not in this batch (grown on use).
    std::vector<std::uint32_t> slot;
    model::Timestamp due;      // when the items go out (set when the first one arrives)
    std::size_t sessions = 0;  // open sessions with this interval that want telemetry
  };

  // The map entry (its key is stable: batch items point at it).
  std::pair<const std::string, DeviceInfo>& device_entry(std::string_view device_id);
  // A session starts (+1) or stops (-1) wanting telemetry with this filter.
  void count_telemetry(const LiveFilter& filter, int delta);
  void set_filter(Session& s, LiveFilter filter);
  void queue_urgent(Session& s, std::shared_ptr<const std::string> frame);
  void merge_batch(Session& s, const Batch& batch);
  std::vector<std::shared_ptr<const std::string>> render_batch(const LiveFilter& filter,
                                                               const Batch& batch) const;
  void flush_batch(std::chrono::milliseconds interval, Batch& batch);
  // Asks the scheduler for a flush when the earliest waiting batch is due (or flushes now
  // without a scheduler).
  void request_flush();
  void pump(Session& s);
  void close_slow(Session& s);
  std::string render_snapshot(const LiveFilter& filter) const;

  const stores::LiveStore& live_;
  const common::Clock& clock_;
  std::vector<std::function<std::string()>> attach_frames_;
  std::function<void(std::chrono::milliseconds)> schedule_flush_;
  bool flush_scheduled_ = false;
  model::Timestamp flush_due_;  // when the scheduled flush runs
  LiveHubLimits limits_;
  NameMap<DeviceInfo> devices_;
  Key next_key_ = 0;
  // By interval; 0 is the tick's batch (sessions that take every tick).
  std::map<std::chrono::milliseconds, Batch> batches_;
  std::map<SessionId, Session> sessions_;
  SessionId next_id_ = 1;

  common::Gauge& sessions_gauge_;
  common::Counter& frames_sent_;
  common::Counter& telemetry_frames_rendered_;
  common::Counter& readings_coalesced_;
  common::Counter& health_coalesced_;
  common::Counter& closed_slow_;
  common::Counter& client_errors_;
};

}  // namespace fieldhub::web
