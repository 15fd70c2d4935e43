// SPDX-License-Identifier: Apache-2.0
#include "pipeline/spool_codec.h"

#include <array>
#include <cstring>

namespace fieldhub::pipeline::spool_codec {

namespace {

constexpr std::uint8_t format_version = 1;
constexpr std::uint8_t flag_redelivered = 1;
constexpr std::uint8_t flag_device_heard = 2;

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> crc_table = make_crc_table();

void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_i64(std::string& out, std::int64_t v) {
  put_u64(out, static_cast<std::uint64_t>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

std::uint32_t get_u32(std::string_view b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

std::uint64_t get_u64(std::string_view b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

// Reads the payload front to back; any overrun sets failed and yields zeros.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<std::uint8_t>(bytes_[pos_++]);
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    const std::uint32_t v = get_u32(bytes_, pos_);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    const std::uint64_t v = get_u64(bytes_, pos_);
    pos_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::string str() {
    const std::uint32_t n = u32();
    if (!need(n)) return {};
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items each at least `min_bytes` long: bounded by what is left, so a damaged count
  // cannot make the decoder reserve gigabytes.
  std::uint32_t count(std::size_t min_bytes) {
    const std::uint32_t n = u32();
    if (failed_ || n > (bytes_.size() - pos_) / min_bytes) {
      failed_ = true;
      return 0;
    }
    return n;
  }
  void fail() { failed_ = true; }

 private:
  bool need(std::size_t n) {
    if (failed_ || bytes_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

void put_provenance(std::string& out, const model::Provenance& p) {
  put_str(out, p.adapter);
  put_str(out, p.link);
}

model::Provenance get_provenance(Reader& r) {
  model::Provenance p;
  p.adapter = r.str();
  p.link = r.str();
  return p;
}

// Smallest encodings, for the count bound: all strings empty, the smallest value.
constexpr std::size_t min_reading_bytes = 4 + 4 + 1 + 4 + 8 + 8 + 1 + 4 + 1 + 4 + 4;
constexpr std::size_t min_event_bytes = 4 + 4 + 1 + 8 + 8 + 1 + 4 + 4 + 4;
constexpr std::size_t min_dead_letter_bytes = 8 + 4 * 4;

}  // namespace

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) {
  crc = ~crc;
  for (const char ch : bytes) {
    crc = crc_table[(crc ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (crc >> 8);
  }
  return ~crc;
}

bool has_content(const Envelope& env) {
  return !env.readings.empty() || !env.events.empty() || !env.dead_letters.empty();
}

void encode_payload(const Envelope& env, std::string& out) {
  put_u8(out, format_version);
  put_u8(out, static_cast<std::uint8_t>((env.redelivered ? flag_redelivered : 0) |
                                        (env.device_heard ? flag_device_heard : 0)));
  put_u64(out, env.replay_digest);
  put_u32(out, static_cast<std::uint32_t>(env.readings.size()));
  for (const auto& r : env.readings) {
    put_str(out, r.device_id);
    put_str(out, r.metric);
    put_u8(out, static_cast<std::uint8_t>(r.value.index()));
    if (const auto* d = std::get_if<double>(&r.value)) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, d, sizeof bits);
      put_u64(out, bits);
    } else if (const auto* b = std::get_if<bool>(&r.value)) {
      put_u8(out, *b ? 1 : 0);
    } else if (const auto* s = std::get_if<std::string>(&r.value)) {
      put_str(out, *s);
    }
    put_str(out, r.unit);
    put_i64(out, model::to_micros(r.source_ts));
    put_i64(out, model::to_micros(r.received_ts));
    put_u8(out, static_cast<std::uint8_t>(r.quality));
    put_str(out, r.quality_reason);
    put_u8(out, r.source_ts_trusted ? 1 : 0);
    put_provenance(out, r.provenance);
  }
  put_u32(out, static_cast<std::uint32_t>(env.events.size()));
  for (const auto& e : env.events) {
    put_str(out, e.device_id);
    put_str(out, e.type);
    put_u8(out, static_cast<std::uint8_t>(e.priority));
    put_i64(out, model::to_micros(e.source_ts));
    put_i64(out, model::to_micros(e.received_ts));
    put_u8(out, e.source_ts_trusted ? 1 : 0);
    put_str(out, e.attributes_json);
    put_provenance(out, e.provenance);
  }
  put_u32(out, static_cast<std::uint32_t>(env.dead_letters.size()));
  for (const auto& d : env.dead_letters) {
    put_i64(out, model::to_micros(d.received_ts));
    put_str(out, d.source);
    put_str(out, d.reason);
    put_str(out, d.detail);
    put_str(out, d.payload);
  }
}

std::optional<Envelope> decode_payload(std::string_view payload) {
  Reader r(payload);
  if (r.u8() != format_version) return std::nullopt;
  const std::uint8_t flags = r.u8();
  if ((flags & ~(flag_redelivered | flag_device_heard)) != 0) return std::nullopt;
  Envelope env;
  env.redelivered = (flags & flag_redelivered) != 0;
  env.device_heard = (flags & flag_device_heard) != 0;
  env.replay_digest = r.u64();
  const std::uint32_t readings = r.count(min_reading_bytes);
  env.readings.reserve(readings);
  for (std::uint32_t i = 0; i < readings && !r.failed(); ++i) {
    model::Reading x;
    x.device_id = r.str();
    x.metric = r.str();
    switch (r.u8()) {
      case 0:
        break;
      case 1: {
        const std::uint64_t bits = r.u64();
        double d = 0;
        std::memcpy(&d, &bits, sizeof d);
        x.value = d;
        break;
      }
      case 2: {
        const std::uint8_t b = r.u8();
        if (b > 1) r.fail();
        x.value = b == 1;
        break;
      }
      case 3:
        x.value = r.str();
        break;
      default:
        r.fail();
    }
    x.unit = r.str();
    x.source_ts = model::from_micros(r.i64());
    x.received_ts = model::from_micros(r.i64());
    const std::uint8_t q = r.u8();
    if (q > static_cast<std::uint8_t>(model::Quality::bad)) r.fail();
    x.quality = static_cast<model::Quality>(q);
    x.quality_reason = r.str();
    const std::uint8_t trusted = r.u8();
    if (trusted > 1) r.fail();
    x.source_ts_trusted = trusted == 1;
    x.provenance = get_provenance(r);
    env.readings.push_back(std::move(x));
  }
  const std::uint32_t events = r.count(min_event_bytes);
  env.events.reserve(events);
  for (std::uint32_t i = 0; i < events && !r.failed(); ++i) {
    model::Event e;
    e.device_id = r.str();
    e.type = r.str();
    const std::uint8_t p = r.u8();
    if (p > static_cast<std::uint8_t>(model::Priority::none)) r.fail();
    e.priority = static_cast<model::Priority>(p);
    e.source_ts = model::from_micros(r.i64());
    e.received_ts = model::from_micros(r.i64());
    const std::uint8_t trusted = r.u8();
    if (trusted > 1) r.fail();
    e.source_ts_trusted = trusted == 1;
    e.attributes_json = r.str();
    e.provenance = get_provenance(r);
    env.events.push_back(std::move(e));
  }
  const std::uint32_t dead = r.count(min_dead_letter_bytes);
  env.dead_letters.reserve(dead);
  for (std::uint32_t i = 0; i < dead && !r.failed(); ++i) {
    DeadLetter d;
    d.received_ts = model::from_micros(r.i64());
    d.source = r.str();
    d.reason = r.str();
    d.detail = r.str();
    d.payload = r.str();
    env.dead_letters.push_back(std::move(d));
  }
  if (r.failed() || !r.at_end()) return std::nullopt;
  return env;
}

void append_record(std::uint64_t seq, const Envelope& env, std::string& out) {
  const std::size_t start = out.size();
  put_u32(out, magic);
  put_u32(out, 0);  // length, patched below
  put_u32(out, 0);  // crc, patched below
  put_u64(out, seq);
  encode_payload(env, out);
  const std::size_t length = out.size() - start - header_bytes;
  std::string patch;
  put_u32(patch, static_cast<std::uint32_t>(length));
  // The checksum covers the sequence number and the payload.
  put_u32(patch, crc32c(std::string_view(out).substr(start + 12)));
  out.replace(start + 4, 8, patch);
}

RecordView parse_record(std::string_view bytes) {
  RecordView v;
  if (bytes.size() < 4) return v;
  if (get_u32(bytes, 0) != magic) {
    v.status = Parse::corrupt;
    return v;
  }
  if (bytes.size() < header_bytes) return v;
  const std::uint32_t length = get_u32(bytes, 4);
  if (length > max_payload_bytes) {
    v.status = Parse::corrupt;
    return v;
  }
  if (bytes.size() - header_bytes < length) return v;
  const std::string_view covered = bytes.substr(12, 8 + length);
  if (crc32c(covered) != get_u32(bytes, 8)) {
    v.status = Parse::corrupt;
    return v;
  }
  v.status = Parse::ok;
  v.seq = get_u64(bytes, 12);
  v.payload = bytes.substr(header_bytes, length);
  v.size = header_bytes + length;
  return v;
}

std::size_t announced_size(std::string_view bytes) {
  if (bytes.size() < header_bytes) return header_bytes;
  return header_bytes + get_u32(bytes, 4);
}

std::size_t resync(std::string_view bytes) {
  for (std::size_t at = 1; at + header_bytes <= bytes.size(); ++at) {
    if (get_u32(bytes, at) != magic) continue;
    if (parse_record(bytes.substr(at)).status == Parse::ok) return at;
  }
  return std::string_view::npos;
}

}  // namespace fieldhub::pipeline::spool_codec
