// SPDX-License-Identifier: Apache-2.0
#include "pipeline/recent_digests.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <unordered_set>

namespace fieldhub::pipeline {
namespace {

TEST(RecentDigestsTest, ARepeatIsSeenAndAFirstIsRemembered) {
  RecentDigests recent(4);
  EXPECT_FALSE(recent.seen_or_remember(42));
  EXPECT_TRUE(recent.seen_or_remember(42));
  EXPECT_TRUE(recent.contains(42));
  EXPECT_FALSE(recent.contains(43));
  EXPECT_EQ(recent.size(), 1u);
}

TEST(RecentDigestsTest, ZeroIsNeverRemembered) {
  RecentDigests recent(4);
  EXPECT_FALSE(recent.seen_or_remember(0));
  EXPECT_FALSE(recent.seen_or_remember(0));
  EXPECT_EQ(recent.size(), 0u);
}

TEST(RecentDigestsTest, TheOldestIsForgottenOnceFull) {
  RecentDigests recent(3);  // rounded up to 4
  ASSERT_EQ(recent.capacity(), 4u);
  for (std::uint64_t d = 1; d <= 4; ++d) EXPECT_FALSE(recent.seen_or_remember(d));
  EXPECT_FALSE(recent.seen_or_remember(5));  // forgets 1
  EXPECT_FALSE(recent.contains(1));
  for (std::uint64_t d = 2; d <= 5; ++d) EXPECT_TRUE(recent.contains(d)) << d;
  EXPECT_EQ(recent.size(), 4u);
}

// Digests that collide in the table (same low bits after hashing, or simply many in a small
// table) must stay findable while others are forgotten around them: checked against a plain
// reference model over a long random sequence with many repeats.
TEST(RecentDigestsTest, AgreesWithAReferenceOverALongRandomSequence) {
  constexpr std::size_t capacity = 64;
  RecentDigests recent(capacity);
  std::deque<std::uint64_t> order;
  std::unordered_set<std::uint64_t> set;
  std::mt19937_64 rng(7);
  // A small key space makes repeats, evictions and long probe runs common.
  std::uniform_int_distribution<std::uint64_t> key(1, 200);
  for (int i = 0; i < 200000; ++i) {
    // Half the keys spread over the whole 64-bit range, half share their low bits.
    const std::uint64_t k = key(rng);
    const std::uint64_t digest = (i % 2 == 0) ? k * 0x100000001B3ULL : k << 40;
    const bool expected = set.contains(digest);
    ASSERT_EQ(recent.seen_or_remember(digest), expected) << "step " << i;
    if (!expected) {
      order.push_back(digest);
      set.insert(digest);
      if (order.size() > capacity) {
        set.erase(order.front());
        order.pop_front();
      }
    }
    ASSERT_EQ(recent.size(), set.size());
  }
  for (std::uint64_t d : set) EXPECT_TRUE(recent.contains(d));
}

}  // namespace
}  // namespace fieldhub::pipeline
