// SPDX-License-Identifier: Apache-2.0
#include "web/live_hub.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include "web/test_fakes.h"

namespace fieldhub::web {
namespace {

using namespace std::chrono_literals;
using testing::make_event;
using testing::make_reading;

const model::Timestamp t0 = *model::parse_rfc3339("2026-03-01T12:00:00Z");

// Records frames; a write "completes" only when the test says so, like a slow client.
class FakeSink final : public LiveSink {
 public:
  void send(std::shared_ptr<const std::string> frame) override {
    EXPECT_FALSE(in_flight) << "the hub sent a frame while one was outstanding";
    in_flight = true;
    frames.push_back(*frame);
    sent.push_back(std::move(frame));
  }
  void close_slow() override { ++closed; }

  std::vector<std::string> frames;
  std::vector<std::shared_ptr<const std::string>> sent;  // to see which frames are shared
  bool in_flight = false;
  int closed = 0;
};

class LiveHubTest : public ::testing::Test {
 protected:
  LiveHubTest() {
    hub_.set_flush_scheduler([this](std::chrono::milliseconds delay) {
      last_delay_ = delay;
      ++flushes_requested_;
    });
  }
  // The server's telemetry timer firing.
  void tick() { hub_.flush_telemetry(); }
  LiveHub::SessionId attach(FakeSink& sink, LiveFilter filter = {}) {
    const auto id = hub_.attach(sink, std::move(filter));
    return id;
  }
  // Completes writes until the session has nothing more to send (a fast client).
  void drain(FakeSink& sink, LiveHub::SessionId id) {
    while (sink.in_flight) {
      sink.in_flight = false;
      hub_.on_sent(id);
    }
  }
  simdjson::dom::element parse(const std::string& frame) { return parser_.parse(frame); }
  std::string type_of(const std::string& frame) {
    return std::string(std::string_view(parse(frame)["type"]));
  }

  config::Config config_ = testing::make_config();
  testing::FakeLiveStore live_;
  common::Metrics metrics_;
  common::FakeClock clock_{t0};
  LiveHub hub_{config_, live_, metrics_, clock_, LiveHubLimits{.max_event_backlog = 5}};
  int flushes_requested_ = 0;
  std::chrono::milliseconds last_delay_{};
  simdjson::dom::parser parser_;
};

TEST_F(LiveHubTest, AttachSendsHelloThenSnapshotOfLiveState) {
  const model::Reading r = make_reading("meter-1", "energy", 42.0, t0 - 1s);
  live_.apply({&r, 1});
  FakeSink sink;
  const auto id = attach(sink);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(type_of(sink.frames[0]), "hello");
  EXPECT_EQ(int64_t(parse(sink.frames[0])["heartbeat_ms"]), 1000);
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 2u);
  auto snap = parse(sink.frames[1]);
  EXPECT_EQ(std::string_view(snap["type"]), "snapshot");
  auto devices = snap["devices"].get_array();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(std::string_view(devices.at(0)["device"]), "meter-1");
  EXPECT_EQ(std::string_view(devices.at(0)["site"]), "north");
  EXPECT_DOUBLE_EQ(double(devices.at(0)["metrics"]["energy"]["value"]), 42.0);
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_frames_sent_total"), 2u);
}

TEST_F(LiveHubTest, AttachFramesFollowTheSnapshotSoAConsoleResyncsItsAlarmsAndStatus) {
  int made = 0;
  hub_.add_attach_frame([&made] {
    ++made;
    return std::string(R"({"type":"alarms","alarms":[]})");
  });
  hub_.add_attach_frame([] { return std::string(R"({"type":"system","ok":true})"); });
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  drain(sink, id);
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 4u);
  EXPECT_EQ(type_of(sink.frames[1]), "snapshot");
  EXPECT_EQ(type_of(sink.frames[2]), "alarms");
  EXPECT_EQ(type_of(sink.frames[3]), "system");
  EXPECT_EQ(made, 1);  // made per attach, so it is current
}

