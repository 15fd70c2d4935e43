// SPDX-License-Identifier: Apache-2.0
#include "pipeline/spool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <mutex>

#include "pipeline/history_writer.h"
#include "pipeline/spool_codec.h"
#include "pipeline/spool_test_support.h"

namespace fieldhub::pipeline {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::expect_same;
using testing::ScratchDir;
using testing::wait_until;

const model::Timestamp t0 = model::from_micros(1'795'514'400'000'000);

class RecordingAcks final : public AckTarget {
 public:
  void acknowledge(std::uint64_t cookie) override { acked.push_back(cookie); }
  std::vector<std::uint64_t> acked;
};

// Message n: `readings` readings numbered n, an event when `with_event`.
Envelope message(int n, int readings = 1, bool with_event = false) {
  Envelope env;
  for (int i = 0; i < readings; ++i) {
    model::Reading r;
    r.device_id = "dev-" + std::to_string(n);
    r.metric = "m" + std::to_string(i);
    r.value = static_cast<double>(n);
    r.source_ts = r.received_ts = t0 + std::chrono::seconds{n};
    env.readings.push_back(std::move(r));
  }
  if (with_event) {
    env.events.push_back({.device_id = "dev-" + std::to_string(n),
                          .type = "call",
                          .source_ts = t0 + std::chrono::seconds{n},
                          .received_ts = t0 + std::chrono::seconds{n}});
  }
  return env;
}

int number_of(const Envelope& env) {
  const std::string& id =
      !env.readings.empty() ? env.readings.front().device_id : env.events.front().device_id;
  return std::stoi(id.substr(4));
}

// Everything synced and not yet taken, in order.
std::vector<Envelope> take_all(Spool& spool, std::uint64_t* last_seq = nullptr) {
  std::vector<Envelope> out;
  while (true) {
    Spool::Batch b = spool.take(1000, 0ms);
    if (b.envelopes.empty()) return out;
    if (last_seq != nullptr) *last_seq = b.last_seq;
    for (auto& e : b.envelopes) out.push_back(std::move(e));
  }
}

std::vector<fs::path> segment_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

double metric(const common::Metrics& metrics, const std::string& name) {
  // The Prometheus text, one "name value" line per unlabelled series.
  const std::string text = metrics.render_prometheus();
  const std::size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

SpoolOptions options(const fs::path& dir, std::uint64_t segment_bytes = 1 << 20) {
  SpoolOptions o;
  o.dir = dir / "spool";
  o.segment_bytes = segment_bytes;
  o.max_bytes = 64 << 20;
  return o;
}

TEST(Spool, AcknowledgesInOrderOnceSyncedAndHandsRecordsOverInOrder) {
  ScratchDir dir;
  common::Metrics metrics;
  Spool spool(options(dir.path()), metrics);
  spool.open();
  RecordingAcks acks;
  std::mutex mutex;
  std::vector<std::uint64_t> released;
  spool.start([&](std::vector<AckToken>&& tokens) {
    const std::lock_guard lock(mutex);
    for (const auto& t : tokens) released.push_back(t.cookie);
  });
  for (int n = 1; n <= 5; ++n) {
    Envelope env = message(n, 2, n == 3);
    env.ack = {&acks, static_cast<std::uint64_t>(n)};
    spool.append(std::move(env));
  }
  Envelope ack_only;  // a message with nothing to keep still waits for the ones before it
  ack_only.ack = {&acks, 6};
  spool.append(std::move(ack_only));
  ASSERT_TRUE(spool.flush(10s));
  {
    const std::lock_guard lock(mutex);
    EXPECT_EQ(released, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  }
  std::uint64_t last = 0;
  const auto taken = take_all(spool, &last);
  ASSERT_EQ(taken.size(), 5u);
  for (int n = 1; n <= 5; ++n) expect_same(taken[n - 1], message(n, 2, n == 3));
  EXPECT_EQ(last, 5u);
  EXPECT_EQ(spool.backlog(), 5u);
  spool.committed(last);
  EXPECT_EQ(spool.backlog(), 0u);
  EXPECT_EQ(metric(metrics, "fieldhub_spool_synced_records_total"), 5);
}

TEST(Spool, ReplaysInOrderAcrossSegmentsAndRestartsFromTheCommittedMark) {
  ScratchDir dir;
  {
    common::Metrics metrics;
    Spool spool(options(dir.path(), 600), metrics);
    spool.open();
    spool.start({});
    for (int n = 1; n <= 100; ++n) spool.append(message(n, 3));
    spool.stop();
  }
  EXPECT_GT(segment_files(dir.path() / "spool").size(), 5u);
  {
    common::Metrics metrics;
    Spool spool(options(dir.path(), 600), metrics);
    const SpoolRecovery rec = spool.open();
    EXPECT_EQ(rec.records, 100u);
    EXPECT_EQ(rec.uncommitted, 100u);
    EXPECT_EQ(rec.torn_tails, 0u);
    EXPECT_EQ(rec.corrupt, 0u);
    spool.start({});
    // The first 40 reach history; the process stops before the rest do.
    std::vector<Envelope> first;
    std::uint64_t last = 0;
    while (first.size() < 40) {
      Spool::Batch b = spool.take(4, 0ms);  // about one message per batch
      ASSERT_FALSE(b.envelopes.empty());
      for (auto& e : b.envelopes) first.push_back(std::move(e));
      last = b.last_seq;
    }
    ASSERT_EQ(first.size(), 40u);
    spool.committed(last);
    for (int n = 1; n <= 40; ++n) EXPECT_EQ(number_of(first[n - 1]), n);
    spool.append(message(101, 3));  // new data goes after the backlog
    spool.stop();
  }
  common::Metrics metrics;
  Spool spool(options(dir.path(), 600), metrics);
  const SpoolRecovery rec = spool.open();
  EXPECT_EQ(rec.committed_seq, 40u);
  EXPECT_EQ(rec.uncommitted, 61u);
  spool.start({});
  const auto rest = take_all(spool);
  ASSERT_EQ(rest.size(), 61u);
  for (int i = 0; i < 61; ++i) expect_same(rest[i], message(41 + i, 3));
  EXPECT_EQ(metric(metrics, "fieldhub_spool_replayed_records_total"), 61);
}

TEST(Spool, CommittedSegmentsAreDeleted) {
  ScratchDir dir;
  common::Metrics metrics;
  Spool spool(options(dir.path(), 600), metrics);
  spool.open();
  spool.start({});
  for (int n = 1; n <= 50; ++n) spool.append(message(n, 3));
  ASSERT_TRUE(spool.flush(10s));
  const std::size_t before = segment_files(dir.path() / "spool").size();
  std::uint64_t last = 0;
  ASSERT_EQ(take_all(spool, &last).size(), 50u);
  spool.committed(last);
  const std::size_t after = segment_files(dir.path() / "spool").size();
  EXPECT_GT(before, 3u);
  EXPECT_EQ(after, 1u);  // the segment still being appended to stays
}

TEST(Spool, WriterBehindTheMemoryWindowReadsTheRestFromDisk) {
  ScratchDir dir;
  common::Metrics metrics;
  SpoolOptions o = options(dir.path(), 2000);
  o.memory_window = 7;
  Spool spool(o, metrics);
  spool.open();
  spool.start({});
  for (int n = 1; n <= 60; ++n) {
    spool.append(message(n, 2));
    if (n % 20 == 0) {
      ASSERT_TRUE(spool.flush(10s));
    }
  }
  ASSERT_TRUE(spool.flush(10s));
  const auto all = take_all(spool);
  ASSERT_EQ(all.size(), 60u);
  for (int n = 1; n <= 60; ++n) expect_same(all[n - 1], message(n, 2));
  EXPECT_GT(metric(metrics, "fieldhub_spool_replayed_records_total"), 0);
  // Caught up: new records come from memory again.
  spool.append(message(61, 2));
  ASSERT_TRUE(spool.flush(10s));
  const double replayed = metric(metrics, "fieldhub_spool_replayed_records_total");
  const auto next = take_all(spool);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(number_of(next[0]), 61);
  EXPECT_EQ(metric(metrics, "fieldhub_spool_replayed_records_total"), replayed);
}

// Modbus-sized records (ten readings each): the memory window holds at most memory_readings
// readings, the rest is read back from disk; pending_readings() counts what awaits the sync.
TEST(Spool, MemoryWindowIsBoundedInReadingsToo) {
  ScratchDir dir;
  common::Metrics metrics;
  SpoolOptions o = options(dir.path());
  o.memory_window = 1000;
  o.memory_readings = 30;
  Spool spool(o, metrics);
  spool.open();
  for (int n = 1; n <= 10; ++n) spool.append(message(n, 10));
  EXPECT_EQ(spool.pending(), 10u);
  EXPECT_EQ(spool.pending_readings(), 100u);
  spool.start({});
  ASSERT_TRUE(spool.flush(10s));
  EXPECT_EQ(spool.pending_readings(), 0u);
  const auto all = take_all(spool);
  ASSERT_EQ(all.size(), 10u);
  for (int n = 1; n <= 10; ++n) expect_same(all[n - 1], message(n, 10));
  // Three records (30 readings) were kept in memory, the other seven read from the segment.
  EXPECT_EQ(metric(metrics, "fieldhub_spool_replayed_records_total"), 7);
  // Taken records leave the window: the next three come from memory again.
  for (int n = 11; n <= 13; ++n) spool.append(message(n, 10));
  ASSERT_TRUE(spool.flush(10s));
  const auto next = take_all(spool);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(number_of(next[0]), 11);
  EXPECT_EQ(metric(metrics, "fieldhub_spool_replayed_records_total"), 7);
  spool.stop();
}

// Writes `count` messages into a fresh spool and returns the one segment's bytes.
std::string one_segment(const fs::path& dir, int count) {
  common::Metrics metrics;
  Spool spool(options(dir), metrics);
  spool.open();
  spool.start({});
  for (int n = 1; n <= count; ++n) spool.append(message(n, 2, n % 2 == 0));
  spool.stop();
  const auto files = segment_files(dir / "spool");
  std::ifstream in(files.at(0), std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Spool, TornTailAtEveryByteOfTheLastRecordIsTruncatedAndCounted) {
  ScratchDir source;
  const std::string whole = one_segment(source.path(), 5);
  std::string four;
  for (int n = 1; n <= 4; ++n) spool_codec::append_record(n, message(n, 2, n % 2 == 0), four);
  ASSERT_EQ(whole.substr(0, four.size()), four);
  for (std::size_t cut = four.size(); cut < whole.size(); ++cut) {
    ScratchDir dir;
    fs::create_directories(dir.path() / "spool");
    const fs::path file =
        dir.path() / "spool" / segment_files(source.path() / "spool")[0].filename();
    {
      std::ofstream out(file, std::ios::binary);
      out << whole.substr(0, cut);
    }
    common::Metrics metrics;
    Spool spool(options(dir.path()), metrics);
    const SpoolRecovery rec = spool.open();
    EXPECT_EQ(rec.records, 4u) << cut;
    EXPECT_EQ(rec.torn_tails, cut == four.size() ? 0u : 1u) << cut;
    EXPECT_EQ(rec.corrupt, 0u) << cut;
    EXPECT_EQ(fs::file_size(file), four.size()) << cut;
    EXPECT_EQ(metric(metrics, "fieldhub_spool_torn_tail_total"), rec.torn_tails) << cut;
    spool.start({});
    spool.append(message(5, 2));
    ASSERT_TRUE(spool.flush(10s));
    const auto all = take_all(spool);
    ASSERT_EQ(all.size(), 5u) << cut;
    for (int n = 1; n <= 5; ++n) EXPECT_EQ(number_of(all[n - 1]), n) << cut;
  }
}

TEST(Spool, DamageInsideASegmentIsSkippedCountedAndTheRestReplayed) {
  ScratchDir dir;
  const std::string whole = one_segment(dir.path(), 9);
  std::string before;
  for (int n = 1; n <= 4; ++n) spool_codec::append_record(n, message(n, 2, n % 2 == 0), before);
  // Flip a byte inside record 5's payload.
  const auto files = segment_files(dir.path() / "spool");
  std::string damaged = whole;
  damaged[before.size() + spool_codec::header_bytes + 10] ^= 0x01;
  {
    std::ofstream out(files[0], std::ios::binary | std::ios::trunc);
    out << damaged;
  }
  common::Metrics metrics;
  Spool spool(options(dir.path()), metrics);
  const SpoolRecovery rec = spool.open();
  EXPECT_EQ(rec.corrupt, 1u);
  EXPECT_EQ(rec.torn_tails, 0u);
  EXPECT_EQ(rec.records, 8u);
  EXPECT_EQ(metric(metrics, "fieldhub_spool_corrupt_records_total"), 1);
  spool.start({});
  const auto all = take_all(spool);
  std::vector<int> numbers;
  for (const auto& e : all) numbers.push_back(number_of(e));
  EXPECT_EQ(numbers, (std::vector<int>{1, 2, 3, 4, 6, 7, 8, 9}));
}

TEST(Spool, WhenFullTheOldestReadingsAreDroppedExactlyAndEventsNever) {
  ScratchDir dir;
  common::Metrics metrics;
  SpoolOptions o = options(dir.path(), 4096);
  o.max_bytes = 32 * 1024;
  o.memory_window = 1000;
  Spool spool(o, metrics);
  spool.open();
  spool.start({});
  int readings_in = 0;
  int events_in = 0;
  const int messages = 400;
  for (int n = 1; n <= messages; ++n) {
    const bool event = n % 10 == 0;
    spool.append(message(n, 4, event));
    readings_in += 4;
    events_in += event ? 1 : 0;
    ASSERT_TRUE(spool.flush(10s)) << n;  // one record per sync, as a trickle would
    ASSERT_LE(spool.bytes(), o.max_bytes);
  }
  const auto dropped = metric(metrics, "fieldhub_spool_dropped_readings_total");
  EXPECT_GT(dropped, 0);
  int readings_out = 0;
  int events_out = 0;
  int last = 0;
  for (const auto& e : take_all(spool)) {
    readings_out += static_cast<int>(e.readings.size());
    events_out += static_cast<int>(e.events.size());
    if (!e.events.empty() || !e.readings.empty()) {
      EXPECT_GT(number_of(e), last);  // still in order
      last = number_of(e);
    }
  }
  EXPECT_EQ(readings_out + static_cast<int>(dropped), readings_in);
  EXPECT_EQ(events_out, events_in);
  EXPECT_FALSE(spool.full());
}

TEST(Spool, FullOfEventsAppendsWaitUntilHistoryTakesSome) {
  ScratchDir dir;
  common::Metrics metrics;
  SpoolOptions o = options(dir.path(), 1024);
  o.max_bytes = 8 * 1024;
  Spool spool(o, metrics);
  spool.open();
  RecordingAcks acks;
  std::atomic<int> released{0};
  spool.start([&](std::vector<AckToken>&& tokens) { released += static_cast<int>(tokens.size()); });
  int appended = 0;
  while (!spool.full() && appended < 1000) {
    Envelope env = message(++appended, 0, true);
    env.ack = {&acks, static_cast<std::uint64_t>(appended)};
    spool.append(std::move(env));
    spool.flush(200ms);
  }
  ASSERT_TRUE(spool.full());
  EXPECT_EQ(spool.pending(), 1u);
  EXPECT_EQ(released.load(), appended - 1);
  EXPECT_EQ(metric(metrics, "fieldhub_spool_dropped_readings_total"), 0);
  std::uint64_t last = 0;
  const auto events = take_all(spool, &last);
  EXPECT_EQ(static_cast<int>(events.size()), appended - 1);
  spool.committed(last);
  ASSERT_TRUE(spool.flush(10s));
  EXPECT_EQ(released.load(), appended);
  EXPECT_FALSE(spool.full());
  const auto rest = take_all(spool);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(number_of(rest[0]), appended);
}

// A store that refuses any batch holding a reading of the metric "poison" as bad data, and can be
// down: for `down` attempts from attempt number `down_at` on (numbered from 1). While
// `refusing_all` it refuses every write that holds readings or events (the probe's empty one
// and dead letters go in), with the failure kind `refusing_all_as` (an INSERT privilege revoked, a
// read-only database, or a trigger refusing everything with a data error).
class PickyStore final : public stores::HistoryStore {
 public:
  stores::WriteResult write(std::span<const Envelope> batch) override {
    const std::lock_guard lock(mutex);
    ++attempts;
    if (attempts >= down_at && down > 0) {
      --down;
      return {.ok = false, .error = "connection refused"};
    }
    const bool has_content = std::any_of(batch.begin(), batch.end(), [](const Envelope& env) {
      return !env.readings.empty() || !env.events.empty();
    });
    if (refusing_all && has_content) {
      return {
          .ok = false, .error = "permission denied for table readings", .failure = refusing_all_as};
    }
    for (const auto& env : batch) {
      for (const auto& r : env.readings) {
        if (r.metric == "poison") {
          return {.ok = false,
                  .error = "invalid byte sequence",
                  .failure = stores::WriteFailure::refused_data};
        }
      }
    }
    stores::WriteResult result{.ok = true};
    for (const auto& env : batch) {
      for (const auto& r : env.readings) stored.push_back(r.device_id);
      for (const auto& d : env.dead_letters) letters.push_back(d);
      result.readings_stored += env.readings.size();
      result.dead_letters_stored += env.dead_letters.size();
    }
    return result;
  }
  std::vector<model::Reading> readings(const stores::ReadingQuery&) override { return {}; }
  std::vector<stores::RollupBucket> rollups(const stores::RollupQuery&) override { return {}; }
  std::vector<model::Event> events(const stores::EventQuery&) override { return {}; }
  std::vector<DeadLetter> dead_letters(const stores::DeadLetterQuery&) override { return {}; }

  std::size_t stored_count() {
    const std::lock_guard lock(mutex);
    return stored.size() + letters.size();
  }

  void refuse_all(bool on, stores::WriteFailure as = stores::WriteFailure::outage) {
    const std::lock_guard lock(mutex);
    refusing_all = on;
    refusing_all_as = as;
  }
  int attempts_count() {
    const std::lock_guard lock(mutex);
    return attempts;
  }
  std::size_t letters_count() {
    const std::lock_guard lock(mutex);
    return letters.size();
  }

  std::mutex mutex;
  bool refusing_all = false;
  stores::WriteFailure refusing_all_as = stores::WriteFailure::outage;
  int down_at = 1;
  int down = 0;
  int attempts = 0;
  std::vector<std::string> stored;
  std::vector<DeadLetter> letters;
};

// The retry backoff of the production writer is 100 ms .. 5 s; these tests run it at 1 .. 4 ms.
constexpr HistoryWriter::Backoff fast{1ms, 4ms};

// Writes messages 1..count through a HistoryWriter into `store`, message `poison` (0: none) being
// one the store refuses; true once all are stored or dead-lettered, false after 5 s.
bool write_through(PickyStore& store, common::Metrics& metrics, int count, int poison) {
  boost::asio::io_context io;
  config::PipelineConfig config;
  HistoryWriter writer(
      io.get_executor(), store, config, metrics, [](auto&&) {}, nullptr, fast);
  for (int n = 1; n <= count; ++n) {
    Envelope env = message(n);
    if (n == poison) env.readings.front().metric = "poison";
    writer.push(std::move(env));
  }
  writer.start();
  const bool done =
      wait_until([&] { return store.stored_count() == static_cast<std::size_t>(count); }, 5s);
  writer.stop();
  return done;
}

TEST(HistoryWriterBisect, APoisonMessageIsDeadLetteredAloneAndTheRestFlows) {
  common::Metrics metrics;
  PickyStore store;
  ASSERT_TRUE(write_through(store, metrics, 10, 10));
  const std::lock_guard lock(store.mutex);
  EXPECT_EQ(store.stored.size(), 9u);
  ASSERT_EQ(store.letters.size(), 1u);
  EXPECT_EQ(store.letters[0].reason, "history_rejected");
  EXPECT_EQ(store.letters[0].detail, "invalid byte sequence");
  EXPECT_NE(store.letters[0].payload.find("dev-10 poison"), std::string::npos);
  EXPECT_EQ(metric(metrics, "fieldhub_history_rejected_total"), 1);
}

TEST(HistoryWriterBisect, OnceTheProbeShowsTheStoreUpThePoisonIsFoundInLogarithmicallyManyWrites) {
  common::Metrics metrics;
  PickyStore store;
  constexpr int count = 1024;
  ASSERT_TRUE(write_through(store, metrics, count, 701));
  const std::lock_guard lock(store.mutex);
  EXPECT_EQ(store.stored.size(), count - 1u);
  ASSERT_EQ(store.letters.size(), 1u);
  EXPECT_NE(store.letters[0].payload.find("dev-701 poison"), std::string::npos);
  // The whole batch 3 times and a probe, then per halving (10) at most the refused half, a probe
  // and its sibling, then the envelope once more and its dead letter.
  EXPECT_LE(store.attempts, 4 + 3 * 10 + 2);
  // Everything but the poison stored in order.
  for (int i = 0; i < count - 1; ++i) {
    const int n = i < 700 ? i + 1 : i + 2;
    EXPECT_EQ(store.stored[static_cast<std::size_t>(i)], "dev-" + std::to_string(n));
  }
}

TEST(HistoryWriterBisect, AStoreThatIsDownDeadLettersNothing) {
  common::Metrics metrics;
  PickyStore store;
  store.down = 8;  // the first attempts and their probes
  ASSERT_TRUE(write_through(store, metrics, 2, 0));
  const std::lock_guard lock(store.mutex);
  EXPECT_TRUE(store.letters.empty());
  EXPECT_EQ(metric(metrics, "fieldhub_history_rejected_total"), 0);
}

TEST(HistoryWriterBisect, AStoreThatGoesDownMidBisectDeadLettersOnlyThePoison) {
  common::Metrics metrics;
  PickyStore store;
  // Down after the split has begun (3 failures and a probe of the whole batch, then 2 more
  // writes), long enough for probes to fail at every level below.
  store.down_at = 7;
  store.down = 12;
  ASSERT_TRUE(write_through(store, metrics, 16, 3));
  const std::lock_guard lock(store.mutex);
  EXPECT_EQ(store.stored.size(), 15u);
  ASSERT_EQ(store.letters.size(), 1u);
  EXPECT_NE(store.letters[0].payload.find("dev-3 poison"), std::string::npos);
  EXPECT_EQ(store.down, 0);  // the outage really happened during the bisect
}

// Runs a HistoryWriter over `store` with `backoff`, messages pushed by the test.
struct WriterRun {
  WriterRun(PickyStore& store, HistoryWriter::Backoff backoff)
      : writer(
            io.get_executor(), store, config, metrics, [](auto&&) {}, nullptr, backoff) {
    writer.start();
  }
  ~WriterRun() { writer.stop(); }
  void push(int from, int to, bool poison = false) {
    for (int n = from; n <= to; ++n) {
      Envelope env = message(n);
      if (poison) env.readings.front().metric = "poison";
      writer.push(std::move(env));
    }
  }
  boost::asio::io_context io;
  config::PipelineConfig config;
  common::Metrics metrics;
  HistoryWriter writer;
};

TEST(HistoryWriterRefusals, AStoreThatRefusesEverythingAsAnOutageHoldsAllAndDeadLettersNothing) {
  PickyStore store;
  store.refuse_all(true);
  WriterRun run(store, fast);
  run.push(1, 50);
  // Degraded with the store's own message, after split_after failures (milliseconds here).
  ASSERT_TRUE(wait_until([&] { return !run.writer.healthy(); }, 5s));
  EXPECT_EQ(run.writer.degraded_reason(), "permission denied for table readings");
  // Retried all along: never bisected, never a dead letter, nothing stored.
  ASSERT_TRUE(wait_until([&] { return store.attempts_count() > 20; }, 5s));
  EXPECT_EQ(store.letters_count(), 0u);
  EXPECT_EQ(store.stored_count(), 0u);
  // The DBA grants INSERT again: the held messages are all stored, in order, once.
  store.refuse_all(false);
  ASSERT_TRUE(wait_until([&] { return store.stored_count() == 50; }, 5s));
  EXPECT_TRUE(wait_until([&] { return run.writer.healthy(); }, 5s));
  EXPECT_EQ(run.writer.degraded_reason(), "");
  const std::lock_guard lock(store.mutex);
  EXPECT_TRUE(store.letters.empty());
  for (int n = 1; n <= 50; ++n) EXPECT_EQ(store.stored[n - 1u], "dev-" + std::to_string(n));
  EXPECT_EQ(metric(run.metrics, "fieldhub_history_rejected_total"), 0);
}

TEST(HistoryWriterRefusals, TheBreakerHoldsARunOfDataRefusalsAsAnOutage) {
  PickyStore store;
  // Everything refused with a data error (say an admin's trigger raising check_violation).
  store.refuse_all(true, stores::WriteFailure::refused_data);
  HistoryWriter::Backoff backoff = fast;
  backoff.breaker_after = 5;
  backoff.breaker_hold = 1h;
  WriterRun run(store, backoff);
  run.push(1, 20);
  // Bisected and dead-lettered one by one up to the bound, then held as an outage.
  ASSERT_TRUE(wait_until(
      [&] { return metric(run.metrics, "fieldhub_history_breaker_trips_total") == 1; }, 5s));
  ASSERT_TRUE(wait_until([&] { return !run.writer.healthy(); }, 5s));
  EXPECT_NE(run.writer.degraded_reason().find("5 messages in a row refused, held as an outage"),
            std::string::npos)
      << run.writer.degraded_reason();
  const int attempts_then = store.attempts_count();
  ASSERT_TRUE(wait_until([&] { return store.attempts_count() > attempts_then + 10; }, 5s));
  EXPECT_EQ(store.letters_count(), 5u);
  EXPECT_EQ(metric(run.metrics, "fieldhub_history_rejected_total"), 5);
  // Fixed: the 15 held messages are stored, the breaker closes.
  store.refuse_all(false);
  ASSERT_TRUE(wait_until([&] { return store.stored_count() == 20; }, 5s));
  EXPECT_TRUE(wait_until([&] { return run.writer.healthy(); }, 5s));
  const std::lock_guard lock(store.mutex);
  ASSERT_EQ(store.stored.size(), 15u);
  EXPECT_EQ(store.stored.front(), "dev-6");
  EXPECT_EQ(store.letters.size(), 5u);
}

TEST(HistoryWriterRefusals, AfterItsHoldTheBreakerLetsOneMoreThroughAndAStoredMessageClosesIt) {
  PickyStore store;
  HistoryWriter::Backoff backoff = fast;
  backoff.breaker_after = 2;
  backoff.breaker_hold = 50ms;
  WriterRun run(store, backoff);
  // Three real poison messages, then good ones: the third waits out the hold, then goes too.
  run.push(1, 3, true);
  run.push(4, 6);
  ASSERT_TRUE(wait_until([&] { return store.stored_count() == 6; }, 5s));
  EXPECT_EQ(metric(run.metrics, "fieldhub_history_breaker_trips_total"), 1);
  EXPECT_EQ(metric(run.metrics, "fieldhub_history_rejected_total"), 3);
  EXPECT_TRUE(wait_until([&] { return run.writer.healthy(); }, 5s));
  // Closed again: a later poison message is dead-lettered at once, not held.
  run.push(7, 7, true);
  run.push(8, 8);
  ASSERT_TRUE(wait_until([&] { return store.stored_count() == 8; }, 5s));
  EXPECT_EQ(metric(run.metrics, "fieldhub_history_breaker_trips_total"), 1);
  const std::lock_guard lock(store.mutex);
  EXPECT_EQ(store.stored, (std::vector<std::string>{"dev-4", "dev-5", "dev-6", "dev-8"}));
}

}  // namespace
}  // namespace fieldhub::pipeline
