// SPDX-License-Identifier: Apache-2.0
#include "web/api.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "web/http_server.h"
#include "web/test_fakes.h"

namespace fieldhub::web {
namespace {

using namespace std::chrono_literals;
using testing::FakeHistoryStore;
using testing::FakeLiveStore;
using testing::make_event;
using testing::make_reading;

const model::Timestamp t0 = *model::parse_rfc3339("2026-03-01T12:00:00Z");

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() {
    config_.server.static_dir = static_dir_;
    std::filesystem::create_directories(static_dir_);
    std::ofstream(static_dir_ / "index.html") << "<!doctype html><title>fieldhub</title>";
    std::ofstream(static_dir_ / "app.js") << "console.log(1);";
    std::ofstream(root_ / "secret.txt") << "do not serve";
  }
  ~ApiTest() override { std::filesystem::remove_all(root_); }

  Response call(std::string target, std::string method = "GET") {
    std::promise<Response> promise;
    auto future = promise.get_future();
    api_.handle({std::move(method), std::move(target), ""},
                [&promise](Response r) { promise.set_value(std::move(r)); });
    // Waits for the Api's query thread (no sleeping: the future is signalled).
    return future.get();
  }

  simdjson::dom::element parse(const Response& r) {
    EXPECT_EQ(r.content_type, "application/json");
    return parser_.parse(r.body);
  }

  std::string error_of(const Response& r) {
    return std::string(std::string_view(parse(r)["error"]));
  }