TEST_F(LiveHubTest, AHealthStormIsTheNewestStatePerDeviceAndNeverClosesTheSession) {
  FakeSink sink;
  const auto id = attach(sink);  // busy: the hello is still being written
  const auto health = [](std::string device, std::string to) {
    model::Event e = make_event(std::move(device), "health", model::Priority::none, t0);
    e.attributes_json = R"({"from":"online","to":")" + to + R"(","reason":"link down"})";
    return e;
  };
  // A link drops and returns twice: 12 changes, far past the event backlog of 5.
  for (int round = 0; round < 2; ++round) {
    for (const char* device : {"meter-1", "meter-2", "pump-7"}) {
      hub_.publish_event(health(device, "offline"));
      hub_.publish_event(health(device, "online"));
    }
  }
  hub_.publish_event(make_event("pump-7", "call", model::Priority::medium, t0));
  EXPECT_EQ(sink.closed, 0);
  drain(sink, id);
  std::vector<std::string> health_frames;
  std::size_t call_at = 0;
  for (std::size_t i = 0; i < sink.frames.size(); ++i) {
    auto f = parse(sink.frames[i]);
    if (type_of(sink.frames[i]) != "event") continue;
    const std::string_view event_type(f["event_type"]);
    if (event_type == "call") call_at = i;
    if (event_type != "health") continue;
    health_frames.push_back(std::string(std::string_view(f["device"])) + ":" +
                            std::string(std::string_view(f["attributes"]["to"])));
  }
  EXPECT_EQ(health_frames,
            (std::vector<std::string>{"meter-1:online", "meter-2:online", "pump-7:online"}));
  EXPECT_LT(call_at, sink.frames.size() - 3);  // the call went ahead of the health states
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_health_coalesced_total"), 9u);
}

TEST_F(LiveHubTest, IdleSessionGetsAPublishedBatchAsOneFrameWithSite) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  model::Reading bad = make_reading("meter-2", "power", 0, t0, "W");
  bad.value = std::monostate{};
  bad.quality = model::Quality::bad;
  bad.quality_reason = "timeout";
  const std::vector<model::Reading> batch = {make_reading("meter-1", "energy", 1.5, t0), bad};
  hub_.publish_readings(batch);
  tick();
  ASSERT_EQ(sink.frames.size(), 3u);
  auto frame = parse(sink.frames[2]);
  EXPECT_EQ(std::string_view(frame["type"]), "readings");
  auto items = frame["items"].get_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-1");
  EXPECT_EQ(std::string_view(items.at(0)["site"]), "north");
  EXPECT_EQ(std::string_view(items.at(0)["metric"]), "energy");
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 1.5);
  EXPECT_EQ(std::string_view(items.at(0)["unit"]), "kWh");
  EXPECT_EQ(std::string_view(items.at(0)["ts"]), "2026-03-01T12:00:00.000Z");
  EXPECT_EQ(std::string_view(items.at(0)["received_ts"]), "2026-03-01T12:00:00.000Z");
  EXPECT_EQ(std::string_view(items.at(0)["quality"]), "good");
  EXPECT_TRUE(items.at(1)["value"].is_null());
  EXPECT_EQ(std::string_view(items.at(1)["site"]), "south");
  EXPECT_EQ(std::string_view(items.at(1)["quality_reason"]), "timeout");
}

// The cost of a dashboard: telemetry waits for the tick, is rendered once per filter and the
// same bytes go to every session with that filter.
TEST_F(LiveHubTest, TelemetryWaitsForTheTickAndGoesOutAsOneFrameSharedBySessions) {
  FakeSink a, b, north;
  const auto ia = attach(a);
  const auto ib = attach(b);
  const auto in = attach(north, {.site = "north"});
  drain(a, ia);
  drain(b, ib);
  drain(north, in);
  for (int i = 0; i < 3; ++i) {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", i, t0 + i * 1s),
                                      make_reading("meter-2", "energy", i, t0 + i * 1s)});
  }
  EXPECT_EQ(a.frames.size(), 2u) << "nothing goes out before the tick";
  EXPECT_EQ(flushes_requested_, 1) << "one flush asked for per tick, not per publish";
  EXPECT_EQ(last_delay_, 10ms);
  tick();
  ASSERT_EQ(a.frames.size(), 3u);
  ASSERT_EQ(b.frames.size(), 3u);
  ASSERT_EQ(north.frames.size(), 3u);
  EXPECT_EQ(a.sent[2], b.sent[2]) << "the same rendered frame, not a copy per session";
  auto items = parse(a.frames[2])["items"].get_array();
  ASSERT_EQ(items.size(), 2u);  // the newest value per metric within the tick
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 2.0);
  EXPECT_DOUBLE_EQ(double(items.at(1)["value"]), 2.0);
  items = parse(north.frames[2])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-1");
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_telemetry_frames_rendered_total"), 2u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_readings_coalesced_total"), 4u);
  // The next publish asks for the next tick.
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 9, t0 + 9s)});
  EXPECT_EQ(flushes_requested_, 2);
}

