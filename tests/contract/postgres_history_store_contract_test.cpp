// SPDX-License-Identifier: Apache-2.0
#include "history_store_contract.h"
#include "stores/postgres/postgres_history_store.h"
#include "support/postgres_server.h"

namespace fieldhub::contract {
namespace {

// A fresh database on the binary's one PostgreSQL server. The mid-batch failure is a trigger on
// events that raises, created from a second connection as another client could.
class PostgresHarness final : public HistoryStoreHarness {
 public:
  PostgresHarness(testing::PostgresServer& server, stores::PostgresOptions options)
      : server_(server), url_(server.create_database()), options_(options) {}

  std::unique_ptr<stores::HistoryStore> open() override {
    auto store = stores::PostgresHistoryStore::open(url_, options_);
    if (!store.ok()) {
      ADD_FAILURE() << store.status().message();
      return nullptr;
    }
    return std::move(store.value());
  }

  bool fail_event_writes(bool on) override {
    server_.execute(url_,
                    on ? "CREATE FUNCTION contract_fault() RETURNS trigger LANGUAGE plpgsql "
                         "AS $$ BEGIN RAISE EXCEPTION 'injected fault: event insert "
                         "refused'; END $$; "
                         "CREATE TRIGGER contract_fault BEFORE INSERT ON events "
                         "FOR EACH ROW EXECUTE FUNCTION contract_fault()"
                       : "DROP TRIGGER contract_fault ON events; DROP FUNCTION contract_fault()");
    return true;
  }

 private:
  testing::PostgresServer& server_;
  std::string url_;
  stores::PostgresOptions options_;
};

// As shipped: within a test's few writes the rollup rows mostly stay pending, so queries merge
// them with the stored buckets.
std::unique_ptr<HistoryStoreHarness> make_postgres() {
  testing::PostgresServer* server = testing::shared_postgres_server();
  if (server == nullptr) return nullptr;
  return std::make_unique<PostgresHarness>(*server, stores::PostgresOptions{});
}

// The folder thread folding after every batch: the rollups move into the stored buckets while
// the test writes and reads.
std::unique_ptr<HistoryStoreHarness> make_postgres_folding() {
  testing::PostgresServer* server = testing::shared_postgres_server();
  if (server == nullptr) return nullptr;
  stores::PostgresOptions options;
  options.rollup_fold_interval = std::chrono::milliseconds{0};
  return std::make_unique<PostgresHarness>(*server, options);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(postgres, HistoryStoreContract,
                         ::testing::Values(HistoryStoreImpl{"postgres", make_postgres}),
                         history_store_name);
INSTANTIATE_TEST_SUITE_P(postgres, HistoryRollupContract,
                         ::testing::Values(HistoryStoreImpl{"postgres", make_postgres},
                                           HistoryStoreImpl{"postgres_folding_every_batch",
                                                            make_postgres_folding}),
                         history_store_name);

}  // namespace fieldhub::contract
