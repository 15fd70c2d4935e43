// SPDX-License-Identifier: Apache-2.0
#include "web/live_hub.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <optional>
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

void write_filter(JsonWriter& w, const LiveFilter& f) {
  w.key("filter").begin_object();
  if (!f.site.empty()) w.field("site", sv(f.site));
  if (!f.devices.empty()) {
    w.key("devices").begin_array();
    for (const auto& d : f.devices) w.value(sv(d));
    w.end_array();
  }
  w.field("telemetry", f.telemetry);
  if (f.interval.count() > 0) w.field("interval_ms", static_cast<std::int64_t>(f.interval.count()));
  w.end_object();
}

// interval_ms: whole milliseconds, 0 (every tick) up to max_live_interval.
std::optional<std::chrono::milliseconds> interval_from(std::int64_t ms) {
  if (ms < 0 || ms > max_live_interval.count()) return std::nullopt;
  return std::chrono::milliseconds{ms};
}

constexpr std::string_view interval_error =
    "'interval_ms' must be a whole number of milliseconds from 0 to 10000";

void normalize_devices(std::vector<std::string>& devices) {
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
}

std::shared_ptr<const std::string> error_frame(std::string_view message) {
  std::string json;
  JsonWriter(json).begin_object().field("type", "error").field("message", message).end_object();
  return std::make_shared<const std::string>(std::move(json));
}

}  // namespace

