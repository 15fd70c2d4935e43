// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/frame.h"

#include <algorithm>
#include <array>
#include <cassert>

namespace fieldhub::modbus {

namespace {

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

bool is_read(FunctionCode f) {
  return f == FunctionCode::read_coils || f == FunctionCode::read_discrete_inputs ||
         f == FunctionCode::read_holding_registers || f == FunctionCode::read_input_registers;
}

bool reads_bits(FunctionCode f) {
  return f == FunctionCode::read_coils || f == FunctionCode::read_discrete_inputs;
}

std::size_t expected_byte_count(const Request& r) {
  return reads_bits(r.function) ? (std::size_t{r.count} + 7) / 8 : std::size_t{r.count} * 2;
}

Reply verdict(ReplyStatus status, std::size_t consumed = 0) {
  Reply r;
  r.status = status;
  r.consumed = consumed;
  return r;
}

}  // namespace

FunctionCode read_function(config::ModbusFunction function) {
  switch (function) {
    case config::ModbusFunction::coil:
      return FunctionCode::read_coils;
    case config::ModbusFunction::discrete_input:
      return FunctionCode::read_discrete_inputs;
    case config::ModbusFunction::holding:
      return FunctionCode::read_holding_registers;
    case config::ModbusFunction::input:
      return FunctionCode::read_input_registers;
  }
  return FunctionCode::read_holding_registers;
}

std::string_view exception_name(std::uint8_t code) {
  switch (code) {
    case 0x01:
      return "illegal_function";
    case 0x02:
      return "illegal_data_address";
    case 0x03:
      return "illegal_data_value";
    case 0x04:
      return "server_device_failure";
    case 0x05:
      return "acknowledge";
    case 0x06:
      return "server_device_busy";
    case 0x07:
      return "negative_acknowledge";
    case 0x08:
      return "memory_parity_error";
    case 0x0A:
      return "gateway_path_unavailable";
    case 0x0B:
      return "gateway_target_failed_to_respond";
    default:
      return "exception_unknown";
  }
}

std::string_view to_string(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::ok:
      return "ok";
    case ReplyStatus::exception:
      return "exception";
    case ReplyStatus::truncated:
      return "truncated";
    case ReplyStatus::wrong_unit:
      return "wrong_unit";
    case ReplyStatus::wrong_function:
      return "wrong_function";
    case ReplyStatus::bad_byte_count:
      return "bad_byte_count";
    case ReplyStatus::bad_crc:
      return "bad_crc";
    case ReplyStatus::bad_echo:
      return "bad_echo";
    case ReplyStatus::bad_length:
      return "bad_length";
    case ReplyStatus::noise:
      return "noise";
    case ReplyStatus::echo:
      return "echo";
    case ReplyStatus::bad_frame:
      return "bad_frame";
    case ReplyStatus::late_reply:
      return "late_reply";
  }
  return "?";
}

Request read_request(std::uint8_t unit, FunctionCode function, std::uint16_t address,
                     std::uint16_t count) {
  assert(is_read(function));
  assert(count >= 1 && count <= (reads_bits(function) ? 2000 : 125));
  Request r{unit, function, address, count, {}};
  r.pdu.reserve(5);
  r.pdu.push_back(static_cast<std::uint8_t>(function));
  put16(r.pdu, address);
  put16(r.pdu, count);
  return r;
}

Request write_single_coil(std::uint8_t unit, std::uint16_t address, bool on) {
  Request r{unit, FunctionCode::write_single_coil, address, 1, {}};
  r.pdu.push_back(static_cast<std::uint8_t>(r.function));
  put16(r.pdu, address);
  put16(r.pdu, on ? 0xFF00 : 0x0000);  // v1.1b §6.5: ON is FF 00, OFF 00 00
  return r;
}

Request write_single_register(std::uint8_t unit, std::uint16_t address, std::uint16_t value) {
  Request r{unit, FunctionCode::write_single_register, address, 1, {}};
  r.pdu.push_back(static_cast<std::uint8_t>(r.function));
  put16(r.pdu, address);
  put16(r.pdu, value);
  return r;
}

Request write_multiple_coils(std::uint8_t unit, std::uint16_t address,
                             std::span<const bool> values) {
  assert(!values.empty() && values.size() <= 1968);  // v1.1b §6.11
  Request r{unit,
            FunctionCode::write_multiple_coils,
            address,
            static_cast<std::uint16_t>(values.size()),
            {}};
  r.pdu.push_back(static_cast<std::uint8_t>(r.function));
  put16(r.pdu, address);
  put16(r.pdu, r.count);
  const std::size_t bytes = (values.size() + 7) / 8;
  r.pdu.push_back(static_cast<std::uint8_t>(bytes));
  const std::size_t first = r.pdu.size();
  r.pdu.resize(first + bytes, 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    // The first coil is the least significant bit of the first byte.
    if (values[i]) r.pdu[first + i / 8] |= static_cast<std::uint8_t>(1U << (i % 8));
  }
  return r;
}

