// SPDX-License-Identifier: Apache-2.0
#include "history_store_contract.h"

#include <chrono>
#include <string>
#include <vector>

namespace fieldhub::contract {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using model::Event;
using model::Quality;
using model::Reading;
using pipeline::DeadLetter;
using pipeline::Envelope;
using stores::WriteResult;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);
const model::Timestamp far_past = model::from_micros(0);
const model::Timestamp far_future = t0 + 24h * 365;

Reading reading(std::string device, std::string metric, model::Timestamp ts, model::Value v) {
  Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = std::move(v);
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = ts + 15ms;
  r.provenance = {"mqtt", "broker"};
  return r;
}

Event event(std::string device, std::string type, model::Timestamp ts) {
  Event e;
  e.device_id = std::move(device);
  e.type = std::move(type);
  e.priority = model::Priority::high;
  e.source_ts = ts;
  e.received_ts = ts + 3ms;
  e.attributes_json = R"({"room":"2.14","bed":"B"})";
  e.provenance = {"websocket", "ws-listener"};
  return e;
}

DeadLetter dead_letter(std::string reason, std::string payload, model::Timestamp ts) {
  return DeadLetter{ts, "site/a/meter/m1/telemetry", std::move(reason), "field values.energy",
                    std::move(payload)};
}

Envelope with_readings(std::vector<Reading> rs) {
  Envelope e;
  e.readings = std::move(rs);
  return e;
}

std::vector<Reading> all_of(stores::HistoryStore& s, const std::string& device,
                            const std::string& metric) {
  return s.readings({device, metric, far_past, far_future, 1'000'000});
}

void expect_same(const Reading& got, const Reading& want) {
  SCOPED_TRACE(want.device_id + "/" + want.metric);
  EXPECT_EQ(got.device_id, want.device_id);
  EXPECT_EQ(got.metric, want.metric);
  EXPECT_EQ(got.value, want.value);
  EXPECT_EQ(got.unit, want.unit);
  EXPECT_EQ(got.source_ts, want.source_ts);
  EXPECT_EQ(got.received_ts, want.received_ts);
  EXPECT_EQ(got.ts(), want.ts());
  EXPECT_EQ(got.quality, want.quality);
  EXPECT_EQ(got.quality_reason, want.quality_reason);
  EXPECT_EQ(got.source_ts_trusted, want.source_ts_trusted);
  EXPECT_EQ(got.provenance.adapter, want.provenance.adapter);
  EXPECT_EQ(got.provenance.link, want.provenance.link);
}

void expect_same(const Event& got, const Event& want) {
  EXPECT_EQ(got.device_id, want.device_id);
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.priority, want.priority);
  EXPECT_EQ(got.source_ts, want.source_ts);
  EXPECT_EQ(got.received_ts, want.received_ts);
  EXPECT_EQ(got.source_ts_trusted, want.source_ts_trusted);
  EXPECT_EQ(got.attributes_json, want.attributes_json);
  EXPECT_EQ(got.provenance.adapter, want.provenance.adapter);
  EXPECT_EQ(got.provenance.link, want.provenance.link);
}

void expect_same(const DeadLetter& got, const DeadLetter& want) {
  EXPECT_EQ(got.received_ts, want.received_ts);
  EXPECT_EQ(got.source, want.source);
  EXPECT_EQ(got.reason, want.reason);
  EXPECT_EQ(got.detail, want.detail);
  EXPECT_EQ(got.payload, want.payload);
}

TEST_P(HistoryStoreContract, EmptyBatchIsOk) {
  const WriteResult r = store_->write({});
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 0u);
}

