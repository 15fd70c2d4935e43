// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_codec.h"

#include <cstring>

#include "common/utf8.h"

namespace fieldhub::mqtt {

namespace {

constexpr std::size_t max_string_length = 65535;  // 1.5.3: two-byte length prefix

void put_u8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void put_string(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

std::size_t varint_size(std::size_t v) {
  if (v < 128) return 1;
  if (v < 16'384) return 2;
  if (v < 2'097'152) return 3;
  return 4;
}

void put_varint(std::string& out, std::size_t v) {
  do {
    auto byte = static_cast<std::uint8_t>(v % 128);
    v /= 128;
    if (v > 0) byte |= 0x80;
    put_u8(out, byte);
  } while (v > 0);
}

void put_fixed_header(std::string& out, std::uint8_t first_byte, std::size_t remaining) {
  out.reserve(out.size() + 1 + varint_size(remaining) + remaining);
  put_u8(out, first_byte);
  put_varint(out, remaining);
}

std::uint16_t get_u16(const char* p) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                                    static_cast<unsigned char>(p[1]));
}

// 1.5.3: UTF-8 without U+0000.
bool is_mqtt_string(std::string_view s) {
  return s.find('\0') == std::string_view::npos && common::is_valid_utf8(s);
}

}  // namespace

bool encode_connect(std::string& out, const ConnectOptions& o) {
  if (o.client_id.size() > max_string_length) return false;
  if (o.password && !o.username) return false;
  if (o.username && o.username->size() > max_string_length) return false;
  if (o.password && o.password->size() > max_string_length) return false;
  std::uint8_t flags = 0;
  std::size_t remaining = 10 + 2 + o.client_id.size();  // 3.1.2: variable header is 10 bytes
  if (o.will) {
    if (o.will->qos > 2 || o.will->topic.size() > max_string_length ||
        o.will->payload.size() > max_string_length) {
      return false;
    }
    flags |= 0x04 | static_cast<std::uint8_t>(o.will->qos << 3);
    if (o.will->retain) flags |= 0x20;
    remaining += 2 + o.will->topic.size() + 2 + o.will->payload.size();
  }
  if (o.username) {
    flags |= 0x80;
    remaining += 2 + o.username->size();
  }
  if (o.password) {
    flags |= 0x40;
    remaining += 2 + o.password->size();
  }
  if (o.clean_session) flags |= 0x02;

  put_fixed_header(out, 0x10, remaining);
  put_string(out, "MQTT");
  put_u8(out, 4);  // protocol level 4 = 3.1.1
  put_u8(out, flags);
  put_u16(out, o.keepalive_seconds);
  put_string(out, o.client_id);
  if (o.will) {
    put_string(out, o.will->topic);
    put_string(out, o.will->payload);
  }
  if (o.username) put_string(out, *o.username);
  if (o.password) put_string(out, *o.password);
  return true;
}

bool encode_subscribe(std::string& out, std::uint16_t packet_id,
                      std::span<const std::pair<std::string, std::uint8_t>> filters) {
  if (packet_id == 0 || filters.empty()) return false;  // 3.8.3-3: at least one filter
  std::size_t remaining = 2;
  for (const auto& [filter, qos] : filters) {
    if (qos > 2 || filter.size() > max_string_length) return false;
    remaining += 2 + filter.size() + 1;
  }
  if (remaining > max_remaining_length) return false;
  put_fixed_header(out, 0x82, remaining);  // 3.8.1: reserved flags 0010
  put_u16(out, packet_id);
  for (const auto& [filter, qos] : filters) {
    put_string(out, filter);
    put_u8(out, qos);
  }
  return true;
}

std::size_t publish_packet_size(std::string_view topic, std::string_view payload,
                                std::uint8_t qos) {
  const std::size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
  return 1 + varint_size(remaining) + remaining;
}

bool encode_publish(std::string& out, std::string_view topic, std::string_view payload,
                    std::uint8_t qos, bool retain, bool dup, std::uint16_t packet_id) {
  if (qos > 2 || topic.size() > max_string_length) return false;
  if (qos == 0 && dup) return false;            // 3.3.1-2
  if (qos > 0 && packet_id == 0) return false;  // 2.3.1-1
  const std::size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
  if (remaining > max_remaining_length) return false;
  std::uint8_t first = 0x30 | static_cast<std::uint8_t>(qos << 1);
  if (dup) first |= 0x08;
  if (retain) first |= 0x01;
  put_fixed_header(out, first, remaining);
  put_string(out, topic);
  if (qos > 0) put_u16(out, packet_id);
  out.append(payload);
  return true;
}

void encode_puback(std::string& out, std::uint16_t packet_id) {
  put_u8(out, 0x40);
  put_u8(out, 2);
  put_u16(out, packet_id);
}

void encode_pingreq(std::string& out) {
  put_u8(out, 0xC0);
  put_u8(out, 0);
}

void encode_disconnect(std::string& out) {
  put_u8(out, 0xE0);
  put_u8(out, 0);
}

std::string_view to_string(ProtocolError error) {
  switch (error) {
    case ProtocolError::none:
      return "none";
    case ProtocolError::bad_remaining_length:
      return "bad_remaining_length";
    case ProtocolError::packet_too_large:
      return "packet_too_large";
    case ProtocolError::unexpected_packet_type:
      return "unexpected_packet_type";
    case ProtocolError::bad_flags:
      return "bad_flags";
    case ProtocolError::bad_qos:
      return "bad_qos";
    case ProtocolError::bad_length:
      return "bad_length";
    case ProtocolError::bad_topic:
      return "bad_topic";
    case ProtocolError::zero_packet_id:
      return "zero_packet_id";
    case ProtocolError::bad_return_code:
      return "bad_return_code";
    case ProtocolError::bad_connack_flags:
      return "bad_connack_flags";
  }
  return "unknown";
}

PacketDecoder::PacketDecoder(std::size_t max_packet_size) : max_packet_size_(max_packet_size) {}

void PacketDecoder::feed(std::string_view bytes) {
  auto space = prepare(bytes.size());
  if (!bytes.empty()) std::memcpy(space.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

std::span<char> PacketDecoder::prepare(std::size_t n) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < end_ + n) buffer_.resize(end_ + n);
  return {buffer_.data() + end_, n};
}

void PacketDecoder::commit(std::size_t n) {
  end_ += n;
}

void PacketDecoder::reset() {
  begin_ = end_ = 0;
  error_ = ProtocolError::none;
}

DecodeResult PacketDecoder::fail(ProtocolError e) {
  error_ = e;
  return {std::nullopt, e};
}

DecodeResult PacketDecoder::next() {
  if (error_ != ProtocolError::none) return {std::nullopt, error_};
  const std::size_t avail = end_ - begin_;
  if (avail == 0) return {};
  const char* p = buffer_.data() + begin_;
  const auto first = static_cast<unsigned char>(p[0]);
  const auto type = static_cast<PacketType>(first >> 4);
  const std::uint8_t flags = first & 0x0F;

  // Check type and flags before waiting for the body, so garbage fails at its first byte.
  switch (type) {
    case PacketType::connack:
    case PacketType::puback:
    case PacketType::suback:
    case PacketType::pingresp:
      if (flags != 0) return fail(ProtocolError::bad_flags);  // 2.2.2: reserved flags are 0
      break;
    case PacketType::publish:
      if (((flags >> 1) & 0x03) == 3) return fail(ProtocolError::bad_qos);  // 3.3.1-4
      if ((flags & 0x08) && ((flags >> 1) & 0x03) == 0) return fail(ProtocolError::bad_flags);
      break;
    default:
      return fail(ProtocolError::unexpected_packet_type);
  }

  // 2.2.3: remaining length, 7 bits per byte, continuation in the top bit, at most 4 bytes.
  std::size_t remaining = 0;
  std::size_t header = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    if (1 + k >= avail) return {};
    const auto b = static_cast<unsigned char>(p[1 + k]);
    remaining |= static_cast<std::size_t>(b & 0x7F) << (7 * k);
    if ((b & 0x80) == 0) {
      header = 2 + k;
      break;
    }
    if (k == 3) return fail(ProtocolError::bad_remaining_length);
  }
  if (header + remaining > max_packet_size_) return fail(ProtocolError::packet_too_large);
  if (avail < header + remaining) return {};