Request write_multiple_registers(std::uint8_t unit, std::uint16_t address,
                                 std::span<const std::uint16_t> values) {
  assert(!values.empty() && values.size() <= 123);  // v1.1b §6.12
  Request r{unit,
            FunctionCode::write_multiple_registers,
            address,
            static_cast<std::uint16_t>(values.size()),
            {}};
  r.pdu.push_back(static_cast<std::uint8_t>(r.function));
  put16(r.pdu, address);
  put16(r.pdu, r.count);
  r.pdu.push_back(static_cast<std::uint8_t>(values.size() * 2));
  for (const std::uint16_t v : values) put16(r.pdu, v);
  return r;
}

Reply check_pdu(const Request& request, std::span<const std::uint8_t> pdu) {
  if (pdu.empty()) return verdict(ReplyStatus::bad_length);
  const auto fc = static_cast<std::uint8_t>(request.function);
  if (pdu[0] == (fc | 0x80)) {
    if (pdu.size() != 2) return verdict(ReplyStatus::bad_length);
    Reply r = verdict(ReplyStatus::exception);
    r.exception = pdu[1];
    return r;
  }
  if (pdu[0] != fc) return verdict(ReplyStatus::wrong_function);
  if (is_read(request.function)) {
    if (pdu.size() < 2) return verdict(ReplyStatus::bad_length);
    if (pdu[1] != expected_byte_count(request)) return verdict(ReplyStatus::bad_byte_count);
    if (pdu.size() != 2 + std::size_t{pdu[1]}) return verdict(ReplyStatus::bad_length);
    Reply r = verdict(ReplyStatus::ok);
    const auto data = pdu.subspan(2);
    if (reads_bits(request.function)) {
      r.bits.resize(request.count);
      for (std::size_t i = 0; i < request.count; ++i) {
        r.bits[i] = ((data[i / 8] >> (i % 8)) & 1U) != 0;
      }
    } else {
      r.registers.resize(request.count);
      for (std::size_t i = 0; i < request.count; ++i) r.registers[i] = get16(data, 2 * i);
    }
    return r;
  }
  // Writes echo address and value (FC05/06) or address and quantity (FC15/16), v1.1b §6.5-6.12.
  if (pdu.size() != 5) return verdict(ReplyStatus::bad_length);
  if (request.pdu.size() < 5 || !std::equal(pdu.begin() + 1, pdu.end(), request.pdu.begin() + 1)) {
    return verdict(ReplyStatus::bad_echo);
  }
  return verdict(ReplyStatus::ok);
}

// --- TCP ---------------------------------------------------------------------------------------

std::vector<std::uint8_t> encode_tcp(std::uint16_t transaction, const Request& request) {
  std::vector<std::uint8_t> out;
  out.reserve(7 + request.pdu.size());
  put16(out, transaction);
  put16(out, 0);  // protocol identifier: 0 = Modbus
  put16(out, static_cast<std::uint16_t>(request.pdu.size() + 1));
  out.push_back(request.unit);
  out.insert(out.end(), request.pdu.begin(), request.pdu.end());
  return out;
}

void TcpFrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) return;
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<TcpFrame> TcpFrameDecoder::next() {
  if (failed_) return std::nullopt;
  const std::span<const std::uint8_t> b = std::span(buffer_).subspan(start_);
  if (b.size() < 7) return std::nullopt;
  const std::uint16_t protocol = get16(b, 2);
  const std::uint16_t length = get16(b, 4);  // unit id + PDU
  if (protocol != 0 || length < 2 || length > max_tcp_adu - 6) {
    failed_ = true;
    return std::nullopt;
  }
  if (b.size() < 6 + std::size_t{length}) return std::nullopt;
  TcpFrame f;
  f.transaction = get16(b, 0);
  f.unit = b[6];
  f.pdu.assign(b.begin() + 7, b.begin() + 6 + length);
  start_ += 6 + std::size_t{length};
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return f;
}

void TcpFrameDecoder::reset() {
  buffer_.clear();
  start_ = 0;
  failed_ = false;
}

Reply check_tcp_reply(std::uint16_t transaction, const Request& request, const TcpFrame& frame) {
  // A reply for an earlier, timed-out request: never let it answer this one (RELIABILITY.md,
  // libmodbus 255 / goburrow 64 / pymodbus 538).
  if (frame.transaction != transaction) return verdict(ReplyStatus::late_reply);
  if (frame.unit != request.unit) return verdict(ReplyStatus::wrong_unit);
  return check_pdu(request, frame.pdu);
}

