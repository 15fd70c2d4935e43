// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/faults.h"

namespace fieldhub::modbus {

namespace {

FaultAction bad(std::string_view reason) {
  FaultAction a;
  a.quality = model::Quality::bad;
  a.reason = reason;
  return a;
}

FaultAction for_exception(std::uint8_t code) {
  FaultAction a = bad(exception_name(code));
  switch (code) {
    case 0x01:  // illegal function: the device has no such table
    case 0x02:  // illegal data address: the register is not there
    case 0x03:  // illegal data value: e.g. a quantity the device refuses for this range
      a.reason = "misconfigured";
      a.misconfigured = true;
      break;
    case 0x04:  // server device failure: transient by experience; one retry
      a.retry = true;
      a.counts_failure = true;
      break;
    case 0x05:  // acknowledge: accepted, still working (long writes)
    case 0x06:  // busy
      a.busy_retry = true;
      break;
    case 0x0A:  // gateway path unavailable
    case 0x0B:  // gateway target failed to respond: the gateway is fine, the device is not
      a.target_offline = true;
      a.counts_failure = true;
      a.abandon_cycle = true;
      break;
    default:  // 07, 08 and codes the spec does not define: a device fault for this cycle
      a.counts_failure = true;
      break;
  }
  return a;
}

}  // namespace

FaultAction classify(Outcome outcome, ReplyStatus status, std::uint8_t exception) {
  switch (outcome) {
    case Outcome::ok:
      return {};
    case Outcome::timeout: {
      FaultAction a = bad("timeout");
      a.retry = true;
      a.counts_failure = true;
      a.abandon_cycle = true;  // after the retry
      return a;
    }
    case Outcome::connection_lost: {
      FaultAction a = bad("connection_lost");
      a.counts_failure = true;
      a.reconnect = true;
      a.abandon_cycle = true;
      return a;
    }
    case Outcome::reply:
      break;
  }
  FaultAction a;
  switch (status) {
    case ReplyStatus::ok:
      return {};
    case ReplyStatus::exception:
      return for_exception(exception);
    case ReplyStatus::truncated:
      // Only a verdict at the response timeout: until then the transport keeps reading.
      a = bad("truncated");
      a.retry = true;
      a.counts_failure = true;
      return a;
    case ReplyStatus::noise:
    case ReplyStatus::echo:
    case ReplyStatus::wrong_unit:
      // Not a verdict on the request: skip the bytes and keep waiting for the reply. A frame for
      // another unit is most often a late reply to an earlier request; taking it, or giving up
      // on ours because of it, would attribute values to the wrong request.
      a.reparse = true;
      a.reason = to_string(status);
      return a;
    case ReplyStatus::late_reply:
      // Dropped and counted; the request in flight keeps waiting for its own reply.
      a.reason = "late_reply";
      return a;
    case ReplyStatus::bad_crc:
    case ReplyStatus::wrong_function:
    case ReplyStatus::bad_byte_count:
    case ReplyStatus::bad_length:
    case ReplyStatus::bad_echo:
      // A malformed or misdirected reply: rejected with its reason, retried once.
      a = bad(to_string(status));
      a.retry = true;
      a.counts_failure = true;
      return a;
    case ReplyStatus::bad_frame:
      a = bad("bad_frame");
      a.counts_failure = true;
      a.abandon_cycle = true;
      a.reconnect = true;  // no delimiter in Modbus TCP: the stream cannot be resynchronised
      return a;
  }
  return bad("unknown");
}

}  // namespace fieldhub::modbus
