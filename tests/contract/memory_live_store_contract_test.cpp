// SPDX-License-Identifier: Apache-2.0
#include "live_store_contract.h"
#include "stores/memory/memory_live_store.h"

namespace fieldhub::contract {

INSTANTIATE_TEST_SUITE_P(memory, LiveStoreContract,
                         ::testing::Values(LiveStoreImpl{
                             "memory", [] { return std::make_unique<stores::MemoryLiveStore>(); }}),
                         live_store_name);

}  // namespace fieldhub::contract
