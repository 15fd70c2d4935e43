// SPDX-License-Identifier: Apache-2.0
#include "adapters/mqtt/mqtt_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace fieldhub::mqtt {
namespace {

using namespace std::string_literals;

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

// Decodes everything in `stream` fed in one piece; returns packets and the final state. Holds
// the decoder, whose buffer the Publish views point into.
struct Decoded {
  explicit Decoded(std::size_t max) : decoder(std::make_unique<PacketDecoder>(max)) {}
  std::unique_ptr<PacketDecoder> decoder;
  std::vector<Packet> packets;
  ProtocolError error = ProtocolError::none;
};

Decoded decode_all(const std::string& stream, std::size_t max = 256 * 1024) {
  Decoded out(max);
  out.decoder->feed(stream);
  while (true) {
    auto r = out.decoder->next();
    if (r.need_more()) break;
    if (!r.packet) {
      out.error = r.error;
      break;
    }
    out.packets.push_back(*r.packet);
  }
  return out;
}

ProtocolError error_of(const std::string& stream, std::size_t max = 256 * 1024) {
  return decode_all(stream, max).error;
}

// ---- Encoders: byte-exact against the examples in the spec's figures.

TEST(Encode, ConnectMinimal) {
  std::string out;
  ASSERT_TRUE(
      encode_connect(out, {.client_id = "ab", .clean_session = true, .keepalive_seconds = 30}));
  EXPECT_EQ(out, bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 2, 'a', 'b'}));
}

TEST(Encode, ConnectWithWillUserAndPassword) {
  Will will{"w/t", "gone", 1, true};
  std::string out;
  ASSERT_TRUE(encode_connect(out, {.client_id = "c",
                                   .clean_session = false,
                                   .keepalive_seconds = 0x0102,
                                   .username = "u",
                                   .password = "pw",
                                   .will = &will}));
  // flags: user 0x80 | password 0x40 | will retain 0x20 | will QoS 1 (0x08) | will 0x04
  EXPECT_EQ(out, bytes({0x10, 31,  0,   4, 'M', 'Q', 'T', 'T', 4,   0xEC, 1, 2,   0, 1, 'c', 0,  3,
                        'w',  '/', 't', 0, 4,   'g', 'o', 'n', 'e', 0,    1, 'u', 0, 2, 'p', 'w'}));
}

TEST(Encode, ConnectRefusesPasswordWithoutUsername) {
  std::string out;
  EXPECT_FALSE(encode_connect(out, {.client_id = "c", .password = "pw"}));
  EXPECT_TRUE(out.empty());
}

TEST(Encode, Subscribe) {
  std::vector<std::pair<std::string, std::uint8_t>> filters{{"a/#", 1}, {"b", 0}};
  std::string out;
  ASSERT_TRUE(encode_subscribe(out, 0x1234, filters));
  EXPECT_EQ(out, bytes({0x82, 12, 0x12, 0x34, 0, 3, 'a', '/', '#', 1, 0, 1, 'b', 0}));
  EXPECT_FALSE(encode_subscribe(out, 0, filters));  // packet id 0
  EXPECT_FALSE(encode_subscribe(out, 1, {}));       // no filters
}

