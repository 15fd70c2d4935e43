// SPDX-License-Identifier: Apache-2.0
// Rollups end to end (issue 4): a kWh meter publishes its total over a real Mosquitto to the real
// fieldhub binary, late and repeated messages included, and the 1-minute buckets read back through
// GET /api/v1/devices/{id}/history carry the consumption per minute.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "fieldhub_process.h"
#include "model/time.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kwh_profile = R"(kind = "kwh_meter"
description = "A kWh meter reporting its total"
source = "fieldhub tests"
expected_interval = "1m"
[mqtt]
format = "fieldhub"
[[metrics]]
name = "energy"
unit = "kWh"
counter = true
min = 0
)";

constexpr const char* kwh_device = R"(
[[devices]]
id = "kwh-1"
kind = "kwh_meter"
site = "lab"
profile = "test-kwh"

[history.retention]
raw = "30d"
minute = "180d"
hour = "5y"
)";

Message energy(model::Timestamp ts, double kwh) {
  const auto ms = model::to_micros(ts) / 1000;
  return {
      "fieldhub/lab/kwh-1/telemetry",
      R"({"ts":)" + std::to_string(ms) + R"(,"values":{"energy":)" + std::to_string(kwh) + "}}"};
}

TEST(HistoryRollupIntegration, CounterSeriesOverMqttReadsBackAsMinuteBucketsWithDelta) {
  MosquittoServer broker;
  broker.start();
  FieldhubProcess fh({.broker_port = broker.port(), .devices = 0, .extra_config = kwh_device});
  std::ofstream(fh.dir() / "profiles" / "test-kwh.toml") << kwh_profile;
  fh.start();

  // Ten minutes ago, on a whole minute (UTC): m0..m4 are the buckets.
  const auto now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  const model::Timestamp m0 = std::chrono::floor<std::chrono::minutes>(now) - 10min;
  const std::vector<Message> in_order = {energy(m0 + 0s, 100.0), energy(m0 + 30s, 100.5),  //
                                         energy(m0 + 1min, 101.0), energy(m0 + 1min + 50s, 102.0),
                                         // m0 + 2min: the meter sent nothing (an absent bucket).
                                         energy(m0 + 3min + 10s, 103.5),
                                         // The meter was replaced: its total starts again.
                                         energy(m0 + 4min + 5s, 0.5), energy(m0 + 4min + 40s, 1.0)};
  ASSERT_EQ(publish_all(broker.port(), in_order, 10s).acknowledged, in_order.size()) << fh.log();
  // Late data after newer buckets exist: a new last for m0, a middle value for m1; and a repeat.
  const std::vector<Message> late = {energy(m0 + 59s, 100.7), energy(m0 + 1min + 5s, 101.5),
                                     energy(m0 + 30s, 100.5)};
  ASSERT_EQ(publish_all(broker.port(), late, 10s).acknowledged, late.size()) << fh.log();

  // The publisher's PUBACK comes from the broker, not from fieldhub: poll (with a deadline) until
  // every bucket is there. The rollups are in the raw rows' transaction, so they are never behind.
  const std::string target =
      "/api/v1/devices/kwh-1/history?metric=energy&step=1m&from=" + model::format_rfc3339(m0) +
      "&to=" + model::format_rfc3339(m0 + 10min);
  std::optional<std::pair<int, std::string>> res;
  wait_until(
      [&] {
        res = fh.get(target);
        if (!res || res->first != 200) return false;
        simdjson::dom::parser p;
        simdjson::dom::array points;
        if (p.parse(res->second)["points"].get_array().get(points) != simdjson::SUCCESS) {
          return false;
        }
        std::uint64_t readings = 0;  // 3 + 3 + 1 + 2 once every message is stored
        for (auto point : points) readings += std::uint64_t(point["count"]);
        return readings == 9;
      },
      10s, 20ms);
  ASSERT_TRUE(res) << fh.log();
  ASSERT_EQ(res->first, 200) << res->second;
  simdjson::dom::parser parser;
  const auto doc = parser.parse(res->second);
  EXPECT_EQ(std::string_view(doc["resolution"]), "1m");
  EXPECT_TRUE(bool(doc["counter"]));
  EXPECT_EQ(std::string_view(doc["unit"]), "kWh");
  auto points = doc["points"].get_array();
  ASSERT_EQ(points.size(), 4u) << res->second;
  struct Want {
    model::Timestamp ts;
    std::uint64_t count;
    double min, max, last;
    std::optional<double> delta;
  };
  const Want want[] = {{m0, 3, 100.0, 100.7, 100.7, std::nullopt},
                       {m0 + 1min, 3, 101.0, 102.0, 102.0, 1.3},
                       {m0 + 3min, 1, 103.5, 103.5, 103.5, 1.5},
                       {m0 + 4min, 2, 0.5, 1.0, 1.0, std::nullopt}};  // reset: not -102.5
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    const auto p = points.at(i);
    EXPECT_EQ(std::string_view(p["ts"]), model::format_rfc3339(want[i].ts));
    EXPECT_EQ(std::uint64_t(p["count"]), want[i].count);
    EXPECT_DOUBLE_EQ(double(p["min"]), want[i].min);
    EXPECT_DOUBLE_EQ(double(p["max"]), want[i].max);
    EXPECT_DOUBLE_EQ(double(p["last"]), want[i].last);
    if (want[i].delta) {
      EXPECT_NEAR(double(p["delta"]), *want[i].delta, 1e-9);
    } else {
      EXPECT_TRUE(p["delta"].is_null());
    }
  }

  // auto over this 10-minute range answers raw: every stored reading once.
  const auto raw =
      fh.get("/api/v1/devices/kwh-1/history?metric=energy&from=" + model::format_rfc3339(m0) +
             "&to=" + model::format_rfc3339(m0 + 10min));
  ASSERT_TRUE(raw);
  const auto raw_doc = parser.parse(raw->second);
  EXPECT_EQ(std::string_view(raw_doc["resolution"]), "raw");
  EXPECT_EQ(raw_doc["points"].get_array().size(), 9u) << raw->second;
}

}  // namespace
}  // namespace fieldhub::testing
