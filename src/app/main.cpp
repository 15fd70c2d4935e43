// SPDX-License-Identifier: Apache-2.0
// fieldhub: the composition root. Loads the configuration, opens the stores, wires adapters →
// pipeline → spool → stores and live feed → web, and runs everything on one io thread (plus the
// spool's, the history writer's and the API's query thread) until SIGINT or SIGTERM.
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "adapters/adapters.h"
#include "alarms/alarm_engine.h"
#include "alarms/alarm_journal.h"
#include "commands/command_router.h"
#include "common/clock.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/config.h"
#include "health/health_tracker.h"
#include "pipeline/pipeline.h"
#include "pipeline/spool.h"
#include "stores/memory/memory_live_store.h"
#include "stores/postgres/postgres_history_store.h"
#include "stores/redis/redis_live_store.h"
#include "stores/sqlite/sqlite_history_store.h"
#include "web/api.h"
#include "web/http_server.h"
#include "web/live_hub.h"
#include "web/system_status.h"

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

// Alarm changes go to every console at once (a status frame: never coalesced or dropped) and to
// history as an "alarm" event with who did what: the audit trail.
class AlarmOutlet final : public alarms::AlarmSink {
 public:
  AlarmOutlet(web::LiveHub& hub, pipeline::Pipeline& pipeline) : hub_(hub), pipeline_(pipeline) {}

  void alarm_changed(const alarms::Alarm& a, alarms::Change change, std::string_view by,
                     std::string_view text) override {
    std::string frame;
    common::JsonWriter w(frame);
    w.begin_object().field("type", "alarm").field("change", alarms::to_string(change));
    if (!by.empty()) w.field("by", by);
    w.key("alarm");
    alarms::write_alarm(w, a);
    w.end_object();
    hub_.publish_status(frame);

    model::Event e;
    e.device_id = a.device.empty() ? a.link : a.device;
    e.type = "alarm";
    e.priority = a.priority;
    e.source_ts = e.received_ts = a.changed_at;
    std::string attrs;
    common::JsonWriter aw(attrs);
    aw.begin_object().key("alarm_id").value(std::to_string(a.id));
    aw.field("change", alarms::to_string(change)).field("alarm_type", std::string_view{a.type});
    aw.field("state", alarms::to_string(a.state)).field("message", std::string_view{a.message});
    aw.field("count", static_cast<std::uint64_t>(a.count));
    aw.field("tier", static_cast<std::uint64_t>(a.tier));
    if (!by.empty()) aw.field("by", by);
    if (!text.empty()) aw.field("text", text);
    aw.end_object();
    e.attributes_json = std::move(attrs);
    e.provenance.adapter = "alarms";
    pipeline_.submit_system_event(std::move(e));
  }

 private:
  web::LiveHub& hub_;
  pipeline::Pipeline& pipeline_;
};

// The open alarms as the frame a console gets when it connects, after its snapshot.
std::string open_alarms_frame(const alarms::AlarmEngine& engine) {
  std::string frame;
  common::JsonWriter w(frame);
  w.begin_object().field("type", "alarms").key("alarms").begin_array();
  for (const alarms::Alarm* a : engine.list({})) alarms::write_alarm(w, *a);
  w.end_array().end_object();
  return frame;
}

// The link a device's data arrives on, named as docs/decisions/0006-health-model.md says.
std::string link_of(const config::Config& cfg, const model::Device& d) {
  if (d.protocol == "mqtt") return "broker";
  if (d.protocol == "websocket") return "ws:" + d.id;  // one connection per device
  if (const config::ModbusEndpoint* e = cfg.modbus_device(d.id)) {
    return e->rtu ? "serial:" + e->bus : "modbus:" + e->host + ":" + std::to_string(e->port);
  }
  return d.protocol;
}

// Registers every configured device. Expected interval: the device's, else its profile's (the
// config has already applied that), else for a polled device its profile's poll interval, else
// learned.
void register_devices(const config::Config& cfg, health::HealthTracker& tracker) {
  for (const auto& d : cfg.devices) {
    const bool polled = d.protocol == "modbus_tcp" || d.protocol == "modbus_rtu";
    std::chrono::milliseconds interval = d.expected_interval;
    if (interval.count() == 0 && polled) {
      if (const config::Profile* p = cfg.profile(d.profile)) interval = p->modbus.poll_interval;
    }
    tracker.register_device(d.id, interval, link_of(cfg, d), {},
                            polled ? health::Cadence::polled : health::Cadence::push);
  }
}