LiveFilterParse parse_live_filter(std::span<const std::pair<std::string, std::string>> query) {
  LiveFilterParse out;
  bool seen_site = false, seen_device = false, seen_devices = false, seen_telemetry = false,
       seen_interval = false;
  const auto once = [&out](bool& seen, const std::string& key) {
    if (seen) out.error = "parameter '" + key + "' given twice";
    seen = true;
    return out.error.empty();
  };
  for (const auto& [k, v] : query) {
    if (k == "site") {
      if (!once(seen_site, k)) break;
      out.filter.site = v;
    } else if (k == "device" || k == "devices") {
      if (!once(k == "device" ? seen_device : seen_devices, k)) break;
      // devices=a,b,c: a set; device=a: one device (ids never contain a comma in a URL list).
      std::string_view rest = v;
      while (!rest.empty()) {
        const auto comma = k == "device" ? std::string_view::npos : rest.find(',');
        const auto id = rest.substr(0, comma);
        if (!id.empty()) out.filter.devices.emplace_back(id);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      if (out.filter.devices.empty()) {
        out.error = "parameter '" + k + "' names no device";
        break;
      }
    } else if (k == "telemetry") {
      if (!once(seen_telemetry, k)) break;
      if (v != "on" && v != "off") {
        out.error = "parameter 'telemetry' must be on or off";
        break;
      }
      out.filter.telemetry = v == "on";
    } else if (k == "interval_ms") {
      if (!once(seen_interval, k)) break;
      std::int64_t ms = -1;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
      const auto interval = ec == std::errc{} && end == v.data() + v.size()
                                ? interval_from(ms)
                                : std::optional<std::chrono::milliseconds>{};
      if (!interval) {
        out.error = std::string(interval_error);
        break;
      }
      out.filter.interval = *interval;
    } else {
      out.error = "unknown parameter '" + k + "'";
      break;
    }
  }
  normalize_devices(out.filter.devices);
  return out;
}

LiveHub::LiveHub(const config::Config& config, const stores::LiveStore& live,
                 common::Metrics& metrics, const common::Clock& clock, LiveHubLimits limits)
    : live_(live),
      clock_(clock),
      limits_(limits),
      sessions_gauge_(metrics.gauge("fieldhub_live_sessions", "Open live feed sessions")),
      frames_sent_(
          metrics.counter("fieldhub_live_frames_sent_total", "Frames sent to live feed sessions")),
      telemetry_frames_rendered_(
          metrics.counter("fieldhub_live_telemetry_frames_rendered_total",
                          "Telemetry frames rendered for live sessions (one is shared by every "
                          "session with the same filter)")),
      readings_coalesced_(metrics.counter(
          "fieldhub_live_readings_coalesced_total",
          "Readings replaced by a newer one of the same metric before a session sent them")),
      health_coalesced_(metrics.counter(
          "fieldhub_live_health_coalesced_total",
          "Device health changes replaced by a newer one before a busy session sent them")),
      closed_slow_(metrics.counter("fieldhub_live_sessions_closed_slow_total",
                                   "Live sessions closed for falling too far behind")),
      client_errors_(metrics.counter("fieldhub_live_client_errors_total",
                                     "Live feed client messages refused (an error frame)")) {
  for (const auto& d : config.devices) devices_[d.id].site = d.site;
}

std::string_view LiveHub::site_of(std::string_view device_id) const {
  const auto it = devices_.find(device_id);
  return it == devices_.end() ? std::string_view{} : std::string_view{it->second.site};
}

std::pair<const std::string, LiveHub::DeviceInfo>& LiveHub::device_entry(
    std::string_view device_id) {
  auto it = devices_.find(device_id);
  // A device not in this instance's configuration (another instance's, through Redis).
  if (it == devices_.end()) it = devices_.emplace(std::string(device_id), DeviceInfo{}).first;
  return *it;
}

bool LiveHub::matches(const LiveFilter& f, std::string_view device_id,
                      std::string_view site) const {
  if (!f.site.empty() && f.site != site) return false;
  if (!f.devices.empty() &&
      !std::binary_search(f.devices.begin(), f.devices.end(), device_id, std::less<>{})) {
    return false;
  }
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
  normalize_devices(filter.devices);
  if (filter.interval <= limits_.telemetry_tick) filter.interval = {};
  s.filter = std::move(filter);
  count_telemetry(s.filter, +1);

  std::string hello;
  JsonWriter w(hello);
  w.begin_object().field("type", "hello").field("server", "fieldhub").field("session", id);
  w.field("ts", clock_.now());
  w.field("heartbeat_ms", static_cast<std::int64_t>(heartbeat_interval.count()));
  write_filter(w, s.filter);
  w.end_object();
  s.urgent.push_back(std::make_shared<const std::string>(std::move(hello)));
  if (s.filter.telemetry) {
    s.urgent.push_back(std::make_shared<const std::string>(render_snapshot(s.filter)));
  }
  for (const auto& make : attach_frames_) {
    s.urgent.push_back(std::make_shared<const std::string>(make()));
  }
  sessions_gauge_.add(1);
  pump(s);
  return id;
}

void LiveHub::set_flush_scheduler(std::function<void(std::chrono::milliseconds)> schedule) {
  schedule_flush_ = std::move(schedule);
  flush_scheduled_ = false;
  request_flush();
}

void LiveHub::count_telemetry(const LiveFilter& filter, int delta) {
  if (!filter.telemetry) return;
  const auto it = batches_.try_emplace(filter.interval).first;
  it->second.sessions += static_cast<std::size_t>(delta);
  // Nobody takes this interval any more: what waits for it goes nowhere.
  if (it->second.sessions == 0) batches_.erase(it);
}

void LiveHub::detach(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (!it->second.closed) count_telemetry(it->second.filter, -1);
  sessions_.erase(it);
  sessions_gauge_.add(-1);
}

void LiveHub::on_sent(SessionId id) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second.busy = false;
  pump(it->second);
}

void LiveHub::set_filter(Session& s, LiveFilter filter) {
  normalize_devices(filter.devices);
  if (filter.interval <= limits_.telemetry_tick) filter.interval = {};
  count_telemetry(s.filter, -1);
  count_telemetry(filter, +1);
  s.filter = std::move(filter);
  // The snapshot that follows supersedes whatever telemetry waited under the old filter.
  s.telemetry.clear();
  s.readings.clear();
  s.reading_order.clear();
}

