// SPDX-License-Identifier: Apache-2.0
#include "pipeline/pipeline.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

namespace fieldhub::pipeline {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'514'400'000'000);

// Test doubles for the seams. The history double can be held (a write blocks until released) and
// made to fail, to observe what the pipeline does while the store is slow or down.
class FakeLiveStore final : public stores::LiveStore {
 public:
  std::size_t apply(std::span<const model::Reading> readings) override {
    applied += readings.size();
    return readings.size();
  }
  void touch(std::string_view, model::Timestamp) override { ++touched; }
  std::optional<stores::DeviceState> get(std::string_view) const override { return std::nullopt; }
  std::vector<stores::DeviceState> all() const override { return {}; }
  std::size_t applied = 0;
  std::size_t touched = 0;
};

class FakeHistoryStore final : public stores::HistoryStore {
 public:
  stores::WriteResult write(std::span<const Envelope> batch) override {
    std::unique_lock lock(mutex);
    ++attempts;
    cv.wait(lock, [&] { return !held; });
    if (failures_left > 0) {
      --failures_left;
      return {.ok = false, .error = "disk on fire"};
    }
    stores::WriteResult r{.ok = true};
    for (const auto& env : batch) {
      for (const auto& rd : env.readings) {
        stored.push_back(rd.device_id + "/" + rd.metric);
        ++r.readings_stored;
      }
      r.events_stored += env.events.size();
      r.dead_letters_stored += env.dead_letters.size();
      digests.push_back(env.replay_digest);
    }
    return r;
  }
  std::vector<model::Reading> readings(const stores::ReadingQuery&) override { return {}; }
  std::vector<stores::RollupBucket> rollups(const stores::RollupQuery&) override { return {}; }
  std::vector<model::Event> events(const stores::EventQuery&) override { return {}; }
  std::vector<DeadLetter> dead_letters(const stores::DeadLetterQuery&) override { return {}; }

  void hold() {
    std::lock_guard lock(mutex);
    held = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      held = false;
    }
    cv.notify_all();
  }
  std::mutex mutex;
  std::condition_variable cv;
  bool held = false;
  int failures_left = 0;
  int attempts = 0;
  std::vector<std::string> stored;
  std::vector<std::uint64_t> digests;
};

class RecordingFeed final : public LiveFeed {
 public:
  void publish_readings(std::span<const model::Reading> readings) override {
    for (const auto& r : readings) log.push_back("reading:" + r.metric);
  }
  void publish_event(const model::Event& e) override { log.push_back("event:" + e.type); }
  std::vector<std::string> log;
};

class RecordingAcks final : public AckTarget {
 public:
  void acknowledge(std::uint64_t cookie) override { acked.push_back(cookie); }
  std::vector<std::uint64_t> acked;
};

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest()
      : clock(t0), pipeline(io.get_executor(), config, clock, metrics, live, history, feed) {
    pipeline.start();
  }
  ~PipelineTest() override {
    history.release();
    pipeline.stop();
  }

  Envelope message(std::uint64_t cookie, bool with_event = false) {
    Envelope env;
    model::Reading r;
    r.device_id = "kwh-1";
    r.metric = "energy";
    r.value = 1.0;
    r.source_ts = t0 - 1s;
    r.received_ts = t0;
    env.readings.push_back(r);
    if (with_event) {
      env.events.push_back(
          {.device_id = "nc-1", .type = "call", .source_ts = t0, .received_ts = t0});
    }
    env.ack = {&acks, cookie};
    return env;
  }

  // Runs io handlers until the condition holds or 5 s pass.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io.restart();
      io.run_for(5ms);
    }
    return true;
  }

  config::PipelineConfig config;
  boost::asio::io_context io;
  common::FakeClock clock;
  common::Metrics metrics;
  FakeLiveStore live;
  FakeHistoryStore history;
  RecordingFeed feed;
  RecordingAcks acks;
  Pipeline pipeline;
};

