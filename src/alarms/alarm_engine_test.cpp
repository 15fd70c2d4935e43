// SPDX-License-Identifier: Apache-2.0
#include "alarms/alarm_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "config/config_text.h"

namespace fieldhub::alarms {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = *model::parse_rfc3339("2026-03-01T12:00:00Z");

constexpr std::string_view nurse_call_profile = R"(
kind = "nurse_call"
[[metrics]]
name = "cord_connected"
type = "bool"
[[events]]
type = "call"
priority = "medium"
[[events]]
type = "cancel"
[[alarms]]
event = "call"
clear_event = "cancel"
message = "Patient call"
escalate = ["120s"]
escalate_priority = "high"
[[alarms]]
health = "offline"
priority = "medium"
)";

constexpr std::string_view code_blue_profile = R"(
kind = "code_blue"
[[events]]
type = "code_blue"
priority = "high"
[[events]]
type = "cancel"
[[alarms]]
event = "code_blue"
clear_event = "cancel"
latch = true
)";

constexpr std::string_view lock_profile = R"(
kind = "smart_lock"
[[events]]
type = "forced_door"
priority = "high"
)"
                                          R"(
[[alarms]]
event = "forced_door"
renotify = "0s"
escalate = []
)";

constexpr std::string_view fridge_profile = R"(
kind = "vending_machine"
[[metrics]]
name = "temperature"
unit = "°C"
[[alarms]]
metric = "temperature"
above = 10.0
for = "10m"
deadband = 1.0
priority = "low"
)";

struct Recorded {
  Alarm alarm;
  Change change;
  std::string by;
  std::string text;
};

class RecordingSink final : public AlarmSink {
 public:
  void alarm_changed(const Alarm& a, Change change, std::string_view by,
                     std::string_view text) override {
    changes.push_back({a, change, std::string(by), std::string(text)});
  }
  std::size_t count(Change c) const {
    std::size_t n = 0;
    for (const auto& r : changes) n += r.change == c ? 1 : 0;
    return n;
  }
  std::vector<Recorded> changes;
};

model::Device device(std::string id, std::string profile, model::Location location) {
  model::Device d;
  d.id = std::move(id);
  d.profile = std::move(profile);
  d.site = "st-mary";
  d.location = std::move(location);
  d.protocol = "mqtt";
  return d;
}

config::Config make_config() {
  config::Config c;
  c.profiles.push_back(config::parse_profile(nurse_call_profile, "profiles/nurse-call.toml"));
  c.profiles.push_back(config::parse_profile(code_blue_profile, "profiles/code-blue.toml"));
  c.profiles.push_back(config::parse_profile(lock_profile, "profiles/lock.toml"));
  c.profiles.push_back(config::parse_profile(fridge_profile, "profiles/fridge.toml"));
  c.devices.push_back(
      device("nc-12-2", "nurse-call", {{"ward", "3"}, {"room", "12"}, {"bed", "2"}}));
  c.devices.push_back(device("cb-12", "code-blue", {{"ward", "3"}, {"room", "12"}}));
  c.devices.push_back(device("lock-pharm", "lock", {{"ward", "3"}, {"room", "pharmacy"}}));
  c.devices.push_back(device("vend-1", "fridge", {{"building", "a"}}));
  return c;
}

model::Event event(std::string device, std::string type, model::Timestamp at) {
  model::Event e;
  e.device_id = std::move(device);
  e.type = std::move(type);
  e.source_ts = e.received_ts = at;
  return e;
}

model::Reading reading(std::string device, std::string metric, double v, model::Timestamp at,
                       model::Quality q = model::Quality::good) {
  model::Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = v;
  r.source_ts = r.received_ts = at;
  r.quality = q;
  return r;
}

