// SPDX-License-Identifier: Apache-2.0
#include "history_store_contract.h"
#include "stores/sqlite/sqlite_db.h"
#include "stores/sqlite/sqlite_history_store.h"
#include "temp_dir.h"

namespace fieldhub::contract {
namespace {

// A fresh SQLite file in a temp dir. The mid-batch failure is a trigger on events that aborts
// the insert, created from a second connection as another process could.
class SqliteHarness final : public HistoryStoreHarness {
 public:
  std::unique_ptr<stores::HistoryStore> open() override {
    auto store = stores::SqliteHistoryStore::open(file_);
    if (!store.ok()) {
      ADD_FAILURE() << store.status().message();
      return nullptr;
    }
    return std::move(store.value());
  }

  bool fail_event_writes(bool on) override {
    auto db = sqlite::Database::open(file_, sqlite::OpenMode::read_write);
    if (!db.ok()) return false;
    const sqlite::Status s = db.value().exec(
        on ? "CREATE TRIGGER contract_fault BEFORE INSERT ON events "
             "BEGIN SELECT RAISE(ABORT, 'injected fault: event insert refused'); END"
           : "DROP TRIGGER contract_fault");
    EXPECT_TRUE(s.ok()) << s.message();
    return s.ok();
  }

 private:
  TempDir dir_;
  std::filesystem::path file_ = dir_.path() / "history.db";
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(sqlite, HistoryStoreContract,
                         ::testing::Values(HistoryStoreImpl{
                             "sqlite", [] { return std::make_unique<SqliteHarness>(); }}),
                         history_store_name);
INSTANTIATE_TEST_SUITE_P(sqlite, HistoryRollupContract,
                         ::testing::Values(HistoryStoreImpl{
                             "sqlite", [] { return std::make_unique<SqliteHarness>(); }}),
                         history_store_name);

}  // namespace fieldhub::contract
