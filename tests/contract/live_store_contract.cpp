// SPDX-License-Identifier: Apache-2.0
#include "live_store_contract.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace fieldhub::contract {
namespace {

using namespace std::chrono_literals;
using model::Quality;
using model::Reading;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

Reading reading(std::string device, std::string metric, model::Timestamp ts, model::Value v,
                model::Timestamp received) {
  Reading r;
  r.device_id = std::move(device);
  r.metric = std::move(metric);
  r.value = std::move(v);
  r.unit = "kWh";
  r.source_ts = ts;
  r.received_ts = received;
  r.provenance = {"mqtt", "broker"};
  return r;
}

Reading reading(std::string device, std::string metric, model::Timestamp ts, model::Value v) {
  return reading(std::move(device), std::move(metric), ts, std::move(v), ts + 10ms);
}

TEST_P(LiveStoreContract, UnknownDeviceIsNothing) {
  EXPECT_FALSE(store_->get("nobody"));
  EXPECT_TRUE(store_->all().empty());
}

TEST_P(LiveStoreContract, FirstReadingBecomesTheLatestWithAllItsFields) {
  Reading r = reading("meter-1", "energy", t0, 12.5);
  r.quality = Quality::uncertain;
  r.quality_reason = "estimated";
  EXPECT_EQ(store_->apply({&r, 1}), 1u);

  const auto d = store_->get("meter-1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->device_id, "meter-1");
  EXPECT_EQ(d->last_seen, r.received_ts);
  ASSERT_EQ(d->metrics.size(), 1u);
  const stores::LatestValue& v = d->metrics.at("energy");
  EXPECT_EQ(v.value, model::Value{12.5});
  EXPECT_EQ(v.unit, "kWh");
  EXPECT_EQ(v.ts, t0);
  EXPECT_EQ(v.received_ts, r.received_ts);
  EXPECT_EQ(v.quality, Quality::uncertain);
  EXPECT_EQ(v.quality_reason, "estimated");
}

TEST_P(LiveStoreContract, NewerReadingWins) {
  const std::vector<Reading> rs = {reading("m", "energy", t0, 1.0),
                                   reading("m", "energy", t0 + 1s, 2.0)};
  EXPECT_EQ(store_->apply(rs), 2u);
  const auto d = store_->get("m");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->metrics.at("energy").value, model::Value{2.0});
  EXPECT_EQ(d->metrics.at("energy").ts, t0 + 1s);
}

TEST_P(LiveStoreContract, OutOfOrderNeverRegressesButStillCountsAsSeen) {
  const Reading newer = reading("m", "energy", t0 + 10s, 2.0, t0 + 10s);
  ASSERT_EQ(store_->apply({&newer, 1}), 1u);
  // Measured earlier, received later (a device flushing its buffer after an outage).
  const Reading older = reading("m", "energy", t0, 1.0, t0 + 60s);
  EXPECT_EQ(store_->apply({&older, 1}), 0u);

  const auto d = store_->get("m");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->metrics.at("energy").value, model::Value{2.0});
  EXPECT_EQ(d->metrics.at("energy").ts, t0 + 10s);
  EXPECT_EQ(d->last_seen, t0 + 60s);
}