class AlarmEngineTest : public ::testing::Test {
 protected:
  AlarmEngineTest() {
    std::filesystem::create_directories(dir_);
    restart();
  }
  ~AlarmEngineTest() override {
    engine_.reset();
    journal_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new process: a new journal object and engine on the same file.
  void restart() {
    engine_.reset();
    journal_ = std::make_unique<AlarmJournal>(dir_ / "alarms.journal", metrics_);
    engine_ = std::make_unique<AlarmEngine>(config_, clock_, metrics_, *journal_, sink_);
    engine_->restore();
  }

  void send(const model::Event& e, std::uint64_t digest = 0) {
    engine_->on_events({&e, 1}, digest);
  }
  void send(const model::Reading& r) { engine_->on_readings({&r, 1}); }

  const Alarm& only_open() {
    const auto open = engine_->list({});
    EXPECT_EQ(open.size(), 1u);
    return *open.at(0);
  }

  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("fieldhub_alarms_test_" + std::to_string(::getpid()) + "_" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  config::Config config_ = make_config();
  common::FakeClock clock_{t0};
  common::Metrics metrics_;
  RecordingSink sink_;
  std::unique_ptr<AlarmJournal> journal_;
  std::unique_ptr<AlarmEngine> engine_;
};

TEST_F(AlarmEngineTest, CodeBlueRaisesAHighAlarmThatNamesThePlace) {
  send(event("cb-12", "code_blue", t0));
  const Alarm& a = only_open();
  EXPECT_EQ(a.type, "code_blue");
  EXPECT_EQ(a.priority, model::Priority::high);
  EXPECT_EQ(a.state, State::active_unacked);
  EXPECT_EQ(place_of(a.site, a.location), "st-mary / ward 3 / room 12");
  EXPECT_EQ(a.message, "Code blue");
  ASSERT_EQ(sink_.changes.size(), 1u);
  EXPECT_EQ(sink_.changes[0].change, Change::raised);
  EXPECT_EQ(metrics_.counter_value("fieldhub_alarms_raised_total"), 1u);
}

TEST_F(AlarmEngineTest, ACallCancelledBeforeAckStaysUntilAcknowledged) {
  send(event("nc-12-2", "call", t0));
  send(event("nc-12-2", "cancel", t0 + 5s));
  const Alarm& a = only_open();
  EXPECT_EQ(a.state, State::cleared_unacked);
  const std::uint64_t id = a.id;
  clock_.advance(10s);
  const auto r = engine_->ack(id, "nurse.a", "patient fine");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().state, State::cleared);
  EXPECT_EQ(r.value().acked_by, "nurse.a");
  EXPECT_EQ(r.value().acked_at, t0 + 10s);
  EXPECT_TRUE(engine_->list({}).empty());
  EXPECT_EQ(sink_.changes.back().change, Change::acked);
  EXPECT_EQ(sink_.changes.back().by, "nurse.a");
  EXPECT_EQ(sink_.changes.back().text, "patient fine");
}

TEST_F(AlarmEngineTest, AnAcknowledgedCallClosesWhenCancelled) {
  send(event("nc-12-2", "call", t0));
  ASSERT_TRUE(engine_->ack(only_open().id, "nurse.a", "").ok());
  EXPECT_EQ(only_open().state, State::active_acked);
  send(event("nc-12-2", "cancel", t0 + 30s));
  EXPECT_TRUE(engine_->list({}).empty());
  EXPECT_EQ(sink_.changes.back().change, Change::cleared);
}

TEST_F(AlarmEngineTest, CodeBlueNeverClearsByItselfOnlyAResetAfterAckClosesIt) {
  send(event("cb-12", "code_blue", t0));
  send(event("cb-12", "cancel", t0 + 1s));
  const std::uint64_t id = only_open().id;
  EXPECT_EQ(only_open().state, State::active_unacked);
  EXPECT_TRUE(only_open().normal);
  EXPECT_EQ(sink_.changes.back().change, Change::normal);

  const auto early = engine_->reset(id, "dr.b", "");
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code, ActionError::Code::conflict);

  ASSERT_TRUE(engine_->ack(id, "dr.b", "").ok());
  EXPECT_EQ(only_open().state, State::active_acked);
  const auto reset = engine_->reset(id, "dr.b", "patient transferred");
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(reset.value().state, State::cleared);
  EXPECT_TRUE(engine_->list({}).empty());
}

TEST_F(AlarmEngineTest, AMomentaryEventAlarmClosesOnAck) {
  send(event("lock-pharm", "forced_door", t0));
  const auto r = engine_->ack(only_open().id, "guard", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().state, State::cleared);
}

