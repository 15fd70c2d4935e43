// SPDX-License-Identifier: Apache-2.0
#include "alarms/alarm_journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace fieldhub::alarms {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = *model::parse_rfc3339("2026-03-01T12:00:00Z");

Alarm sample(std::uint64_t id) {
  Alarm a;
  a.id = id;
  a.source = "nc-12-2/call";
  a.device = "nc-12-2";
  a.site = "st-mary";
  a.location = {{"ward", "3"}, {"room", "12"}, {"bed", "2"}};
  a.type = "call";
  a.priority = model::Priority::high;
  a.base_priority = model::Priority::medium;
  a.state = State::active_acked;
  a.message = "Patient call \"bed 2\"";
  a.raised_at = t0;
  a.changed_at = t0 + 3s;
  a.escalation_from = t0 + 1us;
  a.notified_at = t0 + 2s;
  a.acked_at = t0 + 3s;
  a.acked_by = "nurse.a";
  a.shelved_until = t0 + 1h;
  a.shelved_by = "charge";
  a.count = 4;
  a.tier = 1;
  a.comments = {{"nurse.a", t0 + 3s, "on my way ✓"}};
  a.origins = {1, 18446744073709551615ull};
  return a;
}

class AlarmJournalTest : public ::testing::Test {
 protected:
  AlarmJournalTest() { std::filesystem::create_directories(dir_); }
  ~AlarmJournalTest() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("fieldhub_journal_test_" + std::to_string(::getpid()) + "_" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  common::Metrics metrics_;
};

TEST_F(AlarmJournalTest, EveryFieldRoundTripsExactly) {
  const Alarm a = sample(7);
  const auto back = AlarmJournal::decode(AlarmJournal::encode(a));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(AlarmJournal::encode(*back), AlarmJournal::encode(a));
  EXPECT_EQ(back->escalation_from, t0 + 1us);
  EXPECT_EQ(back->location.at(2).second, "2");
  EXPECT_EQ(back->comments.at(0).text, "on my way ✓");
  EXPECT_EQ(back->origins.at(1), 18446744073709551615ull);
  EXPECT_FALSE(AlarmJournal::decode("{\"id\":0}").has_value());
  EXPECT_FALSE(AlarmJournal::decode("not json").has_value());
}

TEST_F(AlarmJournalTest, TheLastLinePerAlarmWinsAndATornTailIsSkipped) {
  {
    AlarmJournal j(dir_ / "alarms.journal", metrics_);
    Alarm a = sample(1);
    j.append(a);
    a.count = 9;
    j.append(a);
    j.append(sample(2));
  }
  // A crash in the middle of a write leaves half a line.
  const std::string half = AlarmJournal::encode(sample(3)).substr(0, 40);
  std::ofstream(dir_ / "alarms.journal", std::ios::app) << half;

  AlarmJournal j(dir_ / "alarms.journal", metrics_);
  const JournalLoad load = j.load();
  EXPECT_EQ(load.lines, 4u);
  EXPECT_EQ(load.malformed, 1u);
  ASSERT_EQ(load.alarms.size(), 2u);
  EXPECT_EQ(load.alarms[0].count, 9u);

  // Compaction keeps what it is given, whole, and appends go on after it.
  std::vector<const Alarm*> keep{&load.alarms[1]};
  ASSERT_TRUE(j.compact(keep));
  j.append(sample(5));
  ASSERT_TRUE(j.flush());  // appends are written by the journal's thread
  const JournalLoad after = j.load();
  EXPECT_EQ(after.malformed, 0u);
  ASSERT_EQ(after.alarms.size(), 2u);
  EXPECT_EQ(after.alarms[0].id, 2u);
  EXPECT_EQ(after.alarms[1].id, 5u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_alarm_journal_errors_total"), 0u);
}

TEST_F(AlarmJournalTest, MarksBecomeDurableOnTheWriterThreadAndEachSyncIsReported) {
  std::atomic<int> synced{0};
  AlarmJournal j(dir_ / "alarms.journal", metrics_, [&synced] { ++synced; });
  for (std::uint64_t id = 1; id <= 100; ++id) j.append(sample(id));
  EXPECT_EQ(j.mark(), 100u);
  ASSERT_TRUE(j.flush());
  EXPECT_EQ(j.durable(), 100u);
  EXPECT_GE(synced.load(), 1);
  // A burst shares syncs: never more syncs than appends, and every sync was reported.
  const auto syncs = metrics_.counter_value("fieldhub_alarm_journal_syncs_total");
  EXPECT_LE(syncs, 100u);
  // The report follows the sync it reports (flush() may return in between): poll, with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (static_cast<std::uint64_t>(synced.load()) < syncs &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(static_cast<std::uint64_t>(synced.load()), syncs);
  EXPECT_EQ(j.load().alarms.size(), 100u);
}

TEST_F(AlarmJournalTest, AFailingDiskHoldsTheMarkBackAndItCatchesUpWhenTheDiskReturns) {
  const auto folder = dir_ / "not-yet";
  AlarmJournal j(folder / "alarms.journal", metrics_);
  j.append(sample(1));  // no throw: the writer thread fails, counts and retries
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (metrics_.counter_value("fieldhub_alarm_journal_errors_total") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_GE(metrics_.counter_value("fieldhub_alarm_journal_errors_total"), 1u);
  EXPECT_FALSE(j.flush(std::chrono::milliseconds{100}));
  EXPECT_EQ(j.durable(), 0u);  // whatever waits on this mark (an MQTT acknowledgement) waits
  std::filesystem::create_directories(folder);
  j.append(sample(2));
  ASSERT_TRUE(j.flush());
  EXPECT_EQ(j.durable(), 2u);
  EXPECT_EQ(j.load().alarms.size(), 2u);  // the failed line was written too
}

}  // namespace
}  // namespace fieldhub::alarms