TEST_F(PipelineTest, EventsReachTheFeedBeforeHistoryCommits) {
  history.hold();
  pipeline.submit(message(1, true), 0);
  // Published synchronously in submit(), while the history write is still blocked.
  ASSERT_EQ(feed.log.size(), 2u);
  EXPECT_EQ(feed.log[0], "event:call");
  EXPECT_EQ(feed.log[1], "reading:energy");
  EXPECT_EQ(live.applied, 1u);
  EXPECT_EQ(live.touched, 1u);
}

TEST_F(PipelineTest, AcceptedRecordsObserveTheirDevicesInTheHealthTracker) {
  health::HealthTracker tracker(clock);
  tracker.register_device("kwh-1", 10s, "broker");
  tracker.register_device("nc-1", 10s, "broker");
  tracker.register_device("quiet", 10s, "broker");
  pipeline.set_health(&tracker);
  clock.advance(3s);  // receipt time, not the clock, is what counts
  pipeline.submit(message(1, true), 0);
  ASSERT_TRUE(tracker.device("kwh-1"));
  EXPECT_EQ(tracker.device("kwh-1")->state, health::State::online);
  EXPECT_EQ(tracker.device("kwh-1")->last_seen, t0);
  EXPECT_EQ(tracker.device("nc-1")->state, health::State::online);
  EXPECT_EQ(tracker.device("quiet")->state, health::State::unknown);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 1; }));
}

TEST_F(PipelineTest, RefusedMessagesDoNotObserveTheDevice) {
  health::HealthTracker tracker(clock);
  tracker.register_device("kwh-1", 10s, "broker");
  pipeline.set_health(&tracker);
  Envelope env;
  env.dead_letters.push_back({.received_ts = t0, .source = "t", .reason = "invalid_json"});
  env.ack = {&acks, 1};
  pipeline.submit(std::move(env), 0);
  EXPECT_EQ(tracker.device("kwh-1")->state, health::State::unknown);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 1; }));
}

// A polled device that did not answer: the adapter's bad readings are stored and shown, but the
// device was not heard, so health can take it offline after its failed cycles.
TEST_F(PipelineTest, ReadingsMadeForASilentDeviceDoNotObserveIt) {
  health::HealthTracker tracker(clock);
  tracker.register_device("kwh-1", 10s, "modbus:10.0.0.5:502");
  pipeline.set_health(&tracker);
  auto failed = message(1);
  failed.readings[0].value = {};
  failed.readings[0].quality = model::Quality::bad;
  failed.readings[0].quality_reason = "timeout";
  failed.device_heard = false;
  pipeline.submit(std::move(failed), 0);
  EXPECT_EQ(tracker.device("kwh-1")->state, health::State::unknown);
  EXPECT_EQ(live.applied, 1u);  // still shown as bad, never hidden
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 1; }));
  EXPECT_EQ(history.stored.size(), 1u);
}

TEST_F(PipelineTest, HealthEventsAreStoredAndPublishedButAreNotData) {
  health::HealthTracker tracker(clock);
  tracker.register_device("kwh-1", 10s, "broker");
  pipeline.set_health(&tracker);
  pipeline.submit_health_event({.device_id = "kwh-1",
                                .type = "health",
                                .source_ts = t0,
                                .received_ts = t0,
                                .attributes_json = R"({"from":"online","to":"stale"})"});
  ASSERT_EQ(feed.log.size(), 1u);
  EXPECT_EQ(feed.log[0], "event:health");
  EXPECT_EQ(live.touched, 0u);  // last_seen stays the device's own
  EXPECT_EQ(tracker.device("kwh-1")->state, health::State::unknown);
  EXPECT_FALSE(tracker.device("kwh-1")->last_seen);
  ASSERT_TRUE(run_until([&] {
    std::lock_guard lock(history.mutex);
    return history.attempts > 0 && !history.digests.empty();
  }));
  EXPECT_EQ(metrics.counter("fieldhub_events_ingested_total", "").value(), 1u);
}