  std::filesystem::path root_ = std::filesystem::temp_directory_path() /
                                ("fieldhub_api_test_" + std::to_string(::getpid()) + "_" +
                                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::path static_dir_ = root_ / "static";
  config::Config config_ = testing::make_config();
  FakeLiveStore live_;
  FakeHistoryStore history_;
  common::Metrics metrics_;
  common::FakeClock clock_{t0};
  HealthReport health_{true, {{"history", "ok"}}};
  Api api_{{config_, live_, history_, metrics_, clock_, [this] { return health_; }}};
  simdjson::dom::parser parser_;
};

TEST_F(ApiTest, DevicesListsEveryConfiguredDeviceWithLastSeenAndAge) {
  const model::Reading r = make_reading("meter-1", "energy", 12.5, t0 - 12s);
  live_.apply({&r, 1});
  const auto res = call("/api/v1/devices");
  ASSERT_EQ(res.status, 200);
  auto arr = parse(res).get_array();
  ASSERT_EQ(arr.size(), 3u);
  auto m1 = arr.at(0);
  EXPECT_EQ(std::string_view(m1["id"]), "meter-1");
  EXPECT_EQ(std::string_view(m1["kind"]), "kwh_meter");
  EXPECT_EQ(std::string_view(m1["site"]), "north");
  EXPECT_EQ(std::string_view(m1["profile"]), "kwh_meter_v1");
  EXPECT_EQ(std::string_view(m1["protocol"]), "mqtt");
  EXPECT_EQ(std::string_view(m1["last_seen"]), "2026-03-01T11:59:48.000Z");
  EXPECT_DOUBLE_EQ(double(m1["age_s"]), 12.0);
  // Location keeps the configured order (most general first).
  EXPECT_NE(res.body.find(R"("location":{"building":"B","floor":"2","room":"204"})"),
            std::string::npos);
  auto m2 = arr.at(1);
  EXPECT_TRUE(m2["last_seen"].is_null());
  EXPECT_TRUE(m2["age_s"].is_null());
}

TEST_F(ApiTest, DevicesFilterBySiteAndKind) {
  auto north = parse(call("/api/v1/devices?site=north")).get_array();
  ASSERT_EQ(north.size(), 2u);
  auto calls = parse(call("/api/v1/devices?site=north&kind=nurse_call")).get_array();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(std::string_view(calls.at(0)["id"]), "call-7");
  EXPECT_EQ(parse(call("/api/v1/devices?site=nowhere")).get_array().size(), 0u);
}

TEST_F(ApiTest, UnknownOrRepeatedParameterIsA400NamingIt) {
  auto res = call("/api/v1/devices?stie=north");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(error_of(res), "unknown parameter 'stie'");
  res = call("/api/v1/devices?site=a&site=b");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(error_of(res), "parameter 'site' given more than once");
}

TEST_F(ApiTest, DeviceDetailShowsLatestValuesAndDeclaredMetricsNeverReceived) {
  model::Reading r = make_reading("meter-1", "energy", 1234.5, t0 - 3s);
  r.received_ts = t0 - 2s;
  r.quality = model::Quality::uncertain;
  r.quality_reason = "stale_source";
  live_.apply({&r, 1});
  const auto res = call("/api/v1/devices/meter-1");
  ASSERT_EQ(res.status, 200);
  auto doc = parse(res);
  EXPECT_EQ(std::string_view(doc["id"]), "meter-1");
  auto energy = doc["metrics"]["energy"];
  EXPECT_DOUBLE_EQ(double(energy["value"]), 1234.5);
  EXPECT_EQ(std::string_view(energy["unit"]), "kWh");
  EXPECT_EQ(std::string_view(energy["ts"]), "2026-03-01T11:59:57.000Z");
  EXPECT_EQ(std::string_view(energy["received_ts"]), "2026-03-01T11:59:58.000Z");
  EXPECT_DOUBLE_EQ(double(energy["age_s"]), 2.0);
  EXPECT_EQ(std::string_view(energy["quality"]), "uncertain");
  EXPECT_EQ(std::string_view(energy["quality_reason"]), "stale_source");
  auto power = doc["metrics"]["power"];
  EXPECT_TRUE(power["value"].is_null());
  EXPECT_EQ(std::string_view(power["unit"]), "W");
  EXPECT_TRUE(power["ts"].is_null());
}

// With a health tracker: meter-1 online, meter-2 offline (link down), call-7 unknown.
class ApiHealthTest : public ApiTest {
 protected:
  ApiHealthTest() {
    tracker_.register_device("meter-1", 10s, "broker");
    tracker_.register_device("meter-2", 60s, "modbus:10.0.0.5:502");
    tracker_.register_device("call-7", 0ms, "broker");
    tracker_.link_up("broker");
    tracker_.link_up("modbus:10.0.0.5:502");
    tracker_.link_reconnect_attempt("modbus:10.0.0.5:502");
    tracker_.link_error("modbus:10.0.0.5:502", "timeout");
    tracker_.link_rtt("modbus:10.0.0.5:502", 1500us);
    tracker_.observe("meter-1", t0 - 1s);
    tracker_.observe("meter-2", t0 - 1s);
    tracker_.link_down("modbus:10.0.0.5:502", "connection lost");
  }
  health::HealthTracker tracker_{clock_};
  Api api_{{config_, live_, history_, metrics_, clock_, {}, &tracker_}};

