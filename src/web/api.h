// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alarms/alarm_engine.h"
#include "commands/command_router.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "health/health_tracker.h"
#include "stores/history_store.h"
#include "stores/live_store.h"

namespace fieldhub::web {

// What the composition root says about the process's health for GET /healthz.
struct HealthReport {
  bool ok = true;
  std::vector<std::pair<std::string, std::string>>
      components;  // name → state ("ok", "degraded: …")
};

struct ApiContext {
  const config::Config& config;
  stores::LiveStore& live;
  stores::HistoryStore& history;
  common::Metrics& metrics;
  const common::Clock& clock;
  std::function<HealthReport()> health;  // empty: always ok, no components
  // Device and link health for /api/v1/health and the health fields of /api/v1/devices. Read on
  // the io executor only (handle()), like the tracker itself. Null: health fields are null.
  const health::HealthTracker* tracker = nullptr;
  // Alarms for /api/v1/alarms (io executor only). Null: the routes answer 404.
  alarms::AlarmEngine* alarms = nullptr;
  // Writes for POST /api/v1/devices/{id}/commands (io executor only). Null: 404.
  commands::CommandRouter* commands = nullptr;
};

// One HTTP request as the API sees it, independent of the transport.
struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form: path plus optional "?query", still percent-encoded
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Allow, Cache-Control)
};

// Decoded target: the path split into percent-decoded segments and the query parameters.
struct Target {
  std::string path;                                        // percent-decoded
  std::vector<std::string> segments;                       // path split on '/', each decoded
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  bool ok = true;                                          // false: malformed percent-encoding
};
Target parse_target(std::string_view target);

// Resolves a request path under the static folder: "/" → index.html. Returns an empty path for
// anything that could leave the folder (a ".." segment, a backslash, a NUL, a symlink pointing
// out) or that is not a regular file.
std::filesystem::path resolve_static(const std::filesystem::path& static_dir,
                                     std::string_view path);

// The REST API: request → response, with no socket code so it is unit-testable.
// Threads: handle() is called on the io executor (the only place the LiveStore is read). Routes
// that query the HistoryStore run on the Api's own query thread (one thread: the store's queries
// are blocking); for those `done` is called on that thread and the caller posts the response
// back to its own executor. Other routes call `done` before handle() returns. `done` is called
// exactly once. Destruction waits for queued history queries to finish, so the stores and the
// context must outlive the Api.
class Api {
 public:
  using Done = std::function<void(Response)>;

  explicit Api(ApiContext ctx);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  void handle(const Request& request, Done done);

  // Counts a request the server answered itself (the WebSocket upgrade route) under the same
  // metric as the API's own: fieldhub_http_requests_total{route,status}. Any thread.
  void count_request(std::string_view route, int status);

  // At most this many history queries wait or run at once; more get 503 (history busy).
  static constexpr int max_pending_queries = 32;
  static constexpr std::size_t max_history_limit = 100000;
  static constexpr std::size_t max_event_limit = 10000;
  static constexpr std::size_t max_dead_letter_limit = 1000;
  static constexpr std::size_t dead_letter_text_cap = 4096;
  static constexpr std::size_t max_alarm_limit = 1000;

 private:
  struct QueryThread;
  void respond(std::string_view route, Response response, const Done& done);
  void run_query(std::string route, std::function<Response()> query, Done done);

  ApiContext ctx_;
  std::atomic<int> pending_queries_{0};
  std::unique_ptr<QueryThread> query_thread_;
};

}  // namespace fieldhub::web