// --- RTU ---------------------------------------------------------------------------------------

namespace {

constexpr std::array<std::uint16_t, 256> make_crc_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t c = static_cast<std::uint16_t>(i);
    for (int k = 0; k < 8; ++k) {
      c = (c & 1U) != 0 ? static_cast<std::uint16_t>((c >> 1) ^ 0xA001)
                        : static_cast<std::uint16_t>(c >> 1);
    }
    table[i] = c;
  }
  return table;
}

constexpr auto crc_table = make_crc_table();

// The length of the RTU frame starting at b[0], from its function code; 0 if more bytes are
// needed to tell, SIZE_MAX for a function whose reply shape we do not know.
std::size_t rtu_frame_length(std::span<const std::uint8_t> b) {
  if (b.size() < 2) return 0;
  const std::uint8_t fc = b[1];
  if ((fc & 0x80) != 0) return 5;  // unit, fc|0x80, code, crc
  switch (fc) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
      if (b.size() < 3) return 0;
      return 5 + std::size_t{b[2]};
    case 0x05:
    case 0x06:
    case 0x0F:
    case 0x10:
      return 8;
    default:
      return SIZE_MAX;
  }
}

bool crc_ok(std::span<const std::uint8_t> frame) {
  const std::uint16_t crc = crc16(frame.first(frame.size() - 2));
  // The CRC travels low byte first (serial line v1.02 §6.2.2).
  return frame[frame.size() - 2] == (crc & 0xFF) && frame[frame.size() - 1] == (crc >> 8);
}

Reply parse_frame_at_start(const Request& request, std::span<const std::uint8_t> b) {
  const std::size_t len = rtu_frame_length(b);
  if (len == 0) return verdict(ReplyStatus::truncated);
  const bool ours = b[0] == request.unit;
  const auto fc = static_cast<std::uint8_t>(request.function);
  const bool our_function = b[1] == fc || b[1] == (fc | 0x80);
  if (len == SIZE_MAX) {
    if (ours) return verdict(ReplyStatus::wrong_function, b.size());
    return verdict(ReplyStatus::noise, 1);
  }
  if (b.size() < len) return verdict(ReplyStatus::truncated);
  const auto frame = b.first(len);
  if (!crc_ok(frame)) {
    if (ours && our_function) return verdict(ReplyStatus::bad_crc, len);
    return verdict(ReplyStatus::noise, 1);
  }
  if (!ours) return verdict(ReplyStatus::wrong_unit, len);
  Reply r = check_pdu(request, frame.subspan(1, len - 3));
  r.consumed = len;
  return r;
}

}  // namespace

std::uint16_t crc16(std::span<const std::uint8_t> bytes) {
  std::uint16_t crc = 0xFFFF;
  for (const std::uint8_t byte : bytes) {
    crc = static_cast<std::uint16_t>((crc >> 8) ^ crc_table[(crc ^ byte) & 0xFF]);
  }
  return crc;
}

std::vector<std::uint8_t> encode_rtu(const Request& request) {
  std::vector<std::uint8_t> out;
  out.reserve(request.pdu.size() + 3);
  out.push_back(request.unit);
  out.insert(out.end(), request.pdu.begin(), request.pdu.end());
  const std::uint16_t crc = crc16(out);
  out.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  out.push_back(static_cast<std::uint8_t>(crc >> 8));
  return out;
}

Reply parse_rtu(const Request& request, std::span<const std::uint8_t> buffer, bool echo_pending) {
  if (buffer.empty()) return verdict(ReplyStatus::truncated);
  const std::vector<std::uint8_t> sent = encode_rtu(request);
  const std::size_t common = std::min(buffer.size(), sent.size());
  const bool matches_sent = std::equal(
      buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(common), sent.begin());
  if (echo_pending && matches_sent) {
    if (buffer.size() >= sent.size()) return verdict(ReplyStatus::echo, sent.size());
    return verdict(ReplyStatus::truncated);
  }
  Reply r = parse_frame_at_start(request, buffer);
  if (r.status == ReplyStatus::ok || r.status == ReplyStatus::exception) return r;
  // Our own request heard back: for reads and multiple writes it cannot be a reply (the third
  // byte is a byte count there, an address here), so it is recognised without configuration.
  if (matches_sent) {
    if (buffer.size() >= sent.size()) return verdict(ReplyStatus::echo, sent.size());
    return verdict(ReplyStatus::truncated);
  }
  return r;
}

std::size_t expected_rtu_reply_size(const Request& request) {
  if (is_read(request.function)) return 5 + expected_byte_count(request);
  return 8;
}

}  // namespace fieldhub::modbus