TEST(Encode, PublishQos0AndQos1WithFlags) {
  std::string out;
  ASSERT_TRUE(encode_publish(out, "a/b", "hi", 0, false, false, 0));
  EXPECT_EQ(out, bytes({0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i'}));
  EXPECT_EQ(publish_packet_size("a/b", "hi", 0), out.size());
  out.clear();
  ASSERT_TRUE(encode_publish(out, "t", "", 1, true, true, 7));
  EXPECT_EQ(out, bytes({0x3B, 5, 0, 1, 't', 0, 7}));
  EXPECT_FALSE(encode_publish(out, "t", "", 0, false, true, 0));   // DUP on QoS 0
  EXPECT_FALSE(encode_publish(out, "t", "", 1, false, false, 0));  // no packet id
}

TEST(Encode, PubackPingreqDisconnect) {
  std::string out;
  encode_puback(out, 0xABCD);
  encode_pingreq(out);
  encode_disconnect(out);
  EXPECT_EQ(out, bytes({0x40, 2, 0xAB, 0xCD, 0xC0, 0, 0xE0, 0}));
}

TEST(Encode, LargePayloadUsesMultiByteLength) {
  std::string out;
  const std::string payload(200, 'x');
  ASSERT_TRUE(encode_publish(out, "t", payload, 0, false, false, 0));
  // remaining = 2 + 1 + 200 = 203 = 0xCB 0x01
  EXPECT_EQ(out.substr(0, 3), bytes({0x30, 0xCB, 0x01}));
  EXPECT_EQ(out.size(), 3u + 203u);
  EXPECT_EQ(publish_packet_size("t", payload, 0), out.size());
}

// ---- Decoder.

TEST(Decode, Connack) {
  auto d = decode_all(bytes({0x20, 2, 1, 0, 0x20, 2, 0, 5}));
  ASSERT_EQ(d.packets.size(), 2u);
  EXPECT_EQ(d.error, ProtocolError::none);
  EXPECT_TRUE(std::get<Connack>(d.packets[0]).session_present);
  EXPECT_EQ(std::get<Connack>(d.packets[0]).return_code, 0);
  EXPECT_FALSE(std::get<Connack>(d.packets[1]).session_present);
  EXPECT_EQ(std::get<Connack>(d.packets[1]).return_code, 5);
}

TEST(Decode, SubackWithFailure) {
  auto d = decode_all(bytes({0x90, 5, 0, 9, 0, 1, 0x80}));
  ASSERT_EQ(d.packets.size(), 1u);
  const auto& s = std::get<Suback>(d.packets[0]);
  EXPECT_EQ(s.packet_id, 9);
  EXPECT_EQ(s.granted, (std::vector<std::uint8_t>{0, 1, 0x80}));
}

TEST(Decode, PublishQos1WithFlags) {
  auto d = decode_all(bytes({0x3B, 9, 0, 3, 'a', '/', 'b', 0x01, 0x02, 'h', 'i'}));
  ASSERT_EQ(d.packets.size(), 1u);
  const auto& p = std::get<Publish>(d.packets[0]);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.payload, "hi");
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.dup);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.packet_id, 0x0102);
}

TEST(Decode, PublishQos2IsDecodedForTheClientToRefuse) {
  auto d = decode_all(bytes({0x34, 5, 0, 1, 't', 0, 1}));
  ASSERT_EQ(d.packets.size(), 1u);
  EXPECT_EQ(std::get<Publish>(d.packets[0]).qos, 2);
}

TEST(Decode, EmptyPayloadAndBinaryPayload) {
  std::string stream;
  ASSERT_TRUE(encode_publish(stream, "t", "", 0, false, false, 0));
  ASSERT_TRUE(encode_publish(stream, "t", "\0\xff\x01"s, 1, false, false, 3));
  auto d = decode_all(stream);
  ASSERT_EQ(d.packets.size(), 2u);
  EXPECT_EQ(std::get<Publish>(d.packets[0]).payload, "");
  EXPECT_EQ(std::get<Publish>(d.packets[1]).payload, "\0\xff\x01"s);
}

TEST(Decode, PubackAndPingresp) {
  auto d = decode_all(bytes({0x40, 2, 0, 42, 0xD0, 0}));
  ASSERT_EQ(d.packets.size(), 2u);
  EXPECT_EQ(std::get<Puback>(d.packets[0]).packet_id, 42);
  EXPECT_TRUE(std::holds_alternative<Pingresp>(d.packets[1]));
}

// A stream of every packet type, fed one byte at a time, decodes to the same packets as fed whole.
TEST(Decode, ByteByByteFragmentation) {
  std::string stream = bytes({0x20, 2, 1, 0, 0x90, 4, 0, 1, 1, 0x80});
  for (int i = 0; i < 50; ++i) {
    const std::string payload(static_cast<std::size_t>(i * 7), static_cast<char>('a' + i % 26));
    ASSERT_TRUE(encode_publish(stream, "s/" + std::to_string(i), payload, i % 2, i % 3 == 0, false,
                               static_cast<std::uint16_t>(i % 2 ? i + 1 : 0)));
  }
  stream += bytes({0x40, 2, 0, 5, 0xD0, 0});
  const auto whole = decode_all(stream);
  ASSERT_EQ(whole.error, ProtocolError::none);
  ASSERT_EQ(whole.packets.size(), 54u);

  PacketDecoder d;
  std::vector<std::string> seen_topics;
  std::size_t count = 0;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    while (true) {
      auto r = d.next();
      if (r.need_more()) break;
      ASSERT_TRUE(r.packet) << to_string(r.error);
      if (const auto* p = std::get_if<Publish>(&*r.packet)) {
        const auto& expected = std::get<Publish>(whole.packets[count]);
        EXPECT_EQ(p->topic, expected.topic);
        EXPECT_EQ(p->payload, expected.payload);
        EXPECT_EQ(p->qos, expected.qos);
        EXPECT_EQ(p->retain, expected.retain);
        EXPECT_EQ(p->packet_id, expected.packet_id);
      } else {
        EXPECT_EQ(r.packet->index(), whole.packets[count].index());
      }
      ++count;
    }
  }
  EXPECT_EQ(count, 54u);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Decode, PrepareCommitZeroCopy) {
  PacketDecoder d;
  const std::string packet = bytes({0x40, 2, 0, 7});
  auto space = d.prepare(1024);
  ASSERT_GE(space.size(), packet.size());
  std::copy(packet.begin(), packet.end(), space.begin());
  d.commit(packet.size());
  auto r = d.next();
  ASSERT_TRUE(r.packet);
  EXPECT_EQ(std::get<Puback>(*r.packet).packet_id, 7);
  EXPECT_TRUE(d.next().need_more());
}

