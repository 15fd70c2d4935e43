// SPDX-License-Identifier: Apache-2.0
// Device and link health end to end (issue 5): a real Mosquitto, the real fieldhub binary, health
// read back through /api/v1/health and /api/v1/devices as an operator would.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <string>
#include <thread>

#include "fieldhub_process.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

struct Health {
  std::string state;
  std::string reason;
  std::string since;
};

// The device's health as GET /api/v1/devices/{id} shows it; empty state if unreachable.
Health device_health(const FieldhubProcess& fh, const std::string& id) {
  const auto res = fh.get("/api/v1/devices/" + id);
  if (!res || res->first != 200) return {};
  simdjson::dom::parser parser;
  const auto doc = parser.parse(res->second);
  Health h;
  h.state = std::string(std::string_view(doc["health"]));
  if (!doc["health_reason"].is_null())
    h.reason = std::string(std::string_view(doc["health_reason"]));
  h.since = std::string(std::string_view(doc["health_since"]));
  return h;
}

// The broker link's state in GET /api/v1/health.
std::string broker_state(const FieldhubProcess& fh) {
  const auto res = fh.get("/api/v1/health");
  if (!res || res->first != 200) return {};
  simdjson::dom::parser parser;
  const auto doc = parser.parse(res->second);
  for (auto link : doc["links"].get_array()) {
    if (std::string_view(link["name"]) == "broker") {
      return std::string(std::string_view(link["state"]));
    }
  }
  return {};
}

void publish(std::uint16_t port, const std::string& topic, const std::string& payload) {
  const auto r = publish_all(port, {{topic, payload}}, 10s);
  ASSERT_EQ(r.acknowledged, 1u) << topic;
}

void report(std::uint16_t port, const std::string& device, int seq) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  publish(port, "fieldhub/lab/" + device + "/telemetry",
          R"({"ts":)" + std::to_string(ms) + R"(,"values":{"seq":)" + std::to_string(seq) + "}}");
}

bool wait_for_health(const FieldhubProcess& fh, const std::string& id, const std::string& state,
                     const std::string& reason = {}, std::chrono::milliseconds deadline = 5s) {
  return wait_until(
      [&] {
        const Health h = device_health(fh, id);
        return h.state == state && (reason.empty() || h.reason == reason);
      },
      deadline, 50ms);
}

// A slow device declares one report per 10 minutes (the test-counter profile says 1 s).
constexpr const char* slow_device = R"(
[[devices]]
id = "slow-1"
kind = "test_counter"
site = "lab"
profile = "test-counter"
expected_interval = "10m"
)";

TEST(HealthIntegration, BrokerDownMarksMqttDevicesOfflineAndTheyReturnOnFreshData) {
  MosquittoServer broker;
  broker.start();
  FieldhubProcess fh({.broker_port = broker.port(), .devices = 2});
  fh.start();
  report(broker.port(), "dev-0", 1);
  report(broker.port(), "dev-1", 1);
  ASSERT_TRUE(wait_for_health(fh, "dev-0", "online")) << fh.log();
  ASSERT_TRUE(wait_for_health(fh, "dev-1", "online")) << fh.log();
  EXPECT_EQ(broker_state(fh), "up");

  broker.stop();
  ASSERT_TRUE(wait_until([&] { return broker_state(fh) == "down"; }, 5s)) << fh.log();
  EXPECT_TRUE(wait_for_health(fh, "dev-0", "offline", "link down", 1s));
  EXPECT_TRUE(wait_for_health(fh, "dev-1", "offline", "link down", 1s));
  const auto offline = fh.get("/api/v1/devices?health=offline");
  ASSERT_TRUE(offline);
  EXPECT_NE(offline->second.find(R"("id":"dev-0")"), std::string::npos) << offline->second;
  // The gauge follows at the next health tick (500 ms).
  EXPECT_TRUE(wait_until(
      [&] { return fh.metrics()["fieldhub_health_devices{state=\"offline\"}"] == 2.0; }, 2s));

  broker.start();
  ASSERT_TRUE(wait_until([&] { return broker_state(fh) == "up"; }, 10s)) << fh.log();
  // Link up alone proves nothing about the devices: each returns on its own fresh data.
  EXPECT_EQ(device_health(fh, "dev-0").state, "offline");
  report(broker.port(), "dev-0", 2);
  EXPECT_TRUE(wait_for_health(fh, "dev-0", "online", "data")) << fh.log();

  // The transitions are counted and stored as events.
  const auto m = fh.metrics();
  EXPECT_GE(m.at("fieldhub_health_transitions_total{to=\"offline\"}"), 2.0);
  const auto events = fh.get("/api/v1/events?device=dev-0");
  ASSERT_TRUE(events);
  EXPECT_NE(events->second.find(R"("reason":"link down")"), std::string::npos) << events->second;
}

TEST(HealthIntegration, DeviceStatusMessageTakesItOfflineAtOnce) {
  MosquittoServer broker;
  broker.start();
  FieldhubProcess fh({.broker_port = broker.port(), .devices = 1});
  fh.start();
  report(broker.port(), "dev-0", 1);
  ASSERT_TRUE(wait_for_health(fh, "dev-0", "online")) << fh.log();
  // What the device set as its last will, published by the broker when it vanishes.
  publish(broker.port(), "fieldhub/lab/dev-0/status", "offline");
  EXPECT_TRUE(wait_for_health(fh, "dev-0", "offline", "status offline", 1s)) << fh.log();
  publish(broker.port(), "fieldhub/lab/dev-0/status", "online");
  EXPECT_TRUE(wait_for_health(fh, "dev-0", "online", {}, 1s)) << fh.log();
}

TEST(HealthIntegration, SlowDeviceStaysOnlineAndHealthSurvivesARestart) {
  MosquittoServer broker;
  broker.start();
  FieldhubProcess fh({.broker_port = broker.port(), .devices = 1, .extra_config = slow_device});
  fh.start();
  report(broker.port(), "slow-1", 1);
  ASSERT_TRUE(wait_for_health(fh, "slow-1", "online")) << fh.log();
  const std::string since = device_health(fh, "slow-1").since;
  // Well past what a 1 s device may be silent for (dev-0, never seen, goes offline meanwhile).
  ASSERT_TRUE(wait_for_health(fh, "dev-0", "offline", "never seen", 10s)) << fh.log();
  EXPECT_EQ(device_health(fh, "slow-1").state, "online");

  fh.stop();
  fh.start();
  // From the snapshot: no "unknown" after the restart, and the same since.
  const Health slow = device_health(fh, "slow-1");
  EXPECT_EQ(slow.state, "online");
  EXPECT_EQ(slow.since, since);
  EXPECT_EQ(device_health(fh, "dev-0").state, "offline");
}

}  // namespace
}  // namespace fieldhub::testing
