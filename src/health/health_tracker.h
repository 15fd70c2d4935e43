// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "model/time.h"

namespace fieldhub::health {

// One state machine per device (docs/decisions/0006-health-model.md).
//   unknown: registered, never seen since (or since start without a snapshot).
//   online:  reported within its stale threshold, its link is up and its gateway is not offline.
//   stale:   missed its stale threshold, or recovering from flapping.
//   offline: missed its offline threshold, said so itself (last will, status message), its link
//            went down or its gateway went offline.
enum class State : std::uint8_t { unknown, online, stale, offline };
inline constexpr std::size_t state_count = 4;

std::string_view to_string(State s);
std::optional<State> parse_state(std::string_view text);

// How a device's data arrives: pushed by the device (MQTT, WebSocket, BLE) or fetched by a poll
// cycle (Modbus). Polled devices go offline after fewer missed intervals (RELIABILITY.md: offline
// after 3 failed cycles) and can report failed cycles explicitly.
enum class Cadence : std::uint8_t { push, polled };

enum class LinkState : std::uint8_t { unknown, up, down };
std::string_view to_string(LinkState s);

// Stable reasons, so they can be counted and filtered on.
namespace reason {
inline constexpr std::string_view data = "data";              // a fresh observation
inline constexpr std::string_view timeout = "timeout";        // silent past a threshold
inline constexpr std::string_view never_seen = "never seen";  // unknown past offline threshold
inline constexpr std::string_view link_down = "link down";    // its link went down
inline constexpr std::string_view gateway_offline = "gateway offline";
inline constexpr std::string_view failed_cycles = "failed cycles";  // polled: N cycles failed
inline constexpr std::string_view recovering = "recovering";        // flapping: waiting for K
}  // namespace reason

// A transition. The views are valid only during the callback: copy what you keep.
struct HealthChange {
  std::string_view device;
  State from;
  State to;
  std::string_view reason;
  model::Timestamp at;
};

struct LinkChange {
  std::string_view link;
  LinkState from;
  LinkState to;
  std::string_view reason;
  model::Timestamp at;
};

// The thresholds. Defaults follow RELIABILITY.md (Modbus poll 1 s: offline after 3 failed cycles,
// within 5 s) and keep a slow device (one report per 10 min) online for 20 min + grace.
struct Thresholds {
  double stale_after_intervals = 2.0;
  double push_offline_after_intervals = 5.0;
  double polled_offline_after_intervals = 3.0;
  // Explicitly reported failed poll cycles (cycle_failed): stale after this many in a row…
  int stale_after_failed_cycles = 2;
  // …offline after this many in a row.
  int offline_after_failed_cycles = 3;
  // Added to every threshold: transport and scheduling jitter.
  std::chrono::milliseconds grace{1000};
  // Used for an undeclared interval until two gaps have been observed. Conservative on purpose:
  // a false "stale" is worse than a late one while nothing is known.
  std::chrono::milliseconds unlearned_interval{std::chrono::minutes(5)};
  // Bounds on a learned interval.
  std::chrono::milliseconds min_learned_interval{1000};
  std::chrono::milliseconds max_learned_interval{std::chrono::hours(24)};
  // Flapping: a device that timed out of "online" this many times, each within flap_window
  // intervals of the last, needs recover_reports consecutive on-time reports to be online again.
  int flap_limit = 3;
  double flap_window_intervals = 20.0;
  int recover_reports = 3;
};

struct DeviceHealth {
  std::string id;
  State state = State::unknown;
  model::Timestamp since{};
  std::optional<model::Timestamp> last_seen;
  std::chrono::milliseconds expected_interval{0};  // effective: declared, learned or default
  bool interval_declared = false;
  bool interval_learned = false;
  std::string reason;
  std::string link;
  std::string gateway;
};

struct RttStats {
  std::uint64_t samples = 0;
  std::chrono::microseconds last{0};
  std::chrono::microseconds min{0};
  std::chrono::microseconds max{0};
  std::chrono::microseconds mean{0};  // exponentially weighted (alpha 1/8, as TCP's SRTT)
};

struct LinkHealth {
  std::string name;
  LinkState state = LinkState::unknown;
  model::Timestamp since{};
  std::string reason;
  std::uint64_t reconnect_attempts = 0;
  std::uint64_t downs = 0;
  std::vector<std::pair<std::string, std::uint64_t>> errors;  // by kind, in first-seen order
  RttStats rtt;
  std::size_t devices = 0;
};

struct HealthSummary {
  std::array<std::size_t, state_count> counts{};  // indexed by State
  std::size_t count(State s) const { return counts[static_cast<std::size_t>(s)]; }
  std::vector<LinkHealth> links;
};

struct RestoreResult {
  std::size_t restored = 0;
  std::size_t unknown_devices = 0;  // in the snapshot but not registered now: ignored
  std::size_t malformed_lines = 0;
};

// One device's recent activity, for the subscription watchdog.
struct Activity {
  std::chrono::milliseconds expected_interval{0};
  std::optional<model::Timestamp> last_seen;
  bool expected_silent = false;  // said it is offline, or its link/gateway is down
};

// Tracks every device's health and every link's state.
//
// Runs on the io thread only; no locking. Time: observations carry their receipt time, advance()
// takes the timer's now, everything else reads the injected clock. After each call, the
// transitions it caused have been delivered to the change sink, in order.
//
// Cost: observe() is a hash lookup (or none with a DeviceRef) and a few stores: no allocation and
// no deadline work for a known device. Deadlines live in one min-heap with lazy re-arming: an
// observation only moves last_seen; when a device's old deadline comes due, advance() recomputes
// it and re-arms if the device reported meanwhile. So a device costs about one heap operation per
// two intervals, and advance() touches only due entries.
class HealthTracker {
 public:
  using ChangeSink = std::function<void(const HealthChange&)>;
  using LinkSink = std::function<void(const LinkChange&)>;
  // Index of a registered device, stable for the tracker's life. Lets a hot caller skip the hash.
  struct DeviceRef {
    std::uint32_t index = npos;
    explicit operator bool() const { return index != npos; }
  };