// A board asks for telemetry at a display rate: the newest value per metric over each interval,
// one frame, while a session on the tick beside it still gets every tick.
TEST_F(LiveHubTest, ASessionWithAnIntervalGetsTheNewestValuesOncePerInterval) {
  LiveHub hub(config_, live_, metrics_, clock_);
  std::vector<std::chrono::milliseconds> asked;
  hub.set_flush_scheduler([&asked](std::chrono::milliseconds d) { asked.push_back(d); });
  FakeSink board, tick_sink;
  const auto ib = hub.attach(board, {.interval = 250ms});
  const auto it = hub.attach(tick_sink, {});
  for (auto* s : {&board, &tick_sink}) {
    while (s->in_flight) {
      s->in_flight = false;
      hub.on_sent(s == &board ? ib : it);
    }
  }
  const std::size_t board_before = board.frames.size();
  const std::size_t tick_before = tick_sink.frames.size();
  EXPECT_EQ(int64_t(parse(board.frames[0])["filter"]["interval_ms"]), 250)
      << "the hello says what the session gets";
  // 25 ticks' worth of readings over 250 ms: the tick session gets each tick, the board nothing.
  for (int i = 0; i < 25; ++i) {
    hub.publish_readings(std::vector{make_reading("meter-1", "energy", i, t0 + i * 1s)});
    EXPECT_EQ(asked.back(), 10ms) << "the tick's batch is due first";
    clock_.advance(10ms);
    hub.flush_telemetry();
    tick_sink.in_flight = false;
    hub.on_sent(it);
    if (i < 24) {
      EXPECT_EQ(board.frames.size(), board_before) << "not before 250 ms, at " << i;
    }
  }
  EXPECT_EQ(tick_sink.frames.size() - tick_before, 25u);
  ASSERT_EQ(board.frames.size(), board_before + 1) << "one frame at 250 ms";
  auto items = parse(board.frames.back())["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 24.0) << "the newest of the interval";
  // Alone, a board's batch asks for a flush when it is due, not every tick.
  hub.detach(it);
  asked.clear();
  hub.publish_readings(std::vector{make_reading("meter-1", "energy", 99, t0 + 99s)});
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], 250ms);
  clock_.advance(100ms);
  hub.flush_telemetry();  // an early timer: not due yet, asks again for the rest
  EXPECT_EQ(board.frames.size(), board_before + 1);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1], 150ms);
  clock_.advance(150ms);
  board.in_flight = false;
  hub.on_sent(ib);
  hub.flush_telemetry();
  ASSERT_EQ(board.frames.size(), board_before + 2);
  EXPECT_DOUBLE_EQ(double(parse(board.frames.back())["items"].get_array().at(0)["value"]), 99.0);
}

// Events never wait for a board's interval.
TEST_F(LiveHubTest, AnIntervalNeverDelaysEvents) {
  FakeSink board;
  const auto id = attach(board, {.interval = 1000ms});
  drain(board, id);
  const std::size_t before = board.frames.size();
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1, t0)});
  hub_.publish_event(make_event("bed-12", "code_blue", model::Priority::high, t0));
  ASSERT_EQ(board.frames.size(), before + 1);
  EXPECT_EQ(type_of(board.frames.back()), "event");
}

