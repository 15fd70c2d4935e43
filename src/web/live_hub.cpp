// SPDX-License-Identifier: Apache-2.0
#include "web/live_hub.h"

#include <vector>

#include "common/json_writer.h"

namespace fieldhub::web {

using common::JsonWriter;

namespace {

// JsonWriter::field() is ambiguous for std::string (string_view or model::Value): pass a view.
std::string_view sv(const std::string& s) {
  return s;
}

void write_latest(JsonWriter& w, const stores::LatestValue& v) {
  w.begin_object().field("value", v.value).field("unit", sv(v.unit)).field("ts", v.ts);
  w.field("received_ts", v.received_ts).field("quality", model::to_string(v.quality));
  if (!v.quality_reason.empty()) w.field("quality_reason", sv(v.quality_reason));
  w.end_object();
}

}  // namespace

LiveHub::LiveHub(const config::Config& config, const stores::LiveStore& live,
                 common::Metrics& metrics, const common::Clock& clock, LiveHubLimits limits)
    : live_(live),
      clock_(clock),
      limits_(limits),
      sessions_gauge_(metrics.gauge("fieldhub_live_sessions", "Open live feed sessions")),
      frames_sent_(
          metrics.counter("fieldhub_live_frames_sent_total", "Frames sent to live feed sessions")),
      readings_coalesced_(metrics.counter(
          "fieldhub_live_readings_coalesced_total",
          "Readings replaced by a newer one of the same metric before a busy session sent them")),
      health_coalesced_(metrics.counter(
          "fieldhub_live_health_coalesced_total",
          "Device health changes replaced by a newer one before a busy session sent them")),
      closed_slow_(metrics.counter("fieldhub_live_sessions_closed_slow_total",
                                   "Live sessions closed for falling too far behind")) {
  for (const auto& d : config.devices) site_by_device_.emplace(d.id, d.site);
}

std::string_view LiveHub::site_of(std::string_view device_id) const {
  const auto it = site_by_device_.find(std::string(device_id));
  return it == site_by_device_.end() ? std::string_view{} : std::string_view{it->second};
}

bool LiveHub::matches(const LiveFilter& f, std::string_view device_id,
                      std::string_view site) const {
  if (!f.device.empty() && f.device != device_id) return false;
  if (!f.site.empty() && f.site != site) return false;
  return true;
}

std::string LiveHub::render_snapshot(const LiveFilter& filter) const {
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("type", "snapshot").field("ts", clock_.now());
  w.key("devices").begin_array();
  for (const auto& state : live_.all()) {
    const auto site = site_of(state.device_id);
    if (!matches(filter, state.device_id, site)) continue;
    w.begin_object().field("device", sv(state.device_id)).field("site", site);
    if (state.last_seen) {
      w.field("last_seen", *state.last_seen);
    } else {
      w.key("last_seen").null();
    }
    w.key("metrics").begin_object();
    for (const auto& [name, v] : state.metrics) {
      w.key(name);
      write_latest(w, v);
    }
    w.end_object().end_object();
  }
  w.end_array().end_object();
  return out;
}

LiveHub::SessionId LiveHub::attach(LiveSink& sink, LiveFilter filter) {
  const SessionId id = next_id_++;
  Session& s = sessions_[id];
  s.sink = &sink;
  s.filter = std::move(filter);

  std::string hello;
  JsonWriter w(hello);
  w.begin_object().field("type", "hello").field("server", "fieldhub").field("session", id);
  w.field("ts", clock_.now());
  w.field("heartbeat_ms", static_cast<std::int64_t>(heartbeat_interval.count()));
  w.key("filter").begin_object();
  if (!s.filter.device.empty()) w.field("device", sv(s.filter.device));
  if (!s.filter.site.empty()) w.field("site", sv(s.filter.site));
  w.end_object().end_object();
  s.urgent.push_back(std::make_shared<const std::string>(std::move(hello)));
  s.urgent.push_back(std::make_shared<const std::string>(render_snapshot(s.filter)));
  if (attach_frame_) s.urgent.push_back(std::make_shared<const std::string>(attach_frame_()));
  sessions_gauge_.add(1);
  pump(s);
  return id;
}

void LiveHub::detach(SessionId id) {
  if (sessions_.erase(id) > 0) sessions_gauge_.add(-1);
}

void LiveHub::on_sent(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second.busy = false;
  pump(it->second);
}

void LiveHub::publish_readings(std::span<const model::Reading> readings) {
  if (sessions_.empty() || readings.empty()) return;
  // Render each item once; sessions share it.
  struct Item {
    const model::Reading* reading;
    std::string_view site;
    std::string key;
    std::shared_ptr<const std::string> json;
  };
  std::vector<Item> items;
  items.reserve(readings.size());
  for (const auto& r : readings) {
    const auto site = site_of(r.device_id);
    std::string json;
    JsonWriter w(json);
    w.begin_object()
        .field("device", sv(r.device_id))
        .field("site", site)
        .field("metric", sv(r.metric));
    w.field("value", r.value).field("unit", sv(r.unit)).field("ts", r.ts());
    w.field("received_ts", r.received_ts).field("quality", model::to_string(r.quality));
    if (!r.quality_reason.empty()) w.field("quality_reason", sv(r.quality_reason));
    w.end_object();
    items.push_back({&r, site, r.device_id + '\x1f' + r.metric,
                     std::make_shared<const std::string>(std::move(json))});
  }
  for (auto& [id, s] : sessions_) {
    if (s.closed) continue;
    bool any = false;
    for (const auto& item : items) {
      if (!matches(s.filter, item.reading->device_id, item.site)) continue;
      const auto ts = item.reading->ts();
      const auto it = s.readings.find(item.key);
      if (it != s.readings.end()) {
        // Never let an older value (out-of-order arrival) replace a newer unsent one.
        if (ts >= it->second.ts) it->second = {item.json, ts};
        readings_coalesced_.inc();
      } else if (s.readings.size() < limits_.max_pending_readings) {
        s.readings.emplace(item.key, PendingReading{item.json, ts});
        s.reading_order.push_back(item.key);
      } else {
        // Only reachable with more distinct metrics than configured devices could have.
        readings_coalesced_.inc();
        continue;
      }
      any = true;
    }
    if (any) pump(s);
  }
}

void LiveHub::publish_event(const model::Event& e) {
  if (sessions_.empty()) return;
  const auto site = site_of(e.device_id);
  std::string json;
  JsonWriter w(json);
  w.begin_object().field("type", "event").field("device", sv(e.device_id)).field("site", site);
  w.field("event_type", sv(e.type)).field("priority", model::to_string(e.priority));
  w.field("ts", e.ts()).field("received_ts", e.received_ts);
  w.key("attributes")
      .raw(e.attributes_json.empty() ? std::string_view{"{}"}
                                     : std::string_view{e.attributes_json});
  w.end_object();
  const auto frame = std::make_shared<const std::string>(std::move(json));
  const bool health = e.type == "health";
  for (auto& [id, s] : sessions_) {
    if (s.closed || !matches(s.filter, e.device_id, site)) continue;
    if (!health) {
      queue_urgent(s, frame);
      continue;
    }
    // A health change is a state: only the newest per device matters to a client behind.
    const auto [it, inserted] = s.health.try_emplace(e.device_id, frame);
    if (inserted) {
      s.health_order.push_back(e.device_id);
    } else {
      it->second = frame;
      health_coalesced_.inc();
    }
    pump(s);
  }
}

void LiveHub::publish_status(std::string_view json) {
  if (sessions_.empty()) return;
  const auto frame = std::make_shared<const std::string>(json);
  for (auto& [id, s] : sessions_) {
    if (!s.closed) queue_urgent(s, frame);
  }
}

void LiveHub::heartbeat() {
  const auto now = clock_.now();
  for (auto& [id, s] : sessions_) {
    if (s.closed) continue;
    if (s.busy && now - s.busy_since > limits_.write_stall) {
      close_slow(s);
      continue;
    }
    s.heartbeat_pending = true;
    pump(s);
  }
}

void LiveHub::queue_urgent(Session& s, std::shared_ptr<const std::string> frame) {
  if (s.urgent.size() >= limits_.max_event_backlog) {
    close_slow(s);
    return;
  }
  s.urgent.push_back(std::move(frame));
  pump(s);
}

void LiveHub::close_slow(Session& s) {
  s.closed = true;
  s.urgent.clear();
  s.readings.clear();
  s.reading_order.clear();
  s.heartbeat_pending = false;
  closed_slow_.inc();
  s.sink->close_slow();
}

void LiveHub::pump(Session& s) {
  if (s.busy || s.closed) return;
  std::shared_ptr<const std::string> frame;
  if (!s.urgent.empty()) {
    frame = std::move(s.urgent.front());
    s.urgent.pop_front();
  } else if (s.heartbeat_pending) {
    std::string json;
    JsonWriter(json)
        .begin_object()
        .field("type", "heartbeat")
        .field("ts", clock_.now())
        .end_object();
    frame = std::make_shared<const std::string>(std::move(json));
    s.heartbeat_pending = false;
  } else if (!s.health_order.empty()) {
    const auto it = s.health.find(s.health_order.front());
    frame = std::move(it->second);
    s.health.erase(it);
    s.health_order.pop_front();
  } else if (!s.readings.empty()) {
    std::string json = R"({"type":"readings","items":[)";
    std::size_t n = 0;
    while (!s.reading_order.empty() && n < limits_.max_items_per_frame) {
      const auto it = s.readings.find(s.reading_order.front());
      if (n++ > 0) json += ',';
      json += *it->second.item;
      s.readings.erase(it);
      s.reading_order.pop_front();
    }
    json += "]}";
    frame = std::make_shared<const std::string>(std::move(json));
  } else {
    return;
  }
  s.busy = true;
  s.busy_since = clock_.now();
  frames_sent_.inc();
  s.sink->send(std::move(frame));
}

}  // namespace fieldhub::web
