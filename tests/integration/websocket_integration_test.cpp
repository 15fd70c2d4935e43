// SPDX-License-Identifier: Apache-2.0
// WebSocket devices end to end: the real fieldhub binary (with a real Mosquitto for its MQTT
// side), devices played by a Beast WebSocket client as a vendor would write one, and everything
// read back through the REST API and /metrics as an operator would.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>

#include "fieldhub_process.h"
#include "model/time.h"
#include "ws_device_client.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t max_message = 2048;

std::string ws_config(std::uint16_t port) {
  std::string c = "[websocket]\nlisten = \"127.0.0.1:" + std::to_string(port) +
                  "\"\npath = \"/devices\"\nmax_message = " + std::to_string(max_message) +
                  "\nidle_timeout = \"3s\"\nping_interval = \"200ms\"\n";
  const auto device = [&](const std::string& id, const std::string& profile) {
    c += "[[devices]]\nid = \"" + id + "\"\nsite = \"lab\"\nprofile = \"" + profile +
         "\"\nprotocol = \"websocket\"\ntoken = \"token-" + id + "\"\n";
  };
  device("ws-count", "test-counter");
  device("ws-cb", "code-blue-button");
  device("ws-vend", "vending-machine");
  device("ws-lock", "smart-lock");
  device("ws-auth", "smart-lock");
  return c;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The shipped profiles of the devices in ws_config(), as a site would use them.
void copy_profiles(const FieldhubProcess& fh) {
  for (const char* name : {"code-blue-button.toml", "vending-machine.toml", "smart-lock.toml"}) {
    std::filesystem::copy_file(source_dir() / "profiles" / name, fh.dir() / "profiles" / name);
  }
}

class WebSocketIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    broker_ = new MosquittoServer();
    broker_->start();
    ws_port_ = free_tcp_port();
    fh_ = new FieldhubProcess(
        {.broker_port = broker_->port(), .devices = 1, .extra_config = ws_config(ws_port_)});
    copy_profiles(*fh_);
    // Adapters listen before the io loop runs: once the API answers, devices can connect.
    fh_->start();
  }
  static void TearDownTestSuite() {
    delete fh_;
    delete broker_;
  }

  static int connect(WsDeviceClient& c, const std::string& id) {
    return c.connect(ws_port_, "/devices/" + id, "token-" + id);
  }

  // Waits until `text` has been received; false at the deadline.
  static bool wait_for(const WsDeviceClient& c, const std::string& text,
                       std::chrono::milliseconds deadline = 10s) {
    return wait_until(
        [&] {
          for (const auto& m : c.received()) {
            if (m == text) return true;
          }
          return false;
        },
        deadline);
  }

  // One link of GET /api/v1/health, as JSON text; empty if absent.
  static std::string link(const std::string& name) {
    const auto res = fh_->get("/api/v1/health");
    if (!res || res->first != 200) return {};
    simdjson::dom::parser parser;
    for (auto l : parser.parse(res->second)["links"].get_array()) {
      if (std::string_view(l["name"]) == name) return simdjson::minify(l);
    }
    return {};
  }

  // The device's health and reason from GET /api/v1/devices/{id}.
  static std::pair<std::string, std::string> health(const std::string& id) {
    const auto res = fh_->get("/api/v1/devices/" + id);
    if (!res || res->first != 200) return {};
    simdjson::dom::parser parser;
    const auto doc = parser.parse(res->second);
    std::string reason;
    if (!doc["health_reason"].is_null())
      reason = std::string(std::string_view(doc["health_reason"]));
    return {std::string(std::string_view(doc["health"])), reason};
  }

  // Stored values of metric `seq` of ws-count from the history API.
  static std::vector<std::int64_t> stored_seqs(std::int64_t from_ms, std::int64_t to_ms) {
    const auto r = fh_->get("/api/v1/devices/ws-count/history?metric=seq&from=" +
                            model::format_rfc3339(model::from_micros(from_ms * 1000)) +
                            "&to=" + model::format_rfc3339(model::from_micros(to_ms * 1000)) +
                            "&limit=100000");
    std::vector<std::int64_t> out;
    if (!r || r->first != 200) return out;
    simdjson::dom::parser parser;
    for (auto p : parser.parse(r->second)["points"].get_array()) {
      out.push_back(static_cast<std::int64_t>(double(p["value"])));
    }
    return out;
  }

  static double metric(const std::string& key) {
    const auto m = fh_->metrics();
    const auto it = m.find(key);
    return it == m.end() ? 0.0 : it->second;
  }

  static MosquittoServer* broker_;
  static FieldhubProcess* fh_;
  static std::uint16_t ws_port_;
};