TEST_F(LiveHubTest, WithinATickAnOlderValueNeverReplacesANewerOne) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 5, t0 + 5s)});
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 4, t0 + 4s)});
  tick();
  ASSERT_EQ(sink.frames.size(), 3u);
  auto items = parse(sink.frames[2])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 5.0);
}

TEST_F(LiveHubTest, WithoutASchedulerEveryPublishIsFlushedAtOnce) {
  LiveHub hub(config_, live_, metrics_, clock_);
  FakeSink sink;
  const auto id = hub.attach(sink, {});
  while (sink.in_flight) {
    sink.in_flight = false;
    hub.on_sent(id);
  }
  hub.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  ASSERT_EQ(sink.frames.size(), 3u);
  EXPECT_EQ(type_of(sink.frames[2]), "readings");
}

TEST_F(LiveHubTest, SlowSessionGetsOnlyTheNewestValuePerMetric) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  tick();
  ASSERT_TRUE(sink.in_flight);  // the client has not finished reading this one
  for (int i = 2; i <= 100; ++i) {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", i, t0 + i * 1s),
                                      make_reading("meter-1", "power", i * 10, t0 + i * 1s, "W")});
    tick();
  }
  // A late, older value must not replace the newest unsent one.
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", -1, t0 + 50s)});
  tick();
  EXPECT_EQ(sink.frames.size(), 3u) << "nothing is sent per tick while busy";
  drain(sink, id);
  // The next tick's shared frame was already queued; everything later is coalesced.
  ASSERT_EQ(sink.frames.size(), 5u);
  auto items = parse(sink.frames[3])["items"].get_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 2.0);
  items = parse(sink.frames[4])["items"].get_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(std::string_view(items.at(0)["metric"]), "energy");
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 100.0);
  EXPECT_EQ(std::string_view(items.at(1)["metric"]), "power");
  EXPECT_DOUBLE_EQ(double(items.at(1)["value"]), 1000.0);
  // Ticks 3..100 merged into the session's queue: 97 replacements per metric, 1 late one ignored.
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_readings_coalesced_total"), 97u + 97u + 1u);
}

// Under sustained load frames hold fewer items than are waiting; the oldest-waiting go first and
// a newer value keeps its predecessor's turn, so no device starves behind others.
TEST_F(LiveHubTest, BusySessionSendsOldestWaitingFirstSoNoDeviceStarves) {
  LiveHub hub(config_, live_, metrics_, clock_, LiveHubLimits{.max_items_per_frame = 2});
  hub.set_flush_scheduler([](std::chrono::milliseconds) {});
  FakeSink sink;
  const auto id = hub.attach(sink, {});
  auto drain_one = [&] {
    sink.in_flight = false;
    hub.on_sent(id);
  };
  const auto publish = [&](const model::Reading& r) {
    hub.publish_readings({&r, 1});
    hub.flush_telemetry();
  };
  while (sink.in_flight) drain_one();
  publish(make_reading("meter-9", "energy", 1.0, t0));
  ASSERT_TRUE(sink.in_flight);
  publish(make_reading("meter-2", "power", 1.0, t0, "W"));  // queued as the next shared frame
  publish(make_reading("meter-9", "power", 1.0, t0, "W"));  // from here on: coalesced
  publish(make_reading("meter-2", "energy", 1.0, t0));
  publish(make_reading("meter-1", "energy", 1.0, t0));
  publish(make_reading("meter-9", "power", 2.0, t0 + 1s, "W"));
  const std::size_t before = sink.frames.size();
  drain_one();
  drain_one();
  drain_one();
  ASSERT_EQ(sink.frames.size(), before + 3);
  auto shared = parse(sink.frames[before])["items"].get_array();
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(std::string_view(shared.at(0)["device"]), "meter-2");
  auto first = parse(sink.frames[before + 1])["items"].get_array();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(std::string_view(first.at(0)["device"]), "meter-9");
  EXPECT_EQ(std::string_view(first.at(0)["metric"]), "power");
  EXPECT_DOUBLE_EQ(double(first.at(0)["value"]), 2.0);  // newest value, original turn
  EXPECT_EQ(std::string_view(first.at(1)["device"]), "meter-2");
  auto second = parse(sink.frames[before + 2])["items"].get_array();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(std::string_view(second.at(0)["device"]), "meter-1");
}