TEST_P(HistoryStoreContract, EveryValueTypeRoundTripsWithQualityAndProvenance) {
  std::vector<Reading> rs;
  rs.push_back(reading("m1", "energy", t0, 1234.5678));
  rs.push_back(reading("m1", "negative", t0, -0.001));
  rs.push_back(reading("m1", "on", t0, true));
  rs.push_back(reading("m1", "off", t0, false));
  rs.push_back(reading("m1", "label", t0, "Füllstand 🌡 \xE2\x84\x83 日本"s));
  rs.push_back(reading("m1", "nul", t0, "before\0after"s));  // not silently truncated
  rs.push_back(reading("m1", "empty", t0, ""s));
  Reading failed = reading("m1", "flow", t0, std::monostate{});
  failed.quality = Quality::bad;
  failed.quality_reason = "timeout";
  failed.unit = "m³";
  rs.push_back(failed);
  Reading uncertain = reading("m1", "temp", t0, 21.5);
  uncertain.quality = Quality::uncertain;
  uncertain.quality_reason = "out_of_range";
  uncertain.unit = "°C";
  rs.push_back(uncertain);
  Reading untrusted = reading("m1", "volume", t0 + 100h, 5.0);  // device clock far ahead
  untrusted.received_ts = t0 + 2s;
  untrusted.source_ts_trusted = false;
  rs.push_back(untrusted);
  Reading unitless = reading("m1", "count", t0, 3.0);
  unitless.unit = "";
  unitless.provenance = {"modbus_tcp", "10.0.0.5:502/1"};
  rs.push_back(unitless);

  const Envelope e = with_readings(rs);
  const WriteResult r = store_->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, rs.size());
  EXPECT_EQ(r.readings_duplicate, 0u);

  for (const Reading& want : rs) {
    const auto got = all_of(*store_, want.device_id, want.metric);
    ASSERT_EQ(got.size(), 1u) << want.metric;
    expect_same(got[0], want);
  }
  // The untrusted reading is ordered (and found) by its receipt time, not the device's clock.
  const auto by_receipt = store_->readings({"m1", "volume", t0, t0 + 1h});
  ASSERT_EQ(by_receipt.size(), 1u);
  EXPECT_EQ(by_receipt[0].ts(), t0 + 2s);
}