MosquittoServer* WebSocketIntegration::broker_ = nullptr;
FieldhubProcess* WebSocketIntegration::fh_ = nullptr;
std::uint16_t WebSocketIntegration::ws_port_ = 0;

std::string telemetry(std::uint64_t id, std::int64_t ts_ms, std::int64_t seq) {
  return R"({"id":)" + std::to_string(id) + R"(,"kind":"telemetry","ts":)" + std::to_string(ts_ms) +
         R"(,"values":{"seq":)" + std::to_string(seq) + "}}";
}

// Each acknowledgement means "durable": the value is in history the moment the ack arrives
// (history commits every 20 ms, so an early ack would be caught), and numbered telemetry sent
// with the protocol's window all arrives once: the counting oracle.
TEST_F(WebSocketIntegration, NumberedTelemetryIsStoredAndAcknowledgedAfterDurable) {
  WsDeviceClient dev;
  ASSERT_EQ(connect(dev, "ws-count"), 101) << dev.refusal();
  const std::int64_t base = now_ms() - 60'000;

  for (std::int64_t i = 1; i <= 20; ++i) {
    dev.send(telemetry(static_cast<std::uint64_t>(i), base + i, i));
    ASSERT_TRUE(wait_for(dev, R"({"ack":)" + std::to_string(i) + "}")) << fh_->log();
    const auto seqs = stored_seqs(base, base + i + 1);  // 'to' is exclusive
    EXPECT_NE(std::find(seqs.begin(), seqs.end(), i), seqs.end()) << "ack " << i << " not stored";
  }

  constexpr std::int64_t total = 3000;
  constexpr std::size_t window = 16;  // the protocol's window of unacknowledged messages
  std::int64_t sent = 20;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::size_t acked = dev.received().size();
    if (acked == static_cast<std::size_t>(total)) break;
    while (sent < total && static_cast<std::size_t>(sent) < acked + window) {
      ++sent;
      dev.send(telemetry(static_cast<std::uint64_t>(sent), base + sent, sent));
    }
    std::this_thread::sleep_for(1ms);
  }
  const auto answers = dev.received();
  std::set<std::string> unique(answers.begin(), answers.end());
  ASSERT_EQ(answers.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(unique.size(), answers.size()) << "an ack came twice";
  for (std::int64_t i = 1; i <= total; ++i) {
    ASSERT_TRUE(unique.contains(R"({"ack":)" + std::to_string(i) + "}")) << i;
  }
  const auto seqs = stored_seqs(base, base + total + 1);
  std::set<std::int64_t> stored(seqs.begin(), seqs.end());
  std::size_t missing = 0;
  for (std::int64_t i = 1; i <= total; ++i) missing += stored.contains(i) ? 0 : 1;
  std::cout << "oracle: sent " << total << ", acknowledged " << answers.size() << ", stored "
            << seqs.size() << ", missing " << missing << ", duplicates "
            << seqs.size() - stored.size() << "\n";
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(seqs.size(), stored.size());
  EXPECT_EQ(seqs.size(), static_cast<std::size_t>(total));
}

TEST_F(WebSocketIntegration, CodeBlueOverWebSocketRaisesAnAlarm) {
  WsDeviceClient dev;
  ASSERT_EQ(connect(dev, "ws-cb"), 101) << dev.refusal();
  dev.send(R"({"id":1,"kind":"event","ts":)" + std::to_string(now_ms()) +
           R"(,"type":"code_blue"})");
  ASSERT_TRUE(wait_for(dev, R"({"ack":1})")) << fh_->log();
  const bool raised = wait_until(
      [&] {
        const auto res = fh_->get("/api/v1/alarms?device=ws-cb");
        return res && res->first == 200 &&
               res->second.find("\"priority\":\"high\"") != std::string::npos;
      },
      2s);
  EXPECT_TRUE(raised) << fh_->get("/api/v1/alarms")->second;
}

