// SPDX-License-Identifier: Apache-2.0
// The WebSocket device protocol without sockets: the envelope, the answers, the token compare,
// the target, and the Normalizer's decoding of a device's own messages (the example config).
#include "adapters/websocket/ws_message.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "config/config_text.h"
#include "normalize/normalizer.h"

namespace fieldhub::adapters::websocket {
namespace {

using Outcome = MessageHeader::Outcome;

TEST(WebSocketMessage, ReadsIdAndKind) {
  MessageDecoder d(1024);
  auto h = d.decode(R"({"id": 42, "kind": "telemetry", "values": {"battery": 80}})");
  ASSERT_EQ(h.outcome, Outcome::ok);
  EXPECT_EQ(h.id, 42u);
  EXPECT_EQ(h.kind, MessageKind::telemetry);

  h = d.decode(R"({"kind": "event", "type": "tamper", "id": 18446744073709551615})");
  ASSERT_EQ(h.outcome, Outcome::ok);
  EXPECT_EQ(h.id, 18446744073709551615u);
  EXPECT_EQ(h.kind, MessageKind::event);

  h = d.decode(R"({"id": 7, "kind": "status", "status": "offline"})");
  ASSERT_EQ(h.outcome, Outcome::ok);
  EXPECT_EQ(h.kind, MessageKind::status);
  EXPECT_FALSE(h.online);
  h = d.decode(R"({"id": 8, "kind": "status", "status": "online"})");
  EXPECT_TRUE(h.online);
}

TEST(WebSocketMessage, NotJsonIsLeftToTheNormalizer) {
  MessageDecoder d(64);
  for (const std::string_view bad : {"", "{", "[1]", "\"x\"", "{\"id\": NaN}"}) {
    EXPECT_EQ(d.decode(bad).outcome, Outcome::not_json) << bad;
  }
  EXPECT_EQ(d.decode(std::string(65, ' ')).outcome, Outcome::not_json);  // over the limit
}

TEST(WebSocketMessage, BadEnvelopesSayWhatIsWrong) {
  MessageDecoder d(1024);
  struct Case {
    std::string_view payload;
    std::optional<std::uint64_t> id;
    std::string_view detail;
  };
  const Case cases[] = {
      {R"({"kind": "telemetry", "values": {}})", std::nullopt, "needs an \"id\""},
      {R"({"id": -1, "kind": "telemetry"})", std::nullopt, "unsigned integer"},
      {R"({"id": 1.5, "kind": "telemetry"})", std::nullopt, "unsigned integer"},
      {R"({"id": "7", "kind": "telemetry"})", std::nullopt, "unsigned integer"},
      {R"({"id": 1, "id": 2, "kind": "telemetry"})", std::nullopt, "occurs twice"},
      {R"({"id": 3, "values": {}})", 3, "needs a \"kind\""},
      {R"({"id": 3, "kind": "firmware"})", 3, "telemetry, event or status"},
      {R"({"id": 3, "kind": 1})", 3, "must be a string"},
      {R"({"id": 3, "kind": "event", "kind": "event"})", 3, "\"kind\" occurs twice"},
      {R"({"id": 4, "kind": "status", "status": "asleep"})", 4, "online"},
      {R"({"id": 4, "kind": "status"})", 4, "online"},
  };
  for (const auto& c : cases) {
    const auto h = d.decode(c.payload);
    EXPECT_EQ(h.outcome, Outcome::invalid) << c.payload;
    EXPECT_EQ(h.id, c.id) << c.payload;
    EXPECT_NE(h.detail.find(c.detail), std::string::npos) << c.payload << ": " << h.detail;
  }
}

TEST(WebSocketMessage, Answers) {
  EXPECT_EQ(ack_frame(42), R"({"ack":42})");
  EXPECT_EQ(nack_frame(43, "invalid_json"), R"({"nack":43,"reason":"invalid_json"})");
  EXPECT_EQ(nack_frame(std::nullopt, "invalid_envelope"),
            R"({"nack":null,"reason":"invalid_envelope"})");
}

TEST(WebSocketMessage, TokenCompare) {
  EXPECT_TRUE(token_equals("s3cret-token", "s3cret-token"));
  EXPECT_FALSE(token_equals("s3cret-tokeN", "s3cret-token"));
  EXPECT_FALSE(token_equals("s3cret-token-", "s3cret-token"));
  EXPECT_FALSE(token_equals("s3cret", "s3cret-token"));
  EXPECT_FALSE(token_equals("", "s3cret-token"));
  EXPECT_FALSE(token_equals("", ""));
  // A prefix of the expected token repeated is not the token.
  EXPECT_FALSE(token_equals("abab", "ab"));
}

TEST(WebSocketMessage, TargetAndBearer) {
  EXPECT_EQ(device_from_target("/devices/lock-1", "/devices"), "lock-1");
  EXPECT_EQ(device_from_target("/devices/lock-1?x=1", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/devices/", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/devices", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/deviceslock-1", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/devices/a/b", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/other/lock-1", "/devices"), std::nullopt);
  EXPECT_EQ(device_from_target("/lock-1", ""), "lock-1");

  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token(""), std::nullopt);
}

// The example configuration loads; the Normalizer decodes a device's own messages with the
// fieldhub format, the transport's fields kept out of the records.
class WebSocketNormalize : public ::testing::Test {
 protected:
  config::Config cfg = config::load_config(FIELDHUB_WEBSOCKET_EXAMPLE);
  normalize::Normalizer normalizer{cfg};
  const normalize::Normalizer::Origin origin{"ws:lock-3b-med", "websocket", "ws:lock-3b-med"};

  pipeline::Envelope run(normalize::Normalizer::Kind kind, std::string_view payload,
                         std::string_view device = "lock-3b-med") {
    return normalizer.normalize_device(device, kind, payload, model::from_micros(1'000'000),
                                       origin);
  }
};

TEST_F(WebSocketNormalize, ExampleConfig) {
  EXPECT_TRUE(cfg.websocket.enabled);
  EXPECT_EQ(cfg.websocket.listen_port, 8081);
  EXPECT_EQ(cfg.websocket.path, "/devices");
  EXPECT_EQ(cfg.websocket.idle_timeout, std::chrono::seconds{30});
  ASSERT_EQ(cfg.websocket_credentials.size(), 2u);
  ASSERT_NE(cfg.websocket_credential("vend-lobby-1"), nullptr);
  EXPECT_EQ(cfg.websocket_credential("vend-lobby-1")->token, "change-me-vend-lobby-1");
}

TEST_F(WebSocketNormalize, Telemetry) {
  const auto env = run(normalize::Normalizer::Kind::telemetry,
                       R"({"id": 1, "kind": "telemetry", "ts": 1795000000000,
                           "values": {"locked": true, "battery": 87}})");
  ASSERT_EQ(env.readings.size(), 2u);
  EXPECT_TRUE(env.dead_letters.empty());
  EXPECT_EQ(env.readings[0].device_id, "lock-3b-med");
  EXPECT_EQ(env.readings[0].provenance.adapter, "websocket");
  EXPECT_EQ(env.readings[0].provenance.link, "ws:lock-3b-med");
  EXPECT_TRUE(env.readings[0].source_ts_trusted);
}

TEST_F(WebSocketNormalize, EventWithoutTransportFields) {
  const auto env = run(normalize::Normalizer::Kind::event,
                       R"({"id": 2, "kind": "event", "type": "forced_door", "door": "main"})");
  ASSERT_EQ(env.events.size(), 1u);
  EXPECT_EQ(env.events[0].type, "forced_door");
  EXPECT_EQ(env.events[0].priority, model::Priority::high);
  EXPECT_EQ(env.events[0].attributes_json, R"({"door":"main"})");
}

TEST_F(WebSocketNormalize, RefusalsKeepTheNormalizersReasons) {
  auto env = run(normalize::Normalizer::Kind::telemetry, R"({"id": 3, "values": {)");
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "invalid_json");
  EXPECT_EQ(env.dead_letters[0].source, "ws:lock-3b-med");