TEST_F(LiveHubTest, EventsAreNeverCoalescedAndGoAheadOfTelemetry) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  tick();
  ASSERT_TRUE(sink.in_flight);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 2.0, t0 + 1s)});
  tick();
  hub_.publish_event(make_event("call-7", "call", model::Priority::medium, t0 + 2s));
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 3.0, t0 + 3s)});
  tick();
  hub_.publish_event(make_event("call-7", "call", model::Priority::medium, t0 + 4s));
  hub_.publish_event(make_event("call-7", "cancel", model::Priority::none, t0 + 5s));
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 8u);
  auto e1 = parse(sink.frames[3]);
  EXPECT_EQ(std::string_view(e1["type"]), "event");
  EXPECT_EQ(std::string_view(e1["device"]), "call-7");
  EXPECT_EQ(std::string_view(e1["site"]), "north");
  EXPECT_EQ(std::string_view(e1["event_type"]), "call");
  EXPECT_EQ(std::string_view(e1["priority"]), "medium");
  EXPECT_EQ(std::string_view(e1["ts"]), "2026-03-01T12:00:02.000Z");
  EXPECT_EQ(std::string_view(e1["attributes"]["source"]), "test");
  EXPECT_EQ(std::string_view(parse(sink.frames[4])["ts"]), "2026-03-01T12:00:04.000Z");
  EXPECT_EQ(std::string_view(parse(sink.frames[5])["event_type"]), "cancel");
  auto items = parse(sink.frames[6])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 2.0);
  items = parse(sink.frames[7])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_DOUBLE_EQ(double(items.at(0)["value"]), 3.0);
}

// An event leaves at once: it never waits for the telemetry tick, nor behind telemetry queued
// before it, for a session that keeps up and for one that is behind.
TEST_F(LiveHubTest, AnEventIsNeverBehindTelemetryQueuedBeforeIt) {
  FakeSink idle, behind;
  const auto ii = attach(idle);
  const auto ib = attach(behind);
  drain(idle, ii);
  drain(behind, ib);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  tick();
  drain(idle, ii);  // behind keeps its frame in flight
  for (int i = 2; i < 5; ++i) {
    hub_.publish_readings(std::vector{make_reading("meter-1", "energy", i, t0 + i * 1s)});
    tick();
    drain(idle, ii);
  }
  hub_.publish_readings(std::vector{make_reading("meter-2", "energy", 7.0, t0 + 7s)});
  // Telemetry waits for the tick in the hub (both) and in behind's own queue; the call does not.
  hub_.publish_event(make_event("call-7", "call", model::Priority::high, t0 + 8s));
  ASSERT_EQ(type_of(idle.frames.back()), "event") << "sent at once, before the tick";
  const std::size_t behind_before = behind.frames.size();
  behind.in_flight = false;
  hub_.on_sent(ib);
  ASSERT_EQ(behind.frames.size(), behind_before + 1);
  EXPECT_EQ(type_of(behind.frames.back()), "event") << "ahead of the telemetry it queued first";
  tick();
  drain(idle, ii);
  drain(behind, ib);
  EXPECT_EQ(type_of(idle.frames.back()), "readings");
  EXPECT_EQ(type_of(behind.frames.back()), "readings");
}