TEST_F(AlarmEngineTest, ChatteringSourceIsOneAlarmWithACount) {
  for (int i = 0; i < 5; ++i) send(event("nc-12-2", "call", t0 + std::chrono::seconds{i}));
  EXPECT_EQ(only_open().count, 5u);
  EXPECT_EQ(sink_.count(Change::raised), 1u);
  EXPECT_EQ(sink_.count(Change::repeat), 4u);

  // Closed, then raised again within the chatter window: the same alarm reopens.
  const std::uint64_t id = only_open().id;
  ASSERT_TRUE(engine_->ack(id, "nurse.a", "").ok());
  send(event("nc-12-2", "cancel", t0 + 10s));
  EXPECT_TRUE(engine_->list({}).empty());
  send(event("nc-12-2", "call", t0 + 40s));
  EXPECT_EQ(only_open().id, id);
  EXPECT_EQ(only_open().count, 6u);
  EXPECT_EQ(only_open().state, State::active_unacked);

  // Past the window it is a new alarm.
  ASSERT_TRUE(engine_->ack(id, "nurse.a", "").ok());
  send(event("nc-12-2", "cancel", t0 + 50s));
  clock_.set(t0 + 200s);
  engine_->tick(clock_.now());
  send(event("nc-12-2", "call", t0 + 200s));
  EXPECT_NE(only_open().id, id);
  EXPECT_EQ(only_open().count, 1u);
}

