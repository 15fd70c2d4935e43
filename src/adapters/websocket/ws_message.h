// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fieldhub::adapters::websocket {

// The device protocol on fieldhub's WebSocket listener (README.md in this folder): every text
// message is one JSON object with a message id and a kind, plus the fieldhub format's fields:
//   {"id": 42, "kind": "telemetry", "ts": ..., "values": {...}}
//   {"id": 43, "kind": "event", "ts": ..., "type": "code_blue", ...attributes}
//   {"id": 44, "kind": "status", "status": "offline"}
// fieldhub answers {"ack": 42} once the message is durable and {"nack": 42, "reason": "..."} for
// a message refused whole. Sans-I/O: parsing and formatting only.

enum class MessageKind : std::uint8_t { telemetry, event, status };

struct MessageHeader {
  enum class Outcome : std::uint8_t {
    ok,        // id and kind read; the body is for the Normalizer (telemetry, event) or status
    not_json,  // not a JSON object at all: the Normalizer names the reason (invalid_json, ...)
    invalid,   // JSON, but the envelope is wrong (no id, unknown kind, bad status): detail says
  };
  Outcome outcome = Outcome::ok;
  std::optional<std::uint64_t> id;  // when readable, even for an invalid envelope
  MessageKind kind = MessageKind::telemetry;
  bool online = false;  // kind status: "online" (true) or "offline" (false)
  std::string detail;   // invalid: what is wrong
};

// Reads the envelope of one message. Owns a reusable parser: one instance per thread.
// Messages larger than `max_bytes` are reported not_json without parsing (the caller refuses
// them as oversized before this matters).
class MessageDecoder {
 public:
  explicit MessageDecoder(std::size_t max_bytes);
  ~MessageDecoder();
  MessageDecoder(const MessageDecoder&) = delete;
  MessageDecoder& operator=(const MessageDecoder&) = delete;

  MessageHeader decode(std::string_view payload);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string ack_frame(std::uint64_t id);
// id absent (unreadable): "nack": null.
std::string nack_frame(std::optional<std::uint64_t> id, std::string_view reason);

// Compares a presented token with the configured one in time that depends only on the lengths,
// never on where they differ.
bool token_equals(std::string_view presented, std::string_view expected);

// The device id in a request target "<path>/<device id>" (no query, no further '/'), or nullopt.
std::optional<std::string_view> device_from_target(std::string_view target, std::string_view path);

// The token of an "Authorization: Bearer <token>" header value, or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace fieldhub::adapters::websocket