// A slow console under a telemetry flood: every event arrives, in order, none merged; only
// telemetry is coalesced.
TEST_F(LiveHubTest, CoalescingNeverDropsEvents) {
  LiveHub hub(config_, live_, metrics_, clock_, LiveHubLimits{.max_event_backlog = 1000});
  hub.set_flush_scheduler([](std::chrono::milliseconds) {});
  FakeSink sink;
  const auto id = hub.attach(sink, {});
  int completed = 0;
  for (int i = 0; i < 500; ++i) {
    hub.publish_readings(std::vector{make_reading("meter-1", "energy", i, t0 + i * 1ms),
                                     make_reading("meter-2", "power", i, t0 + i * 1ms, "W")});
    if (i % 3 == 0) {
      model::Event e = make_event("call-7", "call", model::Priority::high, t0 + i * 1ms);
      e.attributes_json = R"({"n":)" + std::to_string(i) + "}";
      hub.publish_event(e);
    }
    hub.flush_telemetry();
    // The client completes one write in seven ticks: far behind the feed.
    if (i % 7 == 0 && sink.in_flight) {
      sink.in_flight = false;
      hub.on_sent(id);
      ++completed;
    }
  }
  while (sink.in_flight) {
    sink.in_flight = false;
    hub.on_sent(id);
  }
  std::vector<int> events;
  double last_energy = -1;
  for (const auto& frame : sink.frames) {
    auto f = parse(frame);
    if (type_of(frame) == "event") events.push_back(int(int64_t(f["attributes"]["n"])));
    if (type_of(frame) != "readings") continue;
    for (auto item : f["items"].get_array()) {
      if (std::string_view(item["metric"]) == "energy") last_energy = double(item["value"]);
    }
  }
  std::vector<int> expected;
  for (int i = 0; i < 500; i += 3) expected.push_back(i);
  EXPECT_EQ(events, expected);
  EXPECT_DOUBLE_EQ(last_energy, 499.0) << "the newest telemetry arrives in the end";
  EXPECT_GT(metrics_.counter_value("fieldhub_live_readings_coalesced_total"), 500u);
  EXPECT_EQ(sink.closed, 0);
}

TEST_F(LiveHubTest, FiltersByDeviceAndSite) {
  FakeSink by_device, by_site, by_set;
  const auto d = attach(by_device, {.devices = {"meter-2"}});
  const auto s = attach(by_site, {.site = "north"});
  const auto set = attach(by_set, {.devices = {"meter-2", "call-7"}});
  drain(by_device, d);
  drain(by_site, s);
  drain(by_set, set);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0),
                                    make_reading("meter-2", "energy", 2.0, t0)});
  hub_.publish_event(make_event("call-7", "call", model::Priority::medium, t0));
  tick();
  drain(by_device, d);
  drain(by_site, s);
  drain(by_set, set);
  ASSERT_EQ(by_device.frames.size(), 3u);
  auto items = parse(by_device.frames[2])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-2");
  ASSERT_EQ(by_site.frames.size(), 4u);
  EXPECT_EQ(type_of(by_site.frames[2]), "event");
  items = parse(by_site.frames[3])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-1");
  ASSERT_EQ(by_set.frames.size(), 4u);
  EXPECT_EQ(type_of(by_set.frames[2]), "event");
  EXPECT_EQ(by_set.frames[3], by_device.frames[2]);
  // The hello says what the session gets.
  auto filter = parse(by_set.frames[0])["filter"];
  EXPECT_EQ(filter["devices"].get_array().size(), 2u);
  EXPECT_TRUE(bool(filter["telemetry"]));
}

// What the alarm console asks for: events, health and alarms, no telemetry (no snapshot).
TEST_F(LiveHubTest, ASessionWithoutTelemetryGetsEventsAndAlarmsOnly) {
  const model::Reading r = make_reading("meter-1", "energy", 42.0, t0 - 1s);
  live_.apply({&r, 1});
  hub_.add_attach_frame([] { return std::string(R"({"type":"alarms","alarms":[]})"); });
  FakeSink console;
  const auto id = attach(console, {.telemetry = false});
  drain(console, id);
  ASSERT_EQ(console.frames.size(), 2u);
  EXPECT_EQ(type_of(console.frames[0]), "hello");
  EXPECT_FALSE(bool(parse(console.frames[0])["filter"]["telemetry"]));
  EXPECT_EQ(type_of(console.frames[1]), "alarms");
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  EXPECT_EQ(flushes_requested_, 0) << "no session wants telemetry: nothing is even rendered";
  hub_.publish_event(make_event("call-7", "call", model::Priority::medium, t0));
  hub_.publish_status(R"({"type":"alarm","change":"raised","alarm":{}})");
  tick();
  drain(console, id);
  ASSERT_EQ(console.frames.size(), 4u);
  EXPECT_EQ(type_of(console.frames[2]), "event");
  EXPECT_EQ(type_of(console.frames[3]), "alarm");
}

