// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fieldhub::pipeline {

// The digests of the last `capacity` messages, to recognise a broker redelivery of a message still
// in flight here. remember() is called for every inbound message on the io thread, so it neither
// allocates nor chases pointers: a ring in arrival order (which digest to forget next) and an
// open-addressing table (linear probing, at most half full, backward-shift deletion) to look up.
// Digest 0 means "none" and is never remembered.
class RecentDigests {
 public:
  // `capacity` is rounded up to a power of two.
  explicit RecentDigests(std::size_t capacity);

  // True if `digest` is among the remembered ones; otherwise remembers it, forgetting the oldest
  // once full.
  bool seen_or_remember(std::uint64_t digest);
  bool contains(std::uint64_t digest) const;
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return ring_.size(); }

 private:
  std::size_t home(std::uint64_t digest) const;
  // The slot holding `digest`, or the empty slot where it would go.
  std::size_t find(std::uint64_t digest) const;
  void erase(std::uint64_t digest);

  std::vector<std::uint64_t> ring_;
  std::size_t next_ = 0;
  std::vector<std::uint64_t> table_;
  std::size_t mask_ = 0;
  int shift_ = 0;
  std::size_t size_ = 0;
};

}  // namespace fieldhub::pipeline