// Health state across restarts: <data_dir>/health.snapshot, written to a temporary file and
// renamed, so a crash mid-write leaves the previous snapshot whole.
void save_health(const health::HealthTracker& tracker, const std::filesystem::path& file) {
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << tracker.snapshot();
    out.flush();
    if (!out) {
      common::log(common::LogLevel::warn, "health", "cannot write " + tmp.string());
      return;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) common::log(common::LogLevel::warn, "health", "cannot replace " + file.string());
}

void restore_health(health::HealthTracker& tracker, const std::filesystem::path& file,
                    model::Timestamp now) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return;  // first start
  std::ostringstream text;
  text << in.rdbuf();
  const health::RestoreResult r = tracker.restore(text.str(), now);
  common::log(common::LogLevel::info, "health",
              "restored " + std::to_string(r.restored) + " devices from " + file.string() +
                  (r.malformed_lines > 0
                       ? " (" + std::to_string(r.malformed_lines) + " malformed lines ignored)"
                       : ""));
}

// A health change as an event {from, to, reason}: stored in history and pushed on the live feed
// (this is the feed's only health path, so dashboards get each change once).
model::Event health_event(const health::HealthChange& c) {
  model::Event e;
  e.device_id = std::string(c.device);
  e.type = "health";
  e.priority = model::Priority::none;
  e.source_ts = c.at;
  e.received_ts = c.at;
  std::string attrs;
  common::JsonWriter w(attrs);
  w.begin_object()
      .field("from", health::to_string(c.from))
      .field("to", health::to_string(c.to))
      .field("reason", c.reason)
      .end_object();
  e.attributes_json = std::move(attrs);
  return e;
}

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
  const config::RedisConfig& rc = cfg.stores.redis;
  stores::RedisOptions options;
  options.connect_timeout = rc.connect_timeout.value_or(options.connect_timeout);
  options.command_timeout = rc.command_timeout.value_or(options.command_timeout);
  options.heartbeat_interval = rc.heartbeat_interval.value_or(options.heartbeat_interval);
  options.reconnect_min = rc.reconnect_min.value_or(options.reconnect_min);
  options.reconnect_max = rc.reconnect_max.value_or(options.reconnect_max);
  options.max_pending = rc.max_pending.value_or(options.max_pending);
  options.devices_per_round = rc.devices_per_round.value_or(options.devices_per_round);
  if (options.reconnect_min > options.reconnect_max) {
    throw config::ConfigError(
        cfg.file.string() + ": key 'stores.redis.reconnect_min': must not exceed reconnect_max (" +
        std::to_string(options.reconnect_max.count()) + "ms)");
  }
  auto store = stores::RedisLiveStore::open(cfg.stores.live_url, options, std::move(io), metrics);
  if (!store.ok()) {
    throw config::ConfigError(cfg.file.string() +
                              ": key 'stores.live': " + store.status().message());
  }
  redis = store.value().get();
  common::log(common::LogLevel::info, "live", "Redis at " + cfg.stores.live_url);
  return std::move(store.value());
}