  Response call(std::string target) {
    std::promise<Response> promise;
    auto future = promise.get_future();
    api_.handle({"GET", std::move(target), ""},
                [&promise](Response r) { promise.set_value(std::move(r)); });
    return future.get();
  }
};

TEST_F(ApiHealthTest, HealthSummarisesDevicesByStateAndEveryLink) {
  const auto res = call("/api/v1/health");
  ASSERT_EQ(res.status, 200);
  auto doc = parse(res);
  EXPECT_EQ(std::uint64_t(doc["summary"]["online"]), 1u);
  EXPECT_EQ(std::uint64_t(doc["summary"]["offline"]), 1u);
  EXPECT_EQ(std::uint64_t(doc["summary"]["unknown"]), 1u);
  EXPECT_EQ(std::uint64_t(doc["summary"]["stale"]), 0u);
  bool saw_modbus = false;
  for (auto link : doc["links"].get_array()) {
    if (std::string_view(link["name"]) != "modbus:10.0.0.5:502") continue;
    saw_modbus = true;
    EXPECT_EQ(std::string_view(link["state"]), "down");
    EXPECT_EQ(std::string_view(link["since"]), "2026-03-01T12:00:00.000Z");
    EXPECT_EQ(std::uint64_t(link["reconnects"]), 1u);
    EXPECT_EQ(std::uint64_t(link["errors"]["timeout"]), 1u);
    EXPECT_DOUBLE_EQ(double(link["rtt"]["last_ms"]), 1.5);
    EXPECT_EQ(std::uint64_t(link["devices"]), 1u);
  }
  EXPECT_TRUE(saw_modbus);
}

TEST_F(ApiHealthTest, DevicesCarryHealthFieldsAndFilterByHealth) {
  auto all = parse(call("/api/v1/devices")).get_array();
  ASSERT_EQ(all.size(), 3u);
  auto m1 = all.at(0);
  EXPECT_EQ(std::string_view(m1["health"]), "online");
  EXPECT_EQ(std::string_view(m1["health_since"]), "2026-03-01T11:59:59.000Z");
  EXPECT_EQ(std::string_view(m1["health_reason"]), "data");
  EXPECT_DOUBLE_EQ(double(m1["expected_interval_s"]), 10.0);
  // Unknown, never seen: since it was registered.
  EXPECT_EQ(std::string_view(all.at(2)["health"]), "unknown");
  EXPECT_EQ(std::string_view(all.at(2)["health_since"]), "2026-03-01T12:00:00.000Z");

  auto offline = parse(call("/api/v1/devices?health=offline")).get_array();
  ASSERT_EQ(offline.size(), 1u);
  EXPECT_EQ(std::string_view(offline.at(0)["id"]), "meter-2");
  EXPECT_EQ(std::string_view(offline.at(0)["health_reason"]), "link down");
  EXPECT_EQ(parse(call("/api/v1/devices?health=stale")).get_array().size(), 0u);
  const auto bad = call("/api/v1/devices?health=asleep");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(error_of(bad), "parameter 'health': must be unknown, online, stale or offline");
}

TEST_F(ApiHealthTest, ValuesOfAnOfflineDeviceAreMarkedStaleNeverCurrent) {
  const model::Reading r1 = make_reading("meter-1", "energy", 5.0, t0 - 1s);
  const model::Reading r2 = make_reading("meter-2", "energy", 7.0, t0 - 1s);
  live_.apply({&r1, 1});
  live_.apply({&r2, 1});
  auto online = parse(call("/api/v1/devices/meter-1"));
  EXPECT_FALSE(bool(online["metrics"]["energy"]["stale"]));
  auto offline = parse(call("/api/v1/devices/meter-2"));
  EXPECT_EQ(std::string_view(offline["health"]), "offline");
  EXPECT_TRUE(bool(offline["metrics"]["energy"]["stale"]));
  EXPECT_DOUBLE_EQ(double(offline["metrics"]["energy"]["value"]), 7.0);
  // meter-1 silent past 2 × 10 s + 1 s grace: stale, and so are its values.
  clock_.advance(25s);
  tracker_.advance(clock_.now());
  auto stale = parse(call("/api/v1/devices/meter-1"));
  EXPECT_EQ(std::string_view(stale["health"]), "stale");
  EXPECT_EQ(std::string_view(stale["health_reason"]), "timeout");
  EXPECT_TRUE(bool(stale["metrics"]["energy"]["stale"]));
}

TEST_F(ApiTest, WithoutATrackerHealthFieldsAreNull) {
  auto m1 = parse(call("/api/v1/devices")).get_array().at(0);
  EXPECT_TRUE(m1["health"].is_null());
  const auto res = call("/api/v1/health");
  ASSERT_EQ(res.status, 200);
  EXPECT_TRUE(parse(res)["summary"].is_null());
}

TEST_F(ApiTest, BadQualityReadingShowsNullValueNeverZero) {
  model::Reading r = make_reading("meter-1", "power", 0, t0);
  r.value = std::monostate{};
  r.quality = model::Quality::bad;
  r.quality_reason = "timeout";
  live_.apply({&r, 1});
  auto power = parse(call("/api/v1/devices/meter-1"))["metrics"]["power"];
  EXPECT_TRUE(power["value"].is_null());
  EXPECT_EQ(std::string_view(power["quality"]), "bad");
}

TEST_F(ApiTest, UnknownDeviceIs404) {
  auto res = call("/api/v1/devices/nope");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(error_of(res), "unknown device 'nope'");
  EXPECT_EQ(call("/api/v1/devices/nope/history?metric=energy").status, 404);
}

TEST_F(ApiTest, DeviceIdIsPercentDecoded) {
  config_.devices[0].id = "meter 1/a";
  EXPECT_EQ(call("/api/v1/devices/meter%201%2Fa").status, 200);
}

TEST_F(ApiTest, HistoryDefaultsToTheLastHour) {
  history_.readings_data = {make_reading("meter-1", "energy", 1.0, t0 - 2h),
                            make_reading("meter-1", "energy", 2.0, t0 - 30min),
                            make_reading("meter-1", "energy", 3.0, t0 - 1s)};
  const auto res = call("/api/v1/devices/meter-1/history?metric=energy");
  ASSERT_EQ(res.status, 200);
  auto doc = parse(res);
  EXPECT_EQ(std::string_view(doc["device"]), "meter-1");
  EXPECT_EQ(std::string_view(doc["metric"]), "energy");
  EXPECT_EQ(std::string_view(doc["unit"]), "kWh");
  auto points = doc["points"].get_array();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(std::string_view(points.at(0)["ts"]), "2026-03-01T11:30:00.000Z");
  EXPECT_DOUBLE_EQ(double(points.at(0)["value"]), 2.0);
  EXPECT_EQ(std::string_view(points.at(1)["quality"]), "good");
  ASSERT_TRUE(history_.last_reading_query);
  EXPECT_EQ(history_.last_reading_query->from, t0 - 1h);
  EXPECT_EQ(history_.last_reading_query->to, t0);
  EXPECT_EQ(history_.last_reading_query->limit, 10000u);
}

TEST_F(ApiTest, HistoryTakesRfc3339BoundsWithOffsetsAndLimit) {
  const auto res = call(
      "/api/v1/devices/meter-1/history?metric=power&from=2026-03-01T10:00:00%2B02:00"
      "&to=2026-03-01T09:00:00.5Z&limit=5");
  ASSERT_EQ(res.status, 200);
  ASSERT_TRUE(history_.last_reading_query);
  EXPECT_EQ(history_.last_reading_query->from, *model::parse_rfc3339("2026-03-01T08:00:00Z"));
  EXPECT_EQ(history_.last_reading_query->to, *model::parse_rfc3339("2026-03-01T09:00:00.500Z"));
  EXPECT_EQ(history_.last_reading_query->limit, 5u);
  EXPECT_EQ(history_.last_reading_query->metric, "power");
}

TEST_F(ApiTest, HistoryParameterErrorsAre400NamingTheParameter) {
  const std::string base = "/api/v1/devices/meter-1/history";
  struct Case {
    std::string query;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", "missing parameter 'metric'"},
      {"?metric=volume", "parameter 'metric': 'volume' is not a metric of device 'meter-1'"},
      {"?metric=energy&from=yesterday",
       "parameter 'from': not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)"},
      {"?metric=energy&to=2026-13-01T00:00:00Z",
       "parameter 'to': not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)"},
      {"?metric=energy&from=2026-03-01T12:00:00Z&to=2026-03-01T11:00:00Z",
       "parameter 'from': must be before 'to'"},
      {"?metric=energy&from=2026-03-01T12:00:00Z&to=2026-03-01T12:00:00Z",
       "parameter 'from': must be before 'to'"},
      {"?metric=energy&limit=0", "parameter 'limit': must be an integer from 1 to 100000"},
      {"?metric=energy&limit=abc", "parameter 'limit': must be an integer from 1 to 100000"},
      {"?metric=energy&limit=100001", "parameter 'limit': must be an integer from 1 to 100000"},
      {"?metric=energy&limit=-1", "parameter 'limit': must be an integer from 1 to 100000"},
  };
  for (const auto& c : cases) {
    const auto res = call(base + c.query);
    EXPECT_EQ(res.status, 400) << c.query;
    EXPECT_EQ(error_of(res), c.error) << c.query;
  }
  EXPECT_FALSE(history_.last_reading_query) << "no query reaches the store";
}

TEST_F(ApiTest, HistoryStepAutoPicksRawUpTo6HoursMinutesUpTo7DaysThenHours) {
  const std::string base = "/api/v1/devices/meter-1/history?metric=energy&to=2026-03-08T12:00:00Z";
  struct Case {
    std::string from;
    std::string resolution;
  };
  const std::vector<Case> cases = {
      {"2026-03-08T06:00:00Z", "raw"},     // 6 h exactly
      {"2026-03-08T05:59:59Z", "1m"},      // 6 h 1 s
      {"2026-03-01T12:00:00Z", "1m"},      // 7 days exactly
      {"2026-03-01T11:59:59.999Z", "1h"},  // just over 7 days
  };
  for (const auto& c : cases) {
    history_.last_reading_query.reset();
    history_.last_rollup_query.reset();
    for (const std::string step : {"", "&step=auto"}) {
      const auto res = call(base + "&from=" + c.from + step);
      ASSERT_EQ(res.status, 200) << c.from;
      auto doc = parse(res);
      EXPECT_EQ(std::string_view(doc["resolution"]), c.resolution) << c.from << step;
    }
    if (c.resolution == "raw") {
      EXPECT_TRUE(history_.last_reading_query) << c.from;
      EXPECT_FALSE(history_.last_rollup_query) << c.from;
    } else {
      ASSERT_TRUE(history_.last_rollup_query) << c.from;
      EXPECT_FALSE(history_.last_reading_query) << c.from;
      EXPECT_EQ(history_.last_rollup_query->resolution,
                c.resolution == "1m" ? stores::Resolution::minute : stores::Resolution::hour);
      EXPECT_EQ(history_.last_rollup_query->from, *model::parse_rfc3339(c.from));
      // Every bucket of the range (7 days of minutes are 10,080), not the raw default of 10,000.
      EXPECT_EQ(history_.last_rollup_query->limit, 100000u);
    }
  }
  // An explicit step wins over the range.
  ASSERT_EQ(call(base + "&from=2026-01-01T00:00:00Z&step=raw").status, 200);
  EXPECT_EQ(history_.last_reading_query->from, *model::parse_rfc3339("2026-01-01T00:00:00Z"));
  ASSERT_EQ(call(base + "&from=2026-03-08T11:00:00Z&step=1h&limit=7").status, 200);
  EXPECT_EQ(history_.last_rollup_query->resolution, stores::Resolution::hour);
  EXPECT_EQ(history_.last_rollup_query->limit, 7u);
}

TEST_F(ApiTest, HistoryRollupAnswerHasBucketsAndTheCounterDelta) {
  config_.profiles[0].metrics[0].counter = true;  // energy: a kWh total
  stores::RollupBucket a;
  a.start = t0 - 2min;
  a.min = 10;
  a.max = 12;
  a.sum = 44;
  a.count = 4;
  a.last = 12;  // no bucket before it: delta unknown
  stores::RollupBucket b = a;
  b.start = t0 - 1min;
  b.min = 12;
  b.max = 15.5;
  b.sum = 27.5;
  b.count = 2;
  b.last = 15.5;
  b.delta = 3.5;
  history_.rollups_data = {a, b};

  const auto res = call("/api/v1/devices/meter-1/history?metric=energy&step=1m");
  ASSERT_EQ(res.status, 200);
  auto doc = parse(res);
  EXPECT_EQ(std::string_view(doc["unit"]), "kWh");
  EXPECT_TRUE(bool(doc["counter"]));
  EXPECT_EQ(std::string_view(doc["resolution"]), "1m");
  EXPECT_EQ(std::string_view(doc["from"]), "2026-03-01T11:00:00.000Z");
  auto points = doc["points"].get_array();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(std::string_view(points.at(0)["ts"]), "2026-03-01T11:58:00.000Z");
  EXPECT_DOUBLE_EQ(double(points.at(0)["min"]), 10);
  EXPECT_DOUBLE_EQ(double(points.at(0)["max"]), 12);
  EXPECT_DOUBLE_EQ(double(points.at(0)["mean"]), 11);
  EXPECT_EQ(std::uint64_t(points.at(0)["count"]), 4u);
  EXPECT_DOUBLE_EQ(double(points.at(0)["last"]), 12);
  EXPECT_TRUE(points.at(0)["delta"].is_null());
  EXPECT_DOUBLE_EQ(double(points.at(1)["mean"]), 13.75);
  EXPECT_DOUBLE_EQ(double(points.at(1)["delta"]), 3.5);

  // The same buckets for a metric that is not a counter: no consumption.
  config_.profiles[0].metrics[0].counter = false;
  auto plain = parse(call("/api/v1/devices/meter-1/history?metric=energy&step=1m"));
  EXPECT_FALSE(bool(plain["counter"]));
  EXPECT_TRUE(plain["points"].get_array().at(1)["delta"].is_null());
}

TEST_F(ApiTest, HistoryRawAnswerSaysItsResolutionAndCounter) {
  auto doc = parse(call("/api/v1/devices/meter-1/history?metric=power&step=raw"));
  EXPECT_EQ(std::string_view(doc["resolution"]), "raw");
  EXPECT_FALSE(bool(doc["counter"]));
}

TEST_F(ApiTest, HistoryStepErrors) {
  config_.profiles[0].metrics.push_back({.name = "tamper", .type = model::ValueType::boolean});
  const std::string base = "/api/v1/devices/meter-1/history?metric=";
  auto res = call(base + "energy&step=5m");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(error_of(res), "parameter 'step': must be raw, 1m, 1h or auto");
  res = call(base + "tamper&step=1h");
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(error_of(res),
            "parameter 'step': metric 'tamper' is not a number and has no rollups; use step=raw");
  EXPECT_FALSE(history_.last_rollup_query);
  // auto over a long range answers a non-number metric raw.
  auto doc = parse(call(base + "tamper&from=2026-01-01T00:00:00Z"));
  EXPECT_EQ(std::string_view(doc["resolution"]), "raw");
}

TEST_F(ApiTest, HistoryUnavailableIs503) {
  history_.fail = true;
  auto res = call("/api/v1/devices/meter-1/history?metric=energy");
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(error_of(res), "history unavailable: database is locked");
  EXPECT_EQ(call("/api/v1/events").status, 503);
  EXPECT_EQ(call("/api/v1/dead-letters").status, 503);
}

TEST_F(ApiTest, EventsNewestFirstWithFilters) {
  history_.events_data = {make_event("call-7", "call", model::Priority::medium, t0 - 3min),
                          make_event("call-7", "cancel", model::Priority::none, t0 - 2min),
                          make_event("call-7", "call", model::Priority::medium, t0 - 1min)};
  auto res = call("/api/v1/events");
  ASSERT_EQ(res.status, 200);
  auto arr = parse(res).get_array();
  ASSERT_EQ(arr.size(), 3u);
  EXPECT_EQ(std::string_view(arr.at(0)["ts"]), "2026-03-01T11:59:00.000Z");
  EXPECT_EQ(std::string_view(arr.at(0)["device"]), "call-7");
  EXPECT_EQ(std::string_view(arr.at(0)["site"]), "north");
  EXPECT_EQ(std::string_view(arr.at(0)["event_type"]), "call");
  EXPECT_EQ(std::string_view(arr.at(0)["priority"]), "medium");
  EXPECT_EQ(std::string_view(arr.at(0)["attributes"]["source"]), "test");
  EXPECT_EQ(history_.last_event_query->limit, 100u);

  arr = parse(call("/api/v1/events?device=call-7&type=call&limit=1")).get_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(std::string_view(arr.at(0)["ts"]), "2026-03-01T11:59:00.000Z");
  EXPECT_EQ(history_.last_event_query->device_id, "call-7");
  EXPECT_EQ(history_.last_event_query->type, "call");

  arr = parse(call("/api/v1/events?from=2026-03-01T11:57:30Z&to=2026-03-01T11:58:30Z")).get_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(std::string_view(arr.at(0)["event_type"]), "cancel");

  EXPECT_EQ(error_of(call("/api/v1/events?to=soon")),
            "parameter 'to': not an RFC 3339 date-time (e.g. 2026-01-31T12:00:00Z)");
  EXPECT_EQ(call("/api/v1/events?limit=10001").status, 400);
}

TEST_F(ApiTest, DeadLettersShowPayloadAsTextCappedAndValid) {
  pipeline::DeadLetter a{t0 - 1min, "fieldhub/north/meter-1/telemetry", "invalid_json",
                         "unexpected end", std::string("{\"v\":\xff\xfe", 7)};
  pipeline::DeadLetter b{t0, "fieldhub/north/x/telemetry", "unknown_device", "no device 'x'",
                         std::string(10000, 'a')};
  history_.dead_letters_data = {a, b};
  auto res = call("/api/v1/dead-letters");
  ASSERT_EQ(res.status, 200);
  auto arr = parse(res).get_array();  // parses: invalid bytes were replaced
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(std::string_view(arr.at(0)["reason"]), "unknown_device");
  EXPECT_EQ(std::string_view(arr.at(0)["payload"]).size(), Api::dead_letter_text_cap);
  EXPECT_EQ(uint64_t(arr.at(0)["payload_bytes"]), 10000u);
  EXPECT_TRUE(bool(arr.at(0)["payload_truncated"]));
  EXPECT_EQ(std::string_view(arr.at(1)["payload"]), "{\"v\":\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_FALSE(bool(arr.at(1)["payload_truncated"]));

  arr = parse(call("/api/v1/dead-letters?reason=invalid_json&limit=5")).get_array();
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(std::string_view(arr.at(0)["source"]), "fieldhub/north/meter-1/telemetry");
  EXPECT_EQ(history_.last_dead_letter_query->limit, 5u);
  EXPECT_EQ(call("/api/v1/dead-letters?limit=1001").status, 400);
}

TEST_F(ApiTest, MetricsArePrometheusTextAndCountRequestsByRouteAndStatus) {
  call("/api/v1/devices");
  call("/api/v1/devices/nope");
  call("/api/v1/devices/meter-1/history?metric=energy");
  const auto res = call("/metrics");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res.body.find("# TYPE fieldhub_http_requests_total counter"), std::string::npos);
  EXPECT_EQ(metrics_.counter_value("fieldhub_http_requests_total",
                                   {{"route", "/api/v1/devices"}, {"status", "200"}}),
            1u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_http_requests_total",
                                   {{"route", "/api/v1/devices/{id}"}, {"status", "404"}}),
            1u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_http_requests_total",
                                   {{"route", "/api/v1/devices/{id}/history"}, {"status", "200"}}),
            1u);
}