TEST_F(PipelineTest, AcknowledgesOnlyAfterCommitInOrder) {
  history.hold();
  pipeline.submit(message(1), 0);
  pipeline.submit(message(2), 0);
  io.run_for(20ms);
  EXPECT_TRUE(acks.acked.empty());
  history.release();
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 2; }));
  EXPECT_EQ(acks.acked, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(metrics.counter_value("fieldhub_readings_stored_total"), 2u);
}

// The alarm journal as the pipeline sees it: every message with events moves the mark.
class CountingGate final : public DurabilityGate, public RecordObserver {
 public:
  std::uint64_t mark() const override { return mark_; }
  std::uint64_t durable() const override { return durable_; }
  void on_events(std::span<const model::Event>, std::uint64_t) override { ++mark_; }
  void on_readings(std::span<const model::Reading>) override {}
  std::uint64_t mark_ = 0;
  std::uint64_t durable_ = 0;
};

TEST_F(PipelineTest, AnAlarmingMessageIsAcknowledgedOnlyOnceTheGateHasItAndLaterOnesWaitInOrder) {
  CountingGate gate;
  pipeline.set_observer(&gate);
  pipeline.set_gate(&gate);
  pipeline.submit(message(1, true), 0);  // its event changed an alarm: mark 1
  pipeline.submit(message(2), 0);        // telemetry only, but after it
  // The commit's completion has run on io (it counts what was stored), and held both.
  ASSERT_TRUE(
      run_until([&] { return metrics.counter_value("fieldhub_readings_stored_total") == 2; }));
  EXPECT_TRUE(acks.acked.empty());  // in history, not yet in the journal
  gate.durable_ = 1;
  pipeline.gate_advanced();
  EXPECT_EQ(acks.acked, (std::vector<std::uint64_t>{1, 2}));
  pipeline.submit(message(3), 0);  // nothing held any more: straight after its commit
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 3; }));
}

TEST_F(PipelineTest, RetriesFailedWritesAndNeverAcksBeforeSuccess) {
  history.failures_left = 2;
  pipeline.submit(message(7), 0);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 1; }));
  EXPECT_EQ(history.attempts, 3);
  EXPECT_EQ(history.stored.size(), 1u);
  EXPECT_EQ(metrics.counter_value("fieldhub_history_write_errors_total"), 2u);
  EXPECT_TRUE(pipeline.history_healthy());
}

TEST_F(PipelineTest, DropsRedeliveryOfAMessageStillInFlight) {
  history.hold();
  pipeline.submit(message(1, true), 42);
  auto again = message(2, true);
  again.redelivered = true;
  pipeline.submit(std::move(again), 42);
  EXPECT_EQ(feed.log.size(), 2u);  // the repeat was not shown again
  history.release();
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 2; }));
  EXPECT_EQ(history.stored.size(), 1u);
  EXPECT_EQ(metrics.counter_value("fieldhub_messages_deduplicated_total"), 1u);
}

TEST_F(PipelineTest, SameDigestWithoutRedeliveryFlagIsANewMessage) {
  pipeline.submit(message(1), 42);
  pipeline.submit(message(2), 42);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 2; }));
  EXPECT_EQ(history.stored.size(), 2u);
  EXPECT_EQ(metrics.counter_value("fieldhub_messages_deduplicated_total"), 0u);
}

TEST_F(PipelineTest, PassesDigestToStoreOnlyForRecordsWithoutTrustedTime) {
  pipeline.submit(message(1), 11);
  auto untimed = message(2);
  untimed.readings[0].source_ts_trusted = false;
  pipeline.submit(std::move(untimed), 12);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 2; }));
  EXPECT_EQ(history.digests, (std::vector<std::uint64_t>{0, 12}));
}