TEST_P(HistoryStoreContract, ARepeatOfTheSameSeriesAndTimeIsCountedNotStored) {
  const Envelope first =
      with_readings({reading("m1", "energy", t0, 1.0), reading("m1", "energy", t0 + 1s, 2.0)});
  ASSERT_TRUE(store_->write({&first, 1}).ok);

  // Once in a later batch, once twice within a batch; other series at the same time are new.
  Envelope again =
      with_readings({reading("m1", "energy", t0, 1.0), reading("m1", "energy", t0 + 2s, 3.0),
                     reading("m1", "energy", t0 + 2s, 3.0), reading("m1", "power", t0, 1.0),
                     reading("m2", "energy", t0, 1.0)});
  const WriteResult r = store_->write({&again, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 3u);
  EXPECT_EQ(r.readings_duplicate, 2u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 3u);
  EXPECT_EQ(all_of(*store_, "m1", "power").size(), 1u);
  EXPECT_EQ(all_of(*store_, "m2", "energy").size(), 1u);
}

// A message without source timestamps, delivered twice: its readings' times are receipt times,
// different each time, so only the digest can tell the repeat.
Envelope untimed_message(model::Timestamp received, std::uint64_t digest, bool redelivered) {
  Reading r = reading("m1", "energy", received, 10.0);
  r.received_ts = received;
  r.source_ts_trusted = false;
  Envelope e = with_readings({r});
  e.events.push_back(event("m1", "tamper", received));
  e.events.back().source_ts_trusted = false;
  e.events.back().received_ts = received;
  e.dead_letters.push_back(dead_letter("unknown_metric", R"({"x":1})", received));
  e.replay_digest = digest;
  e.redelivered = redelivered;
  return e;
}

TEST_P(HistoryStoreContract, RedeliveredMessageWithAKnownDigestIsSkippedWhole) {
  const Envelope original = untimed_message(t0, 0xabcdef, false);
  WriteResult r = store_->write({&original, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 1u);
  EXPECT_EQ(r.events_stored, 1u);
  EXPECT_EQ(r.dead_letters_stored, 1u);
  EXPECT_EQ(r.envelopes_duplicate, 0u);

  const Envelope repeat = untimed_message(t0 + 30s, 0xabcdef, true);
  r = store_->write({&repeat, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.envelopes_duplicate, 1u);
  EXPECT_EQ(r.readings_stored + r.readings_duplicate, 0u);
  EXPECT_EQ(r.events_stored + r.events_duplicate, 0u);
  EXPECT_EQ(r.dead_letters_stored, 0u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 1u);
  EXPECT_EQ(store_->events({{}, {}, far_past, far_future}).size(), 1u);
  EXPECT_EQ(store_->dead_letters({}).size(), 1u);
}

TEST_P(HistoryStoreContract, RepeatWithinOneBatchIsRecognisedToo) {
  const std::vector<Envelope> batch = {untimed_message(t0, 77, false),
                                       untimed_message(t0 + 1s, 77, true)};
  const WriteResult r = store_->write(batch);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 1u);
  EXPECT_EQ(r.envelopes_duplicate, 1u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 1u);
}

TEST_P(HistoryStoreContract, KnownDigestWithoutRedeliveredFlagIsStored) {
  // Without the transport's word that it may be a repeat, equal digests are two messages (a
  // device sending the same payload twice).
  const Envelope a = untimed_message(t0, 5, false);
  const Envelope b = untimed_message(t0 + 10s, 5, false);
  ASSERT_TRUE(store_->write({&a, 1}).ok);
  const WriteResult r = store_->write({&b, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.envelopes_duplicate, 0u);
  EXPECT_EQ(r.readings_stored, 1u);
  EXPECT_EQ(r.events_stored, 1u);
  EXPECT_EQ(r.dead_letters_stored, 1u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 2u);
}

TEST_P(HistoryStoreContract, RedeliveredFlagOnAnUnknownDigestIsStored) {
  // The first copy never reached the store (e.g. lost before the restart): keep this one.
  const Envelope e = untimed_message(t0, 9, true);
  const WriteResult r = store_->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.envelopes_duplicate, 0u);
  EXPECT_EQ(r.readings_stored, 1u);
}

TEST_P(HistoryStoreContract, ReadingQueryIsFromInclusiveToExclusiveOldestFirstWithLimit) {
  std::vector<Reading> rs;
  for (int i = 9; i >= 0; --i) rs.push_back(reading("m1", "energy", t0 + i * 1s, double(i)));
  rs.push_back(reading("m1", "power", t0 + 3s, 99.0));
  rs.push_back(reading("m10", "energy", t0 + 3s, 99.0));
  const Envelope e = with_readings(rs);
  ASSERT_TRUE(store_->write({&e, 1}).ok);

  auto got = store_->readings({"m1", "energy", t0 + 2s, t0 + 5s});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].ts(), t0 + 2s);
  EXPECT_EQ(got[1].ts(), t0 + 3s);
  EXPECT_EQ(got[2].ts(), t0 + 4s);
  EXPECT_EQ(got[1].value, model::Value{3.0});

  got = store_->readings({"m1", "energy", t0, t0 + 1h, 4});
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].ts(), t0);
  EXPECT_EQ(got[3].ts(), t0 + 3s);

  EXPECT_TRUE(store_->readings({"m1", "energy", t0 + 5s, t0 + 5s}).empty());
  EXPECT_TRUE(store_->readings({"m1", "nothing", t0, t0 + 1h}).empty());
  EXPECT_TRUE(store_->readings({"m", "energy", t0, t0 + 1h}).empty());
}

