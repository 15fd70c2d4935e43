// SPDX-License-Identifier: Apache-2.0
#include "fieldhub_process.h"

#include <simdjson.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "adapters/mqtt/mqtt_client.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace fieldhub::testing {

using namespace std::chrono_literals;

FieldhubProcess::FieldhubProcess(Options options)
    : options_(std::move(options)), http_port_(free_tcp_port()) {
  std::filesystem::create_directories(dir_.path() / "profiles");
  // A counter device: one numbered value per message, so the test can find every message.
  std::ofstream(dir_.path() / "profiles" / "test-counter.toml") << R"(kind = "test_counter"
description = "A numbered counter for reliability tests"
source = "fieldhub tests"
expected_interval = "1s"
[mqtt]
format = "fieldhub"
[[metrics]]
name = "seq"
unit = ""
type = "number"
min = 0
max = 1e12
[[metrics]]
name = "label"
unit = ""
type = "text"
[[events]]
type = "call"
priority = "medium"
)";
  std::ofstream cfg(dir_.path() / "fieldhub.toml");
  cfg << "data_dir = \"data\"\nprofiles_dir = \"profiles\"\n"
      << "[server]\nlisten = \"127.0.0.1:" << http_port_ << "\"\n"
      << "static_dir = \"" << (source_dir() / "src/web/static").string() << "\"\n"
      << "vendor_dir = \"" << (source_dir() / "node_modules").string() << "\"\n"
      << "[mqtt]\nhost = \"127.0.0.1\"\nport = " << options_.broker_port
      << "\nclient_id = \"fieldhub-test\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n"
      << "[stores]\nlive = \"" << options_.live_url << "\"\nhistory = \"" << options_.history_url
      << "\"\n"
      << "sqlite_synchronous = \"normal\"\n";
  for (int i = 0; i < options_.devices; ++i) {
    cfg << "[[devices]]\nid = \"dev-" << i << "\"\nkind = \"test_counter\"\nsite = \""
        << options_.site << "\"\nprofile = \"test-counter\"\n";
  }
  cfg << options_.extra_config;
}

FieldhubProcess::~FieldhubProcess() = default;

void FieldhubProcess::start() {
  ++starts_;
  std::vector<std::string> argv = options_.launcher;
  argv.insert(argv.end(), {(bin_dir() / "fieldhub").string(), "--config",
                           (dir_.path() / "fieldhub.toml").string()});
  process_ = std::make_unique<ChildProcess>(
      std::move(argv), dir_.path() / ("fieldhub-" + std::to_string(starts_) + ".log"));
  if (!wait_for_port(http_port_, 10s)) {
    throw std::runtime_error("fieldhub did not listen; log:\n" + log());
  }
  const bool broker_up = wait_until(
      [&] {
        auto m = metrics();
        return m["fieldhub_link_up{link=\"broker\"}"] == 1.0;
      },
      10s);
  if (!broker_up) throw std::runtime_error("fieldhub did not reach the broker; log:\n" + log());
}

void FieldhubProcess::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(5s);
}

void FieldhubProcess::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (process_->wait(15s) == -1) throw std::runtime_error("fieldhub did not stop on SIGTERM");
}

std::string FieldhubProcess::log() const {
  return process_ ? process_->log() : std::string{};
}

std::optional<std::pair<int, std::string>> FieldhubProcess::get(const std::string& target) const {
  return request("GET", target);
}

std::optional<std::pair<int, std::string>> FieldhubProcess::request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::string& headers) const {
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), http_port_});
    std::string text = method;
    text.append(" ").append(target).append(" HTTP/1.0\r\nHost: 127.0.0.1:");
    text.append(std::to_string(http_port_)).append("\r\n").append(headers);
    if (!body.empty()) {
      text.append("Content-Type: application/json\r\nContent-Length: ");
      text.append(std::to_string(body.size())).append("\r\n");
    }
    text.append("\r\n").append(body);
    boost::asio::write(socket, boost::asio::buffer(text));
    std::string response;
    boost::system::error_code ec;
    boost::asio::read(socket, boost::asio::dynamic_buffer(response), ec);
    if (ec && ec != boost::asio::error::eof) return std::nullopt;
    const auto space = response.find(' ');
    const auto head_end = response.find("\r\n\r\n");
    if (space == std::string::npos || head_end == std::string::npos) return std::nullopt;
    return std::make_pair(std::stoi(response.substr(space + 1, 3)), response.substr(head_end + 4));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::map<std::string, double> FieldhubProcess::metrics() const {
  std::map<std::string, double> out;
  const auto r = get("/metrics");
  if (!r || r->first != 200) return out;
  std::istringstream in(r->second);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

std::string health_component(const FieldhubProcess& fh, const std::string& name) {
  const auto r = fh.get("/healthz");
  if (!r) return "";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->second).get(doc)) return "";
  std::string_view state;
  if (doc["components"][name].get(state)) return "";
  return std::string(state);
}

std::string alarm_state(const FieldhubProcess& fh, const std::string& type) {
  const auto r = fh.get("/api/v1/alarms");
  if (!r || r->first != 200) return "";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->second).get(doc)) return "";
  for (auto a : doc["alarms"].get_array()) {
    if (std::string_view(a["type"]) == type) return std::string(std::string_view(a["state"]));
  }
  return "";
}

PublishResult publish_all(std::uint16_t broker_port, const std::vector<Message>& messages,
                          std::chrono::milliseconds deadline, std::size_t window,
                          const std::function<void(std::size_t)>& progress, double rate) {
  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  mqtt::ClientOptions options;
  options.port = broker_port;
  options.client_id = "test-publisher";
  options.clean_session = false;  // unacknowledged publishes survive a broker restart
  options.reconnect_min = 100ms;
  options.reconnect_max = 1s;
  mqtt::Client client(io.get_executor(), options, metrics, clock);
  PublishResult result;
  std::size_t next = 0;
  std::size_t outstanding = 0;
  const auto started = std::chrono::steady_clock::now();
  // How many messages may have been sent by now: all, or `rate` per second since the start.
  const auto due = [&] {
    if (rate <= 0) return messages.size();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return std::min(messages.size(), static_cast<std::size_t>(elapsed * rate) + 1);
  };
  std::function<void()> fill = [&] {
    const std::size_t limit = due();
    while (outstanding < window && next < limit) {
      const Message& m = messages[next++];
      ++outstanding;
      client.publish(m.topic, m.payload, 1, false, [&](std::error_code ec) {
        --outstanding;
        if (ec) {
          ++result.failed;
        } else {
          ++result.acknowledged;
          if (progress) progress(result.acknowledged);
        }
        if (result.acknowledged + result.failed == messages.size()) {
          client.stop();
          return;
        }
        fill();
      });
    }
  };
  client.start();
  boost::asio::post(io, fill);
  // Paced: top up every 5 ms until everything has been sent.
  boost::asio::steady_timer pace(io);
  std::function<void()> tick = [&] {
    pace.expires_after(5ms);
    pace.async_wait([&](const boost::system::error_code& ec) {
      if (ec || next == messages.size()) return;
      fill();
      tick();
    });
  };
  if (rate > 0) tick();
  io.run_for(deadline);
  return result;
}

}  // namespace fieldhub::testing