  const char* body = p + header;
  auto consume = [&](Packet packet) {
    begin_ += header + remaining;
    return DecodeResult{std::move(packet), ProtocolError::none};
  };

  switch (type) {
    case PacketType::connack: {
      if (remaining != 2) return fail(ProtocolError::bad_length);
      const auto ack_flags = static_cast<unsigned char>(body[0]);
      if (ack_flags & 0xFE) return fail(ProtocolError::bad_connack_flags);
      return consume(Connack{(ack_flags & 0x01) != 0, static_cast<std::uint8_t>(body[1])});
    }
    case PacketType::puback: {
      if (remaining != 2) return fail(ProtocolError::bad_length);
      const std::uint16_t id = get_u16(body);
      if (id == 0) return fail(ProtocolError::zero_packet_id);
      return consume(Puback{id});
    }
    case PacketType::pingresp: {
      if (remaining != 0) return fail(ProtocolError::bad_length);
      return consume(Pingresp{});
    }
    case PacketType::suback: {
      if (remaining < 3) return fail(ProtocolError::bad_length);
      Suback s;
      s.packet_id = get_u16(body);
      if (s.packet_id == 0) return fail(ProtocolError::zero_packet_id);
      s.granted.reserve(remaining - 2);
      for (std::size_t i = 2; i < remaining; ++i) {
        const auto rc = static_cast<std::uint8_t>(body[i]);
        if (rc > 2 && rc != 0x80) return fail(ProtocolError::bad_return_code);
        s.granted.push_back(rc);
      }
      return consume(std::move(s));
    }
    case PacketType::publish: {
      Publish m;
      m.qos = (flags >> 1) & 0x03;
      m.dup = (flags & 0x08) != 0;
      m.retain = (flags & 0x01) != 0;
      if (remaining < 2) return fail(ProtocolError::bad_length);
      const std::size_t topic_len = get_u16(body);
      const std::size_t id_len = m.qos > 0 ? 2 : 0;
      if (remaining < 2 + topic_len + id_len) return fail(ProtocolError::bad_length);
      m.topic = std::string_view(body + 2, topic_len);
      if (!is_valid_topic_name(m.topic)) return fail(ProtocolError::bad_topic);
      if (m.qos > 0) {
        m.packet_id = get_u16(body + 2 + topic_len);
        if (m.packet_id == 0) return fail(ProtocolError::zero_packet_id);
      }
      const std::size_t offset = 2 + topic_len + id_len;
      m.payload = std::string_view(body + offset, remaining - offset);
      return consume(m);
    }
    default:
      return fail(ProtocolError::unexpected_packet_type);
  }
}

