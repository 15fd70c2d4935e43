// SPDX-License-Identifier: Apache-2.0
#include "pipeline/spool_codec.h"

#include <gtest/gtest.h>

#include <limits>

#include "pipeline/spool_test_support.h"

namespace fieldhub::pipeline {
namespace {

namespace codec = spool_codec;
using testing::expect_same;

const model::Timestamp t0 = model::from_micros(1'795'514'400'123'456);

model::Reading reading(model::Value v, model::Quality q, bool trusted) {
  model::Reading r;
  r.device_id = "kwh-1";
  r.metric = "energy";
  r.value = std::move(v);
  r.unit = "m³";
  r.source_ts = t0 - std::chrono::microseconds{7};
  r.received_ts = t0;
  r.quality = q;
  r.quality_reason = q == model::Quality::good ? "" : "timeout";
  r.source_ts_trusted = trusted;
  r.provenance = {"mqtt", "broker"};
  return r;
}

Envelope every_kind() {
  Envelope env;
  env.readings.push_back(reading(std::monostate{}, model::Quality::bad, true));
  env.readings.push_back(reading(-0.5, model::Quality::good, false));
  env.readings.push_back(
      reading(std::numeric_limits<double>::infinity(), model::Quality::uncertain, true));
  env.readings.push_back(reading(true, model::Quality::good, true));
  env.readings.push_back(reading(false, model::Quality::good, true));
  env.readings.push_back(reading(std::string("open\0door", 9), model::Quality::good, true));
  for (const auto p : {model::Priority::high, model::Priority::medium, model::Priority::low,
                       model::Priority::none}) {
    env.events.push_back({.device_id = "nc-1",
                          .type = "call",
                          .priority = p,
                          .source_ts = t0,
                          .received_ts = t0 + std::chrono::microseconds{1},
                          .source_ts_trusted = p != model::Priority::low,
                          .attributes_json = R"({"room":"3.14"})",
                          .provenance = {"websocket", "peer"}});
  }
  env.dead_letters.push_back({t0, "site/x", "invalid_json", "byte 3", std::string("\xff\0{", 3)});
  env.replay_digest = 0xFEDCBA9876543210ULL;
  env.redelivered = true;
  env.device_heard = false;
  return env;
}

TEST(SpoolCodec, RoundTripsEveryValueTypeQualityPriorityAndFlag) {
  const Envelope env = every_kind();
  std::string record;
  codec::append_record(42, env, record);
  const codec::RecordView v = codec::parse_record(record);
  ASSERT_EQ(v.status, codec::Parse::ok);
  EXPECT_EQ(v.seq, 42u);
  EXPECT_EQ(v.size, record.size());
  const auto back = codec::decode_payload(v.payload);
  ASSERT_TRUE(back.has_value());
  expect_same(env, *back);

  Envelope plain;  // the other flag values
  plain.events.push_back({.device_id = "d", .type = "t"});
  std::string payload;
  codec::encode_payload(plain, payload);
  const auto plain_back = codec::decode_payload(payload);
  ASSERT_TRUE(plain_back.has_value());
  expect_same(plain, *plain_back);
}

TEST(SpoolCodec, AcknowledgementAloneIsNoContent) {
  Envelope env;
  env.ack.cookie = 7;
  EXPECT_FALSE(codec::has_content(env));
  env.dead_letters.emplace_back();
  EXPECT_TRUE(codec::has_content(env));
}

TEST(SpoolCodec, EveryPrefixIsIncompleteAndEveryFlippedByteIsCaught) {
  std::string record;
  codec::append_record(1, every_kind(), record);
  for (std::size_t n = 0; n < record.size(); ++n) {
    EXPECT_EQ(codec::parse_record(std::string_view(record).substr(0, n)).status,
              codec::Parse::incomplete)
        << n;
  }
  for (std::size_t i = 0; i < record.size(); ++i) {
    std::string damaged = record;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
    const auto v = codec::parse_record(damaged);
    // A changed length may also read as "need more": never as a good record.
    EXPECT_NE(v.status, codec::Parse::ok) << i;
  }
}

TEST(SpoolCodec, ResyncFindsTheNextWholeRecord) {
  std::string bytes = "garbage SPOL";
  const std::size_t second = bytes.size();
  codec::append_record(9, every_kind(), bytes);
  EXPECT_EQ(codec::parse_record(bytes).status, codec::Parse::corrupt);
  EXPECT_EQ(codec::resync(bytes), second);
  EXPECT_EQ(codec::resync(std::string_view(bytes).substr(0, bytes.size() - 1)),
            std::string_view::npos);
}

TEST(SpoolCodec, CrcIsCastagnoli) {
  EXPECT_EQ(codec::crc32c("123456789"), 0xE3069283u);  // the standard check value
}

TEST(SpoolCodec, DecoderRefusesTruncatedOrPaddedPayloads) {
  std::string payload;
  codec::encode_payload(every_kind(), payload);
  for (std::size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(codec::decode_payload(std::string_view(payload).substr(0, n)).has_value()) << n;
  }
  EXPECT_FALSE(codec::decode_payload(payload + '\0').has_value());
}

}  // namespace
}  // namespace fieldhub::pipeline
