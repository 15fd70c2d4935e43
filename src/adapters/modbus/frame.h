// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace fieldhub::modbus {

// Modbus application protocol v1.1b: the function codes fieldhub sends.
enum class FunctionCode : std::uint8_t {
  read_coils = 0x01,
  read_discrete_inputs = 0x02,
  read_holding_registers = 0x03,
  read_input_registers = 0x04,
  write_single_coil = 0x05,
  write_single_register = 0x06,
  write_multiple_coils = 0x0F,
  write_multiple_registers = 0x10,
};

FunctionCode read_function(config::ModbusFunction function);

// Exception codes (v1.1b §7); 07 is from the older Modicon reference.
enum class ExceptionCode : std::uint8_t {
  none = 0x00,
  illegal_function = 0x01,
  illegal_data_address = 0x02,
  illegal_data_value = 0x03,
  server_device_failure = 0x04,
  acknowledge = 0x05,
  server_device_busy = 0x06,
  negative_acknowledge = 0x07,
  memory_parity_error = 0x08,
  gateway_path_unavailable = 0x0A,
  gateway_target_failed = 0x0B,
};

// "illegal_data_address", ...; "exception_<hex>" for codes the spec does not define.
std::string_view exception_name(std::uint8_t code);

// What was sent, kept by the transport to check the reply against.
struct Request {
  std::uint8_t unit = 1;
  FunctionCode function = FunctionCode::read_holding_registers;
  std::uint16_t address = 0;
  std::uint16_t count = 1;        // registers or bits; 1 for FC05/FC06
  std::vector<std::uint8_t> pdu;  // function code + data, as built below
};

// Request PDUs. Quantities beyond the spec (0, >125 registers, >2000 bits, >123 written registers,
// >1968 written coils) are the caller's bug: they are clamped by the planner, asserted here.
Request read_request(std::uint8_t unit, FunctionCode function, std::uint16_t address,
                     std::uint16_t count);
Request write_single_coil(std::uint8_t unit, std::uint16_t address, bool on);
Request write_single_register(std::uint8_t unit, std::uint16_t address, std::uint16_t value);
Request write_multiple_coils(std::uint8_t unit, std::uint16_t address,
                             std::span<const bool> values);
Request write_multiple_registers(std::uint8_t unit, std::uint16_t address,
                                 std::span<const std::uint16_t> values);

// Why a reply was not taken. Stable strings (to_string) are counter labels and reading reasons.
enum class ReplyStatus : std::uint8_t {
  ok,
  exception,       // a valid exception reply: see ExceptionCode
  truncated,       // not a whole frame yet: wait for more bytes (or the response timeout)
  wrong_unit,      // a whole frame for another unit (or a late reply on RTU)
  wrong_function,  // neither the function we sent nor its exception
  bad_byte_count,  // the byte count disagrees with the quantity we asked for
  bad_crc,         // RTU: frame for us, CRC wrong
  bad_echo,        // a write reply whose address / value / quantity differs from the request
  bad_length,      // TCP: the PDU is longer or shorter than its function implies
  noise,           // RTU: bytes that start no frame; drop `consumed` and parse again
  echo,            // RTU: our own request heard back on a 2-wire bus; drop and parse again
  bad_frame,       // TCP: MBAP header impossible (protocol id, length): the stream is lost
  late_reply,      // TCP: a transaction id we are no longer waiting for; dropped and counted
};

std::string_view to_string(ReplyStatus status);

// A checked reply. For reads, registers or bits hold the data (count of them).
struct Reply {
  ReplyStatus status = ReplyStatus::truncated;
  std::uint8_t exception = 0;  // status exception: the raw code (01..0B, or anything)
  std::size_t consumed = 0;    // RTU: bytes of the buffer this verdict covers
  std::vector<std::uint16_t> registers;
  std::vector<bool> bits;
};

// Checks a reply PDU (function code + data) against the request: function, exception, byte
// count, data length and, for writes, the echoed fields. Shared by TCP and RTU.
Reply check_pdu(const Request& request, std::span<const std::uint8_t> pdu);

// --- Modbus TCP (MBAP header: transaction, protocol 0, length, unit) ---------------------------

// Modbus messaging on TCP/IP v1.0b §3.1: the ADU is at most 260 bytes (7 header + 253 PDU).
constexpr std::size_t max_tcp_adu = 260;

std::vector<std::uint8_t> encode_tcp(std::uint16_t transaction, const Request& request);

struct TcpFrame {
  std::uint16_t transaction = 0;
  std::uint8_t unit = 0;
  std::vector<std::uint8_t> pdu;
};

// Push decoder for the byte stream of one TCP connection: feed() what arrived, then next()
// until it returns nullopt. After bad_frame the stream cannot be resynchronised (no frame
// delimiter in Modbus TCP): the transport closes the connection. Single-threaded: the owner's.
class TcpFrameDecoder {
 public:
  void feed(std::span<const std::uint8_t> bytes);
  std::optional<TcpFrame> next();
  bool failed() const { return failed_; }
  std::size_t buffered() const { return buffer_.size() - start_; }
  void reset();

 private:
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;
  bool failed_ = false;
};

// Checks a decoded TCP frame against the request in flight with `transaction`: a different
// transaction is late_reply (never taken for this request); a different unit is wrong_unit.
Reply check_tcp_reply(std::uint16_t transaction, const Request& request, const TcpFrame& frame);

// --- Modbus RTU (unit, PDU, CRC-16/Modbus little-endian) --------------------------------------

// CRC-16/MODBUS: poly 0xA001 reflected, init 0xFFFF (Modbus over serial line v1.02 §6.2.2).
std::uint16_t crc16(std::span<const std::uint8_t> bytes);

std::vector<std::uint8_t> encode_rtu(const Request& request);

// Parses what arrived on the bus since `request` was sent. RTU has no transaction id: only the
// unit, function and shape tell a reply from noise, an echo or a late reply for someone else.
// Verdicts with consumed > 0 and status noise or echo mean: drop that many bytes and call again;
// truncated means wait. echo_pending: the bus echoes (SerialBus::echo: a 2-wire RS-485 adapter
// that hears itself) and this request's echo has not been skipped yet; pass false once it has.
// Then one copy of the request is always skipped first, which is the only way
// to tell it apart for FC05/FC06, whose normal reply is byte-identical to the request.
Reply parse_rtu(const Request& request, std::span<const std::uint8_t> buffer,
                bool echo_pending = false);

// Bytes a whole RTU reply to `request` takes (for the transport's read size and timeouts).
std::size_t expected_rtu_reply_size(const Request& request);

}  // namespace fieldhub::modbus
