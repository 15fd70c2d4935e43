// SPDX-License-Identifier: Apache-2.0
#pragma once

// Test doubles for the web tests: a LiveStore and a HistoryStore in memory, and a small config.

#include <map>
#include <mutex>
#include <stdexcept>

#include "config/config.h"
#include "stores/history_store.h"
#include "stores/live_store.h"

namespace fieldhub::web::testing {

class FakeLiveStore final : public stores::LiveStore {
 public:
  std::size_t apply(std::span<const model::Reading> readings) override {
    std::size_t n = 0;
    for (const auto& r : readings) {
      auto& d = state(r.device_id);
      d.last_seen = std::max(d.last_seen.value_or(r.received_ts), r.received_ts);
      auto it = d.metrics.find(r.metric);
      if (it != d.metrics.end() && it->second.ts > r.ts()) continue;
      d.metrics[r.metric] = {r.value, r.unit, r.ts(), r.received_ts, r.quality, r.quality_reason};
      ++n;
    }
    return n;
  }
  void touch(std::string_view device_id, model::Timestamp received_ts) override {
    auto& d = state(device_id);
    d.last_seen = std::max(d.last_seen.value_or(received_ts), received_ts);
  }
  std::optional<stores::DeviceState> get(std::string_view device_id) const override {
    const auto it = devices_.find(std::string(device_id));
    if (it == devices_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<stores::DeviceState> all() const override {
    std::vector<stores::DeviceState> out;
    for (const auto& [id, d] : devices_) out.push_back(d);
    return out;
  }

 private:
  stores::DeviceState& state(std::string_view id) {
    auto& d = devices_[std::string(id)];
    d.device_id = std::string(id);
    return d;
  }
  std::map<std::string, stores::DeviceState> devices_;
};

// Answers queries from vectors set by the test and records the last query of each kind.
// Thread-safe (the Api queries from its own thread).
class FakeHistoryStore final : public stores::HistoryStore {
 public:
  stores::WriteResult write(std::span<const pipeline::Envelope>) override { return {true}; }

  std::vector<model::Reading> readings(const stores::ReadingQuery& q) override {
    std::lock_guard lock(mutex_);
    if (fail) throw std::runtime_error("database is locked");
    last_reading_query = q;
    std::vector<model::Reading> out;
    for (const auto& r : readings_data) {
      if (r.device_id == q.device_id && r.metric == q.metric && r.ts() >= q.from && r.ts() < q.to &&
          out.size() < q.limit) {
        out.push_back(r);
      }
    }
    return out;
  }

  // Buckets as stored in rollups_data for the query's device, metric and resolution, in range.
  std::vector<stores::RollupBucket> rollups(const stores::RollupQuery& q) override {
    std::lock_guard lock(mutex_);
    if (fail) throw std::runtime_error("database is locked");
    last_rollup_query = q;
    std::vector<stores::RollupBucket> out;
    for (const auto& b : rollups_data) {
      if (b.start >= q.from && b.start < q.to && out.size() < q.limit) out.push_back(b);
    }
    return out;
  }

  std::vector<model::Event> events(const stores::EventQuery& q) override {
    std::lock_guard lock(mutex_);
    if (fail) throw std::runtime_error("database is locked");
    last_event_query = q;
    std::vector<model::Event> out;
    for (auto it = events_data.rbegin(); it != events_data.rend(); ++it) {
      if (q.device_id && it->device_id != *q.device_id) continue;
      if (q.type && it->type != *q.type) continue;
      if (it->ts() < q.from || it->ts() >= q.to || out.size() >= q.limit) continue;
      out.push_back(*it);
    }
    return out;
  }

  std::vector<pipeline::DeadLetter> dead_letters(const stores::DeadLetterQuery& q) override {
    std::lock_guard lock(mutex_);
    if (fail) throw std::runtime_error("database is locked");
    last_dead_letter_query = q;
    std::vector<pipeline::DeadLetter> out;
    for (auto it = dead_letters_data.rbegin(); it != dead_letters_data.rend(); ++it) {
      if (q.reason && it->reason != *q.reason) continue;
      if (out.size() < q.limit) out.push_back(*it);
    }
    return out;
  }

  std::mutex mutex_;
  bool fail = false;
  std::vector<model::Reading> readings_data;            // oldest first
  std::vector<model::Event> events_data;                // oldest first
  std::vector<stores::RollupBucket> rollups_data;       // oldest first, any series
  std::vector<pipeline::DeadLetter> dead_letters_data;  // oldest first
  std::optional<stores::ReadingQuery> last_reading_query;
  std::optional<stores::EventQuery> last_event_query;
  std::optional<stores::RollupQuery> last_rollup_query;
  std::optional<stores::DeadLetterQuery> last_dead_letter_query;
};

// Two sites: a kWh meter and a nurse call on "north", a kWh meter on "south".
inline config::Config make_config() {
  config::Config c;
  config::Profile kwh;
  kwh.name = "kwh_meter_v1";
  kwh.kind = "kwh_meter";
  kwh.metrics.push_back({.name = "energy", .unit = "kWh"});
  kwh.metrics.push_back({.name = "power", .unit = "W"});
  config::Profile call;
  call.name = "nurse_call_v1";
  call.kind = "nurse_call";
  call.events.push_back({.type = "call", .priority = model::Priority::medium});
  c.profiles = {kwh, call};
  model::Device m1{.id = "meter-1",
                   .kind = "kwh_meter",
                   .site = "north",
                   .location = {{"building", "B"}, {"floor", "2"}, {"room", "204"}},
                   .profile = "kwh_meter_v1",
                   .protocol = "mqtt",
                   .address = "meter-1"};
  model::Device m2 = m1;
  m2.id = "meter-2";
  m2.site = "south";
  m2.location = {{"line", "3"}};
  model::Device n1{.id = "call-7",
                   .kind = "nurse_call",
                   .site = "north",
                   .location = {{"ward", "W1"}, {"room", "12"}, {"bed", "2"}},
                   .profile = "nurse_call_v1",
                   .protocol = "mqtt",
                   .address = "call-7"};
  c.devices = {m1, m2, n1};
  return c;
}

inline model::Reading make_reading(std::string device, std::string metric, double value,
                                   model::Timestamp ts, std::string unit = "kWh") {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = value;
  r.unit = std::move(unit);
  r.source_ts = ts;
  r.received_ts = ts;
  return r;
}

inline model::Event make_event(std::string device, std::string type, model::Priority p,
                               model::Timestamp ts) {
  model::Event e;
  e.device_id = std::move(device);
  e.type = std::move(type);
  e.priority = p;
  e.source_ts = ts;
  e.received_ts = ts;
  e.attributes_json = R"({"source":"test"})";
  return e;
}

}  // namespace fieldhub::web::testing
