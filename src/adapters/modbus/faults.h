// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

#include "adapters/modbus/frame.h"
#include "model/quality.h"

namespace fieldhub::modbus {

// What happened to one request, as the transport saw it.
enum class Outcome : std::uint8_t {
  ok,
  timeout,          // no (whole) reply within the response timeout
  connection_lost,  // TCP: refused, reset or closed; serial: port gone
  reply,            // a reply was parsed: see ReplyStatus / exception code
};

// What the poller does about it. Pure data, so the whole table is unit-tested (RELIABILITY.md,
// Modbus): the caller owns the counters, retries and link state.
struct FaultAction {
  model::Quality quality = model::Quality::good;  // for the readings the request served
  std::string_view reason;  // reading quality_reason and counter label; empty when good
  bool retry = false;       // send the same request again now (once, within this cycle)
  bool busy_retry = false;  // the device is busy: retry after a short pause (05 ack / 06 busy)
  bool misconfigured =
      false;  // the map is wrong for this device: mark these metrics, keep the rest
  bool target_offline = false;  // gateway answered for an absent device: device offline, link up
  bool counts_failure = false;  // counts towards "offline after N failed cycles"
  bool reconnect = false;       // TCP stream lost or out of step: close and reconnect
  bool reparse = false;         // RTU: drop Reply::consumed bytes and parse the rest again
};

// Maps an outcome to the poller's action. For Outcome::reply, `status` and `exception` say which.
FaultAction classify(Outcome outcome, ReplyStatus status = ReplyStatus::ok,
                     std::uint8_t exception = 0);

inline FaultAction classify(const Reply& reply) {
  return classify(Outcome::reply, reply.status, reply.exception);
}

}  // namespace fieldhub::modbus
