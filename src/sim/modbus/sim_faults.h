// SPDX-License-Identifier: Apache-2.0
#pragma once

// Fault injection for the simulator: what a misbehaving slave or gateway puts on the wire.
// Pure functions; the transports only schedule the Transmissions they return.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/modbus/sim_device.h"

namespace fieldhub::sim {

enum class FaultKind : std::uint8_t {
  silence,         // no reply
  late,            // the reply after delay_ms
  exception,       // exception response with `code`, request not executed
  wrong_unit,      // reply from another unit id (id + 1)
  wrong_function,  // reply with another function code (03<->04, 01<->02, 05<->06, 0F<->10)
  bad_byte_count,  // read replies: byte count field 2 more than the data sent
  truncated,       // the last `bytes` bytes cut (TCP: of the PDU, MBAP length matching)
  bad_crc,         // RTU: CRC bytes inverted (TCP: no CRC, reply unchanged)
  noise_before,    // `bytes` noise bytes, then the frame, in one write (no silence between)
  noise_after,     // the frame, then `bytes` noise bytes, in one write
  echo,            // the request sent back verbatim (an echoing RS-485 adapter), then the reply
  duplicate,       // the reply twice
  ignore_write,    // a write is answered as done but not executed (the read-back differs)
};
std::optional<FaultKind> parse_fault_kind(std::string_view name);
std::string_view to_string(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::silence;
  std::chrono::milliseconds delay{1000};  // late
  std::uint8_t code = 0x04;               // exception
  std::uint16_t first = 0;                // addresses the fault applies to: a request that
  std::uint16_t last = 0xFFFF;            // touches [first, last] (all requests by default)
  std::uint32_t every = 1;                // only every Nth matching request (1: each one)
  std::uint32_t bytes = 3;                // noise length, bytes cut by truncated
  std::uint8_t function = 0;              // only requests with this function code (0: any)
  std::uint32_t times = 0;                // fires at most this often (0: no limit)
  std::uint64_t matched = 0;              // matching requests so far
  std::uint64_t fired = 0;

  // Counts a matching request (function code `function_code`, touching `range`) and says whether
  // the fault fires on it.
  bool fires(std::uint8_t function_code, std::optional<RequestRange> range);
};

// "kind key=value ..." with keys delay_ms, code, from, to, every, bytes, function, times (numbers
// decimal or 0x..).
// On failure returns nullopt and sets `error`.
std::optional<Fault> parse_fault(std::span<const std::string_view> words, std::string& error);
std::string describe(const Fault& fault);  // the same syntax, for logs and "list"

enum class Framing : std::uint8_t { tcp, rtu };

struct Transmission {
  std::chrono::milliseconds delay{0};  // after the request was received
  bool gap_before = false;             // RTU: a frame gap (3.5 characters) before these bytes
  std::vector<std::uint8_t> bytes;
};

struct Request {
  Framing framing = Framing::tcp;
  std::uint8_t unit = 1;
  std::uint16_t transaction = 0;        // TCP only
  std::span<const std::uint8_t> frame;  // the whole request as received (for echo)
};

// The frame of `pdu` for `unit`: MBAP header + PDU (TCP) or unit + PDU + CRC (RTU).
std::vector<std::uint8_t> frame_pdu(const Request& request, std::uint8_t unit,
                                    std::span<const std::uint8_t> pdu);

// The wire bytes answering `request` with `response` (a PDU), mangled as `fault` says (nullptr:
// a correct reply). silence and exception are decided by the caller before serving.
std::vector<Transmission> frame_replies(const Request& request, std::vector<std::uint8_t> response,
                                        const Fault* fault);

}  // namespace fieldhub::sim