TEST_F(WebSocketIntegration, UnknownDeviceAndBadTokenAreRefusedAndCounted) {
  const double auth_before = metric("fieldhub_websocket_errors_total{kind=\"auth\"}");
  const double unknown_before = metric("fieldhub_websocket_errors_total{kind=\"unknown_device\"}");
  {
    WsDeviceClient dev;
    EXPECT_EQ(dev.connect(ws_port_, "/devices/nobody", "token-nobody"), 404);
    EXPECT_NE(dev.refusal().find("unknown device"), std::string::npos) << dev.refusal();
  }
  {
    WsDeviceClient dev;
    EXPECT_EQ(dev.connect(ws_port_, "/devices/ws-auth", "token-ws-lock"), 401);
    EXPECT_NE(dev.refusal().find("bad token"), std::string::npos) << dev.refusal();
  }
  {
    // Right away again, even with the right token: throttled.
    WsDeviceClient dev;
    EXPECT_EQ(connect(dev, "ws-auth"), 429);
  }
  EXPECT_EQ(metric("fieldhub_websocket_errors_total{kind=\"auth\"}"), auth_before + 2);
  EXPECT_EQ(metric("fieldhub_websocket_errors_total{kind=\"unknown_device\"}"), unknown_before + 1);
  EXPECT_NE(link("ws:ws-auth").find(R"("errors":{"auth":2})"), std::string::npos)
      << link("ws:ws-auth");
  // After the back-off (1 s) the right token gets in.
  std::unique_ptr<WsDeviceClient> in;
  EXPECT_TRUE(wait_until(
      [&] {
        auto c = std::make_unique<WsDeviceClient>();
        if (connect(*c, "ws-auth") != 101) return false;
        in = std::move(c);
        return true;
      },
      3s, 200ms));
}

TEST_F(WebSocketIntegration, BadMessagesAreDeadLetteredAndNackedTheConnectionLives) {
  WsDeviceClient dev;
  ASSERT_EQ(connect(dev, "ws-vend"), 101) << dev.refusal();
  const double bad_json_before = metric("fieldhub_websocket_errors_total{kind=\"bad_json\"}");
  dev.send(R"({"id":5,"kind":"telemetry","values":)");
  dev.send(R"({"id":6,"kind":"firmware"})");
  dev.send(R"({"id":7,"kind":"telemetry","values":{"temperature":4.5},"pad":")" +
           std::string(max_message, 'x') + "\"}");
  dev.send(R"({"id":8,"kind":"telemetry","values":{"temperature":4.5}})");
  ASSERT_TRUE(wait_for(dev, R"({"ack":8})")) << fh_->log();
  const auto answers = dev.received();
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0], R"({"nack":null,"reason":"invalid_json"})");
  EXPECT_EQ(answers[1], R"({"nack":6,"reason":"invalid_envelope"})");
  EXPECT_EQ(answers[2], R"({"nack":7,"reason":"oversized"})");
  EXPECT_EQ(metric("fieldhub_websocket_errors_total{kind=\"bad_json\"}"), bad_json_before + 2);
  const std::string l = link("ws:ws-vend");
  EXPECT_NE(l.find(R"("bad_json":2)"), std::string::npos) << l;
  EXPECT_NE(l.find(R"("too_big":1)"), std::string::npos) << l;
  const auto dl = fh_->get("/api/v1/dead-letters?limit=1000");
  ASSERT_TRUE(dl && dl->first == 200);
  for (const char* reason : {"invalid_json", "invalid_envelope", "oversized"}) {
    EXPECT_NE(dl->second.find(std::string("\"") + reason + "\""), std::string::npos) << reason;
  }
  EXPECT_NE(dl->second.find("ws:ws-vend"), std::string::npos);

  // The device's own word: offline at once.
  dev.send(R"({"id":9,"kind":"status","status":"offline"})");
  ASSERT_TRUE(wait_for(dev, R"({"ack":9})"));
  EXPECT_TRUE(wait_until([&] { return health("ws-vend").second == "status offline"; }, 2s))
      << health("ws-vend").first;

  // Far beyond the limit: cut off with 1009 before it is buffered.
  dev.send(R"({"id":10,"kind":"telemetry","pad":")" + std::string(max_message * 5, 'x') + "\"}");
  ASSERT_TRUE(wait_until([&] { return dev.closed(); }, 5s));
  EXPECT_EQ(dev.close_code(), 1009);
}

