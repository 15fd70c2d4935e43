// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

namespace fieldhub::common {

// FNV-1a, 64 bit: a stable digest (same value across runs and builds) for recognising repeats.
// Not for security.
class Fnv1a {
 public:
  Fnv1a& add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      state_ ^= c;
      state_ *= prime;
    }
    return *this;
  }
  Fnv1a& add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      state_ ^= (v >> (8 * i)) & 0xFF;
      state_ *= prime;
    }
    return *this;
  }
  // Never 0, so 0 can mean "no digest".
  std::uint64_t value() const { return state_ == 0 ? 1 : state_; }

 private:
  static constexpr std::uint64_t prime = 1099511628211ULL;
  std::uint64_t state_ = 14695981039346656037ULL;
};

}  // namespace fieldhub::common
