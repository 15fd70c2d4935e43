// SPDX-License-Identifier: Apache-2.0
#include "stores/redis/redis_live_store.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <random>
#include <utility>

#include "common/log.h"

namespace fieldhub::stores {

namespace {

using Clock = std::chrono::steady_clock;

// Newest-wins on the server, so two instances (or a late writer round) never regress "latest".
// KEYS[1] the device hash; ARGV[1] last_seen in µs or ""; then per metric: field, ts, rts, json.
// One HMGET and at most one HSET per device (each redis.call costs more than the comparisons);
// the held value's ts and rts are read with one string.match: live_codec writes them first.
// Returns how many fields it wrote.
constexpr std::string_view newest_wins_lua = R"lua(
local key = KEYS[1]
local n = (#ARGV - 1) / 4
local fields = {'last_seen'}
for i = 1, n do fields[i + 1] = ARGV[4 * i - 2] end
local held = redis.call('HMGET', key, unpack(fields))
local out = {}
local seen = tonumber(ARGV[1])
if seen then
  local h = tonumber(held[1])
  if h == nil or seen > h then
    out[#out + 1] = 'last_seen'
    out[#out + 1] = ARGV[1]
  end
end
for i = 1, n do
  local b = 4 * i - 2
  local newer = true
  local cur = held[i + 1]
  if cur then
    local hts, hrts = string.match(cur, '^{"ts":(%-?%d+),"rts":(%-?%d+)')
    hts = tonumber(hts)
    hrts = tonumber(hrts)
    if hts and hrts then
      local ts = tonumber(ARGV[b + 1])
      local rts = tonumber(ARGV[b + 2])
      newer = ts > hts or (ts == hts and rts >= hrts)
    end
  end
  if newer then
    out[#out + 1] = ARGV[b]
    out[#out + 1] = ARGV[b + 3]
  end
end
if #out > 0 then redis.call('HSET', key, unpack(out)) end
return #out / 2
)lua";

std::string random_instance_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  const std::uint64_t v = dist(rd);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[static_cast<std::size_t>(i)] = hex[(v >> (4 * i)) & 0xF];
  return out;
}

std::string pending_key(std::string_view device_id, std::string_view metric) {
  std::string key;
  key.reserve(device_id.size() + 1 + metric.size());
  key.append(device_id);
  key.push_back('\0');
  key.append(metric);
  return key;
}

LatestValue latest_from(const model::Reading& r) {
  return LatestValue{r.value, r.unit, r.ts(), r.received_ts, r.quality, r.quality_reason};
}

}  // namespace

redis::Result<std::unique_ptr<RedisLiveStore>> RedisLiveStore::open(std::string url,
                                                                    RedisOptions options,
                                                                    boost::asio::any_io_executor io,
                                                                    common::Metrics& metrics) {
  auto endpoint = redis::parse_url(url);
  if (!endpoint) {
    return redis::Status::failure("invalid redis url (want redis://host[:port][/db]): " + url);
  }
  if (options.instance_id.empty()) options.instance_id = random_instance_id();
  options.devices_per_round = std::max<std::size_t>(options.devices_per_round, 1);
  options.max_pending = std::max<std::size_t>(options.max_pending, 1);
  std::unique_ptr<RedisLiveStore> store(
      new RedisLiveStore(std::move(*endpoint), std::move(options), std::move(io), metrics));

  // The initial load runs here, before any other thread can see the store, so the mirror is
  // filled when open() returns. Redis down is not an error: the writer keeps trying.
  if (store->connect_writer()) {
    std::vector<redis_codec::DeviceUpdate> loaded;
    if (auto s = store->load(*store->writer_conn_, loaded); s.ok()) {
      store->merge(std::move(loaded));
    } else {
      store->mark_down(s);
    }
  } else {
    store->needs_resync_ = true;
  }
  store->writer_ = std::thread([s = store.get()] { s->writer_loop(); });
  store->subscriber_ = std::thread([s = store.get()] { s->subscriber_loop(); });
  return store;
}

RedisLiveStore::RedisLiveStore(redis::Endpoint endpoint, RedisOptions options,
                               boost::asio::any_io_executor io, common::Metrics& metrics)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      io_(std::move(io)),
      device_key_prefix_(options_.key_prefix + "dev:"),
      channel_(options_.key_prefix + "updates"),
      up_(metrics.gauge("fieldhub_redis_up", "1 while the live store's Redis is reachable")),
      queue_depth_(metrics.gauge("fieldhub_redis_queue_depth",
                                 "Live-state writes waiting for the Redis writer")),
      writes_(metrics.counter("fieldhub_redis_writes_total",
                              "Live-state fields written to Redis (metrics and last_seen)")),
      errors_(metrics.counter("fieldhub_redis_errors_total",
                              "Redis connection failures, timeouts and error replies")),
      coalesced_(metrics.counter("fieldhub_redis_coalesced_total",
                                 "Pending live-state writes replaced by a newer one")),
      dropped_(metrics.counter("fieldhub_redis_dropped_total",
                               "Pending live-state writes dropped past the queue bound")) {
  up_.set(0);
}

RedisLiveStore::~RedisLiveStore() {
  {
    std::lock_guard lk(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  stop_subscriber_ = true;
  if (writer_.joinable()) writer_.join();
  if (subscriber_.joinable()) subscriber_.join();
  up_.set(0);
}

// ---- io thread ----

std::size_t RedisLiveStore::apply(std::span<const model::Reading> readings) {
  changed_.clear();
  for (std::size_t i = 0; i < readings.size(); ++i) {
    if (mirror_.apply(readings.subspan(i, 1)) != 0) changed_.push_back(i);
  }
  if (readings.empty()) return 0;
  {
    std::lock_guard lk(mutex_);
    const bool was_empty = pending_.empty();
    for (std::size_t i : changed_) {
      const model::Reading& r = readings[i];
      enqueue_locked(pending_key(r.device_id, r.metric),
                     Update{r.device_id, r.metric, latest_from(r), std::nullopt});
    }
    // One last_seen update per run of readings of the same device.
    std::size_t i = 0;
    while (i < readings.size()) {
      const std::string& id = readings[i].device_id;
      model::Timestamp seen = readings[i].received_ts;
      for (++i; i < readings.size() && readings[i].device_id == id; ++i) {
        seen = std::max(seen, readings[i].received_ts);
      }
      enqueue_locked(pending_key(id, {}), Update{id, {}, std::nullopt, seen});
    }
    queue_depth_.set(static_cast<std::int64_t>(pending_.size()));
    if (was_empty) wake_.notify_one();
  }
  return changed_.size();
}

void RedisLiveStore::touch(std::string_view device_id, model::Timestamp received_ts) {
  mirror_.touch(device_id, received_ts);
  std::lock_guard lk(mutex_);
  const bool was_empty = pending_.empty();
  enqueue_locked(pending_key(device_id, {}),
                 Update{std::string(device_id), {}, std::nullopt, received_ts});
  queue_depth_.set(static_cast<std::int64_t>(pending_.size()));
  if (was_empty) wake_.notify_one();
}

std::optional<DeviceState> RedisLiveStore::get(std::string_view device_id) const {
  return mirror_.get(device_id);
}

std::vector<DeviceState> RedisLiveStore::all() const {
  return mirror_.all();
}

std::size_t RedisLiveStore::pending() const {
  std::lock_guard lk(mutex_);
  return pending_.size();
}

void RedisLiveStore::enqueue_locked(std::string key, Update u) {
  auto [it, inserted] = pending_.try_emplace(std::move(key));
  if (!inserted) {
    // The mirror only lets newer values through, so the queued one is always the older.
    coalesced_.inc();
    if (u.value) it->second.value = std::move(u.value);
    if (u.last_seen && (!it->second.last_seen || *it->second.last_seen < *u.last_seen)) {
      it->second.last_seen = u.last_seen;
    }
    return;
  }
  it->second = std::move(u);
  pending_order_.push_back(it->first);
  while (pending_.size() > options_.max_pending && !pending_order_.empty()) {
    const std::size_t erased = pending_.erase(pending_order_.front());
    pending_order_.pop_front();
    dropped_.inc(erased);
    // What was dropped is still in the mirror: the writer rewrites the mirror once it has
    // caught up, so a drop while Redis is up does not leave Redis behind for good.
    rewrite_requested_ = true;
  }
}

void RedisLiveStore::merge(std::vector<redis_codec::DeviceUpdate> updates) {
  std::vector<model::Reading> became;
  for (auto& u : updates) {
    if (u.last_seen) mirror_.touch(u.device_id, *u.last_seen);
    for (auto& [metric, v] : u.metrics) {
      model::Reading r;
      r.device_id = u.device_id;
      r.metric = std::move(metric);
      r.value = std::move(v.value);
      r.unit = std::move(v.unit);
      r.source_ts = v.ts;
      r.received_ts = v.received_ts;
      r.quality = v.quality;
      r.quality_reason = std::move(v.quality_reason);
      r.provenance = {"redis", "live"};
      if (mirror_.apply({&r, 1}) != 0) became.push_back(std::move(r));
    }
  }
  if (!became.empty() && on_remote_) on_remote_(became);
}

void RedisLiveStore::post_merge(std::vector<redis_codec::DeviceUpdate> updates, bool then_resync) {
  boost::asio::post(io_, [this, alive = std::weak_ptr<Alive>(alive_), u = std::move(updates),
                          then_resync]() mutable {
    if (alive.expired()) return;
    merge(std::move(u));
    if (!then_resync) return;
    // Everything queued so far is in the mirror, so the snapshot supersedes the queue.
    std::vector<DeviceState> snapshot = mirror_.all();
    std::lock_guard lk(mutex_);
    pending_.clear();
    pending_order_.clear();
    queue_depth_.set(0);
    snapshot_ = std::move(snapshot);
    wake_.notify_one();
  });
}

// ---- writer thread ----

bool RedisLiveStore::connect_writer() {
  auto conn =
      redis::Connection::connect(endpoint_, options_.connect_timeout, options_.command_timeout);
  if (!conn.ok()) {
    mark_down(conn.status());
    return false;
  }
  auto sha = conn.value().command({"SCRIPT", "LOAD", newest_wins_lua});
  if (!sha.ok() || sha.value().type != redis::Reply::Type::string) {
    mark_down(sha.ok() ? redis::Status::failure("SCRIPT LOAD: " + sha.value().str) : sha.status());
    return false;
  }
  script_sha_ = std::move(sha.value().str);
  writer_conn_ = std::move(conn.value());
  backoff_ = std::chrono::milliseconds{0};
  if (degraded_.exchange(false)) {
    common::log(common::LogLevel::info, "redis",
                "connected to " + endpoint_.host + ":" + std::to_string(endpoint_.port));
  }
  up_.set(1);
  return true;
}

void RedisLiveStore::mark_down(const redis::Status& why) {
  errors_.inc();
  if (writer_conn_) {
    writer_conn_.reset();
    outage_generation_.fetch_add(1);
  }
  needs_resync_ = true;
  up_.set(0);
  if (!degraded_.exchange(true)) {
    common::log(common::LogLevel::warn, "redis", "live store degraded: " + why.message());
  }
}

std::chrono::milliseconds RedisLiveStore::next_backoff() {
  backoff_ = backoff_.count() == 0 ? options_.reconnect_min
                                   : std::min(backoff_ * 2, options_.reconnect_max);
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(static_cast<double>(backoff_.count()) * jitter(rng))};
}

void RedisLiveStore::writer_loop() {
  bool reload = false;
  auto last_command = Clock::now();
  while (true) {
    if (!writer_conn_) {
      {
        std::unique_lock lk(mutex_);
        if (stopping_) return;
      }
      if (!connect_writer()) {
        std::unique_lock lk(mutex_);
        wake_.wait_for(lk, next_backoff(), [&] { return stopping_; });
        continue;
      }
      reload = true;  // catch up with what others wrote while we were away
      last_command = Clock::now();
    }

    std::vector<Update> batch;
    std::optional<std::vector<DeviceState>> snapshot;
    bool rewrite = false;
    bool stop = false;
    {
      std::unique_lock lk(mutex_);
      if (!reload) {
        wake_.wait_for(lk, options_.heartbeat_interval, [&] {
          return stopping_ || reload_requested_ || snapshot_ || !pending_.empty();
        });
      }
      reload = reload || std::exchange(reload_requested_, false);
      snapshot = std::exchange(snapshot_, std::nullopt);
      batch.reserve(pending_.size());
      for (auto& [key, u] : pending_) batch.push_back(std::move(u));
      in_flight_ = batch.size() + (snapshot ? 1 : 0);
      rewrite = std::exchange(rewrite_requested_, false);
      pending_.clear();
      pending_order_.clear();
      queue_depth_.set(0);
      stop = stopping_;
    }

    redis::Status s;
    bool did_work = false;
    if (reload) {
      reload = false;
      did_work = true;
      std::vector<redis_codec::DeviceUpdate> loaded;
      s = load(*writer_conn_, loaded);
      if (s.ok()) post_merge(std::move(loaded), std::exchange(needs_resync_, false));
    }
    if (s.ok() && snapshot) {
      did_work = true;
      s = write_snapshot(*snapshot);
    }
    if (s.ok() && !batch.empty()) {
      did_work = true;
      s = write_devices(batch);
    }
    if (s.ok() && !did_work && Clock::now() - last_command >= options_.heartbeat_interval) {
      did_work = true;
      auto pong = writer_conn_->command({"PING"});
      if (!pong.ok()) s = pong.status();
    }
    if (s.ok() && rewrite) post_merge({}, true);  // the snapshot comes back as snapshot_
    if (did_work) last_command = Clock::now();
    if (!s.ok()) mark_down(s);
    in_flight_ = 0;
    if (stop) return;
  }
}

redis::Status RedisLiveStore::load(redis::Connection& conn,
                                   std::vector<redis_codec::DeviceUpdate>& out) {
  const std::string pattern = device_key_prefix_ + "*";
  std::string cursor = "0";
  std::size_t skipped = 0;
  do {
    auto scan = conn.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
    if (!scan.ok()) return scan.status();
    redis::Reply& r = scan.value();
    if (r.type != redis::Reply::Type::array || r.elements.size() != 2 ||
        r.elements[1].type != redis::Reply::Type::array) {
      return redis::Status::failure("SCAN: unexpected reply " + r.str);
    }
    cursor = r.elements[0].str;
    // One pipelined HGETALL per key of this SCAN page.
    const auto& keys = r.elements[1].elements;
    for (const auto& key : keys) {
      const std::string_view hgetall[] = {"HGETALL", key.str};
      conn.append(hgetall);
    }
    for (const auto& key : keys) {
      auto h = conn.get_reply();
      if (!h.ok()) return h.status();
      const redis::Reply& hash = h.value();
      if (hash.type != redis::Reply::Type::array || !key.str.starts_with(device_key_prefix_)) {
        ++skipped;  // another type under our prefix, or gone between SCAN and HGETALL
        continue;
      }
      std::vector<std::pair<std::string, std::string>> fields;
      fields.reserve(hash.elements.size() / 2);
      for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
        fields.emplace_back(hash.elements[i].str, hash.elements[i + 1].str);
      }
      auto u =
          redis_codec::decode_hash(key.str.substr(device_key_prefix_.size()), fields, &skipped);
      if (u.last_seen || !u.metrics.empty()) out.push_back(std::move(u));
    }
  } while (cursor != "0");
  if (skipped != 0) {
    common::log(common::LogLevel::warn, "redis",
                "load skipped " + std::to_string(skipped) + " undecodable keys or fields");
  }
  return {};
}

redis::Status RedisLiveStore::write_snapshot(std::vector<DeviceState>& snapshot) {
  std::vector<Update> updates;
  for (auto& d : snapshot) {
    if (d.last_seen) updates.push_back(Update{d.device_id, {}, std::nullopt, d.last_seen});
    for (auto& [metric, v] : d.metrics) {
      updates.push_back(Update{d.device_id, metric, std::move(v), std::nullopt});
    }
  }
  snapshot.clear();
  return write_devices(updates);
}

redis::Status RedisLiveStore::write_devices(std::vector<Update>& updates) {
  // One EVALSHA per device: group the updates by device, keeping first-seen order. A device
  // with very many metrics is split, since Lua's unpack() takes at most ~8,000 values.
  constexpr std::size_t max_updates_per_call = 1000;
  std::unordered_map<std::string_view, std::size_t> index;
  std::vector<std::vector<const Update*>> devices;
  for (const auto& u : updates) {
    auto [it, inserted] = index.try_emplace(u.device_id, devices.size());
    if (!inserted && devices[it->second].size() >= max_updates_per_call) {
      it->second = devices.size();
      inserted = true;
    }
    if (inserted) devices.emplace_back();
    devices[it->second].push_back(&u);
  }
  // Round k+1 is queued before round k's replies are read, so Redis runs round k while this
  // thread encodes the next (reading flushes the output buffer, then waits).
  const std::span<const std::vector<const Update*>> all(devices);
  std::optional<Round> previous;
  for (std::size_t i = 0; i < all.size(); i += options_.devices_per_round) {
    const Round round =
        append_round(all.subspan(i, std::min(options_.devices_per_round, all.size() - i)));
    if (previous) {
      if (auto s = read_round(*previous); !s.ok()) return s;
    }
    previous = round;
  }
  if (previous) return read_round(*previous);
  return {};
}

RedisLiveStore::Round RedisLiveStore::append_round(
    std::span<const std::vector<const Update*>> devices) {
  redis_codec::FrameWriter frames(options_.instance_id, options_.max_frame_bytes);
  std::vector<std::string> args;
  std::vector<std::string_view> argv;
  std::vector<std::pair<std::string_view, std::string_view>> metric_json;
  for (const auto& updates : devices) {
    const std::string& id = updates.front()->device_id;
    std::optional<model::Timestamp> seen;
    for (const Update* u : updates) {
      if (u->last_seen && (!seen || *seen < *u->last_seen)) seen = u->last_seen;
    }
    args.clear();
    args.emplace_back(device_key_prefix_ + id);
    args.emplace_back(seen ? std::to_string(model::to_micros(*seen)) : std::string());
    for (const Update* u : updates) {
      if (!u->value) continue;
      args.emplace_back(std::string(redis_codec::metric_field_prefix) + u->metric);
      args.emplace_back(std::to_string(model::to_micros(u->value->ts)));
      args.emplace_back(std::to_string(model::to_micros(u->value->received_ts)));
      std::string json;
      redis_codec::encode_metric(*u->value, json);
      args.push_back(std::move(json));
    }
    argv.assign({"EVALSHA", script_sha_, "1"});
    for (const auto& a : args) argv.emplace_back(a);
    writer_conn_->append(argv);

    metric_json.clear();
    std::size_t field = 0;
    for (const Update* u : updates) {
      if (!u->value) continue;
      metric_json.emplace_back(u->metric, args[2 + 4 * field + 3]);
      ++field;
    }
    frames.device(id, seen, metric_json);
  }
  const std::vector<std::string> published = frames.take();
  for (const auto& f : published) {
    const std::string_view publish[] = {"PUBLISH", channel_, f};
    writer_conn_->append(publish);
  }
  return Round{devices.size(), published.size()};
}

redis::Status RedisLiveStore::read_round(const Round& round) {
  bool noscript = false;
  for (std::size_t i = 0; i < round.evals + round.publishes; ++i) {
    auto r = writer_conn_->get_reply();
    if (!r.ok()) return r.status();
    const redis::Reply& reply = r.value();
    if (reply.is_error()) {
      errors_.inc();
      if (reply.str.starts_with("NOSCRIPT")) noscript = true;
      continue;
    }
    if (i < round.evals && reply.type == redis::Reply::Type::integer) {
      writes_.inc(static_cast<std::uint64_t>(std::max<long long>(reply.integer, 0)));
    }
  }
  if (noscript) {
    // Someone ran SCRIPT FLUSH. Failing drops the connection (replies of a queued round are
    // still unread); the reconnect loads the script again and rewrites the whole mirror.
    return redis::Status::failure("NOSCRIPT: the newest-wins script was flushed");
  }
  return {};
}

// ---- subscriber thread ----

void RedisLiveStore::subscriber_loop() {
  std::chrono::milliseconds backoff{0};
  while (!stop_subscriber_) {
    const std::uint64_t generation = outage_generation_.load();
    auto conn =
        redis::Connection::connect(endpoint_, options_.connect_timeout, options_.command_timeout);
    bool subscribed = false;
    if (conn.ok()) {
      const std::string_view subscribe[] = {"SUBSCRIBE", channel_};
      conn.value().append(subscribe);
      const auto deadline = Clock::now() + options_.command_timeout;
      while (!stop_subscriber_ && Clock::now() < deadline) {
        auto r = conn.value().poll_reply(std::chrono::milliseconds{100});
        if (!r.ok()) break;
        if (r.value() && r.value()->type == redis::Reply::Type::array) {
          subscribed = true;
          break;
        }
      }
    }
    if (!subscribed) {
      backoff = backoff.count() == 0 ? options_.reconnect_min
                                     : std::min(backoff * 2, options_.reconnect_max);
      const auto until = Clock::now() + backoff;
      while (!stop_subscriber_ && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds{20});
      }
      continue;
    }
    backoff = std::chrono::milliseconds{0};
    {
      // Frames published before SUBSCRIBE took effect are missed: load Redis once more.
      std::lock_guard lk(mutex_);
      reload_requested_ = true;
    }
    wake_.notify_one();

    while (!stop_subscriber_ && outage_generation_.load() == generation) {
      auto r = conn.value().poll_reply(std::chrono::milliseconds{100});
      if (!r.ok()) break;
      if (!r.value()) continue;
      const redis::Reply& msg = *r.value();
      // ["message", channel, payload]
      if (msg.type != redis::Reply::Type::array || msg.elements.size() != 3 ||
          msg.elements[0].str != "message") {
        continue;
      }
      auto frame = redis_codec::decode_frame(msg.elements[2].str);
      if (!frame) {
        errors_.inc();
        continue;
      }
      if (frame->source == options_.instance_id) continue;
      post_merge(std::move(frame->devices), false);
    }
  }
}

}  // namespace fieldhub::stores