bool is_valid_topic_name(std::string_view topic) {
  if (topic.empty() || topic.size() > max_string_length) return false;    // 4.7.3-1
  if (topic.find_first_of("+#") != std::string_view::npos) return false;  // 3.3.2-2
  return is_mqtt_string(topic);
}

bool is_valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > max_string_length) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t end = filter.find('/', start);
    const bool last = end == std::string_view::npos;
    if (last) end = filter.size();
    const std::string_view level = filter.substr(start, end - start);
    if (level.find('+') != std::string_view::npos && level != "+") return false;  // 4.7.1.3
    if (level.find('#') != std::string_view::npos && (level != "#" || !last)) {
      return false;  // 4.7.1.2: '#' alone and last
    }
    if (last) break;
    start = end + 1;
  }
  return is_mqtt_string(filter);
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  if (!is_valid_topic_filter(filter) || !is_valid_topic_name(topic)) return false;
  // 4.7.2: wildcards at the first level do not match topics starting with '$'.
  if (topic.front() == '$' && (filter.front() == '+' || filter.front() == '#')) return false;
  std::size_t f = 0;
  std::size_t t = 0;
  bool topic_done = false;
  while (true) {
    std::size_t fe = filter.find('/', f);
    if (fe == std::string_view::npos) fe = filter.size();
    const std::string_view flevel = filter.substr(f, fe - f);
    if (flevel == "#") return true;  // also matches the parent level: "a/#" matches "a"
    if (topic_done) return false;
    std::size_t te = topic.find('/', t);
    if (te == std::string_view::npos) te = topic.size();
    if (flevel != "+" && flevel != topic.substr(t, te - t)) return false;
    const bool filter_last = fe == filter.size();
    const bool topic_last = te == topic.size();
    if (filter_last) return topic_last;
    f = fe + 1;
    if (topic_last) {
      topic_done = true;
    } else {
      t = te + 1;
    }
  }
}

std::string_view shared_subscription_filter(std::string_view filter) {
  constexpr std::string_view prefix = "$share/";
  if (!filter.starts_with(prefix)) return filter;
  const std::size_t slash = filter.find('/', prefix.size());
  if (slash == std::string_view::npos || slash == prefix.size()) return filter;
  return filter.substr(slash + 1);
}

}  // namespace fieldhub::mqtt
