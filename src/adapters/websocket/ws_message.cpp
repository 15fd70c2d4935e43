// SPDX-License-Identifier: Apache-2.0
#include "adapters/websocket/ws_message.h"

#include <simdjson.h>

#include <cstring>
#include <new>

#include "common/json_writer.h"

namespace fieldhub::adapters::websocket {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// As the Normalizer's limit: device messages are two or three levels deep.
constexpr std::size_t max_depth = 32;

}  // namespace

struct MessageDecoder::Impl {
  explicit Impl(std::size_t max) : max_bytes(max) {
    buffer = std::make_unique<char[]>(max_bytes + simdjson::SIMDJSON_PADDING);
    if (parser.allocate(std::max<std::size_t>(max_bytes, 64), max_depth) != simdjson::SUCCESS) {
      throw std::bad_alloc();
    }
  }

  std::size_t max_bytes;
  std::unique_ptr<char[]> buffer;
  simdjson::dom::parser parser;
};

MessageDecoder::MessageDecoder(std::size_t max_bytes) : impl_(std::make_unique<Impl>(max_bytes)) {}
MessageDecoder::~MessageDecoder() = default;

MessageHeader MessageDecoder::decode(std::string_view payload) {
  MessageHeader h;
  if (payload.size() > impl_->max_bytes) {
    h.outcome = MessageHeader::Outcome::not_json;
    return h;
  }
  if (!payload.empty()) std::memcpy(impl_->buffer.get(), payload.data(), payload.size());
  std::memset(impl_->buffer.get() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
  element root;
  object obj;
  if (impl_->parser.parse(impl_->buffer.get(), payload.size(), false).get(root) ||
      root.get(obj) != simdjson::SUCCESS) {
    h.outcome = MessageHeader::Outcome::not_json;
    return h;
  }
  auto invalid = [&](std::string detail) {
    h.outcome = MessageHeader::Outcome::invalid;
    h.detail = std::move(detail);
    return h;
  };
  int ids = 0;
  int kinds = 0;
  int statuses = 0;
  bool id_ok = false;
  std::string_view kind;
  std::string_view status;
  bool status_is_string = false;
  bool kind_is_string = false;
  for (const auto field : obj) {
    if (field.key == "id") {
      ++ids;
      const auto type = field.value.type();
      if (type == element_type::UINT64) {
        h.id = field.value.get_uint64().value_unsafe();
        id_ok = true;
      } else if (type == element_type::INT64 && field.value.get_int64().value_unsafe() >= 0) {
        h.id = static_cast<std::uint64_t>(field.value.get_int64().value_unsafe());
        id_ok = true;
      }
    } else if (field.key == "kind") {
      ++kinds;
      kind_is_string = field.value.type() == element_type::STRING;
      if (kind_is_string) kind = field.value.get_string().value_unsafe();
    } else if (field.key == "status") {
      ++statuses;
      status_is_string = field.value.type() == element_type::STRING;
      if (status_is_string) status = field.value.get_string().value_unsafe();
    }
  }
  // A repeated id or kind is ambiguous (RFC 8259 §4): which one would the ack name?
  if (ids > 1) {
    h.id.reset();
    return invalid("field \"id\" occurs twice");
  }
  if (ids == 0) return invalid("a message needs an \"id\" (an unsigned integer)");
  if (!id_ok) return invalid("field \"id\": must be an unsigned integer");
  if (kinds > 1) return invalid("field \"kind\" occurs twice");
  if (kinds == 0) return invalid("a message needs a \"kind\": telemetry, event or status");
  if (!kind_is_string) return invalid("field \"kind\": must be a string");
  if (kind == "telemetry") {
    h.kind = MessageKind::telemetry;
  } else if (kind == "event") {
    h.kind = MessageKind::event;
  } else if (kind == "status") {
    h.kind = MessageKind::status;
    if (statuses != 1 || !status_is_string || (status != "online" && status != "offline")) {
      return invalid("a status message needs \"status\": \"online\" or \"offline\", once");
    }
    h.online = status == "online";
  } else {
    return invalid("field \"kind\": must be telemetry, event or status");
  }
  return h;
}

std::string ack_frame(std::uint64_t id) {
  std::string out;
  common::JsonWriter(out).begin_object().field("ack", id).end_object();
  return out;
}

std::string nack_frame(std::optional<std::uint64_t> id, std::string_view reason) {
  std::string out;
  common::JsonWriter w(out);
  w.begin_object().key("nack");
  if (id) {
    w.value(*id);
  } else {
    w.raw("null");
  }
  w.field("reason", reason).end_object();
  return out;
}

bool token_equals(std::string_view presented, std::string_view expected) {
  // Every byte of the presented token is looked at, against the expected one cycled, so the time
  // says nothing about the expected token's content.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  if (expected.empty()) return false;
  for (std::size_t i = 0; i < presented.size(); ++i) {
    diff = static_cast<unsigned char>(diff |
                                      (static_cast<unsigned char>(presented[i]) ^
                                       static_cast<unsigned char>(expected[i % expected.size()])));
  }
  return diff == 0 && !presented.empty();
}

std::optional<std::string_view> device_from_target(std::string_view target, std::string_view path) {
  if (!target.starts_with(path)) return std::nullopt;
  std::string_view rest = target.substr(path.size());
  if (!rest.starts_with('/')) return std::nullopt;
  rest.remove_prefix(1);
  if (rest.empty() || rest.find_first_of("/?#%") != std::string_view::npos) return std::nullopt;
  return rest;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    const char c = authorization[i];
    const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    const char want =
        scheme[i] >= 'A' && scheme[i] <= 'Z' ? static_cast<char>(scheme[i] - 'A' + 'a') : scheme[i];
    if (lower != want) return std::nullopt;
  }
  std::string_view token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace fieldhub::adapters::websocket
