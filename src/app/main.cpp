// SPDX-License-Identifier: Apache-2.0
// fieldhub: the composition root. Loads the configuration, opens the stores, wires adapters →
// pipeline → stores and live feed → web, and runs everything on one io thread (plus the history
// writer's thread and the API's query thread) until SIGINT or SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>

#include "adapters/adapters.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/pipeline.h"
#include "stores/memory/memory_live_store.h"
#include "stores/postgres/postgres_history_store.h"
#include "stores/redis/redis_live_store.h"
#include "stores/sqlite/sqlite_history_store.h"
#include "web/api.h"
#include "web/http_server.h"
#include "web/live_hub.h"

namespace {

using namespace fieldhub;

// The pipeline's live feed is the web's LiveHub.
class HubFeed final : public pipeline::LiveFeed {
 public:
  explicit HubFeed(web::LiveHub& hub) : hub_(hub) {}
  void publish_readings(std::span<const model::Reading> readings) override {
    hub_.publish_readings(readings);
  }
  void publish_event(const model::Event& event) override { hub_.publish_event(event); }

 private:
  web::LiveHub& hub_;
};

struct Options {
  std::filesystem::path config = "fieldhub.toml";
  common::LogLevel log_level = common::LogLevel::info;
};

void usage() {
  std::cout << "usage: fieldhub [--config FILE] [--log-level debug|info|warn|error]\n"
               "Ingests device data through the configured adapters; serves the API, the live\n"
               "feed and the dashboard. See README.md.\n";
}

// The live store the config names: "memory:" (in process) or "redis://host:port/db".
// Returns the Redis store separately too, for its degraded state and cross-instance updates.
std::unique_ptr<stores::LiveStore> open_live_store(const config::Config& cfg,
                                                   boost::asio::any_io_executor io,
                                                   common::Metrics& metrics,
                                                   stores::RedisLiveStore*& redis) {
  redis = nullptr;
  if (cfg.stores.live_url == "memory:") return std::make_unique<stores::MemoryLiveStore>();
  auto store = stores::RedisLiveStore::open(cfg.stores.live_url, {}, std::move(io), metrics);
  if (!store.ok()) {
    throw config::ConfigError(cfg.file.string() +
                              ": key 'stores.live': " + store.status().message());
  }
  redis = store.value().get();
  common::log(common::LogLevel::info, "live", "Redis at " + cfg.stores.live_url);
  return std::move(store.value());
}

// The history store the config names: "sqlite:<path>" or "postgresql://…".
std::unique_ptr<stores::HistoryStore> open_history_store(const config::Config& cfg) {
  const std::string& url = cfg.stores.history_url;
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    auto store = stores::PostgresHistoryStore::open(url);
    if (!store.ok()) {
      throw std::runtime_error("cannot open history in PostgreSQL: " + store.status().message());
    }
    common::log(common::LogLevel::info, "history", "PostgreSQL");
    return std::move(store.value());
  }
  constexpr std::string_view sqlite_scheme = "sqlite:";
  std::filesystem::path file = url.substr(sqlite_scheme.size());
  if (file.is_relative()) file = cfg.file.parent_path() / file;
  std::filesystem::create_directories(file.parent_path());
  stores::SqliteOptions options;
  const auto sync = stores::parse_sqlite_synchronous(cfg.stores.sqlite_synchronous);
  if (!sync) {
    throw config::ConfigError(cfg.file.string() +
                              ": key 'stores.sqlite_synchronous': must be full or normal");
  }
  options.synchronous = *sync;
  auto store = stores::SqliteHistoryStore::open(file, options);
  if (!store.ok()) {
    throw std::runtime_error("cannot open history " + file.string() + ": " +
                             store.status().message());
  }
  common::log(common::LogLevel::info, "history", "SQLite at " + file.string());
  return std::move(store.value());
}

int run(const Options& opts) {
  const config::Config cfg = config::load_config(opts.config);
  std::filesystem::create_directories(cfg.data_dir);

  boost::asio::io_context io(1);
  common::SystemClock clock;
  common::Metrics metrics;
  stores::RedisLiveStore* redis = nullptr;
  auto live = open_live_store(cfg, io.get_executor(), metrics, redis);
  auto history = open_history_store(cfg);

  web::LiveHub hub(cfg, *live, metrics, clock);
  HubFeed feed(hub);
  if (redis != nullptr) {
    // Other instances' updates reach this instance's dashboards too.
    redis->set_remote_update_callback(
        [&hub](std::span<const model::Reading> readings) { hub.publish_readings(readings); });
  }
  pipeline::Pipeline pipeline(io.get_executor(), cfg.pipeline, clock, metrics, *live, *history,
                              feed);
  common::Gauge& broker_up =
      metrics.gauge("fieldhub_link_up", "1 while a link is up", {{"link", "broker"}});
  web::Api api({.config = cfg,
                .live = *live,
                .history = *history,
                .metrics = metrics,
                .clock = clock,
                .health = [&] {
                  web::HealthReport report;
                  const bool history_ok = pipeline.history_healthy();
                  report.ok = history_ok;
                  report.components.emplace_back("history",
                                                 history_ok ? "ok" : "degraded: writes failing");
                  report.components.emplace_back("broker", broker_up.value() == 1 ? "up" : "down");
                  if (redis != nullptr) {
                    report.components.emplace_back(
                        "live", redis->degraded() ? "degraded: Redis unreachable" : "ok");
                  }
                  return report;
                }});
  web::HttpServer server(io.get_executor(), cfg.server, api, hub);
  if (const auto ec = server.start()) {
    common::log(common::LogLevel::error, "web",
                "cannot listen on " + cfg.server.listen_address + ":" +
                    std::to_string(cfg.server.listen_port) + ": " + ec.message());
    return 1;
  }
  common::log(common::LogLevel::info, "web",
              "serving http://" + cfg.server.listen_address + ":" + std::to_string(server.port()));

  auto adapters = adapters::make_adapters(io.get_executor(), cfg, pipeline, metrics, clock);
  pipeline.start();
  for (auto& a : adapters) a->start();
  common::log(common::LogLevel::info, "fieldhub",
              "running with " + std::to_string(cfg.devices.size()) + " devices");

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    common::log(common::LogLevel::info, "fieldhub",
                std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    for (auto& a : adapters) a->stop();
    server.stop();
    // Writes what is queued; acknowledgements no longer reach the broker, which redelivers
    // those messages on the next start (and the store recognises what it already has).
    pipeline.stop();
    io.stop();
  });
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      opts.config = argv[++i];
    } else if (arg == "--log-level" && i + 1 < argc) {
      const std::string_view level = argv[++i];
      if (level == "debug")
        opts.log_level = common::LogLevel::debug;
      else if (level == "info")
        opts.log_level = common::LogLevel::info;
      else if (level == "warn")
        opts.log_level = common::LogLevel::warn;
      else if (level == "error")
        opts.log_level = common::LogLevel::error;
      else {
        std::cerr << "fieldhub: unknown log level " << level << "\n";
        return 2;
      }
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      std::cerr << "fieldhub: unknown argument " << arg << "\n";
      usage();
      return 2;
    }
  }
  common::set_log_level(opts.log_level);
  try {
    return run(opts);
  } catch (const config::ConfigError& e) {
    std::cerr << "fieldhub: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fieldhub: " << e.what() << "\n";
    return 1;
  }
}
