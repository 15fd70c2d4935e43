// SPDX-License-Identifier: Apache-2.0
#pragma once

// The LiveStore contract, written against the interface only. An implementation joins by
// instantiating the suite with a factory:
//   INSTANTIATE_TEST_SUITE_P(memory, LiveStoreContract, ::testing::Values(LiveStoreImpl{
//       "memory", [] { return std::make_unique<stores::MemoryLiveStore>(); }}), live_store_name);

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "stores/live_store.h"

namespace fieldhub::contract {

struct LiveStoreImpl {
  std::string name;
  // A new, empty store. May return null when its server is not available: the tests then skip.
  std::function<std::unique_ptr<stores::LiveStore>()> make;
};

// gtest names the failing instance by this instead of dumping the struct's bytes.
inline void PrintTo(const LiveStoreImpl& impl, std::ostream* os) {
  *os << impl.name;
}

class LiveStoreContract : public ::testing::TestWithParam<LiveStoreImpl> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    if (!store_) GTEST_SKIP() << GetParam().name << " is not available";
  }
  std::unique_ptr<stores::LiveStore> store_;
};

inline std::string live_store_name(const ::testing::TestParamInfo<LiveStoreImpl>& info) {
  return info.param.name;
}

}  // namespace fieldhub::contract
