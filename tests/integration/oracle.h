// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fieldhub_process.h"

namespace fieldhub::testing {

// The counting oracle of RELIABILITY.md: numbered messages (one reading "seq" each) from
// `oracle_devices` devices dev-0…dev-9 of FieldhubProcess's test-counter profile, malformed ones
// among them, reconciled against what fieldhub stored: published = stored + rejected (by reason)
// + deduplicated; 0 missing, 0 duplicates.
constexpr int oracle_devices = 10;

struct Plan {
  std::vector<Message> messages;
  std::map<std::string, std::set<std::int64_t>> expected;  // device → seq numbers
  std::size_t valid = 0;
  std::size_t duplicates = 0;
  std::map<std::string, std::size_t> rejected;  // reason → messages sent with that defect
};

// N numbered messages from first_seq; every 40th slot also carries a malformed message and every
// 97th valid message is sent twice (a device retrying). Timestamps are an hour ago + seq ms.
Plan make_plan(std::int64_t first_seq, std::int64_t count);

double metric(const std::map<std::string, double>& m, const std::string& key);

struct Reconciliation {
  std::size_t missing = 0;
  std::size_t duplicated = 0;
  std::size_t unexpected = 0;
  std::size_t stored = 0;
};

// Every stored seq per device read back through the history API, against the plan.
Reconciliation reconcile(const Plan& plan, const FieldhubProcess& fh);

// Waits until fieldhub has committed every valid message of the plan.
bool wait_all_stored(const FieldhubProcess& fh, const Plan& plan,
                     std::chrono::milliseconds deadline);

}  // namespace fieldhub::testing