TEST_F(AlarmEngineTest, ARedeliveredEventDoesNotCountAgainEvenAfterARestart) {
  const model::Event e = event("cb-12", "code_blue", t0);
  send(e);
  send(e);
  EXPECT_EQ(only_open().count, 1u);
  restart();
  send(e);
  EXPECT_EQ(only_open().count, 1u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_alarm_redeliveries_ignored_total"), 2u);

  // Without a trusted time, the message digest identifies the redelivery.
  model::Event untimed = event("nc-12-2", "call", t0);
  untimed.source_ts_trusted = false;
  send(untimed, 42);
  untimed.received_ts = t0 + 3s;
  send(untimed, 42);
  EXPECT_EQ(engine_->list({.device = "nc-12-2"}).at(0)->count, 1u);
}

TEST_F(AlarmEngineTest, UnacknowledgedHighAlarmEscalatesThroughTiersAndResounds) {
  send(event("cb-12", "code_blue", t0));
  const auto tick_at = [&](std::chrono::seconds s) {
    clock_.set(t0 + s);
    engine_->tick(clock_.now());
  };
  tick_at(29s);
  EXPECT_EQ(only_open().tier, 0u);
  EXPECT_EQ(sink_.changes.size(), 1u);
  tick_at(30s);
  EXPECT_EQ(only_open().tier, 1u);
  EXPECT_EQ(sink_.changes.back().change, Change::escalated);
  tick_at(59s);
  EXPECT_EQ(sink_.count(Change::renotify), 0u);
  tick_at(60s);
  EXPECT_EQ(only_open().tier, 2u);
  tick_at(90s);  // no tier at 90 s: it sounds again 30 s after the last time
  EXPECT_EQ(sink_.count(Change::renotify), 1u);
  tick_at(120s);
  EXPECT_EQ(only_open().tier, 3u);
  tick_at(150s);
  tick_at(180s);
  EXPECT_EQ(sink_.count(Change::renotify), 3u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_alarm_escalations_total"), 3u);

  ASSERT_TRUE(engine_->ack(only_open().id, "dr.b", "").ok());
  const std::size_t before = sink_.changes.size();
  tick_at(600s);
  EXPECT_EQ(sink_.changes.size(), before);  // acknowledged: silent
}

TEST_F(AlarmEngineTest, AnUnansweredNurseCallBecomesHighAfter120s) {
  send(event("nc-12-2", "call", t0));
  EXPECT_EQ(only_open().priority, model::Priority::medium);
  clock_.set(t0 + 119s);
  engine_->tick(clock_.now());
  EXPECT_EQ(only_open().priority, model::Priority::medium);
  clock_.set(t0 + 120s);
  engine_->tick(clock_.now());
  EXPECT_EQ(only_open().priority, model::Priority::high);
  EXPECT_EQ(only_open().tier, 1u);
  clock_.set(t0 + 150s);
  engine_->tick(clock_.now());
  EXPECT_EQ(sink_.count(Change::renotify), 1u);
}

TEST_F(AlarmEngineTest, EscalationTimersSurviveARestart) {
  send(event("cb-12", "code_blue", t0));
  const std::uint64_t id = only_open().id;
  clock_.set(t0 + 45s);
  restart();
  ASSERT_EQ(engine_->open_count(), 1u);
  engine_->tick(clock_.now());
  EXPECT_EQ(only_open().id, id);
  EXPECT_EQ(only_open().tier, 1u);  // 30 s had passed while it was down
  clock_.set(t0 + 60s);
  engine_->tick(clock_.now());
  EXPECT_EQ(only_open().tier, 2u);
  // Ids keep counting after a restart.
  send(event("nc-12-2", "call", t0 + 61s));
  EXPECT_GT(engine_->list({.device = "nc-12-2"}).at(0)->id, id);
}

TEST_F(AlarmEngineTest, ShelvingSilencesUntilItExpires) {
  send(event("cb-12", "code_blue", t0));
  const std::uint64_t id = only_open().id;
  ASSERT_TRUE(engine_->shelve(id, "charge.nurse", t0 + 10min, "drill").ok());
  const std::size_t before = sink_.changes.size();
  clock_.set(t0 + 9min);
  engine_->tick(clock_.now());
  EXPECT_EQ(sink_.changes.size(), before);
  clock_.set(t0 + 10min);
  engine_->tick(clock_.now());
  EXPECT_FALSE(only_open().shelved());
  EXPECT_EQ(sink_.changes.at(before).change, Change::unshelved);
  EXPECT_EQ(sink_.changes.at(before).by, "system");
  EXPECT_EQ(only_open().tier, 3u);  // overdue tiers catch up once it is back
}

TEST_F(AlarmEngineTest, ThresholdNeedsItsHoldTimeAndClearsOnlyPastTheDeadband) {
  send(reading("vend-1", "temperature", 11.0, t0));
  EXPECT_TRUE(engine_->list({}).empty());
  send(reading("vend-1", "temperature", 11.5, t0 + 5min));
  EXPECT_TRUE(engine_->list({}).empty());
  clock_.set(t0 + 10min);
  engine_->tick(clock_.now());
  ASSERT_EQ(engine_->list({}).size(), 1u);
  EXPECT_EQ(only_open().type, "temperature_high");
  EXPECT_EQ(only_open().message, "temperature 11.5 °C above 10 °C");

  send(reading("vend-1", "temperature", 9.5, t0 + 11min));  // inside, but within the deadband
  EXPECT_EQ(only_open().state, State::active_unacked);
  send(reading("vend-1", "temperature", 99.0, t0 + 12min, model::Quality::bad));  // ignored
  send(reading("vend-1", "temperature", 8.9, t0 + 13min));
  EXPECT_EQ(only_open().state, State::cleared_unacked);
}

TEST_F(AlarmEngineTest, AConditionThatEndsWithinItsHoldTimeRaisesNothing) {
  send(reading("vend-1", "temperature", 11.0, t0));
  send(reading("vend-1", "temperature", 9.0, t0 + 9min));
  clock_.set(t0 + 20min);
  engine_->tick(clock_.now());
  EXPECT_TRUE(engine_->list({}).empty());
}

TEST_F(AlarmEngineTest, AnOfflineCallPointIsATechnicalAlarmButALinkDownIsOneAlarmForAll) {
  engine_->on_device_health(
      {"nc-12-2", health::State::online, health::State::offline, health::reason::timeout, t0});
  EXPECT_EQ(only_open().type, "device_offline");
  EXPECT_EQ(only_open().kind, Kind::health);
  engine_->on_device_health(
      {"nc-12-2", health::State::offline, health::State::online, health::reason::data, t0 + 1s});
  EXPECT_EQ(only_open().state, State::cleared_unacked);
  ASSERT_TRUE(engine_->ack(only_open().id, "tech", "").ok());

  engine_->on_link({"broker", health::LinkState::up, health::LinkState::down, "reset", t0 + 2s});
  engine_->on_device_health({"nc-12-2", health::State::online, health::State::offline,
                             health::reason::link_down, t0 + 2s});
  const Alarm& link = only_open();
  EXPECT_EQ(link.type, "link_down");
  EXPECT_EQ(link.link, "broker");
  EXPECT_EQ(link.priority, model::Priority::medium);
  engine_->on_link({"broker", health::LinkState::down, health::LinkState::up, "", t0 + 5s});
  EXPECT_EQ(only_open().state, State::cleared_unacked);
}

TEST_F(AlarmEngineTest, HistoryDegradedIsATechnicalAlarmThatClearsWhenWritesSucceedAgain) {
  engine_->on_system("history", true, "ok", t0);  // the first state at start-up: nothing
  EXPECT_TRUE(engine_->list({}).empty());
  engine_->on_system("history", false, "degraded: writes failing", t0 + 1s);
  const Alarm& a = only_open();
  EXPECT_EQ(a.kind, Kind::system);
  EXPECT_EQ(a.type, "history_degraded");
  EXPECT_EQ(a.message, "History degraded: writes failing");
  EXPECT_EQ(a.priority, model::Priority::medium);
  EXPECT_EQ(a.state, State::active_unacked);
  std::string json;
  common::JsonWriter w(json);
  write_alarm(w, a);
  EXPECT_NE(json.find(R"("place":"fieldhub")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("kind":"system")"), std::string::npos) << json;

  engine_->on_system("history", true, "ok", t0 + 9s);
  EXPECT_EQ(only_open().state, State::cleared_unacked);  // stays until someone has seen it
  ASSERT_TRUE(engine_->ack(only_open().id, "tech", "").ok());
  EXPECT_TRUE(engine_->list({}).empty());
}

TEST_F(AlarmEngineTest, OperatorActionsAreValidated) {
  send(event("nc-12-2", "call", t0));
  const std::uint64_t id = only_open().id;
  EXPECT_EQ(engine_->ack(999, "a", "").status().code, ActionError::Code::not_found);
  EXPECT_EQ(engine_->ack(id, "", "").status().code, ActionError::Code::bad_request);
  EXPECT_EQ(engine_->ack(id, std::string(101, 'x'), "").status().code,
            ActionError::Code::bad_request);
  EXPECT_EQ(engine_->comment(id, "a", "").status().code, ActionError::Code::bad_request);
  EXPECT_EQ(engine_->shelve(id, "a", t0 - 1s, "").status().code, ActionError::Code::bad_request);
  EXPECT_EQ(engine_->unshelve(id, "a").status().code, ActionError::Code::conflict);
  ASSERT_TRUE(engine_->comment(id, "nurse.a", "on my way").ok());
  EXPECT_EQ(only_open().comments.at(0).text, "on my way");
  ASSERT_TRUE(engine_->ack(id, "nurse.a", "").ok());
  EXPECT_EQ(engine_->ack(id, "nurse.a", "").status().code, ActionError::Code::conflict);
}

TEST_F(AlarmEngineTest, ConsoleOrderIsHighFirstThenUnacknowledgedThenNewest) {
  send(event("nc-12-2", "call", t0));
  send(event("lock-pharm", "forced_door", t0 + 1s));
  send(event("cb-12", "code_blue", t0 + 2s));
  ASSERT_TRUE(engine_->ack(engine_->list({.device = "cb-12"}).at(0)->id, "a", "").ok());
  const auto open = engine_->list({});
  ASSERT_EQ(open.size(), 3u);
  EXPECT_EQ(open[0]->device, "lock-pharm");  // high, unacknowledged
  EXPECT_EQ(open[1]->device, "cb-12");       // high, acknowledged
  EXPECT_EQ(open[2]->device, "nc-12-2");     // medium
  EXPECT_EQ(engine_->list({.scope = AlarmFilter::Scope::unacked}).size(), 2u);
  EXPECT_EQ(engine_->list({.priority = model::Priority::medium}).size(), 1u);
}

TEST_F(AlarmEngineTest, OnlyARaiseHoldsAcknowledgementsBackUntilTheJournalHasIt) {
  EXPECT_EQ(engine_->mark(), 0u);
  send(event("nc-12-2", "call", t0));
  const std::uint64_t raised = engine_->mark();
  EXPECT_GT(raised, 0u);
  send(event("nc-12-2", "call", t0 + 1s));  // a repeat: journaled, but nothing to wait for
  send(event("nc-12-2", "cancel", t0 + 2s));
  EXPECT_EQ(engine_->mark(), raised);
  EXPECT_GT(journal_->mark(), raised);
  ASSERT_TRUE(journal_->flush());
  EXPECT_GE(engine_->durable(), raised);
}

TEST_F(AlarmEngineTest, EveryChangeHasItsOwnStrictlyLaterTime) {
  send(event("nc-12-2", "call", t0));
  send(event("nc-12-2", "call", t0 + 1ms));
  send(event("cb-12", "code_blue", t0 + 1s));
  for (std::size_t i = 1; i < sink_.changes.size(); ++i) {
    EXPECT_LT(sink_.changes[i - 1].alarm.changed_at, sink_.changes[i].alarm.changed_at);
  }
}

}  // namespace
}  // namespace fieldhub::alarms
