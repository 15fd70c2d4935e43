// SPDX-License-Identifier: Apache-2.0
#pragma once

// The HistoryStore contract, written against the interface only. An implementation joins by
// writing a harness (how to open it on fresh data, reopen it, and make a write fail midway) and
// instantiating the suite with it:
//   INSTANTIATE_TEST_SUITE_P(sqlite, HistoryStoreContract, ::testing::Values(HistoryStoreImpl{
//       "sqlite", [] { return std::make_unique<SqliteHarness>(); }}), history_store_name);

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "stores/history_store.h"

namespace fieldhub::contract {

// One implementation under test, on data of its own (a temp file, a fresh schema) that lives
// as long as the harness.
class HistoryStoreHarness {
 public:
  virtual ~HistoryStoreHarness() = default;
  // Opens a store on the harness's data. Called again after the previous store was destroyed, it
  // is a restart: everything written before must be there. Null if the store cannot be opened.
  virtual std::unique_ptr<stores::HistoryStore> open() = 0;
  // While on, a write fails when it reaches an event, after the batch's readings went in (as a
  // disk or server failing mid-batch). Returns false if the implementation cannot do this.
  virtual bool fail_event_writes(bool on) = 0;
};

struct HistoryStoreImpl {
  std::string name;
  // Null when the implementation's server is not available: the tests then skip.
  std::function<std::unique_ptr<HistoryStoreHarness>()> make;
};

// gtest names the failing instance by this instead of dumping the struct's bytes.
inline void PrintTo(const HistoryStoreImpl& impl, std::ostream* os) {
  *os << impl.name;
}

class HistoryStoreContract : public ::testing::TestWithParam<HistoryStoreImpl> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    if (!harness_) GTEST_SKIP() << GetParam().name << " is not available";
    store_ = harness_->open();
    ASSERT_TRUE(store_) << "cannot open " << GetParam().name;
  }
  void TearDown() override { store_.reset(); }
  void reopen() {
    store_.reset();
    store_ = harness_->open();
    ASSERT_TRUE(store_) << "cannot reopen " << GetParam().name;
  }

  std::unique_ptr<HistoryStoreHarness> harness_;
  std::unique_ptr<stores::HistoryStore> store_;
};

// The rollup half of the contract (history_rollup_contract.cpp); instantiated like the above.
class HistoryRollupContract : public HistoryStoreContract {};

inline std::string history_store_name(const ::testing::TestParamInfo<HistoryStoreImpl>& info) {
  return info.param.name;
}

}  // namespace fieldhub::contract