TEST_F(LiveHubTest, SubscribeMessageChangesTheFilterAndResyncs) {
  const model::Reading r = make_reading("meter-2", "energy", 42.0, t0 - 1s);
  live_.apply({&r, 1});
  FakeSink sink;
  const auto id = attach(sink, {.telemetry = false});
  drain(sink, id);
  hub_.on_message(id, R"({"type":"subscribe","devices":["meter-2"]})");
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 3u);
  auto subscribed = parse(sink.frames[1]);
  EXPECT_EQ(std::string_view(subscribed["type"]), "subscribed");
  EXPECT_TRUE(bool(subscribed["filter"]["telemetry"]));
  EXPECT_EQ(std::string_view(subscribed["filter"]["devices"].get_array().at(0)), "meter-2");
  auto snap = parse(sink.frames[2]);
  EXPECT_EQ(std::string_view(snap["type"]), "snapshot");
  ASSERT_EQ(snap["devices"].get_array().size(), 1u);
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0),
                                    make_reading("meter-2", "energy", 2.0, t0)});
  tick();
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 4u);
  auto items = parse(sink.frames[3])["items"].get_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(std::string_view(items.at(0)["device"]), "meter-2");
  // A display rate by message, echoed back.
  hub_.on_message(id, R"({"type":"subscribe","devices":["meter-2"],"interval_ms":500})");
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 6u);
  EXPECT_EQ(int64_t(parse(sink.frames[4])["filter"]["interval_ms"]), 500);
  sink.frames.resize(4);
  // Back to alarms only: telemetry waiting under the old filter is dropped with it.
  hub_.publish_readings(std::vector{make_reading("meter-2", "energy", 3.0, t0 + 1s)});
  hub_.on_message(id, R"({"type":"subscribe","telemetry":false})");
  tick();
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 5u);
  EXPECT_EQ(type_of(sink.frames[4]), "subscribed");
}

TEST_F(LiveHubTest, BadClientMessagesGetAnErrorFrameAndAreCounted) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  for (const char* bad :
       {"not json", "[]", R"({"type":"dance"})", R"({"kind":"subscribe"})",
        R"({"type":"subscribe","devices":"meter-1"})", R"({"type":"subscribe","devices":[1]})",
        R"({"type":"subscribe","telemetry":"no"})", R"({"type":"subscribe","colour":"red"})",
        R"({"type":"subscribe","interval_ms":20000})",
        R"({"type":"subscribe","interval_ms":"250"})"}) {
    hub_.on_message(id, bad);
    drain(sink, id);
    ASSERT_EQ(type_of(sink.frames.back()), "error") << bad;
    EXPECT_FALSE(std::string_view(parse(sink.frames.back())["message"]).empty());
  }
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_client_errors_total"), 10u);
  // The session is unchanged: still the whole site's telemetry.
  hub_.publish_readings(std::vector{make_reading("meter-1", "energy", 1.0, t0)});
  tick();
  EXPECT_EQ(type_of(sink.frames.back()), "readings");
}

TEST(LiveFilterParse, ReadsTheFeedQuery) {
  using Query = std::vector<std::pair<std::string, std::string>>;
  auto p = parse_live_filter(Query{{"site", "north"}, {"telemetry", "off"}});
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.filter.site, "north");
  EXPECT_FALSE(p.filter.telemetry);
  p = parse_live_filter(Query{{"devices", "b,a,,b"}, {"device", "c"}});
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.filter.devices, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(p.filter.telemetry);
  EXPECT_EQ(parse_live_filter(Query{{"telemetry", "maybe"}}).error,
            "parameter 'telemetry' must be on or off");
  EXPECT_EQ(parse_live_filter(Query{{"site", "a"}, {"site", "b"}}).error,
            "parameter 'site' given twice");
  EXPECT_EQ(parse_live_filter(Query{{"devices", ","}}).error,
            "parameter 'devices' names no device");
  EXPECT_EQ(parse_live_filter(Query{{"colour", "red"}}).error, "unknown parameter 'colour'");
  p = parse_live_filter(Query{{"interval_ms", "250"}});
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.filter.interval, 250ms);
  for (const char* bad : {"-1", "10001", "1.5", "fast", ""}) {
    EXPECT_EQ(parse_live_filter(Query{{"interval_ms", bad}}).error,
              "'interval_ms' must be a whole number of milliseconds from 0 to 10000")
        << bad;
  }
}

