// SPDX-License-Identifier: Apache-2.0
#include "sim/modbus/sim_faults.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace fieldhub::sim {

namespace {

constexpr std::array<std::pair<std::string_view, FaultKind>, 13> kinds{{
    {"silence", FaultKind::silence},
    {"late", FaultKind::late},
    {"exception", FaultKind::exception},
    {"wrong_unit", FaultKind::wrong_unit},
    {"wrong_function", FaultKind::wrong_function},
    {"bad_byte_count", FaultKind::bad_byte_count},
    {"truncated", FaultKind::truncated},
    {"bad_crc", FaultKind::bad_crc},
    {"noise_before", FaultKind::noise_before},
    {"noise_after", FaultKind::noise_after},
    {"echo", FaultKind::echo},
    {"duplicate", FaultKind::duplicate},
    {"ignore_write", FaultKind::ignore_write},
}};

// Line noise as seen on a floating RS-485 pair: idle-high 0xFF, breaks as 0x00, and a mix.
constexpr std::array<std::uint8_t, 8> noise_pattern{0xFF, 0x00, 0xA5, 0x5A, 0x3C, 0xC3, 0x7E, 0x81};

std::optional<std::uint64_t> parse_number(std::string_view text) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::uint8_t other_function(std::uint8_t fc) {
  const std::uint8_t error_bit = fc & 0x80;
  switch (fc & 0x7F) {
    case 0x01:
      return error_bit | 0x02;
    case 0x02:
      return error_bit | 0x01;
    case 0x03:
      return error_bit | 0x04;
    case 0x04:
      return error_bit | 0x03;
    case 0x05:
      return error_bit | 0x06;
    case 0x06:
      return error_bit | 0x05;
    case 0x0F:
      return error_bit | 0x10;
    case 0x10:
      return error_bit | 0x0F;
    default:
      return static_cast<std::uint8_t>(fc + 1);
  }
}

std::vector<std::uint8_t> noise(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = noise_pattern[i % noise_pattern.size()];
  return out;
}

}  // namespace

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (const auto& [n, k] : kinds) {
    if (n == name) return k;
  }
  return std::nullopt;
}

std::string_view to_string(FaultKind kind) {
  for (const auto& [n, k] : kinds) {
    if (k == kind) return n;
  }
  return "?";
}

bool Fault::fires(std::uint8_t function_code, std::optional<RequestRange> range) {
  if (function != 0 && function_code != function) return false;
  if (range && range->count > 0) {
    const std::uint32_t end = std::uint32_t{range->first} + range->count - 1;
    if (range->first > last || end < first) return false;
  }
  if (times != 0 && fired >= times) return false;
  ++matched;
  const bool fire = every <= 1 || matched % every == 0;
  if (fire) ++fired;
  return fire;
}

std::optional<Fault> parse_fault(std::span<const std::string_view> words, std::string& error) {
  if (words.empty()) {
    error = "missing fault kind";
    return std::nullopt;
  }
  const auto kind = parse_fault_kind(words[0]);
  if (!kind) {
    error = "unknown fault kind '" + std::string(words[0]) + "'";
    return std::nullopt;
  }
  Fault f;
  f.kind = *kind;
  for (const auto word : words.subspan(1)) {
    const auto eq = word.find('=');
    const auto key = word.substr(0, eq);
    const auto value =
        eq == std::string_view::npos ? std::nullopt : parse_number(word.substr(eq + 1));
    if (!value) {
      error = "expected key=number, got '" + std::string(word) + "'";
      return std::nullopt;
    }
    if (key == "delay_ms") {
      f.delay = std::chrono::milliseconds{*value};
    } else if (key == "code" && *value <= 0xFF) {
      f.code = static_cast<std::uint8_t>(*value);
    } else if (key == "from" && *value <= 0xFFFF) {
      f.first = static_cast<std::uint16_t>(*value);
    } else if (key == "to" && *value <= 0xFFFF) {
      f.last = static_cast<std::uint16_t>(*value);
    } else if (key == "every" && *value >= 1 && *value <= 1'000'000) {
      f.every = static_cast<std::uint32_t>(*value);
    } else if (key == "bytes" && *value >= 1 && *value <= 256) {
      f.bytes = static_cast<std::uint32_t>(*value);
    } else if (key == "function" && *value >= 1 && *value <= 0x7F) {
      f.function = static_cast<std::uint8_t>(*value);
    } else if (key == "times" && *value <= 1'000'000) {
      f.times = static_cast<std::uint32_t>(*value);
    } else {
      error = "bad fault parameter '" + std::string(word) + "'";
      return std::nullopt;
    }
  }
  if (f.first > f.last) {
    error = "from > to";
    return std::nullopt;
  }
  return f;
}