TEST_F(ApiTest, HealthzIs200WhenOkAnd503WhenNot) {
  auto res = call("/healthz");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(std::string_view(parse(res)["status"]), "ok");
  EXPECT_EQ(std::string_view(parse(res)["components"]["history"]), "ok");
  health_ = {false, {{"history", "degraded: disk full"}}};
  res = call("/healthz");
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(std::string_view(parse(res)["status"]), "degraded");
  EXPECT_EQ(std::string_view(parse(res)["components"]["history"]), "degraded: disk full");
}

TEST_F(ApiTest, WrongMethodIs405WithAllow) {
  for (const char* target : {"/api/v1/devices", "/api/v1/devices/meter-1", "/api/v1/events",
                             "/api/v1/dead-letters", "/metrics", "/healthz", "/"}) {
    const auto res = call(target, "POST");
    EXPECT_EQ(res.status, 405) << target;
    ASSERT_EQ(res.headers.size(), 1u);
    EXPECT_EQ(res.headers[0], std::make_pair(std::string("Allow"), std::string("GET")));
  }
}

TEST_F(ApiTest, UnknownApiRouteIs404) {
  auto res = call("/api/v1/nothing");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(error_of(res), "no such endpoint: /api/v1/nothing");
  EXPECT_EQ(call("/api/v2/devices").status, 404);
  EXPECT_EQ(call("/api/v1/devices/meter-1/bogus").status, 404);
}

