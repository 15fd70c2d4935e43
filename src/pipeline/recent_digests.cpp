// SPDX-License-Identifier: Apache-2.0
#include "pipeline/recent_digests.h"

#include <bit>

namespace fieldhub::pipeline {

RecentDigests::RecentDigests(std::size_t capacity)
    : ring_(std::bit_ceil(capacity < 1 ? std::size_t{1} : capacity), 0),
      table_(2 * ring_.size(), 0),
      mask_(table_.size() - 1),
      shift_(64 - std::countr_zero(table_.size())) {}

std::size_t RecentDigests::home(std::uint64_t digest) const {
  // Fibonacci hashing (the top bits of the product): the digests are hashes already, but a
  // caller's may have weak low bits.
  return static_cast<std::size_t>((digest * 0x9E3779B97F4A7C15ULL) >> shift_);
}

std::size_t RecentDigests::find(std::uint64_t digest) const {
  std::size_t i = home(digest);
  while (table_[i] != 0 && table_[i] != digest) i = (i + 1) & mask_;
  return i;
}

bool RecentDigests::contains(std::uint64_t digest) const {
  return digest != 0 && table_[find(digest)] == digest;
}

bool RecentDigests::seen_or_remember(std::uint64_t digest) {
  if (digest == 0) return false;
  const std::size_t slot = find(digest);
  if (table_[slot] == digest) return true;
  const std::uint64_t oldest = ring_[next_];
  ring_[next_] = digest;
  next_ = (next_ + 1) & (ring_.size() - 1);
  if (oldest != 0) {
    erase(oldest);
    table_[find(digest)] = digest;  // the erase may have moved entries: look again
  } else {
    table_[slot] = digest;
    ++size_;
  }
  return false;
}

void RecentDigests::erase(std::uint64_t digest) {
  std::size_t hole = find(digest);
  if (table_[hole] != digest) return;
  // Backward-shift: move each later entry of the probe run whose home is not between the hole and
  // itself into the hole, so that every remaining entry stays reachable from its home.
  for (std::size_t j = (hole + 1) & mask_; table_[j] != 0; j = (j + 1) & mask_) {
    const std::size_t h = home(table_[j]);
    const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      table_[hole] = table_[j];
      hole = j;
    }
  }
  table_[hole] = 0;
}

}  // namespace fieldhub::pipeline