std::string describe(const Fault& f) {
  std::string s(to_string(f.kind));
  if (f.kind == FaultKind::late) s += " delay_ms=" + std::to_string(f.delay.count());
  if (f.kind == FaultKind::exception) s += " code=" + std::to_string(f.code);
  if (f.first != 0 || f.last != 0xFFFF) {
    s += " from=" + std::to_string(f.first) + " to=" + std::to_string(f.last);
  }
  if (f.every != 1) s += " every=" + std::to_string(f.every);
  if (f.function != 0) s += " function=" + std::to_string(f.function);
  if (f.times != 0) s += " times=" + std::to_string(f.times);
  if (f.kind == FaultKind::noise_before || f.kind == FaultKind::noise_after ||
      f.kind == FaultKind::truncated) {
    s += " bytes=" + std::to_string(f.bytes);
  }
  return s;
}

std::vector<std::uint8_t> frame_pdu(const Request& request, std::uint8_t unit,
                                    std::span<const std::uint8_t> pdu) {
  std::vector<std::uint8_t> out;
  // Byte by byte: GCC 12 reports false -Warray-bounds for vector::insert after a short list.
  out.reserve(pdu.size() + mbap_size + 2);
  if (request.framing == Framing::tcp) {
    const std::size_t length = pdu.size() + 1;
    out.push_back(static_cast<std::uint8_t>(request.transaction >> 8));
    out.push_back(static_cast<std::uint8_t>(request.transaction & 0xFF));
    out.push_back(0);
    out.push_back(0);
    out.push_back(static_cast<std::uint8_t>(length >> 8));
    out.push_back(static_cast<std::uint8_t>(length & 0xFF));
    out.push_back(unit);
    for (const auto b : pdu) out.push_back(b);
  } else {
    out.push_back(unit);
    for (const auto b : pdu) out.push_back(b);
    append_crc(out);
  }
  return out;
}

std::vector<Transmission> frame_replies(const Request& request, std::vector<std::uint8_t> response,
                                        const Fault* fault) {
  std::uint8_t unit = request.unit;
  if (fault == nullptr) return {{.bytes = frame_pdu(request, unit, response)}};
  const FaultKind kind = fault->kind;
  const bool tcp = request.framing == Framing::tcp;

  switch (kind) {
    case FaultKind::silence:
      return {};
    case FaultKind::wrong_unit:
      unit = static_cast<std::uint8_t>(unit % 247 + 1);  // 1..247, never the asked id
      break;
    case FaultKind::wrong_function:
      if (!response.empty()) response[0] = other_function(response[0]);
      break;
    case FaultKind::bad_byte_count:
      if (response.size() >= 2 && response[0] >= 0x01 && response[0] <= 0x04) {
        response[1] = static_cast<std::uint8_t>(response[1] + 2);
      }
      break;
    case FaultKind::truncated:
      if (tcp) {
        const std::size_t keep =
            response.size() > fault->bytes ? response.size() - fault->bytes : std::size_t{1};
        response.resize(keep);
      }
      break;
    default:
      break;
  }

  std::vector<std::uint8_t> bytes = frame_pdu(request, unit, response);
  switch (kind) {
    case FaultKind::late:
      return {{.delay = fault->delay, .bytes = std::move(bytes)}};
    case FaultKind::truncated:
      if (!tcp) {
        const std::size_t keep =
            bytes.size() > fault->bytes ? bytes.size() - fault->bytes : std::size_t{1};
        bytes.resize(keep);
      }
      break;
    case FaultKind::bad_crc:
      if (!tcp) {
        bytes[bytes.size() - 1] ^= 0xFF;
        bytes[bytes.size() - 2] ^= 0xFF;
      }
      break;
    case FaultKind::noise_before: {
      auto n = noise(fault->bytes);
      bytes.insert(bytes.begin(), n.begin(), n.end());
      break;
    }
    case FaultKind::noise_after: {
      auto n = noise(fault->bytes);
      bytes.insert(bytes.end(), n.begin(), n.end());
      break;
    }
    case FaultKind::echo:
      return {{.bytes = {request.frame.begin(), request.frame.end()}},
              {.gap_before = true, .bytes = std::move(bytes)}};
    case FaultKind::duplicate: {
      auto copy = bytes;
      return {{.bytes = std::move(bytes)}, {.gap_before = true, .bytes = std::move(copy)}};
    }
    default:
      break;
  }
  return {{.bytes = std::move(bytes)}};
}

}  // namespace fieldhub::sim
