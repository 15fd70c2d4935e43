// SPDX-License-Identifier: Apache-2.0
#pragma once

// Sans-I/O MQTT 3.1.1 codec for the client side: encoders for what a client sends, a push decoder
// for what a broker sends, and topic name/filter rules (OASIS MQTT 3.1.1, sections 2, 3 and 4.7).
// No sockets, no clocks: unit-tested, fuzzed and benchmarked on plain bytes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fieldhub::mqtt {

// 2.2.3: four bytes of remaining length carry at most 268,435,455.
inline constexpr std::size_t max_remaining_length = 268'435'455;

enum class PacketType : std::uint8_t {
  connect = 1,
  connack = 2,
  publish = 3,
  puback = 4,
  pubrec = 5,
  pubrel = 6,
  pubcomp = 7,
  subscribe = 8,
  suback = 9,
  unsubscribe = 10,
  unsuback = 11,
  pingreq = 12,
  pingresp = 13,
  disconnect = 14,
};

// The last-will message the broker publishes if the connection ends without DISCONNECT (3.1.2.5).
struct Will {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
};

// ---- Encoders. Each appends one packet to `out` and returns true, or returns false and appends
// nothing when the input cannot be encoded (a string over 65,535 bytes, QoS above 2, packet id 0
// where one is required, remaining length over max_remaining_length). They do not check topic
// syntax: call is_valid_topic_name / is_valid_topic_filter first.

struct ConnectOptions {
  std::string_view client_id;
  bool clean_session = true;
  std::uint16_t keepalive_seconds = 0;
  std::optional<std::string_view> username;
  std::optional<std::string_view> password;  // 3.1.2.9: a password requires a username
  const Will* will = nullptr;
};

[[nodiscard]] bool encode_connect(std::string& out, const ConnectOptions& options);
[[nodiscard]] bool encode_subscribe(std::string& out, std::uint16_t packet_id,
                                    std::span<const std::pair<std::string, std::uint8_t>> filters);
[[nodiscard]] bool encode_publish(std::string& out, std::string_view topic,
                                  std::string_view payload, std::uint8_t qos, bool retain, bool dup,
                                  std::uint16_t packet_id);
void encode_puback(std::string& out, std::uint16_t packet_id);
void encode_pingreq(std::string& out);
void encode_disconnect(std::string& out);

// Size of the PUBLISH packet encode_publish would produce (for size limits before encoding).
std::size_t publish_packet_size(std::string_view topic, std::string_view payload, std::uint8_t qos);

// ---- Decoded packets (what a broker sends to a client).

struct Connack {
  bool session_present = false;
  std::uint8_t return_code = 0;  // 0 accepted; 1..5 refusals (3.2.2.3); others are passed through
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> granted;  // 0, 1, 2, or 0x80 for failure (3.9.3)
};

// topic and payload are views into the decoder's buffer: valid until the next feed()/prepare().
struct Publish {
  std::string_view topic;
  std::string_view payload;
  std::uint8_t qos = 0;
  bool dup = false;
  bool retain = false;
  std::uint16_t packet_id = 0;  // 0 for QoS 0
};

struct Puback {
  std::uint16_t packet_id = 0;
};

struct Pingresp {};

using Packet = std::variant<Connack, Suback, Publish, Puback, Pingresp>;

// Why a byte stream is not valid MQTT from a broker. to_string() gives the metric label.
enum class ProtocolError : std::uint8_t {
  none,
  bad_remaining_length,    // a fifth length byte (2.2.3)
  packet_too_large,        // over the decoder's configured maximum
  unexpected_packet_type,  // a type a broker never sends to a client, or reserved 0/15
  bad_flags,               // reserved fixed-header flags not as 2.2.2 requires; DUP on QoS 0
  bad_qos,                 // PUBLISH QoS 3 (3.3.1.2)
  bad_length,              // remaining length does not fit the packet's fields
  bad_topic,               // empty, invalid UTF-8, U+0000 or a wildcard in a topic name
  zero_packet_id,          // 2.3.1: a packet identifier is non-zero
  bad_return_code,         // SUBACK return code outside 0, 1, 2, 0x80
  bad_connack_flags,       // reserved CONNACK acknowledge-flag bits set (3.2.2.1)
};

std::string_view to_string(ProtocolError error);

// One step of PacketDecoder::next(): a packet, or no packet and either "need more bytes"
// (error == none) or a protocol error.
struct DecodeResult {
  std::optional<Packet> packet;
  ProtocolError error = ProtocolError::none;
  bool need_more() const { return !packet && error == ProtocolError::none; }
};

// Push decoder for the broker → client byte stream. Feed bytes in any fragmentation; call next()
// until it reports need_more(). A protocol error is sticky: the stream cannot be resynchronised
// and the caller drops the connection. Memory stays bounded by max_packet_size plus the largest
// chunk fed: an oversized packet is refused as soon as its length is known, before any of its
// body is buffered. Single-threaded; views in a returned Publish stay valid until the next
// feed() or prepare().
class PacketDecoder {
 public:
  explicit PacketDecoder(std::size_t max_packet_size = 256 * 1024);

  void feed(std::string_view bytes);
  // Zero-copy feeding: write up to n bytes into prepare(n), then commit() how many were written.
  std::span<char> prepare(std::size_t n);
  void commit(std::size_t n);

  DecodeResult next();

  // Bytes received but not yet returned as packets.
  std::size_t buffered() const { return end_ - begin_; }
  ProtocolError error() const { return error_; }
  // Forget everything (a new connection).
  void reset();

 private:
  DecodeResult fail(ProtocolError e);

  std::size_t max_packet_size_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
  ProtocolError error_ = ProtocolError::none;
};

// ---- Topics (4.7).

// A topic name a PUBLISH may carry: 1..65535 bytes of valid UTF-8, no U+0000, no '+' or '#'.
bool is_valid_topic_name(std::string_view topic);
// A subscription filter: as above, but '+' must fill a whole level and '#' must be the whole last
// level (4.7.1.2, 4.7.1.3).
bool is_valid_topic_filter(std::string_view filter);

// Whether a topic name matches a filter. '+' matches exactly one level, '#' any number of levels
// including the parent ("a/#" matches "a"). A filter starting with a wildcard does not match a
// topic starting with '$' (4.7.2). Invalid filters or topic names match nothing. The filter is
// taken literally: for a shared subscription pass shared_subscription_filter(filter).
bool topic_matches(std::string_view filter, std::string_view topic);

// The filter inside "$share/<group>/<filter>" (Mosquitto's shared subscriptions), else `filter`.
std::string_view shared_subscription_filter(std::string_view filter);

}  // namespace fieldhub::mqtt