void LiveHub::on_message(SessionId id, std::string_view text) {
  const auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.closed) return;
  Session& s = it->second;
  const auto refuse = [&](std::string_view message) {
    client_errors_.inc();
    queue_urgent(s, error_frame(message));
  };
  simdjson::dom::parser parser;
  simdjson::dom::object msg;
  if (parser.parse(text.data(), text.size()).get(msg) != simdjson::SUCCESS) {
    return refuse("message is not a JSON object");
  }
  std::string_view type;
  if (msg["type"].get(type) != simdjson::SUCCESS) return refuse("message has no string 'type'");
  if (type != "subscribe") return refuse("unknown message type");
  LiveFilter filter;
  for (const auto field : msg) {
    if (field.key == "type") continue;
    if (field.key == "site") {
      std::string_view site;
      if (field.value.get(site) != simdjson::SUCCESS) return refuse("'site' must be a string");
      filter.site = site;
    } else if (field.key == "devices") {
      simdjson::dom::array devices;
      if (field.value.get(devices) != simdjson::SUCCESS) {
        return refuse("'devices' must be an array of strings");
      }
      for (const auto d : devices) {
        std::string_view device;
        if (d.get(device) != simdjson::SUCCESS) {
          return refuse("'devices' must be an array of strings");
        }
        filter.devices.emplace_back(device);
      }
    } else if (field.key == "telemetry") {
      if (field.value.get(filter.telemetry) != simdjson::SUCCESS) {
        return refuse("'telemetry' must be true or false");
      }
    } else if (field.key == "interval_ms") {
      std::int64_t ms = -1;
      const auto interval =
          field.value.get(ms) == simdjson::SUCCESS ? interval_from(ms) : std::nullopt;
      if (!interval) return refuse(interval_error);
      filter.interval = *interval;
    } else {
      return refuse(std::string("unknown member '").append(field.key).append("'"));
    }
  }
  set_filter(s, std::move(filter));
  std::string answer;
  JsonWriter w(answer);
  w.begin_object().field("type", "subscribed").field("ts", clock_.now());
  write_filter(w, s.filter);
  w.end_object();
  queue_urgent(s, std::make_shared<const std::string>(std::move(answer)));
  if (s.filter.telemetry && !s.closed) {
    queue_urgent(s, std::make_shared<const std::string>(render_snapshot(s.filter)));
  }
}

void LiveHub::publish_readings(std::span<const model::Reading> readings) {
  // A batch exists only while sessions take telemetry at its interval.
  if (batches_.empty() || readings.empty()) return;
  const auto now = clock_.now();
  for (const auto& r : readings) {
    auto& [device, info] = device_entry(r.device_id);
    auto key_it = info.keys.find(r.metric);
    if (key_it == info.keys.end()) {
      if (next_key_ >= limits_.max_keys) {
        // Only reachable with far more distinct metrics than configured devices could have.
        readings_coalesced_.inc();
        continue;
      }
      key_it = info.keys.emplace(r.metric, next_key_++).first;
    }
    const Key key = key_it->second;
    const auto ts = r.ts();
    std::shared_ptr<const std::string> rendered;  // once, shared by every batch that takes it
    for (auto& [interval, batch] : batches_) {
      if (batch.slot.size() <= key) batch.slot.resize(key + 1, 0);
      std::uint32_t& slot = batch.slot[key];
      if (slot != 0 && batch.items[slot - 1].ts > ts) {
        // Never let an older value (out-of-order arrival) replace a newer unsent one.
        readings_coalesced_.inc();
        continue;
      }
      if (!rendered) {
        std::string json;
        JsonWriter w(json);
        w.begin_object()
            .field("device", sv(r.device_id))
            .field("site", sv(info.site))
            .field("metric", sv(r.metric));
        w.field("value", r.value).field("unit", sv(r.unit)).field("ts", ts);
        w.field("received_ts", r.received_ts).field("quality", model::to_string(r.quality));
        if (!r.quality_reason.empty()) w.field("quality_reason", sv(r.quality_reason));
        w.end_object();
        rendered = std::make_shared<const std::string>(std::move(json));
      }
      if (slot != 0) {
        // Within one batch only the newest value per metric goes out, in the first one's turn.
        batch.items[slot - 1].ts = ts;
        batch.items[slot - 1].json = rendered;
        readings_coalesced_.inc();
        continue;
      }
      if (batch.items.empty()) batch.due = now + std::max(interval, limits_.telemetry_tick);
      batch.items.push_back({key, device, &info, ts, rendered});
      slot = static_cast<std::uint32_t>(batch.items.size());
    }
  }
  request_flush();
}