// The history store the config names: "sqlite:<path>" or "postgresql://…".
std::unique_ptr<stores::HistoryStore> open_history_store(const config::Config& cfg,
                                                         common::Metrics& metrics) {
  const std::string& url = cfg.stores.history_url;
  const stores::Retention retention{cfg.history.retention_raw, cfg.history.retention_minute,
                                    cfg.history.retention_hour};
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    const config::PostgresConfig& pc = cfg.stores.postgres;
    stores::PostgresOptions pg_options;
    pg_options.retention = retention;
    pg_options.timeout = pc.timeout.value_or(pg_options.timeout);
    if (pc.replay_digest_retention) {
      pg_options.replay_digest_retention =
          std::chrono::duration_cast<std::chrono::seconds>(*pc.replay_digest_retention);
    }
    pg_options.partitions_ahead = pc.partitions_ahead.value_or(pg_options.partitions_ahead);
    if (pc.maintenance_interval) {
      pg_options.maintenance_interval =
          std::chrono::duration_cast<std::chrono::seconds>(*pc.maintenance_interval);
    }
    pg_options.rollup_fold_interval =
        pc.rollup_fold_interval.value_or(pg_options.rollup_fold_interval);
    pg_options.rollup_fold_rows = pc.rollup_fold_rows.value_or(pg_options.rollup_fold_rows);
    pg_options.metrics = &metrics;
    auto store = stores::PostgresHistoryStore::open(url, pg_options);
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
  options.retention = retention;
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
  auto history = open_history_store(cfg, metrics);

  web::LiveHub hub(cfg, *live, metrics, clock);
  HubFeed feed(hub);
  if (redis != nullptr) {
    // Other instances' updates reach this instance's dashboards too.
    redis->set_remote_update_callback(
        [&hub](std::span<const model::Reading> readings) { hub.publish_readings(readings); });
  }
  // The spool opens (and recovers a torn tail) before anything can be acknowledged; what it holds
  // from the last run goes to history before new data.
  std::unique_ptr<pipeline::Spool> spool;
  if (cfg.spool.enabled) {
    spool = std::make_unique<pipeline::Spool>(
        pipeline::SpoolOptions{.dir = cfg.spool.dir,
                               .max_bytes = cfg.spool.max_bytes,
                               .segment_bytes = cfg.spool.segment_bytes,
                               .sync_interval = cfg.spool.sync_interval,
                               .memory_window = cfg.pipeline.queue_capacity,
                               .memory_readings = cfg.pipeline.queue_readings},
        metrics);
    const pipeline::SpoolRecovery rec = spool->open();
    common::log(common::LogLevel::info, "spool",
                cfg.spool.dir.string() + ": " + std::to_string(rec.segments) + " segments, " +
                    std::to_string(rec.uncommitted) + " records to replay, " +
                    std::to_string(rec.torn_tails) + " torn tails truncated, " +
                    std::to_string(rec.corrupt) + " damaged regions skipped");
  }
  pipeline::Pipeline pipeline(io.get_executor(), cfg.pipeline, clock, metrics, *live, *history,
                              feed, spool.get());
  // Health: every device registered, the last state restored before the first advance().
  health::HealthTracker tracker(clock);
  register_devices(cfg, tracker);
  const std::filesystem::path health_file = cfg.data_dir / "health.snapshot";
  restore_health(tracker, health_file, clock.now());
  std::array<common::Gauge*, health::state_count> by_state{};
  std::array<common::Counter*, health::state_count> transitions{};
  for (std::size_t i = 0; i < health::state_count; ++i) {
    const std::string state(health::to_string(static_cast<health::State>(i)));
    by_state[i] =
        &metrics.gauge("fieldhub_health_devices", "Devices by health state", {{"state", state}});
    transitions[i] =
        &metrics.counter("fieldhub_health_transitions_total",
                         "Device health transitions, by the state entered", {{"to", state}});
  }
  const auto update_gauges = [&] {
    const health::HealthSummary s = tracker.summary();
    for (std::size_t i = 0; i < health::state_count; ++i) {
      by_state[i]->set(static_cast<std::int64_t>(s.counts[i]));
    }
  };
  // Alarms: rebuilt from their journal before anything can raise or show one.
  // Each journal sync releases the acknowledgements that waited for it (on the io thread).
  alarms::AlarmJournal journal(cfg.data_dir / "alarms.journal", metrics, [&io, &pipeline] {
    boost::asio::post(io, [&pipeline] { pipeline.gate_advanced(); });
  });
  AlarmOutlet outlet(hub, pipeline);
  alarms::AlarmEngine alarm_engine(cfg, clock, metrics, journal, outlet);
  alarm_engine.restore();
  pipeline.set_observer(&alarm_engine);
  pipeline.set_gate(&alarm_engine);
  hub.add_attach_frame([&alarm_engine] { return open_alarms_frame(alarm_engine); });

  tracker.on_change([&](const health::HealthChange& c) {
    transitions[static_cast<std::size_t>(c.to)]->inc();
    pipeline.submit_health_event(health_event(c));
    alarm_engine.on_device_health(c);
  });
  tracker.on_link_change([&](const health::LinkChange& c) { alarm_engine.on_link(c); });
  pipeline.set_health(&tracker);

  common::Gauge& broker_up =
      metrics.gauge("fieldhub_link_up", "1 while a link is up", {{"link", "broker"}});
  // fieldhub's own state for /healthz and the dashboards' "system" frame: history written?
  // broker session up? live state reaching Redis?
  web::SystemStatus status;
  status.add("history", true, [&pipeline] {
    // The store's message, as it was when history became degraded (a changing text would
    // raise the alarm again on every poll).
    const std::string reason = pipeline.history_degraded_reason();
    if (reason.empty()) return web::SystemStatus::Probe{true, "ok"};
    return web::SystemStatus::Probe{
        false, std::string("degraded: ").append(std::string_view(reason).substr(0, 200))};
  });
  if (spool != nullptr) {
    // A spool that cannot write (disk full, I/O error) holds every acknowledgement back.
    status.add("spool", true, [&pipeline] {
      const bool ok = pipeline.spool_healthy();
      return web::SystemStatus::Probe{ok, ok ? "ok" : "degraded: writes failing"};
    });
  }
  status.add("broker", false, [&broker_up] {
    const bool up = broker_up.value() == 1;
    return web::SystemStatus::Probe{up, up ? "up" : "down"};
  });
  if (redis != nullptr) {
    status.add("live", false, [redis] {
      const bool ok = !redis->degraded();
      return web::SystemStatus::Probe{ok, ok ? "ok" : "degraded: Redis unreachable"};
    });
  }
  // History or live state degraded is itself an alarm (the broker is a link: it has its own).
  status.on_change([&alarm_engine](const std::string& name, const web::SystemStatus::Probe& p,
                                   model::Timestamp at) {
    if (name != "broker") alarm_engine.on_system(name, p.ok, p.state, at);
  });
  status.poll(clock.now());
  hub.add_attach_frame([&status] { return status.frame(); });
  // Commands (writes to devices) go to the adapter of the device's protocol; each is audited in
  // history as a "command" event.
  commands::CommandRouter command_router(clock, metrics, [&pipeline](model::Event&& e) {
    pipeline.submit_system_event(std::move(e));
  });
  web::Api api({.config = cfg,
                .live = *live,
                .history = *history,
                .metrics = metrics,
                .clock = clock,
                .health = [&status] { return status.report(); },
                .tracker = &tracker,
                .alarms = &alarm_engine,
                .commands = &command_router});
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
  for (auto& a : adapters) {
    if (auto* writable = dynamic_cast<adapters::Writable*>(a.get())) {
      command_router.add(std::string(a->name()), *writable);
    }
  }
  pipeline.start();
  // An overdue restored device moves on now, before anything is served (io.run() below).
  tracker.advance(clock.now());
  update_gauges();
  for (auto& a : adapters) {
    try {
      a->start();
    } catch (const std::exception& e) {
      // A listener that cannot bind (the WebSocket adapter): exit rather than run deaf.
      common::log(common::LogLevel::error, "main", e.what());
      for (auto& started : adapters) started->stop();
      pipeline.stop();
      return 1;
    }
  }

  // advance() and the system status every 500 ms; a health snapshot every 30 s (60 ticks).
  constexpr auto health_tick = std::chrono::milliseconds(500);
  constexpr int snapshot_every = 60;
  boost::asio::steady_timer health_timer(io);
  int ticks = 0;
  std::function<void()> schedule_health = [&] {
    health_timer.expires_after(health_tick);
    health_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      tracker.advance(clock.now());
      update_gauges();
      if (status.poll(clock.now())) hub.publish_status(status.frame());
      if (++ticks % snapshot_every == 0) save_health(tracker, health_file);
      schedule_health();
    });
  };
  schedule_health();
  // Alarm timers (re-notification, escalation, shelving, threshold hold times) every 250 ms.
  boost::asio::steady_timer alarm_timer(io);
  std::function<void()> schedule_alarms = [&] {
    alarm_timer.expires_after(std::chrono::milliseconds{250});
    alarm_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      alarm_engine.tick(clock.now());
      schedule_alarms();
    });
  };
  alarm_engine.tick(clock.now());
  schedule_alarms();
  common::log(common::LogLevel::info, "fieldhub",
              "running with " + std::to_string(cfg.devices.size()) + " devices");

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    common::log(common::LogLevel::info, "fieldhub",
                std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    for (auto& a : adapters) a->stop();
    health_timer.cancel();
    alarm_timer.cancel();
    journal.flush();
    save_health(tracker, health_file);
    server.stop();
    // Syncs the spool and writes what is queued to history within the deadline; what is left
    // stays in the spool for the next start (without a spool: acknowledgements no longer reach
    // the broker, which redelivers those messages, and the store recognises what it has).
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
