// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
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

// The result of one request as a transport (TCP connection or serial bus) hands it to the poller:
// the outcome, the checked reply (for Outcome::reply) and the round-trip time.
struct LinkResult {
  Outcome outcome = Outcome::timeout;
  Reply reply;
  std::chrono::microseconds rtt{0};
};

// What the poller does about it. Pure data, so the whole table is unit-tested (RELIABILITY.md,
// Modbus): the caller owns the counters, retries and link state.
struct FaultAction {
  model::Quality quality = model::Quality::good;  // for the readings the request served
  std::string_view reason;  // reading quality_reason and counter label; empty when good
  // Send the same request again now: once, and only while the device is online.
  bool retry = false;
  // The device is busy (05 acknowledge / 06 busy): retry after a short pause.
  bool busy_retry = false;
  // The map is wrong for this device: mark these metrics "misconfigured", keep reading the rest.
  bool misconfigured = false;
  // A gateway answered for an absent device: the device is offline, the gateway link is up.
  bool target_offline = false;
  // Counts towards "offline after N failed cycles".
  bool counts_failure = false;
  // TCP stream lost or out of step: close and reconnect.
  bool reconnect = false;
  // RTU: drop Reply::consumed bytes and parse the rest again; not a verdict on the request.
  bool reparse = false;
  // The device is unreachable: send none of its other requests this cycle and mark their metrics
  // bad with the same reason, so one dead slave costs its bus at most one timeout per cycle.
  bool abandon_cycle = false;
};

// Maps an outcome to the poller's action. For Outcome::reply, `status` and `exception` say which.
FaultAction classify(Outcome outcome, ReplyStatus status = ReplyStatus::ok,
                     std::uint8_t exception = 0);

inline FaultAction classify(const Reply& reply) {
  return classify(Outcome::reply, reply.status, reply.exception);
}

}  // namespace fieldhub::modbus