void LiveHub::request_flush() {
  std::optional<model::Timestamp> due;
  for (const auto& [interval, batch] : batches_) {
    if (!batch.items.empty() && (!due || batch.due < *due)) due = batch.due;
  }
  if (!due) return;
  if (!schedule_flush_) return flush_telemetry();
  if (flush_scheduled_ && flush_due_ <= *due) return;
  flush_scheduled_ = true;
  flush_due_ = *due;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*due - clock_.now());
  schedule_flush_(std::max(wait, std::chrono::milliseconds{1}));
}

std::vector<std::shared_ptr<const std::string>> LiveHub::render_batch(const LiveFilter& filter,
                                                                      const Batch& batch) const {
  std::vector<std::shared_ptr<const std::string>> frames;
  std::string json;
  std::size_t n = 0;
  const auto finish = [&] {
    json += "]}";
    frames.push_back(std::make_shared<const std::string>(std::move(json)));
    json.clear();
    n = 0;
  };
  for (const auto& item : batch.items) {
    if (!matches(filter, item.device, item.info->site)) continue;
    if (n == 0) {
      json.reserve(64 +
                   std::min(batch.items.size(), limits_.max_items_per_frame) * item.json->size());
      json = R"({"type":"readings","items":[)";
    } else {
      json += ',';
    }
    json += *item.json;
    if (++n == limits_.max_items_per_frame) finish();
  }
  if (n > 0) finish();
  return frames;
}

void LiveHub::merge_batch(Session& s, const Batch& batch) {
  for (const auto& item : batch.items) {
    if (!matches(s.filter, item.device, item.info->site)) continue;
    const auto it = s.readings.find(item.key);
    if (it != s.readings.end()) {
      if (item.ts >= it->second.ts) it->second = {item.json, item.ts};
      readings_coalesced_.inc();
    } else if (s.readings.size() < limits_.max_pending_readings) {
      s.readings.emplace(item.key, PendingReading{item.json, item.ts});
      s.reading_order.push_back(item.key);
    } else {
      readings_coalesced_.inc();
    }
  }
}

void LiveHub::flush_telemetry() {
  flush_scheduled_ = false;
  const auto now = clock_.now();
  for (auto& [interval, batch] : batches_) {
    if (batch.items.empty()) continue;
    // The tick's batch goes whenever a flush runs; a longer interval's only once it is due
    // (always, without a scheduler).
    if (interval.count() > 0 && schedule_flush_ && batch.due > now) continue;
    flush_batch(interval, batch);
  }
  request_flush();
}

void LiveHub::flush_batch(std::chrono::milliseconds interval, Batch& batch) {
  // Frames rendered once per distinct filter in this flush (most consoles share one).
  std::vector<std::pair<const LiveFilter*, std::vector<std::shared_ptr<const std::string>>>>
      rendered;
  for (auto& [id, s] : sessions_) {
    if (s.closed || !s.filter.telemetry || s.filter.interval != interval) continue;
    if (!s.telemetry.empty() || !s.readings.empty()) {
      merge_batch(s, batch);  // still behind: coalesce
    } else {
      auto it = std::find_if(rendered.begin(), rendered.end(),
                             [&s](const auto& r) { return *r.first == s.filter; });
      if (it == rendered.end()) {
        rendered.emplace_back(&s.filter, render_batch(s.filter, batch));
        telemetry_frames_rendered_.inc(rendered.back().second.size());
        it = std::prev(rendered.end());
      }
      s.telemetry.insert(s.telemetry.end(), it->second.begin(), it->second.end());
    }
    pump(s);
  }
  for (const auto& item : batch.items) batch.slot[item.key] = 0;
  batch.items.clear();
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
  count_telemetry(s.filter, -1);
  s.closed = true;
  s.urgent.clear();
  s.telemetry.clear();
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
  } else if (!s.telemetry.empty()) {
    frame = std::move(s.telemetry.front());
    s.telemetry.pop_front();
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