TEST_P(HistoryStoreContract, EventsRoundTripNewestFirstWithFilters) {
  Envelope e;
  e.events = {event("bed-1", "nurse_call", t0), event("bed-1", "cancel", t0 + 1s),
              event("bed-2", "nurse_call", t0 + 2s), event("bed-1", "nurse_call", t0 + 3s)};
  e.events[2].priority = model::Priority::medium;
  e.events[2].attributes_json = R"({"text":"Zimmer 3 – Bad","n":1})";
  e.events[3].source_ts_trusted = false;
  e.events[3].source_ts = t0 - 1h;  // untrusted: ordered by receipt
  e.events[3].received_ts = t0 + 3s;
  WriteResult r = store_->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events_stored, 4u);

  auto got = store_->events({{}, {}, far_past, far_future});
  ASSERT_EQ(got.size(), 4u);
  expect_same(got[0], e.events[3]);
  expect_same(got[1], e.events[2]);
  expect_same(got[2], e.events[1]);
  expect_same(got[3], e.events[0]);

  got = store_->events({"bed-1", "nurse_call", far_past, far_future});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].ts(), t0 + 3s);
  EXPECT_EQ(store_->events({"bed-1", {}, far_past, far_future}).size(), 3u);
  EXPECT_EQ(store_->events({{}, "nurse_call", far_past, far_future}).size(), 3u);
  got = store_->events({{}, {}, t0 + 1s, t0 + 3s});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].device_id, "bed-2");
  EXPECT_EQ(got[1].type, "cancel");
  got = store_->events({{}, {}, far_past, far_future, 1});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ts(), t0 + 3s);

  // The same device, type and time again is a duplicate.
  Envelope again;
  again.events = {event("bed-1", "nurse_call", t0), event("bed-1", "nurse_call", t0 + 9s)};
  r = store_->write({&again, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.events_stored, 1u);
  EXPECT_EQ(r.events_duplicate, 1u);
}

TEST_P(HistoryStoreContract, DeadLettersKeepRawBytesNewestFirst) {
  Envelope e;
  e.dead_letters = {dead_letter("invalid_json", "{\"a\":\0\xff\xfe"s, t0),
                    dead_letter("invalid_utf8", "\xc3\x28 \x80"s, t0 + 1s),
                    dead_letter("invalid_json", "", t0 + 2s)};
  e.dead_letters[1].detail = "byte 0 of \"name\"";
  WriteResult r = store_->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.dead_letters_stored, 3u);
  // Dead letters are not deduplicated: each refusal is a fact.
  r = store_->write({&e, 1});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.dead_letters_stored, 3u);

  auto got = store_->dead_letters({{}, 3});
  ASSERT_EQ(got.size(), 3u);
  expect_same(got[0], e.dead_letters[2]);
  expect_same(got[1], e.dead_letters[1]);
  expect_same(got[2], e.dead_letters[0]);

  got = store_->dead_letters({"invalid_json", 100});
  ASSERT_EQ(got.size(), 4u);
  for (const auto& d : got) EXPECT_EQ(d.reason, "invalid_json");
  EXPECT_EQ(store_->dead_letters({"nope", 100}).size(), 0u);
  EXPECT_EQ(store_->dead_letters({}).size(), 6u);
}

