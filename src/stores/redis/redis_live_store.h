// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "stores/live_store.h"
#include "stores/memory/memory_live_store.h"
#include "stores/redis/live_codec.h"
#include "stores/redis/redis_connection.h"

namespace fieldhub::stores {

struct RedisOptions {
  std::chrono::milliseconds connect_timeout{1000};
  // A command (or a pipelined round) that takes longer marks Redis down: a hung server
  // (SIGSTOP) is found by this, a stopped one at once by the broken socket.
  std::chrono::milliseconds command_timeout{2000};
  // An idle writer PINGs this often, so an outage shows as degraded() without traffic.
  std::chrono::milliseconds heartbeat_interval{1000};
  // Reconnect backoff doubles from min to max, each wait ±20 % jitter.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{2000};
  // Pending writes (distinct device+metric, and device last_seen) waiting for the writer. Past
  // this the oldest is dropped and counted: harmless for live state, which is rewritten whole
  // from the mirror after an outage or after any drop.
  std::size_t max_pending = 200'000;
  // Devices per pipelined round (one EVALSHA per device).
  std::size_t devices_per_round = 512;
  // An update frame on the channel is closed once it passes this size.
  std::size_t max_frame_bytes = 64 * 1024;
  // Keys "<prefix>dev:<id>", channel "<prefix>updates".
  std::string key_prefix = "fieldhub:";
  // Names this instance in its frames so it ignores its own; empty: a random one.
  std::string instance_id;
};

// The live store on Redis, shared by every fieldhub instance.
//
// Threads: apply/touch/get/all and the destructor on the io executor only (LiveStore's rule).
// An in-process mirror (a MemoryLiveStore) answers get()/all() at once; apply() and touch()
// change the mirror, then queue what changed (bounded, coalesced per device+metric) for the
// writer thread, which owns one hiredis connection and writes pipelined rounds: one EVALSHA per
// device (a Lua script that keeps newest-wins server-side, so two instances never regress
// "latest") and PUBLISH of the round's coalesced update frames. A subscriber thread with its own
// connection receives other instances' frames and posts them to the io executor, where they are
// merged into the mirror by the same newest-wins rule; what became latest is handed to the
// remote-update callback (for the LiveHub).
//
// After apply() returns get() reflects it (the mirror); Redis follows within one writer round
// while it is up. Never blocks on the network: while Redis is unreachable degraded() is true and
// writes only coalesce. On (re)connect the writer loads every device hash (SCAN + HGETALL) into
// the mirror, and after an outage rewrites the whole mirror, so live state in Redis is rebuilt
// within one backoff step plus one rewrite after Redis returns.
class RedisLiveStore final : public LiveStore {
 public:
  using RemoteUpdateCallback = std::function<void(std::span<const model::Reading>)>;

  // Fails only for a malformed url (redis://host[:port][/db]). An unreachable Redis is not an
  // error: the store starts degraded and connects in the background. When Redis is reachable
  // the existing live state is loaded into the mirror before this returns.
  static redis::Result<std::unique_ptr<RedisLiveStore>> open(std::string url, RedisOptions options,
                                                             boost::asio::any_io_executor io,
                                                             common::Metrics& metrics);
  ~RedisLiveStore() override;
  RedisLiveStore(const RedisLiveStore&) = delete;
  RedisLiveStore& operator=(const RedisLiveStore&) = delete;

  std::size_t apply(std::span<const model::Reading> readings) override;
  void touch(std::string_view device_id, model::Timestamp received_ts) override;
  std::optional<DeviceState> get(std::string_view device_id) const override;
  std::vector<DeviceState> all() const override;

  // Called on the io executor with the readings from other instances (or from a reload) that
  // became the latest value in this instance's mirror.
  void set_remote_update_callback(RemoteUpdateCallback cb) { on_remote_ = std::move(cb); }

  // True while Redis is unreachable (the lead shows "live degraded"). Any thread.
  bool degraded() const { return degraded_.load(); }
  // Counts since open(); any thread. coalesced: a pending write replaced by a newer one of the
  // same device+metric; dropped: the oldest pending write dropped past max_pending.
  std::uint64_t coalesced() const { return coalesced_.value(); }
  std::uint64_t dropped() const { return dropped_.value(); }
  std::uint64_t writes() const { return writes_.value(); }
  // Pending writes not yet taken by the writer. Any thread.
  std::size_t pending() const;
  // Pending writes plus those the writer has taken and not yet finished (0: Redis has
  // everything applied so far, or the writer gave up on it for an outage). Any thread.
  std::size_t backlog() const { return pending() + in_flight_.load(); }
  const std::string& instance_id() const { return options_.instance_id; }

 private:
  struct Update {
    std::string device_id;
    std::string metric;  // empty: a last_seen update
    std::optional<LatestValue> value;
    std::optional<model::Timestamp> last_seen;
  };
  struct Alive {};

  RedisLiveStore(redis::Endpoint endpoint, RedisOptions options, boost::asio::any_io_executor io,
                 common::Metrics& metrics);

  void enqueue_locked(std::string key, Update u);
  void merge(std::vector<redis_codec::DeviceUpdate> updates);  // io thread
  void post_merge(std::vector<redis_codec::DeviceUpdate> updates, bool then_resync);

  // Writer thread.
  void writer_loop();
  bool connect_writer();
  redis::Status load(redis::Connection& conn, std::vector<redis_codec::DeviceUpdate>& out);
  redis::Status write_devices(std::vector<Update>& updates);
  redis::Status write_snapshot(std::vector<DeviceState>& snapshot);
  // One pipelined round: the devices' EVALSHAs and the PUBLISH of their frames.
  struct Round {
    std::size_t evals = 0;
    std::size_t publishes = 0;
  };
  Round append_round(std::span<const std::vector<const Update*>> devices);
  redis::Status read_round(const Round& round);
  void mark_down(const redis::Status& why);
  std::chrono::milliseconds next_backoff();

  // Subscriber thread.
  void subscriber_loop();

  redis::Endpoint endpoint_;
  RedisOptions options_;
  boost::asio::any_io_executor io_;
  std::string device_key_prefix_;
  std::string channel_;

  // io thread only.
  MemoryLiveStore mirror_;
  RemoteUpdateCallback on_remote_;
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
  std::vector<std::size_t> changed_;  // scratch for apply()

  // Shared between the io thread and the writer, guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<std::string, Update> pending_;   // key: device '\0' metric
  std::deque<std::string> pending_order_;             // first-insertion order, for drop-oldest
  std::optional<std::vector<DeviceState>> snapshot_;  // the mirror, to rewrite after an outage
  bool reload_requested_ = false;
  bool rewrite_requested_ = false;  // pending writes were dropped: rewrite the mirror
  bool stopping_ = false;

  std::atomic<bool> degraded_{true};
  std::atomic<bool> stop_subscriber_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::uint64_t> outage_generation_{0};  // bumped when the writer loses Redis

  // Writer thread only.
  std::optional<redis::Connection> writer_conn_;
  std::string script_sha_;
  std::chrono::milliseconds backoff_{0};
  bool needs_resync_ = false;
  std::string scratch_;

  common::Gauge& up_;
  common::Gauge& queue_depth_;
  common::Counter& writes_;
  common::Counter& errors_;
  common::Counter& coalesced_;
  common::Counter& dropped_;

  std::thread writer_;
  std::thread subscriber_;
};

}  // namespace fieldhub::stores