  explicit HealthTracker(const common::Clock& clock, Thresholds thresholds = {});

  void on_change(ChangeSink sink) { on_change_ = std::move(sink); }
  void on_link_change(LinkSink sink) { on_link_change_ = std::move(sink); }

  // Registers (or re-registers, e.g. after a config reload) a device. expected_interval 0: learn
  // it. link names the connection its data arrives on ("broker", "modbus:10.0.0.5:502",
  // "serial:/dev/ttyUSB0"); gateway, if not empty, is the id of a device it reports through.
  // A new device starts unknown.
  DeviceRef register_device(std::string_view id, std::chrono::milliseconds expected_interval,
                            std::string_view link, std::string_view gateway = {},
                            Cadence cadence = Cadence::push);
  // A link with no devices of its own (a WebSocket connection), so it shows in the summary.
  void register_link(std::string_view link);

  DeviceRef find(std::string_view id) const;

  // Fresh data from the device, received at `received` (receipt time, not the device's own clock).
  // Unknown ids are ignored and return false.
  bool observe(std::string_view id, model::Timestamp received);
  void observe(DeviceRef ref, model::Timestamp received);

  // The device's own word: its last will or an "offline" status message (offline at once), or an
  // "online" status message (counts as a fresh observation).
  void device_offline(std::string_view id, std::string_view why);
  void device_online(std::string_view id);

  // A poll cycle of a polled device failed (timeout, exception, CRC): stale, then offline after
  // the configured number of consecutive failures. Any observation resets the count.
  void cycle_failed(std::string_view id, std::string_view why);

  // Link state. link_down marks every device behind the link offline at once ("link down"), and
  // the devices behind those as gateways ("gateway offline"). link_up changes no device: each
  // returns to online on its own fresh data.
  void link_up(std::string_view link);
  void link_down(std::string_view link, std::string_view why);
  void link_reconnect_attempt(std::string_view link);
  void link_error(std::string_view link, std::string_view kind);
  void link_rtt(std::string_view link, std::chrono::microseconds rtt);

  // Processes every deadline due at `now`. Call from a timer (every 250 ms–1 s). Returns the
  // number of transitions.
  std::size_t advance(model::Timestamp now);
  // The earliest armed deadline, if any: lets the caller sleep until then instead of ticking.
  std::optional<model::Timestamp> next_deadline() const;

  std::optional<DeviceHealth> device(std::string_view id) const;
  std::vector<DeviceHealth> devices(std::optional<State> only = {}) const;
  HealthSummary summary() const;
  std::optional<LinkHealth> link(std::string_view name) const;
  std::size_t device_count() const { return devices_.size(); }

  // Per-device activity of the devices on one link, for the subscription watchdog.
  std::vector<Activity> activity(std::string_view link) const;
  LinkState link_state(std::string_view link) const;