TEST_F(ApiTest, ServesStaticFilesWithContentTypes) {
  auto res = call("/");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(res.body, "<!doctype html><title>fieldhub</title>");
  res = call("/app.js");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(call("/missing.css").status, 404);
}

TEST_F(ApiTest, StaticRefusesTraversal) {
  std::filesystem::create_directories(static_dir_ / "sub");
  std::filesystem::create_symlink(root_ / "secret.txt", static_dir_ / "link.txt");
  for (const char* target : {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                             "/sub/%2E%2E/%2e%2e/secret.txt", "/..%2fsecret.txt",
                             "/..%5csecret.txt", "/link.txt", "/sub", "/%00index.html"}) {
    const auto res = call(target);
    EXPECT_EQ(res.status, 404) << target;
    EXPECT_EQ(res.body.find("do not serve"), std::string::npos) << target;
  }
}

TEST_F(ApiTest, ServesVendorLibrariesOnlyFromTheVendorFolder) {
  const auto vendor = root_ / "node_modules";
  std::filesystem::create_directories(vendor / "uplot" / "dist");
  std::ofstream(vendor / "uplot" / "dist" / "uPlot.min.css") << ".uplot{}";
  std::ofstream(vendor / "index.html") << "not the dashboard";
  // Without a vendor folder, /vendor/ is a 404 (the page then says the library is missing).
  EXPECT_EQ(call("/vendor/uplot/dist/uPlot.min.css").status, 404);
  config_.server.vendor_dir = vendor;
  const auto res = call("/vendor/uplot/dist/uPlot.min.css");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/css; charset=utf-8");
  EXPECT_EQ(res.body, ".uplot{}");
  // The pages' files are not reachable through /vendor/, nor the vendor's index through "/".
  EXPECT_EQ(call("/vendor/app.js").status, 404);
  EXPECT_EQ(call("/").body, "<!doctype html><title>fieldhub</title>");
  for (const char* target : {"/vendor/", "/vendor/../secret.txt", "/vendor/%2e%2e/secret.txt",
                             "/vendor/uplot/../../secret.txt", "/vendor/uplot"}) {
    EXPECT_EQ(call(target).status, 404) << target;
  }
  EXPECT_EQ(call("/vendor/uplot/dist/uPlot.min.css", "POST").status, 405);
}