// ---- Remaining-length varint (2.2.3).

class VarintBoundary : public ::testing::TestWithParam<std::size_t> {};

TEST_P(VarintBoundary, PayloadLengthRoundTrips) {
  const std::size_t remaining = GetParam();
  const std::string payload(remaining - 3, 'p');  // topic "t": 2 + 1 bytes
  std::string stream;
  ASSERT_TRUE(encode_publish(stream, "t", payload, 0, false, false, 0));
  const auto d = decode_all(stream, stream.size());
  ASSERT_EQ(d.error, ProtocolError::none);
  ASSERT_EQ(d.packets.size(), 1u);
  EXPECT_EQ(std::get<Publish>(d.packets[0]).payload.size(), payload.size());
}

// 1/2/3-byte boundaries; 4-byte lengths are checked without allocating 2 MiB+ below.
INSTANTIATE_TEST_SUITE_P(Lengths, VarintBoundary,
                         ::testing::Values(3, 127, 128, 16'383, 16'384, 100'000));

TEST(Varint, FourByteMaximumIsRefusedBySizeNotByFormat) {
  // 0xFF 0xFF 0xFF 0x7F = 268,435,455, the largest valid length: too large for our limit.
  EXPECT_EQ(error_of(bytes({0x30, 0xFF, 0xFF, 0xFF, 0x7F})), ProtocolError::packet_too_large);
  // 0x80 0x80 0x80 0x01 = 2,097,152 (smallest 4-byte value).
  EXPECT_EQ(error_of(bytes({0x30, 0x80, 0x80, 0x80, 0x01})), ProtocolError::packet_too_large);
}

TEST(Varint, FifthByteIsMalformed) {
  EXPECT_EQ(error_of(bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})),
            ProtocolError::bad_remaining_length);
  // Refused as soon as the fourth byte shows a continuation, before any fifth byte arrives.
  EXPECT_EQ(error_of(bytes({0x30, 0x80, 0x80, 0x80, 0x80})), ProtocolError::bad_remaining_length);
}

TEST(Varint, IncompleteLengthWaitsForMore) {
  PacketDecoder d;
  d.feed(bytes({0x30, 0x80}));
  EXPECT_TRUE(d.next().need_more());
  d.feed(bytes({0x01}));  // 128
  EXPECT_TRUE(d.next().need_more());
}

TEST(Decode, OversizedPacketRefusedBeforeBuffering) {
  PacketDecoder d(1000);
  d.feed(bytes({0x30, 0xE8, 0x07}));  // remaining 1000 + 3 header bytes > 1000
  auto r = d.next();
  EXPECT_EQ(r.error, ProtocolError::packet_too_large);
  EXPECT_LE(d.buffered(), 3u);
  EXPECT_EQ(d.next().error, ProtocolError::packet_too_large);  // sticky
  // Exactly at the limit is fine.
  std::string ok;
  ASSERT_TRUE(encode_publish(ok, "t", std::string(989, 'x'), 0, false, false, 0));
  ASSERT_EQ(ok.size(), 995u);
  EXPECT_EQ(error_of(ok, 995), ProtocolError::none);
  EXPECT_EQ(error_of(ok, 994), ProtocolError::packet_too_large);
}

// ---- Malformed input: each is a clean error value.

struct Malformed {
  const char* name;
  std::string stream;
  ProtocolError expected;
};