TEST_F(PipelineTest, CountsRejectionsByReasonWholeAndPartial) {
  Envelope whole;
  whole.dead_letters.push_back({.received_ts = t0, .source = "t", .reason = "invalid_json"});
  whole.ack = {&acks, 1};
  pipeline.submit(std::move(whole), 0);
  auto partial = message(2);
  partial.dead_letters.push_back({.received_ts = t0, .source = "t", .reason = "unknown_metric"});
  pipeline.submit(std::move(partial), 0);
  ASSERT_TRUE(run_until([&] { return acks.acked.size() == 2; }));
  EXPECT_EQ(metrics.counter_value("fieldhub_messages_rejected_total", {{"reason", "invalid_json"}}),
            1u);
  EXPECT_EQ(
      metrics.counter_value("fieldhub_records_rejected_total", {{"reason", "unknown_metric"}}), 1u);
  EXPECT_EQ(metrics.counter_value("fieldhub_messages_accepted_total"), 1u);
  EXPECT_EQ(metrics.counter_value("fieldhub_dead_letters_stored_total"), 2u);
}

// A pipeline whose store holds the writer in its first write, so the queue fills.
class PipelineSaturation : public ::testing::Test {
 protected:
  void start(config::PipelineConfig config) {
    config_ = config;  // the pipeline keeps a reference
    pipeline_.emplace(io_.get_executor(), config_, clock_, metrics_, live_, history_, feed_);
    pipeline_->on_saturation([this](bool s) { changes_.push_back(s); });
    history_.hold();
    pipeline_->start();
  }
  // The writer takes the first envelope and blocks in the store; only then does the queue fill
  // (otherwise group commit may take several at once and the depth seen would vary).
  void wait_writer_blocked() {
    const auto writing = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < writing) {
      std::lock_guard lock(history_.mutex);
      if (history_.attempts == 1) return;
    }
  }
  // Releases the store and runs the io loop until saturation has ended (or 5 s).
  void release_and_drain() {
    history_.release();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (changes_.size() < 2 && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(5ms);
    }
  }

  config::PipelineConfig config_;
  boost::asio::io_context io_;
  common::FakeClock clock_{t0};
  common::Metrics metrics_;
  FakeLiveStore live_;
  FakeHistoryStore history_;
  RecordingFeed feed_;
  std::optional<Pipeline> pipeline_;
  std::vector<bool> changes_;
};

TEST_F(PipelineSaturation, PausesAboveCapacityAndResumesBelowHalf) {
  start({.queue_capacity = 4});
  const auto submit_one = [&] {
    Envelope env;
    env.events.push_back({.device_id = "d", .type = "call", .source_ts = t0, .received_ts = t0});
    pipeline_->submit(std::move(env), 0);
  };
  submit_one();
  wait_writer_blocked();
  for (int i = 0; i < 5; ++i) submit_one();
  EXPECT_EQ(changes_, (std::vector<bool>{true}));
  release_and_drain();
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
  pipeline_->stop();
}

// A Modbus poll cycle is one envelope of many readings: the readings bound pauses the adapters long
// before the envelope bound, so memory stays bounded whatever the readings per message.
TEST_F(PipelineSaturation, PausesOnQueuedReadingsBeforeTheEnvelopeBound) {
  start({.queue_capacity = 1000, .queue_readings = 50});
  int cycle = 0;
  const auto submit_cycle = [&] {  // ten float32 registers of one meter, one cycle
    Envelope env;
    for (int i = 0; i < 10; ++i) {
      model::Reading r;
      r.device_id = "meter-1";
      r.metric = "v" + std::to_string(i);
      r.value = 230.0;
      r.source_ts = t0 + std::chrono::seconds{cycle};
      r.received_ts = r.source_ts;
      env.readings.push_back(std::move(r));
    }
    ++cycle;
    pipeline_->submit(std::move(env), 0);
  };
  submit_cycle();
  wait_writer_blocked();
  for (int i = 0; i < 4; ++i) submit_cycle();  // 4 envelopes, 40 readings queued
  EXPECT_TRUE(changes_.empty());
  submit_cycle();  // 50 readings: the bound, with 5 of 1000 envelopes
  EXPECT_EQ(changes_, (std::vector<bool>{true}));
  EXPECT_TRUE(pipeline_->saturated());
  release_and_drain();
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
  pipeline_->stop();
  // Nothing queued was dropped: the bound only pauses the adapters.
  EXPECT_EQ(history_.stored.size(), 60u);
}

}  // namespace
}  // namespace fieldhub::pipeline