TEST(ResolveStatic, AcceptsOnlyRegularFilesInsideTheFolder) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("fieldhub_resolve_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "www");
  std::ofstream(dir / "www" / "index.html") << "x";
  std::ofstream(dir / "www-other.html") << "y";
  EXPECT_EQ(resolve_static(dir / "www", "/"), std::filesystem::canonical(dir / "www/index.html"));
  EXPECT_EQ(resolve_static(dir / "www", "/index.html"),
            std::filesystem::canonical(dir / "www/index.html"));
  // A sibling folder sharing the prefix "www" is still outside.
  EXPECT_TRUE(resolve_static(dir / "www", "/../www-other.html").empty());
  EXPECT_TRUE(resolve_static("", "/index.html").empty());
  std::filesystem::remove_all(dir);
}

TEST(ParseTarget, DecodesPathSegmentsAndQuery) {
  const Target t = parse_target("/api/v1/devices/a%2Fb?site=north+wing&kind=&x=%41");
  ASSERT_TRUE(t.ok);
  EXPECT_EQ(t.path, "/api/v1/devices/a/b");
  ASSERT_EQ(t.segments.size(), 4u);
  EXPECT_EQ(t.segments[3], "a/b");
  ASSERT_EQ(t.query.size(), 3u);
  EXPECT_EQ(t.query[0], std::make_pair(std::string("site"), std::string("north wing")));
  EXPECT_EQ(t.query[1].second, "");
  EXPECT_EQ(t.query[2].second, "A");
  EXPECT_FALSE(parse_target("/a%zz").ok);
  EXPECT_FALSE(parse_target("/a?b=%4").ok);
}

TEST(SameOrigin, AllowsOnlyTheSameHostAndPort) {
  EXPECT_TRUE(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
  EXPECT_TRUE(same_origin("https://Fieldhub.Example", "fieldhub.example"));
  EXPECT_FALSE(same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
  EXPECT_FALSE(same_origin("http://evil.example", "127.0.0.1:8080"));
  EXPECT_FALSE(same_origin("null", "127.0.0.1:8080"));
  EXPECT_FALSE(same_origin("file://", "127.0.0.1:8080"));
  EXPECT_FALSE(same_origin("http://127.0.0.1:8080", ""));
}

}  // namespace
}  // namespace fieldhub::web