TEST_F(LiveHubTest, SlowSessionIsClosedPastTheEventCapWithoutAffectingAnother) {
  FakeSink slow, fast;
  const auto slow_id = attach(slow);
  const auto fast_id = attach(fast);
  drain(fast, fast_id);
  // slow never completes its first write (hello): events pile up behind it.
  for (int i = 0; i < 20; ++i) {
    hub_.publish_event(make_event("call-7", "call", model::Priority::high, t0 + i * 1s));
    drain(fast, fast_id);
  }
  EXPECT_EQ(slow.closed, 1);
  EXPECT_EQ(metrics_.counter_value("fieldhub_live_sessions_closed_slow_total"), 1u);
  ASSERT_EQ(fast.frames.size(), 22u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(std::string_view(parse(fast.frames[2 + i])["ts"]),
              model::format_rfc3339(t0 + i * 1s));
  }
  EXPECT_EQ(fast.closed, 0);
  // A closed session gets nothing more and is forgotten once its socket is done.
  const auto before = slow.frames.size();
  slow.in_flight = false;
  hub_.on_sent(slow_id);
  EXPECT_EQ(slow.frames.size(), before);
  EXPECT_EQ(hub_.session_count(), 2u);
  hub_.detach(slow_id);
  EXPECT_EQ(hub_.session_count(), 1u);
}

TEST_F(LiveHubTest, HeartbeatQueuesAtMostOneAndClosesStalledWrites) {
  FakeSink sink;
  const auto id = attach(sink);
  drain(sink, id);
  clock_.advance(1s);
  hub_.heartbeat();
  ASSERT_EQ(sink.frames.size(), 3u);
  EXPECT_EQ(type_of(sink.frames[2]), "heartbeat");
  EXPECT_EQ(std::string_view(parse(sink.frames[2])["ts"]), "2026-03-01T12:00:01.000Z");
  // Busy: heartbeats do not pile up.
  for (int i = 0; i < 5; ++i) {
    clock_.advance(1s);
    hub_.heartbeat();
  }
  drain(sink, id);
  ASSERT_EQ(sink.frames.size(), 4u);
  EXPECT_EQ(type_of(sink.frames[3]), "heartbeat");
  // A write that never completes: closed once it has stalled longer than the limit.
  hub_.heartbeat();
  ASSERT_TRUE(sink.in_flight);
  clock_.advance(30s);
  hub_.heartbeat();
  EXPECT_EQ(sink.closed, 0);
  clock_.advance(1s);
  hub_.heartbeat();
  EXPECT_EQ(sink.closed, 1);
}

TEST_F(LiveHubTest, StatusGoesToEverySessionAsIs) {
  FakeSink a, b;
  const auto ia = attach(a, {.devices = {"meter-1"}});
  const auto ib = attach(b);
  drain(a, ia);
  drain(b, ib);
  hub_.publish_status(R"({"type":"health","history":"degraded"})");
  EXPECT_EQ(a.frames.back(), R"({"type":"health","history":"degraded"})");
  EXPECT_EQ(b.frames.back(), R"({"type":"health","history":"degraded"})");
}

TEST_F(LiveHubTest, SessionGaugeFollowsAttachAndDetach) {
  FakeSink a, b;
  const auto ia = attach(a);
  attach(b);
  auto& gauge = metrics_.gauge("fieldhub_live_sessions", "");
  EXPECT_EQ(gauge.value(), 2);
  hub_.detach(ia);
  hub_.detach(ia);
  EXPECT_EQ(gauge.value(), 1);
}

}  // namespace
}  // namespace fieldhub::web