TEST_P(HistoryStoreContract, FailedWriteLeavesNothingVisibleAndARetrySucceeds) {
  const Envelope before = with_readings({reading("old", "energy", t0, 1.0)});
  ASSERT_TRUE(store_->write({&before, 1}).ok);
  if (!harness_->fail_event_writes(true)) GTEST_SKIP() << "cannot inject a write failure";

  // New series, an existing one, a digest, then the event the failure is injected on.
  std::vector<Envelope> batch = {
      with_readings({reading("new-1", "energy", t0, 1.0), reading("new-2", "energy", t0, 2.0),
                     reading("old", "energy", t0 + 1s, 3.0)}),
      untimed_message(t0 + 2s, 4242, false)};
  batch[0].dead_letters.push_back(dead_letter("unknown_device", "x", t0));
  const WriteResult failed = store_->write(batch);
  EXPECT_FALSE(failed.ok);
  EXPECT_FALSE(failed.error.empty());
  EXPECT_TRUE(all_of(*store_, "new-1", "energy").empty());
  EXPECT_TRUE(all_of(*store_, "new-2", "energy").empty());
  EXPECT_EQ(all_of(*store_, "old", "energy").size(), 1u);
  EXPECT_TRUE(all_of(*store_, "m1", "energy").empty());
  EXPECT_TRUE(store_->events({{}, {}, far_past, far_future}).empty());
  EXPECT_TRUE(store_->dead_letters({}).empty());

  ASSERT_TRUE(harness_->fail_event_writes(false));
  // The pipeline retries the same batch, flagged as it was: nothing of it counts as a repeat.
  const WriteResult retry = store_->write(batch);
  ASSERT_TRUE(retry.ok) << retry.error;
  EXPECT_EQ(retry.readings_stored, 4u);
  EXPECT_EQ(retry.readings_duplicate, 0u);
  EXPECT_EQ(retry.events_stored, 1u);
  EXPECT_EQ(retry.dead_letters_stored, 2u);
  EXPECT_EQ(retry.envelopes_duplicate, 0u);
  EXPECT_EQ(all_of(*store_, "new-1", "energy").size(), 1u);
  EXPECT_EQ(all_of(*store_, "new-2", "energy").size(), 1u);
  EXPECT_EQ(all_of(*store_, "old", "energy").size(), 2u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 1u);

  // The series created by the retry stay usable.
  const Envelope after = with_readings({reading("new-1", "energy", t0 + 5s, 5.0)});
  ASSERT_TRUE(store_->write({&after, 1}).ok);
  EXPECT_EQ(all_of(*store_, "new-1", "energy").size(), 2u);
}

TEST_P(HistoryStoreContract, ReopeningKeepsEverythingAndStillRecognisesRepeats) {
  Envelope e = untimed_message(t0, 0x1234, false);
  e.readings.push_back(reading("m2", "energy", t0, 7.5));
  ASSERT_TRUE(store_->write({&e, 1}).ok);

  ASSERT_NO_FATAL_FAILURE(reopen());
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 1u);
  ASSERT_EQ(all_of(*store_, "m2", "energy").size(), 1u);
  expect_same(all_of(*store_, "m2", "energy")[0], e.readings[1]);
  EXPECT_EQ(store_->events({{}, {}, far_past, far_future}).size(), 1u);
  EXPECT_EQ(store_->dead_letters({}).size(), 1u);

  // After the restart: the broker redelivers, and a device repeats a timed reading.
  const Envelope repeat = untimed_message(t0 + 20s, 0x1234, true);
  const Envelope timed =
      with_readings({reading("m2", "energy", t0, 7.5), reading("m2", "energy", t0 + 1s, 8.0)});
  const std::vector<Envelope> batch = {repeat, timed};
  const WriteResult r = store_->write(batch);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.envelopes_duplicate, 1u);
  EXPECT_EQ(r.readings_duplicate, 1u);
  EXPECT_EQ(r.readings_stored, 1u);
  EXPECT_EQ(all_of(*store_, "m1", "energy").size(), 1u);
  EXPECT_EQ(all_of(*store_, "m2", "energy").size(), 2u);
}

TEST_P(HistoryStoreContract, LargeBatchAcrossManySeriesIsCountedExactly) {
  std::vector<Envelope> batch;
  for (int d = 0; d < 200; ++d) {
    Envelope e;
    for (int i = 0; i < 10; ++i) {
      e.readings.push_back(
          reading("dev-" + std::to_string(d), "energy", t0 + i * 1s, double(d + i)));
      e.readings.push_back(
          reading("dev-" + std::to_string(d), "power", t0 + i * 1s, double(d - i)));
    }
    batch.push_back(std::move(e));
  }
  const WriteResult r = store_->write(batch);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.readings_stored, 4000u);
  const auto got = all_of(*store_, "dev-123", "power");
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[9].value, model::Value{123.0 - 9});
  const WriteResult again = store_->write(batch);
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_EQ(again.readings_stored, 0u);
  EXPECT_EQ(again.readings_duplicate, 4000u);
}

}  // namespace
}  // namespace fieldhub::contract
