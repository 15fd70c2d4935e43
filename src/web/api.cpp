// SPDX-License-Identifier: Apache-2.0
#include "web/api.h"

#include <simdjson.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <charconv>
#include <cmath>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/json_writer.h"
#include "model/time.h"

namespace fieldhub::web {

struct Api::QueryThread {
  boost::asio::thread_pool pool{1};
};

namespace {

// JsonWriter::field() is ambiguous for std::string (string_view or model::Value): pass a view.
std::string_view sv(const std::string& s) {
  return s;
}

using common::JsonWriter;
using model::Timestamp;
using Query = std::vector<std::pair<std::string, std::string>>;

constexpr auto default_history_window = std::chrono::hours{1};

// step=auto: raw readings for a range up to 6 h, 1-minute buckets up to 7 days (at most 10,080),
// hourly beyond.
constexpr auto auto_raw_max = std::chrono::hours{6};
constexpr auto auto_minute_max = std::chrono::hours{24 * 7};

enum class Step { raw, minute, hour };

const char* step_name(Step s) {
  switch (s) {
    case Step::raw:
      return "raw";
    case Step::minute:
      return "1m";
    case Step::hour:
      return "1h";
  }
  return "raw";
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response error(int status, std::string_view message) {
  std::string body;
  JsonWriter(body).begin_object().field("error", message).end_object();
  return json_response(status, std::move(body));
}

Response method_not_allowed() {
  Response r = error(405, "method not allowed");
  r.headers.emplace_back("Allow", "GET");
  return r;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; '+' means space only in the query (HTML form encoding).
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_digit(s[i + 1]);
      const int lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// The query parameters a route accepts: anything else, or a repeat, is a 400 naming it, so a
// typo ("devcie=") is reported instead of silently returning everything.
class Params {
 public:
  Params(const Query& query, std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : query) {
      bool known = false;
      for (auto a : allowed) known = known || a == k;
      if (!known) {
        error_ = error(400, "unknown parameter '" + k + "'");
        return;
      }
      for (const auto& [seen, unused] : values_) {
        if (seen == k) {
          error_ = error(400, "parameter '" + k + "' given more than once");
          return;
        }
      }
      values_.emplace_back(k, v);
    }
  }

  const std::optional<Response>& error_response() const { return error_; }

  std::optional<std::string> get(std::string_view name) const {
    for (const auto& [k, v] : values_) {
      if (k == name) return v;
    }
    return std::nullopt;
  }

  // A non-empty optional string filter: "?site=" (empty) counts as absent.
  std::optional<std::string> filter(std::string_view name) const {
    auto v = get(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  }

  std::optional<Timestamp> time(std::string_view name, std::optional<Response>& err) const {
    const auto v = get(name);
    if (!v) return std::nullopt;
    auto ts = model::parse_rfc3339(*v);
    if (!ts) {
      err = error(400, "parameter '" + std::string(name) +
                           "': not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)");
    }
    return ts;
  }

  std::size_t limit(std::size_t fallback, std::size_t max, std::optional<Response>& err) const {
    const auto v = get("limit");
    if (!v) return fallback;
    std::size_t n = 0;
    const auto res = std::from_chars(v->data(), v->data() + v->size(), n);
    if (res.ec != std::errc{} || res.ptr != v->data() + v->size() || n < 1 || n > max) {
      err = error(400, "parameter 'limit': must be an integer from 1 to " + std::to_string(max));
      return fallback;
    }
    return n;
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
  std::optional<Response> error_;
};

const model::Device* find_device(const config::Config& config, std::string_view id) {
  for (const auto& d : config.devices) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

const config::Profile* find_profile(const config::Config& config, std::string_view name) {
  for (const auto& p : config.profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const config::MetricSpec* find_metric(const config::Profile* profile, std::string_view name) {
  if (profile == nullptr) return nullptr;
  for (const auto& m : profile->metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

// Seconds since `then`, millisecond resolution; never negative (a clock step or a future time).
double age_seconds(Timestamp now, Timestamp then) {
  const auto us = model::to_micros(now) - model::to_micros(then);
  if (us <= 0) return 0.0;
  return std::round(static_cast<double>(us) / 1000.0) / 1000.0;
}

// Stale or offline: its values are old, never current (issue 5, point 3).
bool values_old(const std::optional<health::DeviceHealth>& h) {
  return h && (h->state == health::State::stale || h->state == health::State::offline);
}

void write_health_fields(JsonWriter& w, const std::optional<health::DeviceHealth>& h) {
  if (!h) {
    w.key("health").null().key("health_since").null().key("health_reason").null();
    w.key("expected_interval_s").null();
    return;
  }
  w.field("health", health::to_string(h->state));
  w.field("health_since", h->since);
  if (h->reason.empty()) {
    w.key("health_reason").null();
  } else {
    w.field("health_reason", sv(h->reason));
  }
  if (h->expected_interval.count() > 0) {
    w.field("expected_interval_s", static_cast<double>(h->expected_interval.count()) / 1000.0);
  } else {
    w.key("expected_interval_s").null();
  }
}

std::optional<health::DeviceHealth> device_health(const ApiContext& ctx, std::string_view id) {
  if (ctx.tracker == nullptr) return std::nullopt;
  return ctx.tracker->device(id);
}

void write_device_fields(JsonWriter& w, const model::Device& d,
                         const std::optional<stores::DeviceState>& state, Timestamp now) {
  w.field("id", sv(d.id)).field("kind", sv(d.kind)).field("site", sv(d.site));
  w.key("location").begin_object();
  for (const auto& [k, v] : d.location) w.field(k, sv(v));
  w.end_object();
  w.field("profile", sv(d.profile)).field("protocol", sv(d.protocol));
  if (state && state->last_seen) {
    w.field("last_seen", *state->last_seen).field("age_s", age_seconds(now, *state->last_seen));
  } else {
    w.key("last_seen").null().key("age_s").null();
  }
}

void write_latest(JsonWriter& w, const stores::LatestValue& v, Timestamp now, bool old) {
  w.begin_object();
  // "stale": the device is stale or offline, so this value is its last known, not its current.
  w.field("stale", old);
  w.field("value", v.value).field("unit", sv(v.unit)).field("ts", v.ts);
  w.field("received_ts", v.received_ts).field("age_s", age_seconds(now, v.received_ts));
  w.field("quality", model::to_string(v.quality));
  if (v.quality_reason.empty()) {
    w.key("quality_reason").null();
  } else {
    w.field("quality_reason", sv(v.quality_reason));
  }
  w.end_object();
}

void write_never_received(JsonWriter& w, const config::MetricSpec& m) {
  w.begin_object();
  w.key("value").null().field("unit", sv(m.unit)).key("ts").null().key("received_ts").null();
  w.key("age_s").null().key("quality").null().key("quality_reason").null();
  w.end_object();
}

Response list_devices(const ApiContext& ctx, const Query& query) {
  const Params params(query, {"site", "kind", "health"});
  if (params.error_response()) return *params.error_response();
  const auto site = params.filter("site");
  const auto kind = params.filter("kind");
  std::optional<health::State> only;
  if (const auto h = params.filter("health")) {
    only = health::parse_state(*h);
    if (!only) return error(400, "parameter 'health': must be unknown, online, stale or offline");
  }
  const Timestamp now = ctx.clock.now();
  std::string body;
  JsonWriter w(body);
  w.begin_array();
  for (const auto& d : ctx.config.devices) {
    if (site && d.site != *site) continue;
    if (kind && d.kind != *kind) continue;
    const auto h = device_health(ctx, d.id);
    if (only && (!h || h->state != *only)) continue;
    w.begin_object();
    write_device_fields(w, d, ctx.live.get(d.id), now);
    write_health_fields(w, h);
    w.end_object();
  }
  w.end_array();
  return json_response(200, std::move(body));
}

Response get_device(const ApiContext& ctx, const model::Device& d, const Query& query) {
  const Params params(query, {});
  if (params.error_response()) return *params.error_response();
  const Timestamp now = ctx.clock.now();
  const auto state = ctx.live.get(d.id);
  const config::Profile* profile = find_profile(ctx.config, d.profile);
  std::string body;
  JsonWriter w(body);
  const auto h = device_health(ctx, d.id);
  const bool old = values_old(h);
  w.begin_object();
  write_device_fields(w, d, state, now);
  write_health_fields(w, h);
  w.key("metrics").begin_object();
  // Declared metrics first, in the profile's order, so a page shows a stable layout; then
  // anything the live store holds that the profile does not declare (should not happen, but
  // hiding data would be worse).
  if (profile != nullptr) {
    for (const auto& m : profile->metrics) {
      w.key(m.name);
      const stores::LatestValue* latest = nullptr;
      if (state) {
        const auto it = state->metrics.find(m.name);
        if (it != state->metrics.end()) latest = &it->second;
      }
      if (latest != nullptr) {
        write_latest(w, *latest, now, old);
      } else {
        write_never_received(w, m);
      }
    }
  }
  if (state) {
    for (const auto& [name, v] : state->metrics) {
      if (find_metric(profile, name) != nullptr) continue;
      w.key(name);
      write_latest(w, v, now, old);
    }
  }
  w.end_object();
  w.end_object();
  return json_response(200, std::move(body));
}

void write_event(JsonWriter& w, const model::Event& e, std::string_view site) {
  w.field("device", sv(e.device_id)).field("site", site).field("event_type", sv(e.type));
  w.field("priority", model::to_string(e.priority)).field("ts", e.ts());
  w.field("received_ts", e.received_ts);
  // attributes_json is produced by our own normalizer as a JSON object.
  w.key("attributes").raw(e.attributes_json.empty() ? std::string_view{"{}"} : e.attributes_json);
}

// Cuts s to at most cap bytes without splitting a UTF-8 sequence.
std::string_view cap_text(std::string_view s, std::size_t cap) {
  if (s.size() <= cap) return s;
  std::size_t n = cap;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

std::string content_type_for(const std::filesystem::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// GET /api/v1/alarms and POST /api/v1/alarms/{id}/{action}: the alarm console's routes.
Response alarm_error(const alarms::ActionError& e) {
  switch (e.code) {
    case alarms::ActionError::Code::not_found:
      return error(404, e.message);
    case alarms::ActionError::Code::conflict:
      return error(409, e.message);
    case alarms::ActionError::Code::bad_request:
      break;
  }
  return error(400, e.message);
}

Response alarm_json(const alarms::Alarm& a) {
  std::string body;
  JsonWriter w(body);
  alarms::write_alarm(w, a);
  return json_response(200, std::move(body));
}

Response list_alarms(alarms::AlarmEngine& engine, const Query& query) {
  const Params params(query, {"state", "priority", "site", "device", "limit"});
  if (params.error_response()) return *params.error_response();
  alarms::AlarmFilter f;
  if (const auto state = params.filter("state")) {
    if (*state == "open") {
      f.scope = alarms::AlarmFilter::Scope::open;
    } else if (*state == "active") {
      f.scope = alarms::AlarmFilter::Scope::active;
    } else if (*state == "unacked") {
      f.scope = alarms::AlarmFilter::Scope::unacked;
    } else if (*state == "all") {
      f.scope = alarms::AlarmFilter::Scope::all;
    } else {
      return error(400, "parameter 'state': must be open, active, unacked or all");
    }
  }
  if (const auto priority = params.filter("priority")) {
    f.priority = model::parse_priority(*priority);
    if (!f.priority || *f.priority == model::Priority::none) {
      return error(400, "parameter 'priority': must be high, medium or low");
    }
  }
  f.site = params.filter("site").value_or("");
  f.device = params.filter("device").value_or("");
  std::optional<Response> err;
  f.limit = params.limit(Api::max_alarm_limit, Api::max_alarm_limit, err);
  if (err) return *err;
  std::string body;
  JsonWriter w(body);
  w.begin_object().key("alarms").begin_array();
  for (const alarms::Alarm* a : engine.list(f)) alarms::write_alarm(w, *a);
  w.end_array().end_object();
  return json_response(200, std::move(body));
}

// Parses {"metric","value","by","comment"?} into `c`; a 400 naming the field otherwise.
std::optional<Response> parse_command(const std::string& body, commands::Command& c) {
  simdjson::dom::parser parser;
  simdjson::dom::object fields;
  if (parser.parse(body).get(fields) != simdjson::SUCCESS) {
    return error(400, "the body must be a JSON object");
  }
  bool has_value = false;
  for (const auto field : fields) {
    const std::string_view key = field.key;
    std::string_view s;
    if (key == "metric" || key == "by" || key == "comment") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) {
        return error(400, "field '" + std::string(key) + "': must be a string");
      }
      (key == "metric" ? c.metric : key == "by" ? c.by : c.comment) = std::string(s);
    } else if (key == "value") {
      has_value = true;
      double d = 0;
      bool b = false;
      if (field.value.get_double().get(d) == simdjson::SUCCESS) {
        c.value = d;
      } else if (field.value.get_bool().get(b) == simdjson::SUCCESS) {
        c.value = b;
      } else if (field.value.get_string().get(s) == simdjson::SUCCESS) {
        c.value = std::string(s);
      } else {
        return error(400, "field 'value': must be a number, true/false or a string");
      }
    } else {
      return error(400, "unknown field '" + std::string(key) + "'");
    }
  }
  if (c.metric.empty()) return error(400, "field 'metric': required");
  if (!has_value) return error(400, "field 'value': required");
  if (c.by.empty()) return error(400, "field 'by': required (who sends the command)");
  if (c.by.size() > alarms::AlarmEngine::max_operator_bytes) {
    return error(400, "field 'by': too long");
  }
  if (c.comment.size() > alarms::AlarmEngine::max_comment_bytes) {
    return error(400, "field 'comment': too long");
  }
  return std::nullopt;
}

// 200 when the device took the value (read back equal); otherwise who failed: the request (400),
// the device (502), nobody answering (504), the link or the adapter (503).
int command_status(adapters::WriteError e) {
  switch (e) {
    case adapters::WriteError::none:
      return 200;
    case adapters::WriteError::not_writable:
    case adapters::WriteError::invalid_value:
      return 400;
    case adapters::WriteError::timeout:
      return 504;
    case adapters::WriteError::exception:
    case adapters::WriteError::mismatch:
    case adapters::WriteError::bad_reply:
      return 502;
    case adapters::WriteError::connection_lost:
    case adapters::WriteError::stopped:
      return 503;
  }
  return 500;
}

Response command_json(const commands::Outcome& o) {
  std::string body;
  JsonWriter w(body);
  w.begin_object().key("command").begin_object();
  w.field("id", o.id)
      .field("device", sv(o.command.device_id))
      .field("metric", sv(o.command.metric));
  w.key("value").value(o.command.value);
  w.field("by", sv(o.command.by));
  if (!o.command.comment.empty()) w.field("comment", sv(o.command.comment));
  w.field("result", adapters::to_string(o.result.error));
  if (!o.result.detail.empty()) w.field("detail", sv(o.result.detail));
  w.field("requested_at", o.requested_at).field("completed_at", o.completed_at);
  w.end_object().end_object();
  return json_response(command_status(o.result.error), std::move(body));
}

Response act_on_alarm(alarms::AlarmEngine& engine, const common::Clock& clock,
                      std::string_view id_text, std::string_view action, const std::string& body) {
  std::uint64_t id = 0;
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc{} || end != id_text.data() + id_text.size()) {
    return error(404, "no alarm " + std::string(id_text));
  }
  simdjson::dom::parser parser;
  simdjson::dom::object fields;
  if (parser.parse(body).get(fields) != simdjson::SUCCESS) {
    return error(400, "the body must be a JSON object");
  }
  std::string by;
  std::string text;
  std::optional<double> minutes;
  for (const auto field : fields) {
    const std::string_view key = field.key;
    std::string_view s;
    if (key == "by" || key == "comment" || key == "text") {
      if (field.value.get_string().get(s) != simdjson::SUCCESS) {
        return error(400, "field '" + std::string(key) + "': must be a string");
      }
      (key == "by" ? by : text) = std::string(s);
    } else if (key == "minutes" && action == "shelve") {
      double m = 0;
      if (field.value.get_double().get(m) != simdjson::SUCCESS) {
        return error(400, "field 'minutes': must be a number");
      }
      minutes = m;
    } else {
      return error(400, "unknown field '" + std::string(key) + "'");
    }
  }
  alarms::ActionResult result = alarms::ActionError{};
  if (action == "ack") {
    result = engine.ack(id, by, text);
  } else if (action == "reset") {
    result = engine.reset(id, by, text);
  } else if (action == "shelve") {
    if (!minutes || !std::isfinite(*minutes)) return error(400, "field 'minutes': required");
    const auto until =
        clock.now() + std::chrono::microseconds{static_cast<std::int64_t>(*minutes * 60e6)};
    result = engine.shelve(id, by, until, text);
  } else if (action == "unshelve") {
    result = engine.unshelve(id, by);
  } else if (action == "comment") {
    result = engine.comment(id, by, text);
  } else {
    return error(404, "no such alarm action '" + std::string(action) +
                          "' (ack, reset, shelve, unshelve, comment)");
  }
  return result.ok() ? alarm_json(result.value()) : alarm_error(result.status());
}

}  // namespace

Target parse_target(std::string_view target) {
  Target t;
  const auto q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  const auto path = percent_decode(raw_path, false);
  if (!path) {
    t.ok = false;
    return t;
  }
  t.path = *path;
  std::size_t start = 0;
  while (start < raw_path.size()) {
    if (raw_path[start] == '/') {
      ++start;
      continue;
    }
    const auto end = raw_path.find('/', start);
    const auto seg =
        raw_path.substr(start, end == std::string_view::npos ? raw_path.npos : end - start);
    t.segments.push_back(*percent_decode(seg, false));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto k = percent_decode(pair.substr(0, eq), true);
    auto v = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1),
                            true);
    if (!k || !v) {
      t.ok = false;
      return t;
    }
    t.query.emplace_back(std::move(*k), std::move(*v));
  }
  return t;
}

std::filesystem::path resolve_static(const std::filesystem::path& static_dir,
                                     std::string_view path) {
  namespace fs = std::filesystem;
  if (static_dir.empty()) return {};
  std::string rel(path);
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.empty()) rel = "index.html";
  // Refuse before touching the file system: no parent segments, no Windows separators, no NUL.
  if (rel.find('\\') != std::string::npos || rel.find('\0') != std::string::npos) return {};
  for (const auto& part : fs::path(rel)) {
    if (part == "..") return {};
  }
  std::error_code ec;
  const fs::path root = fs::canonical(static_dir, ec);
  if (ec) return {};
  const fs::path file = fs::canonical(root / rel, ec);
  if (ec) return {};
  // A symlink inside the folder could still point out of it: compare the resolved paths.
  const auto mismatch = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
  if (mismatch.first != root.end()) return {};
  if (!fs::is_regular_file(file, ec)) return {};
  return file;
}

Api::Api(ApiContext ctx) : ctx_(std::move(ctx)), query_thread_(std::make_unique<QueryThread>()) {}

Api::~Api() {
  // Let queued history queries finish: their `done` callbacks may still be waited on.
  query_thread_->pool.join();
}

void Api::count_request(std::string_view route, int status) {
  ctx_.metrics
      .counter("fieldhub_http_requests_total", "HTTP requests by route and status",
               {{"route", std::string(route)}, {"status", std::to_string(status)}})
      .inc();
}

void Api::respond(std::string_view route, Response response, const Done& done) {
  count_request(route, response.status);
  done(std::move(response));
}

void Api::run_query(std::string route, std::function<Response()> query, Done done) {
  if (pending_queries_.fetch_add(1) >= max_pending_queries) {
    pending_queries_.fetch_sub(1);
    respond(route, error(503, "history busy: too many queries in progress"), done);
    return;
  }
  boost::asio::post(query_thread_->pool, [this, route = std::move(route), query = std::move(query),
                                          done = std::move(done)] {
    Response r;
    try {
      r = query();
    } catch (const std::exception& e) {
      // A store that cannot answer (locked, disk gone) is "history unavailable", not a crash.
      r = error(503, std::string("history unavailable: ") + e.what());
    }
    pending_queries_.fetch_sub(1);
    respond(route, std::move(r), done);
  });
}

// GET /api/v1/health: device counts by state and every link.
Response get_health(const ApiContext& ctx, const Query& query) {
  const Params params(query, {});
  if (params.error_response()) return *params.error_response();
  std::string body;
  JsonWriter w(body);
  w.begin_object();
  if (ctx.tracker == nullptr) {
    w.key("summary").null().key("links").begin_array().end_array().end_object();
    return json_response(200, std::move(body));
  }
  const health::HealthSummary s = ctx.tracker->summary();
  w.key("summary").begin_object();
  for (std::size_t i = 0; i < health::state_count; ++i) {
    w.field(health::to_string(static_cast<health::State>(i)), std::uint64_t{s.counts[i]});
  }
  w.end_object();
  w.key("links").begin_array();
  for (const auto& l : s.links) {
    w.begin_object().field("name", sv(l.name)).field("state", health::to_string(l.state));
    if (l.since == Timestamp{}) {
      w.key("since").null();
    } else {
      w.field("since", l.since);
    }
    if (l.reason.empty()) {
      w.key("reason").null();
    } else {
      w.field("reason", sv(l.reason));
    }
    w.field("reconnects", l.reconnect_attempts).field("downs", l.downs);
    w.field("devices", std::uint64_t{l.devices});
    w.key("errors").begin_object();
    for (const auto& [kind, n] : l.errors) w.field(kind, n);
    w.end_object();
    w.key("rtt");
    if (l.rtt.samples == 0) {
      w.null();
    } else {
      const auto ms = [](std::chrono::microseconds us) {
        return static_cast<double>(us.count()) / 1000.0;
      };
      w.begin_object()
          .field("last_ms", ms(l.rtt.last))
          .field("mean_ms", ms(l.rtt.mean))
          .field("min_ms", ms(l.rtt.min))
          .field("max_ms", ms(l.rtt.max))
          .field("samples", l.rtt.samples)
          .end_object();
    }
    w.end_object();
  }
  w.end_array().end_object();
  return json_response(200, std::move(body));
}

void Api::handle(const Request& request, Done done) {
  const Target t = parse_target(request.target);
  if (!t.ok) {
    respond("invalid", error(400, "malformed percent-encoding in request target"), done);
    return;
  }
  const auto& seg = t.segments;
  const bool get = request.method == "GET";
  const bool is_api = !seg.empty() && seg[0] == "api";

  if (seg.size() == 1 && seg[0] == "metrics") {
    if (!get) return respond("/metrics", method_not_allowed(), done);
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = ctx_.metrics.render_prometheus();
    return respond("/metrics", std::move(r), done);
  }

  if (seg.size() == 1 && seg[0] == "healthz") {
    if (!get) return respond("/healthz", method_not_allowed(), done);
    const HealthReport report = ctx_.health ? ctx_.health() : HealthReport{};
    std::string body;
    JsonWriter w(body);
    w.begin_object().field("status", report.ok ? "ok" : "degraded");
    w.key("components").begin_object();
    for (const auto& [name, state] : report.components) w.field(name, sv(state));
    w.end_object().end_object();
    return respond("/healthz", json_response(report.ok ? 200 : 503, std::move(body)), done);
  }

  if (is_api && seg.size() >= 3 && seg[1] == "v1") {
    const std::string& resource = seg[2];
    if (resource == "health" && seg.size() == 3) {
      if (!get) return respond("/api/v1/health", method_not_allowed(), done);
      return respond("/api/v1/health", get_health(ctx_, t.query), done);
    }
    if (resource == "devices" && seg.size() == 3) {
      if (!get) return respond("/api/v1/devices", method_not_allowed(), done);
      return respond("/api/v1/devices", list_devices(ctx_, t.query), done);
    }
    if (resource == "devices" && (seg.size() == 4 || (seg.size() == 5 && seg[4] == "history"))) {
      const bool history = seg.size() == 5;
      const std::string route = history ? "/api/v1/devices/{id}/history" : "/api/v1/devices/{id}";
      if (!get) return respond(route, method_not_allowed(), done);
      const model::Device* device = find_device(ctx_.config, seg[3]);
      if (device == nullptr)
        return respond(route, error(404, "unknown device '" + seg[3] + "'"), done);
      if (!history) return respond(route, get_device(ctx_, *device, t.query), done);

      const Params params(t.query, {"metric", "from", "to", "step", "limit"});
      if (params.error_response()) return respond(route, *params.error_response(), done);
      const auto metric = params.get("metric");
      if (!metric || metric->empty()) {
        return respond(route, error(400, "missing parameter 'metric'"), done);
      }
      const config::MetricSpec* spec =
          find_metric(find_profile(ctx_.config, device->profile), *metric);
      if (spec == nullptr) {
        return respond(route,
                       error(400, "parameter 'metric': '" + *metric +
                                      "' is not a metric of device '" + device->id + "'"),
                       done);
      }
      std::optional<Response> err;
      const auto from = params.time("from", err);
      const auto to = params.time("to", err);
      const std::size_t limit = params.limit(10000, max_history_limit, err);
      if (err) return respond(route, *err, done);
      stores::ReadingQuery q;
      q.device_id = device->id;
      q.metric = *metric;
      q.to = to.value_or(ctx_.clock.now());
      q.from = from.value_or(q.to - default_history_window);
      q.limit = limit;
      if (!(q.from < q.to)) {
        return respond(route, error(400, "parameter 'from': must be before 'to'"), done);
      }
      // Only number metrics have rollups (stores/history_store.h): auto answers the others raw.
      const bool numeric = spec->type == model::ValueType::number;
      Step step = Step::raw;
      const std::string step_text = params.get("step").value_or("auto");
      if (step_text == "auto") {
        const auto span = q.to - q.from;
        if (numeric && span > auto_raw_max) {
          step = span <= auto_minute_max ? Step::minute : Step::hour;
        }
      } else if (step_text == "1m" || step_text == "1h") {
        if (!numeric) {
          return respond(route,
                         error(400, "parameter 'step': metric '" + *metric +
                                        "' is not a number and has no rollups; use step=raw"),
                         done);
        }
        step = step_text == "1m" ? Step::minute : Step::hour;
      } else if (step_text != "raw") {
        return respond(route, error(400, "parameter 'step': must be raw, 1m, 1h or auto"), done);
      }
      std::string unit = spec->unit;
      const bool counter = spec->counter;
      const auto head = [unit, counter](JsonWriter& w, const stores::ReadingQuery& rq, Step st) {
        w.begin_object().field("device", sv(rq.device_id)).field("metric", sv(rq.metric));
        w.field("unit", sv(unit)).field("counter", counter).field("resolution", step_name(st));
        w.field("from", rq.from).field("to", rq.to);
      };
      if (step == Step::raw) {
        return run_query(
            route,
            [this, q, head] {
              const auto points = ctx_.history.readings(q);
              std::string body;
              JsonWriter w(body);
              head(w, q, Step::raw);
              w.key("points").begin_array();
              for (const auto& p : points) {
                w.begin_object().field("ts", p.ts()).field("value", p.value);
                w.field("quality", model::to_string(p.quality)).end_object();
              }
              w.end_array().end_object();
              return json_response(200, std::move(body));
            },
            std::move(done));
      }
      // Without a limit, every bucket of the range: 7 days of minutes (the largest auto range)
      // are 10,080 buckets, more than the raw default, and the newest must not be cut off.
      stores::RollupQuery rq{
          q.device_id,
          q.metric,
          step == Step::minute ? stores::Resolution::minute : stores::Resolution::hour,
          q.from,
          q.to,
          params.get("limit") ? q.limit : max_history_limit};
      return run_query(
          route,
          [this, q, rq, step, head, counter] {
            const auto buckets = ctx_.history.rollups(rq);
            std::string body;
            JsonWriter w(body);
            head(w, q, step);
            w.key("points").begin_array();
            for (const auto& b : buckets) {
              w.begin_object().field("ts", b.start).field("min", b.min).field("max", b.max);
              w.field("mean", b.mean()).field("count", b.count).field("last", b.last);
              w.key("delta");
              // Consumption in the bucket, only meaningful for a counter (a meter total).
              if (counter && b.delta) {
                w.value(*b.delta);
              } else {
                w.null();
              }
              w.end_object();
            }
            w.end_array().end_object();
            return json_response(200, std::move(body));
          },
          std::move(done));
    }
    if (resource == "events" && seg.size() == 3) {
      const std::string route = "/api/v1/events";
      if (!get) return respond(route, method_not_allowed(), done);
      const Params params(t.query, {"device", "type", "from", "to", "limit"});
      if (params.error_response()) return respond(route, *params.error_response(), done);
      std::optional<Response> err;
      stores::EventQuery q;
      q.device_id = params.filter("device");
      q.type = params.filter("type");
      // Without bounds: everything, newest first, so a page shows the latest calls.
      q.from = params.time("from", err).value_or(model::from_micros(0));
      q.to = params.time("to", err).value_or(Timestamp::max());
      q.limit = params.limit(100, max_event_limit, err);
      if (err) return respond(route, *err, done);
      if (!(q.from < q.to)) {
        return respond(route, error(400, "parameter 'from': must be before 'to'"), done);
      }
      return run_query(
          route,
          [this, q] {
            const auto events = ctx_.history.events(q);
            std::string body;
            JsonWriter w(body);
            w.begin_array();
            for (const auto& e : events) {
              const model::Device* d = find_device(ctx_.config, e.device_id);
              w.begin_object();
              write_event(w, e, d != nullptr ? std::string_view{d->site} : std::string_view{});
              w.end_object();
            }
            w.end_array();
            return json_response(200, std::move(body));
          },
          std::move(done));
    }
    if (resource == "devices" && seg.size() == 5 && seg[4] == "commands" &&
        ctx_.commands != nullptr) {
      const std::string route = "/api/v1/devices/{id}/commands";
      if (request.method != "POST") {
        Response r = error(405, "method not allowed");
        r.headers.emplace_back("Allow", "POST");
        return respond(route, std::move(r), done);
      }
      const model::Device* device = find_device(ctx_.config, seg[3]);
      if (device == nullptr)
        return respond(route, error(404, "unknown device '" + seg[3] + "'"), done);
      commands::Command c;
      c.device_id = device->id;
      c.protocol = device->protocol;
      if (auto bad = parse_command(request.body, c)) return respond(route, std::move(*bad), done);
      const bool taken =
          ctx_.commands->submit(std::move(c), [this, route, done](const commands::Outcome& o) {
            respond(route, command_json(o), done);
          });
      if (!taken) return respond(route, error(503, "too many commands in progress"), done);
      return;
    }
    if (resource == "alarms" && ctx_.alarms != nullptr && (seg.size() == 3 || seg.size() == 5)) {
      if (seg.size() == 3) {
        if (!get) return respond("/api/v1/alarms", method_not_allowed(), done);
        return respond("/api/v1/alarms", list_alarms(*ctx_.alarms, t.query), done);
      }
      const std::string route = "/api/v1/alarms/{id}/{action}";
      if (request.method != "POST") {
        Response r = error(405, "method not allowed");
        r.headers.emplace_back("Allow", "POST");
        return respond(route, std::move(r), done);
      }
      return respond(route, act_on_alarm(*ctx_.alarms, ctx_.clock, seg[3], seg[4], request.body),
                     done);
    }
    if (resource == "dead-letters" && seg.size() == 3) {
      const std::string route = "/api/v1/dead-letters";
      if (!get) return respond(route, method_not_allowed(), done);
      const Params params(t.query, {"reason", "limit"});
      if (params.error_response()) return respond(route, *params.error_response(), done);
      std::optional<Response> err;
      stores::DeadLetterQuery q;
      q.reason = params.filter("reason");
      q.limit = params.limit(100, max_dead_letter_limit, err);
      if (err) return respond(route, *err, done);
      return run_query(
          route,
          [this, q] {
            const auto letters = ctx_.history.dead_letters(q);
            std::string body;
            JsonWriter w(body);
            w.begin_array();
            for (const auto& l : letters) {
              // The payload is shown as text: JsonWriter turns invalid UTF-8 into U+FFFD.
              const auto text = cap_text(l.payload, dead_letter_text_cap);
              w.begin_object().field("received_ts", l.received_ts).field("source", sv(l.source));
              w.field("reason", sv(l.reason)).field("detail", sv(l.detail)).field("payload", text);
              w.field("payload_bytes", static_cast<std::uint64_t>(l.payload.size()));
              w.field("payload_truncated", text.size() < l.payload.size()).end_object();
            }
            w.end_array();
            return json_response(200, std::move(body));
          },
          std::move(done));
    }
  }

  if (is_api) {
    return respond("unknown", error(404, "no such endpoint: " + t.path), done);
  }

  // Everything else is a file: the dashboard's libraries under /vendor/, else the pages.
  constexpr std::string_view vendor_prefix = "/vendor/";
  const bool vendor = t.path.starts_with(vendor_prefix);
  const std::string_view route = vendor ? "vendor" : "static";
  if (!get) return respond(route, method_not_allowed(), done);
  // Under /vendor/ the bare folder is not a page: "/vendor/" never falls back to index.html.
  const std::string_view rel =
      vendor ? std::string_view(t.path).substr(vendor_prefix.size()) : std::string_view(t.path);
  const auto file = vendor && rel.empty() ? std::filesystem::path{}
                                          : resolve_static(vendor ? ctx_.config.server.vendor_dir
                                                                  : ctx_.config.server.static_dir,
                                                           rel);
  if (file.empty()) return respond(route, error(404, "not found: " + t.path), done);
  std::ifstream in(file, std::ios::binary);
  if (!in.is_open()) return respond(route, error(404, "not found: " + t.path), done);
  std::ostringstream content;
  content << in.rdbuf();
  Response r;
  r.content_type = content_type_for(file);
  r.body = std::move(content).str();
  r.headers.emplace_back("Cache-Control", "no-cache");
  respond(route, std::move(r), done);
}

}  // namespace fieldhub::web
