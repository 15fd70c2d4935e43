// SPDX-License-Identifier: Apache-2.0
// fieldhub-sim: publishes the configured devices' telemetry and events to an MQTT broker, each in
// its profile's payload shape, and plays the WebSocket devices over their own connections to
// fieldhub, so the demo and the tests see every kind of device for real.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "adapters/mqtt/mqtt_client.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/config.h"
#include "sim/device_sim.h"
#include "sim/ws_device_link.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;

struct Options {
  std::filesystem::path config = "config/demo.toml";
  std::string host;
  int port = 0;
  double rate_scale = 1.0;
  std::set<std::string> only;
  std::chrono::seconds duration{0};
  std::uint32_t seed = 1;
};

void usage() {
  std::cout << "usage: fieldhub-sim [--config FILE] [--host H] [--port P] [--rate-scale X]\n"
               "                    [--only ID[,ID...]] [--duration SECONDS] [--seed N]\n"
               "Publishes every MQTT device of the config file as its profile describes, and\n"
               "connects every WebSocket device to fieldhub's device listener.\n";
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--config") {
      o.config = value();
    } else if (arg == "--host") {
      o.host = value();
    } else if (arg == "--port") {
      o.port = std::stoi(std::string(value()));
    } else if (arg == "--rate-scale") {
      o.rate_scale = std::stod(std::string(value()));
      if (!(o.rate_scale > 0)) throw std::invalid_argument("--rate-scale must be > 0");
    } else if (arg == "--only") {
      std::string_view list = value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        o.only.emplace(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
    } else if (arg == "--duration") {
      o.duration = std::chrono::seconds{std::stoi(std::string(value()))};
    } else if (arg == "--seed") {
      o.seed = static_cast<std::uint32_t>(std::stoul(std::string(value())));
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown argument " + std::string(arg));
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    auto parsed = parse(argc, argv);
    if (!parsed) return 0;
    opts = *parsed;
  } catch (const std::exception& e) {
    std::cerr << "fieldhub-sim: " << e.what() << "\n";
    usage();
    return 2;
  }
  config::Config cfg;
  try {
    cfg = config::load_config(opts.config);
  } catch (const config::ConfigError& e) {
    std::cerr << "fieldhub-sim: " << e.what() << "\n";
    return 2;
  }

  std::vector<sim::DeviceSim> devices;
  std::uint32_t seed = opts.seed;
  for (const auto& d : cfg.devices) {
    if (d.protocol != "mqtt" && d.protocol != "websocket") continue;
    if (!opts.only.empty() && !opts.only.contains(d.id)) continue;
    const config::Profile* profile = cfg.profile(d.profile);
    if (profile == nullptr) continue;
    devices.emplace_back(d, *profile, seed++, opts.rate_scale);
  }

  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  mqtt::ClientOptions client_options;
  client_options.host = opts.host.empty() ? cfg.mqtt.host : opts.host;
  client_options.port = static_cast<std::uint16_t>(opts.port != 0 ? opts.port : cfg.mqtt.port);
  client_options.client_id = "fieldhub-sim-" + std::to_string(::getpid());
  client_options.clean_session = true;
  mqtt::Client client(io.get_executor(), client_options, metrics, clock);
  // WebSocket devices dial fieldhub's device listener themselves, one connection each.
  std::map<std::string, std::unique_ptr<sim::WsDeviceLink>> ws_links;
  for (const auto& d : devices) {
    const config::WebSocketCredential* cred = cfg.websocket_credential(d.device().id);
    if (d.device().protocol != "websocket" || cred == nullptr) continue;
    sim::WsDeviceLink::Options o;
    const std::string& listen = cfg.websocket.listen_address;
    o.host = listen == "0.0.0.0" || listen == "::" ? "127.0.0.1" : listen;
    o.port = cfg.websocket.listen_port;
    o.path = cfg.websocket.path;
    o.device_id = cred->device_id;
    o.token = cred->token;
    auto link = std::make_unique<sim::WsDeviceLink>(io.get_executor(), o);
    link->start();
    ws_links.emplace(cred->device_id, std::move(link));
  }
  std::uint64_t published = 0;
  std::uint64_t failed = 0;
  client.on_link([&](const mqtt::LinkStatus& s) {
    common::log(common::LogLevel::info, "sim",
                s.event == mqtt::LinkEvent::connected ? "connected to broker"
                                                      : "broker link down: " + s.reason);
  });
  client.start();
  common::log(common::LogLevel::info, "sim",
              "simulating " + std::to_string(devices.size()) + " devices on " +
                  client_options.host + ":" + std::to_string(client_options.port));

  const auto started = std::chrono::steady_clock::now();
  boost::asio::steady_timer tick(io);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  auto shutdown = [&] {
    tick.cancel();
    signals.cancel();
    client.stop();
    for (auto& [id, link] : ws_links) link->stop();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) shutdown();
  });
  std::function<void()> step = [&] {
    const auto now = clock.now();
    for (auto& d : devices) {
      const auto ws = ws_links.find(d.device().id);
      for (auto& p : d.poll(now)) {
        if (ws != ws_links.end()) {
          ws->second->send(p.payload, p.event);
          continue;
        }
        client.publish(std::move(p.topic), std::move(p.payload), 1, false,
                       [&](std::error_code ec) { ec ? ++failed : ++published; });
      }
    }
    if (opts.duration.count() > 0 && std::chrono::steady_clock::now() - started >= opts.duration) {
      std::uint64_t ws_acked = 0;
      std::uint64_t ws_refused = 0;
      for (const auto& [id, link] : ws_links) {
        ws_acked += link->acknowledged();
        ws_refused += link->refused();
      }
      common::log(common::LogLevel::info, "sim",
                  "done: " + std::to_string(published) + " published, " + std::to_string(failed) +
                      " failed; WebSocket: " + std::to_string(ws_acked) + " acknowledged, " +
                      std::to_string(ws_refused) + " refused");
      shutdown();
      return;
    }
    tick.expires_after(50ms);
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) step();
    });
  };
  step();
  io.run();
  return 0;
}