class MalformedPacket : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedPacket, IsAProtocolError) {
  EXPECT_EQ(error_of(GetParam().stream), GetParam().expected) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedPacket,
    ::testing::Values(
        Malformed{"reserved_type_0", bytes({0x00, 0}), ProtocolError::unexpected_packet_type},
        Malformed{"reserved_type_15", bytes({0xF0, 0}), ProtocolError::unexpected_packet_type},
        Malformed{"connect_from_broker", bytes({0x10, 0}), ProtocolError::unexpected_packet_type},
        Malformed{"pubrel", bytes({0x62, 2, 0, 1}), ProtocolError::unexpected_packet_type},
        Malformed{"connack_flags", bytes({0x21, 2, 0, 0}), ProtocolError::bad_flags},
        Malformed{"connack_length", bytes({0x20, 3, 0, 0, 0}), ProtocolError::bad_length},
        Malformed{"connack_reserved_bits", bytes({0x20, 2, 2, 0}),
                  ProtocolError::bad_connack_flags},
        Malformed{"puback_flags", bytes({0x42, 2, 0, 1}), ProtocolError::bad_flags},
        Malformed{"puback_short", bytes({0x40, 1, 0}), ProtocolError::bad_length},
        Malformed{"puback_id_0", bytes({0x40, 2, 0, 0}), ProtocolError::zero_packet_id},
        Malformed{"pingresp_body", bytes({0xD0, 1, 0}), ProtocolError::bad_length},
        Malformed{"suback_empty", bytes({0x90, 2, 0, 1}), ProtocolError::bad_length},
        Malformed{"suback_code_3", bytes({0x90, 3, 0, 1, 3}), ProtocolError::bad_return_code},
        Malformed{"suback_id_0", bytes({0x90, 3, 0, 0, 1}), ProtocolError::zero_packet_id},
        Malformed{"publish_qos3", bytes({0x36, 5, 0, 1, 't', 0, 1}), ProtocolError::bad_qos},
        Malformed{"publish_dup_qos0", bytes({0x38, 3, 0, 1, 't'}), ProtocolError::bad_flags},
        Malformed{"publish_no_topic_length", bytes({0x30, 1, 0}), ProtocolError::bad_length},
        Malformed{"publish_topic_truncated", bytes({0x30, 4, 0, 5, 'a', 'b'}),
                  ProtocolError::bad_length},
        Malformed{"publish_missing_packet_id", bytes({0x32, 4, 0, 1, 't', 0}),
                  ProtocolError::bad_length},
        Malformed{"publish_id_0", bytes({0x32, 5, 0, 1, 't', 0, 0}), ProtocolError::zero_packet_id},
        Malformed{"publish_empty_topic", bytes({0x30, 2, 0, 0}), ProtocolError::bad_topic},
        Malformed{"publish_plus", bytes({0x30, 5, 0, 3, 'a', '/', '+'}), ProtocolError::bad_topic},
        Malformed{"publish_hash", bytes({0x30, 3, 0, 1, '#'}), ProtocolError::bad_topic},
        Malformed{"publish_nul", bytes({0x30, 4, 0, 2, 'a', 0}), ProtocolError::bad_topic},
        Malformed{"publish_bad_utf8", bytes({0x30, 4, 0, 2, 0xC3, 0x28}), ProtocolError::bad_topic},
        Malformed{"publish_surrogate", bytes({0x30, 5, 0, 3, 0xED, 0xA0, 0x80}),
                  ProtocolError::bad_topic},
        Malformed{"publish_overlong", bytes({0x30, 4, 0, 2, 0xC0, 0xAF}),
                  ProtocolError::bad_topic}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(Decode, ErrorIsStickyAndResetRecovers) {
  PacketDecoder d;
  d.feed(bytes({0x00, 0}));
  EXPECT_EQ(d.next().error, ProtocolError::unexpected_packet_type);
  d.feed(bytes({0xD0, 0}));
  EXPECT_EQ(d.next().error, ProtocolError::unexpected_packet_type);
  d.reset();
  d.feed(bytes({0xD0, 0}));
  EXPECT_TRUE(d.next().packet.has_value());
}

TEST(Decode, GarbageFailsAtFirstByteWithoutWaitingForItsLength) {
  PacketDecoder d;
  d.feed(bytes({0x10}));
  EXPECT_EQ(d.next().error, ProtocolError::unexpected_packet_type);
}

TEST(Decode, ErrorNamesAreMetricLabels) {
  for (auto e : {ProtocolError::bad_remaining_length, ProtocolError::packet_too_large,
                 ProtocolError::bad_topic, ProtocolError::bad_qos}) {
    const auto name = to_string(e);
    EXPECT_FALSE(name.empty());
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string_view::npos);
  }
}

// ---- Topics (4.7).

struct Match {
  const char* filter;
  const char* topic;
  bool matches;
};

class TopicMatch : public ::testing::TestWithParam<Match> {};

TEST_P(TopicMatch, FollowsSection47) {
  EXPECT_EQ(topic_matches(GetParam().filter, GetParam().topic), GetParam().matches)
      << GetParam().filter << " vs " << GetParam().topic;
}

INSTANTIATE_TEST_SUITE_P(
    Spec, TopicMatch,
    ::testing::Values(
        // 4.7.1.2 examples
        Match{"sport/tennis/player1/#", "sport/tennis/player1", true},
        Match{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        Match{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        Match{"sport/#", "sport", true}, Match{"#", "sport/tennis", true}, Match{"#", "/", true},
        // 4.7.1.3 examples
        Match{"sport/tennis/+", "sport/tennis/player1", true},
        Match{"sport/tennis/+", "sport/tennis/player2", true},
        Match{"sport/tennis/+", "sport/tennis/player1/ranking", false},
        Match{"sport/+", "sport", false}, Match{"sport/+", "sport/", true},
        Match{"+/+", "/finance", true}, Match{"/+", "/finance", true},
        Match{"+", "/finance", false}, Match{"+/tennis/#", "sport/tennis/x", true},
        // exact and case-sensitive
        Match{"a/b", "a/b", true}, Match{"a/b", "a/B", false}, Match{"a/b", "a/b/c", false},
        Match{"a/b/c", "a/b", false}, Match{"a//b", "a//b", true}, Match{"a/+/b", "a//b", true},
        Match{"site/+/meter/+/telemetry", "site/s1/meter/m7/telemetry", true},
        Match{"site/+/meter/+/telemetry", "site/s1/meter/m7/status", false},
        // 4.7.2: '$' topics and leading wildcards
        Match{"#", "$SYS/broker/uptime", false},
        Match{"+/monitor/Clients", "$SYS/monitor/Clients", false},
        Match{"$SYS/#", "$SYS/broker/uptime", true},
        Match{"$SYS/monitor/+", "$SYS/monitor/Clients", true}, Match{"a/#", "a/$x", true},
        // invalid filters and topic names match nothing
        Match{"sport/tennis#", "sport/tennis", false},
        Match{"sport/#/ranking", "sport/x/ranking", false}, Match{"sport+", "sport+", false},
        Match{"", "a", false}, Match{"a", "", false}, Match{"#", "a/+", false},
        Match{"#", "a/#", false}));

TEST(Topic, NameAndFilterValidation) {
  EXPECT_TRUE(is_valid_topic_name("a/b"));
  EXPECT_TRUE(is_valid_topic_name("/"));
  EXPECT_TRUE(is_valid_topic_name("caf\xc3\xa9"));
  EXPECT_FALSE(is_valid_topic_name(""));
  EXPECT_FALSE(is_valid_topic_name("a/+"));
  EXPECT_FALSE(is_valid_topic_name("a\0b"s));
  EXPECT_FALSE(is_valid_topic_name("\xff"));
  EXPECT_FALSE(is_valid_topic_name(std::string(65536, 'a')));
  EXPECT_TRUE(is_valid_topic_filter("+"));
  EXPECT_TRUE(is_valid_topic_filter("#"));
  EXPECT_TRUE(is_valid_topic_filter("+/+/#"));
  EXPECT_FALSE(is_valid_topic_filter("a/#/b"));
  EXPECT_FALSE(is_valid_topic_filter("a/b#"));
  EXPECT_FALSE(is_valid_topic_filter("a/+b"));
  EXPECT_FALSE(is_valid_topic_filter("##"));
}

TEST(Topic, SharedSubscriptionFilter) {
  EXPECT_EQ(shared_subscription_filter("$share/g1/site/+/x"), "site/+/x");
  EXPECT_EQ(shared_subscription_filter("site/+/x"), "site/+/x");
  EXPECT_EQ(shared_subscription_filter("$share//x"), "$share//x");
  EXPECT_EQ(shared_subscription_filter("$share/g"), "$share/g");
  EXPECT_TRUE(topic_matches(shared_subscription_filter("$share/g/a/#"), "a/b"));
}

}  // namespace
}  // namespace fieldhub::mqtt