  env = run(normalize::Normalizer::Kind::event, R"({"id": 4, "kind": "event", "type": "fire"})");
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "unknown_event_type");

  env =
      run(normalize::Normalizer::Kind::telemetry, std::string(cfg.websocket.max_message + 1, ' '));
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "oversized");

  // A field refused, the rest kept.
  env = run(normalize::Normalizer::Kind::telemetry,
            R"({"id": 5, "kind": "telemetry", "values": {"battery": 50, "colour": "red"}})");
  EXPECT_EQ(env.readings.size(), 1u);
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "unknown_metric");

  // Only websocket devices are reachable this way.
  env = run(normalize::Normalizer::Kind::telemetry, R"({"values": {}})", "nobody");
  ASSERT_EQ(env.dead_letters.size(), 1u);
  EXPECT_EQ(env.dead_letters[0].reason, "unknown_device");
}

TEST(WebSocketConfig, RefusesWhatCannotWork) {
  const auto fails = [](std::string_view text, std::string_view needle) {
    try {
      config::parse_config(text, "fieldhub.toml");
    } catch (const config::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << text;
  };
  fails("[[devices]]\nid='l'\nsite='s'\nprofile='p'\nprotocol='websocket'\ntoken='t'\n",
        "needs the [websocket] section");
  fails("[websocket]\n[[devices]]\nid='l'\nsite='s'\nprofile='p'\nprotocol='websocket'\n",
        "'devices[0].token': is required");
  fails("[[devices]]\nid='l'\nsite='s'\nprofile='p'\ntoken='t'\n", "only for websocket devices");
  fails("[websocket]\npath='devices'\n", "must start with '/'");
  fails("[websocket]\nidle_timeout='5s'\nping_interval='10s'\n", "shorter than idle_timeout");
  fails("[websocket]\nlisten='127.0.0.1'\n", "host:port");
}

}  // namespace
}  // namespace fieldhub::adapters::websocket