TEST_P(LiveStoreContract, WithinOneCallTheNewestWinsWhateverTheOrder) {
  const std::vector<Reading> rs = {reading("m", "energy", t0 + 2s, 3.0),
                                   reading("m", "energy", t0, 1.0),
                                   reading("m", "energy", t0 + 1s, 2.0)};
  EXPECT_EQ(store_->apply(rs), 1u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").value, model::Value{3.0});
}

TEST_P(LiveStoreContract, EqualTimestampLaterReceiptWins) {
  const Reading first = reading("m", "energy", t0, 1.0, t0 + 1s);
  const Reading correction = reading("m", "energy", t0, 1.5, t0 + 2s);
  ASSERT_EQ(store_->apply({&first, 1}), 1u);
  EXPECT_EQ(store_->apply({&correction, 1}), 1u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").value, model::Value{1.5});

  // The same time received earlier (a replay of an old message) does not undo the correction.
  const Reading replayed = reading("m", "energy", t0, 1.0, t0 + 1s);
  EXPECT_EQ(store_->apply({&replayed, 1}), 0u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").value, model::Value{1.5});
}

TEST_P(LiveStoreContract, BadReadingWithoutValueReplacesAGoodOneOnlyIfNewer) {
  const Reading good = reading("m", "energy", t0 + 5s, 7.0);
  ASSERT_EQ(store_->apply({&good, 1}), 1u);

  Reading stale_error = reading("m", "energy", t0, std::monostate{});
  stale_error.quality = Quality::bad;
  stale_error.quality_reason = "timeout";
  EXPECT_EQ(store_->apply({&stale_error, 1}), 0u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").quality, Quality::good);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").value, model::Value{7.0});

  Reading error = reading("m", "energy", t0 + 6s, std::monostate{});
  error.quality = Quality::bad;
  error.quality_reason = "timeout";
  EXPECT_EQ(store_->apply({&error, 1}), 1u);
  const stores::LatestValue v = store_->get("m")->metrics.at("energy");
  EXPECT_EQ(v.quality, Quality::bad);
  EXPECT_EQ(v.quality_reason, "timeout");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(v.value)) << "an error is never shown as 0";
}

TEST_P(LiveStoreContract, UntrustedSourceTimeOrdersByReceipt) {
  // A device clock far in the future must not pin "latest" forever.
  Reading skewed = reading("m", "energy", t0 + 24h, 1.0, t0);
  skewed.source_ts_trusted = false;
  ASSERT_EQ(store_->apply({&skewed, 1}), 1u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").ts, t0);

  const Reading next = reading("m", "energy", t0 + 1s, 2.0);
  EXPECT_EQ(store_->apply({&next, 1}), 1u);
  EXPECT_EQ(store_->get("m")->metrics.at("energy").value, model::Value{2.0});
}

TEST_P(LiveStoreContract, EveryValueTypeIsHeld) {
  const std::vector<Reading> rs = {reading("m", "n", t0, 1.25), reading("m", "b", t0, true),
                                   reading("m", "t", t0, std::string("Füllstand \xE2\x84\x83 ok")),
                                   reading("m", "none", t0, std::monostate{})};
  ASSERT_EQ(store_->apply(rs), 4u);
  const auto d = store_->get("m");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->metrics.at("n").value, model::Value{1.25});
  EXPECT_EQ(d->metrics.at("b").value, model::Value{true});
  EXPECT_EQ(d->metrics.at("t").value, model::Value{std::string("Füllstand \xE2\x84\x83 ok")});
  EXPECT_TRUE(std::holds_alternative<std::monostate>(d->metrics.at("none").value));
}

TEST_P(LiveStoreContract, MetricsAndDevicesAreIndependent) {
  const std::vector<Reading> rs = {reading("a", "energy", t0 + 5s, 1.0),
                                   reading("a", "power", t0, 2.0), reading("b", "energy", t0, 3.0)};
  ASSERT_EQ(store_->apply(rs), 3u);
  // Older than a's energy but newer than its power: only power moves.
  const std::vector<Reading> more = {reading("a", "energy", t0 + 1s, 9.0),
                                     reading("a", "power", t0 + 1s, 9.0)};
  EXPECT_EQ(store_->apply(more), 1u);
  EXPECT_EQ(store_->get("a")->metrics.at("energy").value, model::Value{1.0});
  EXPECT_EQ(store_->get("a")->metrics.at("power").value, model::Value{9.0});
  EXPECT_EQ(store_->get("b")->metrics.at("energy").value, model::Value{3.0});

  auto all = store_->all();
  std::sort(all.begin(), all.end(),
            [](const auto& x, const auto& y) { return x.device_id < y.device_id; });
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].device_id, "a");
  EXPECT_EQ(all[0].metrics.size(), 2u);
  EXPECT_EQ(all[1].device_id, "b");
}

TEST_P(LiveStoreContract, TouchRecordsThatTheDeviceWasHeardFrom) {
  store_->touch("door-3", t0);
  auto d = store_->get("door-3");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->last_seen, t0);
  EXPECT_TRUE(d->metrics.empty());

  store_->touch("door-3", t0 + 5s);
  EXPECT_EQ(store_->get("door-3")->last_seen, t0 + 5s);
  // A late message does not move last_seen back.
  store_->touch("door-3", t0 + 1s);
  EXPECT_EQ(store_->get("door-3")->last_seen, t0 + 5s);

  const Reading r = reading("door-3", "open", t0, true, t0 + 7s);
  store_->apply({&r, 1});
  EXPECT_EQ(store_->get("door-3")->last_seen, t0 + 7s);
}

TEST_P(LiveStoreContract, LookupDoesNotDependOnTheCallersString) {
  const Reading r = reading("meter-42", "energy", t0, 1.0);
  store_->apply({&r, 1});
  const std::string buffer = "xxmeter-42yy";
  EXPECT_TRUE(store_->get(std::string_view(buffer).substr(2, 8)));
  EXPECT_FALSE(store_->get(std::string_view(buffer).substr(2, 7)));
}

}  // namespace
}  // namespace fieldhub::contract