  // Text snapshot of every device's state; restore() applies it to the devices registered now,
  // so health survives a restart: no "unknown" storm, and no false "online" (an overdue device
  // moves on at the next advance(); call advance(now) right after restore()).
  std::string snapshot() const;
  RestoreResult restore(std::string_view text, model::Timestamp now);

 private:
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;
  static constexpr std::int64_t no_deadline = INT64_MAX;
  static constexpr std::int64_t never = INT64_MIN;
  static constexpr std::size_t gap_ring = 8;

  struct Entry {
    std::string id;
    std::int64_t last_seen_us = never;
    std::int64_t since_us = 0;
    std::int64_t armed_us = no_deadline;  // the deadline this device has in the heap
    std::int64_t left_online_us = never;  // last timeout out of online, for flap detection
    std::uint32_t declared_ms = 0;
    std::uint32_t link = npos;
    std::uint32_t gateway = npos;
    std::array<std::uint32_t, gap_ring> gaps_ms{};
    std::uint8_t gap_count = 0;
    std::uint8_t gap_next = 0;
    State state = State::unknown;
    Cadence cadence = Cadence::push;
    std::uint8_t failed_cycles = 0;
    std::uint8_t flaps = 0;
    std::uint8_t recover_count = 0;
    // Offline for a reason fresh data alone does not refute while it holds (link down, gateway
    // offline, its own status): devices behind it as a gateway are offline too.
    bool hard_offline = false;
    std::uint16_t reason = 0;
    std::uint32_t learned_ms = 0;  // cached median of gaps_ms; 0 while unlearned
  };

  struct Link {
    std::string name;
    LinkState state = LinkState::unknown;
    std::int64_t since_us = 0;
    std::uint16_t reason = 0;
    std::uint64_t reconnect_attempts = 0;
    std::uint64_t downs = 0;
    std::vector<std::pair<std::string, std::uint64_t>> errors;
    RttStats rtt;
    std::vector<std::uint32_t> devices;
  };

  struct Deadline {
    std::int64_t at_us;
    std::uint32_t index;
  };

  struct ViewHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::uint32_t link_index(std::string_view name);
  std::uint32_t find_link(std::string_view name) const;
  std::uint16_t intern(std::string_view why);
  std::string_view reason_text(std::uint16_t r) const { return reasons_[r]; }

  std::int64_t interval_us(const Entry& e) const;
  std::int64_t stale_after_us(const Entry& e) const;
  std::int64_t offline_after_us(const Entry& e) const;
  std::int64_t deadline_for(const Entry& e) const;
  void arm(std::uint32_t index);
  void learn_gap(Entry& e, std::int64_t gap_us);
  bool blocked(const Entry& e) const;
  std::uint16_t block_reason(const Entry& e) const;

  void transition(std::uint32_t index, State to, std::uint16_t why, std::int64_t at_us);
  void force_offline(std::uint32_t index, std::uint16_t why, std::int64_t at_us);
  void expire(std::uint32_t index, std::int64_t now_us);
  void note_timeout_leave(Entry& e, std::int64_t now_us);
  DeviceHealth view(const Entry& e) const;
  LinkHealth view(const Link& l) const;

  const common::Clock& clock_;
  Thresholds t_;
  ChangeSink on_change_;
  LinkSink on_link_change_;

  // deque: ids stay at a fixed address as devices are added, so the index can key on views.
  std::deque<Entry> devices_;
  std::unordered_map<std::string_view, std::uint32_t, ViewHash, std::equal_to<>> by_id_;
  std::deque<Link> links_;
  std::unordered_map<std::string_view, std::uint32_t, ViewHash, std::equal_to<>> links_by_name_;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> behind_gateway_;
  // Devices naming a gateway that is not registered yet; resolved when it registers.
  std::unordered_map<std::string, std::vector<std::uint32_t>> waiting_for_gateway_;
  // Reasons are interned: a device stores 2 bytes, not a string. Bounded: adapters pass reasons
  // from a fixed vocabulary; past the cap, new texts read as "other".
  static constexpr std::size_t max_reasons = 1024;
  std::deque<std::string> reasons_;
  std::unordered_map<std::string_view, std::uint16_t, ViewHash, std::equal_to<>> reason_ids_;
  std::vector<Deadline> heap_;  // min-heap by at_us; entries whose at_us != armed_us are dead
  std::array<std::size_t, state_count> counts_{};
  std::uint64_t transitions_ = 0;
};

}  // namespace fieldhub::health