TEST_F(WebSocketIntegration, DroppedConnectionTakesTheDeviceOfflineWithinASecond) {
  WsDeviceClient dev;
  ASSERT_EQ(connect(dev, "ws-lock"), 101) << dev.refusal();
  dev.send(R"({"id":1,"kind":"telemetry","ts":)" + std::to_string(now_ms()) +
           R"(,"values":{"locked":true,"battery":90}})");
  ASSERT_TRUE(wait_for(dev, R"({"ack":1})"));
  ASSERT_TRUE(wait_until([&] { return health("ws-lock").first == "online"; }, 5s));
  // Pings every 200 ms: the round trip shows on the link.
  ASSERT_TRUE(
      wait_until([&] { return link("ws:ws-lock").find("\"samples\"") != std::string::npos; }, 5s))
      << link("ws:ws-lock");
  EXPECT_NE(link("ws:ws-lock").find(R"("state":"up")"), std::string::npos);
  std::cout << "link: " << link("ws:ws-lock") << "\n";

  dev.drop();
  const auto dropped = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      [&] {
        return health("ws-lock") == std::pair<std::string, std::string>{"offline", "link down"};
      },
      1s))
      << health("ws-lock").first << " " << health("ws-lock").second;
  std::cout << "offline after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - dropped)
                   .count()
            << " ms\n";
  EXPECT_NE(link("ws:ws-lock").find(R"("state":"down")"), std::string::npos) << link("ws:ws-lock");
}

// A pipeline that saturates all the time (a history queue of 2 envelopes): telemetry is parked
// and flushed on every relief, and still every message is stored once and acknowledged once.
TEST(WebSocketBackpressure, ParkedTelemetryIsStoredOnceUnderConstantSaturation) {
  MosquittoServer broker;
  broker.start();
  const std::uint16_t ws_port = free_tcp_port();
  FieldhubProcess fh({.broker_port = broker.port(),
                      .devices = 1,
                      .extra_config = ws_config(ws_port) + "[pipeline]\nqueue_capacity = 2\n"});
  copy_profiles(fh);
  fh.start();
  WsDeviceClient dev;
  ASSERT_EQ(dev.connect(ws_port, "/devices/ws-count", "token-ws-count"), 101) << dev.refusal();
  const std::int64_t base = now_ms() - 60'000;
  constexpr std::int64_t total = 2000;
  // More than the window at once: the device misbehaves, fieldhub stops reading, TCP holds it.
  for (std::int64_t i = 1; i <= total; ++i) {
    dev.send(telemetry(static_cast<std::uint64_t>(i), base + i, i));
  }
  ASSERT_TRUE(
      wait_until([&] { return dev.received().size() == static_cast<std::size_t>(total); }, 30s))
      << dev.received().size() << " answers\n"
      << fh.get("/metrics")->second << fh.log();
  const auto answers = dev.received();
  const std::set<std::string> unique(answers.begin(), answers.end());
  EXPECT_EQ(unique.size(), answers.size());
  const auto m = fh.metrics();
  const auto episodes = m.find("fieldhub_pipeline_saturated_total");
  ASSERT_NE(episodes, m.end());
  EXPECT_GT(episodes->second, 0.0) << "the pipeline never saturated: nothing was parked";
  const auto r = fh.get("/api/v1/devices/ws-count/history?metric=seq&from=" +
                        model::format_rfc3339(model::from_micros(base * 1000)) + "&to=" +
                        model::format_rfc3339(model::from_micros((base + total + 1) * 1000)) +
                        "&limit=100000");
  ASSERT_TRUE(r && r->first == 200);
  simdjson::dom::parser parser;
  std::set<std::int64_t> stored;
  std::size_t rows = 0;
  for (auto p : parser.parse(r->second)["points"].get_array()) {
    stored.insert(static_cast<std::int64_t>(double(p["value"])));
    ++rows;
  }
  std::cout << "under saturation: sent " << total << ", acknowledged " << answers.size()
            << ", stored " << rows << " (" << stored.size() << " distinct), saturation episodes "
            << episodes->second << "\n";
  EXPECT_EQ(rows, static_cast<std::size_t>(total));
  EXPECT_EQ(stored.size(), static_cast<std::size_t>(total));
}

}  // namespace
}  // namespace fieldhub::testing
