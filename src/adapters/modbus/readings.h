// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "adapters/modbus/faults.h"
#include "adapters/modbus/frame.h"
#include "adapters/modbus/read_plan.h"
#include "config/config.h"
#include "model/reading.h"

namespace fieldhub::modbus {

// Who the readings are for and when the reply arrived (Modbus devices send no time of their own).
struct ReadingContext {
  std::string_view device_id;
  model::Timestamp received;
  std::string_view adapter = "modbus";  // Provenance::adapter: modbus_tcp, modbus_rtu
  std::string_view link;                // Provenance::link: "10.0.0.5:502", "bus1"
};

// One reading per item of `request` from a reply with status ok: decoded, scaled, checked against
// the metric's min/max (bad "out_of_range", value kept as in the MQTT path). Appends to `out`.
void append_readings(const config::Profile& profile, const ReadRequest& request, const Reply& reply,
                     const ReadingContext& context, std::vector<model::Reading>& out);

// One bad reading (no value) per item of `request`, with the action's reason: what a timeout,
// exception or malformed reply leaves behind, so a dead device shows bad quality, never 0.
void append_failed(const config::Profile& profile, const ReadRequest& request,
                   std::string_view reason, const ReadingContext& context,
                   std::vector<model::Reading>& out);

// A merged read refused with 01/02/03 does not say which register is wrong (or whether the hole
// it spans is): the poller re-reads each item alone to find the misconfigured ones.
std::vector<ReadRequest> split_per_item(const config::Profile& profile, const ReadRequest& request);

// The request for one planned read.
Request to_request(std::uint8_t unit, const ReadRequest& read);

}  // namespace fieldhub::modbus
