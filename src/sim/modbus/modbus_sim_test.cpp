// SPDX-License-Identifier: Apache-2.0
// The simulator's pure parts: framing, value encoding, serving PDUs, faults, config, control.
#include <gtest/gtest.h>

#include "sim/modbus/sim_config.h"
#include "sim/modbus/simulator.h"

namespace fieldhub::sim {
namespace {

using Bytes = std::vector<std::uint8_t>;

Unit unit_with_vector() {
  Unit u;
  u.id = 1;
  u.fit_tables(16);
  const std::uint16_t regs[] = {0x4366, 0x3334};  // SDM630 L1 voltage 230.2 V (test vectors)
  u.set(Table::input, 0, regs);
  return u;
}

Bytes rtu(Bytes body) {
  append_crc(body);
  return body;
}

TEST(ModbusSimFrames, CrcMatchesPublishedVector) {
  const Bytes request{0x01, 0x04, 0x00, 0x00, 0x00, 0x02};
  EXPECT_EQ(crc16_modbus(request), 0xCB71);  // on the wire 71 CB
  EXPECT_TRUE(crc_ok(Bytes{0x01, 0x04, 0x04, 0x43, 0x66, 0x33, 0x34, 0x1B, 0x38}));
  EXPECT_FALSE(crc_ok(Bytes{0x01, 0x04, 0x04, 0x43, 0x66, 0x33, 0x34, 0x1B, 0x39}));
}

TEST(ModbusSimFrames, MbapFrameSize) {
  const Bytes frame{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x04, 0x00, 0x00, 0x00, 0x02};
  EXPECT_EQ(mbap_frame_size(frame), 12u);
  EXPECT_EQ(mbap_frame_size(std::span(frame).first(11)), 0u);
  Bytes bad = frame;
  bad[2] = 0x01;  // protocol id 0x0100
  EXPECT_EQ(mbap_frame_size(bad), std::nullopt);
}

TEST(ModbusSimValues, Float32InEveryOrder) {
  // 123456.0 = 0x47F12000 (test vectors).
  EXPECT_EQ(encode_value(123456.0, ValueType::f32, ByteOrder::abcd),
            (std::vector<std::uint16_t>{0x47F1, 0x2000}));
  EXPECT_EQ(encode_value(123456.0, ValueType::f32, ByteOrder::cdab),
            (std::vector<std::uint16_t>{0x2000, 0x47F1}));
  EXPECT_EQ(encode_value(123456.0, ValueType::f32, ByteOrder::badc),
            (std::vector<std::uint16_t>{0xF147, 0x0020}));
  EXPECT_EQ(encode_value(123456.0, ValueType::f32, ByteOrder::dcba),
            (std::vector<std::uint16_t>{0x0020, 0xF147}));
  EXPECT_EQ(encode_value(-1234, ValueType::i16, ByteOrder::abcd),
            (std::vector<std::uint16_t>{0xFB2E}));
  EXPECT_EQ(encode_value(-1234567890123.0, ValueType::i64, ByteOrder::abcd),
            (std::vector<std::uint16_t>{0xFFFF, 0xFEE0, 0x8E04, 0xFB35}));
  EXPECT_EQ(encode_value(1e12, ValueType::u16, ByteOrder::abcd),
            (std::vector<std::uint16_t>{0xFFFF}));
}

TEST(ModbusSimServe, ReadInputRegistersGivesVectorPdu) {
  Unit u = unit_with_vector();
  EXPECT_EQ(serve_pdu(u, Bytes{0x04, 0x00, 0x00, 0x00, 0x02}, 0),
            (Bytes{0x04, 0x04, 0x43, 0x66, 0x33, 0x34}));
}

TEST(ModbusSimServe, ExceptionsForBadRequests) {
  Unit u = unit_with_vector();
  EXPECT_EQ(serve_pdu(u, Bytes{0x2B, 0x0E, 0x01, 0x00}, 0), (Bytes{0xAB, 0x01}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x04, 0x00, 0x0F, 0x00, 0x02}, 0), (Bytes{0x84, 0x02}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x03, 0x00, 0x00, 0x00, 0x7E}, 0), (Bytes{0x83, 0x03}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x05, 0x00, 0x00, 0x12, 0x34}, 0), (Bytes{0x85, 0x03}));
}

TEST(ModbusSimServe, WritesAreReadBack) {
  Unit u = unit_with_vector();
  EXPECT_EQ(serve_pdu(u, Bytes{0x06, 0x00, 0x03, 0x12, 0x34}, 0),
            (Bytes{0x06, 0x00, 0x03, 0x12, 0x34}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x10, 0x00, 0x04, 0x00, 0x02, 0x04, 0xAB, 0xCD, 0x00, 0x01}, 0),
            (Bytes{0x10, 0x00, 0x04, 0x00, 0x02}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x03, 0x00, 0x03, 0x00, 0x03}, 0),
            (Bytes{0x03, 0x06, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0x01}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x0F, 0x00, 0x01, 0x00, 0x03, 0x01, 0x05}, 0),
            (Bytes{0x0F, 0x00, 0x01, 0x00, 0x03}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x05, 0x00, 0x00, 0xFF, 0x00}, 0),
            (Bytes{0x05, 0x00, 0x00, 0xFF, 0x00}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x01, 0x00, 0x00, 0x00, 0x0A}, 0), (Bytes{0x01, 0x02, 0x0B, 0x00}));
}

TEST(ModbusSimServe, SignalsEvolveAndStopWhenWritten) {
  Unit u;
  u.signals.push_back({.table = Table::holding,
                       .address = 0,
                       .type = ValueType::u32,
                       .shape = Shape::counter,
                       .base = 100,
                       .rate = 2});
  u.fit_tables(4);
  EXPECT_EQ(serve_pdu(u, Bytes{0x03, 0x00, 0x00, 0x00, 0x02}, 0),
            (Bytes{0x03, 0x04, 0, 0, 0, 100}));
  EXPECT_EQ(serve_pdu(u, Bytes{0x03, 0x00, 0x00, 0x00, 0x02}, 10),
            (Bytes{0x03, 0x04, 0, 0, 0, 120}));
  serve_pdu(u, Bytes{0x06, 0x00, 0x01, 0x00, 0x07}, 10);
  EXPECT_EQ(serve_pdu(u, Bytes{0x03, 0x00, 0x00, 0x00, 0x02}, 20), (Bytes{0x03, 0x04, 0, 0, 0, 7}));
}

Simulator one_unit(Framing framing) {
  Bus bus;
  bus.framing = framing;
  bus.units.push_back({.device = unit_with_vector()});
  std::vector<Bus> buses;
  buses.push_back(std::move(bus));
  return Simulator(std::move(buses));
}

std::vector<Transmission> ask_rtu(Simulator& sim, const Bytes& frame) {
  const Request r{.framing = Framing::rtu, .unit = frame[0], .frame = frame};
  return sim.handle(0, r, std::span(frame).subspan(1, frame.size() - 3), 0);
}

TEST(ModbusSimFaults, RtuCorrectAndMangledReplies) {
  Simulator sim = one_unit(Framing::rtu);
  const Bytes request{0x01, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0xCB};
  const Bytes reply{0x01, 0x04, 0x04, 0x43, 0x66, 0x33, 0x34, 0x1B, 0x38};
  auto out = ask_rtu(sim, request);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes, reply);

  EXPECT_EQ(sim.execute("fault 1 bad_crc"), "ok 1 units: bad_crc");
  out = ask_rtu(sim, request);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(crc_ok(out[0].bytes));
  EXPECT_TRUE(std::equal(reply.begin(), reply.end() - 2, out[0].bytes.begin()));

  EXPECT_EQ(sim.execute("clear 1"), "ok 1 units");
  sim.execute("fault 1 echo");
  out = ask_rtu(sim, request);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes, request);
  EXPECT_EQ(out[1].bytes, reply);
  EXPECT_TRUE(out[1].gap_before);

  sim.execute("clear *");
  sim.execute("fault 1 wrong_unit");
  out = ask_rtu(sim, request);
  EXPECT_EQ(out[0].bytes, rtu({0x02, 0x04, 0x04, 0x43, 0x66, 0x33, 0x34}));

  sim.execute("clear *");
  sim.execute("fault 1 exception code=0x0B from=0 to=0");
  out = ask_rtu(sim, request);
  EXPECT_EQ(out[0].bytes, rtu({0x01, 0x84, 0x0B}));
  // Not the faulted address: answered normally.
  out = ask_rtu(sim, rtu({0x01, 0x04, 0x00, 0x02, 0x00, 0x01}));
  EXPECT_EQ(out[0].bytes, rtu({0x01, 0x04, 0x02, 0x00, 0x00}));

  sim.execute("clear *");
  sim.execute("fault 1 late delay_ms=700 every=2");
  EXPECT_EQ(ask_rtu(sim, request)[0].delay.count(), 0);
  EXPECT_EQ(ask_rtu(sim, request)[0].delay.count(), 700);

  sim.execute("clear *");
  EXPECT_EQ(sim.execute("stop 1"), "ok 1 units");
  EXPECT_TRUE(ask_rtu(sim, request).empty());
  sim.execute("start 1");
  EXPECT_EQ(ask_rtu(sim, request).size(), 1u);
  EXPECT_TRUE(ask_rtu(sim, rtu({0x09, 0x04, 0x00, 0x00, 0x00, 0x02})).empty());  // unknown id
}

TEST(ModbusSimFaults, WriteFaultsByFunctionAndCount) {
  Simulator sim = one_unit(Framing::rtu);
  const Bytes read = rtu({0x01, 0x03, 0x00, 0x05, 0x00, 0x01});
  const Bytes write = rtu({0x01, 0x06, 0x00, 0x05, 0x00, 0x07});
  // Busy for the next two FC06 writes only; reads of the same register are not touched.
  EXPECT_EQ(sim.execute("fault 1 exception code=6 function=6 times=2"),
            "ok 1 units: exception code=6 function=6 times=2");
  EXPECT_EQ(ask_rtu(sim, read)[0].bytes, rtu({0x01, 0x03, 0x02, 0x00, 0x00}));
  EXPECT_EQ(ask_rtu(sim, write)[0].bytes, rtu({0x01, 0x86, 0x06}));
  EXPECT_EQ(ask_rtu(sim, write)[0].bytes, rtu({0x01, 0x86, 0x06}));
  EXPECT_EQ(ask_rtu(sim, write)[0].bytes, write);  // the third is taken
  EXPECT_EQ(ask_rtu(sim, read)[0].bytes, rtu({0x01, 0x03, 0x02, 0x00, 0x07}));

  // ignore_write: answered like a write that was done, but the register keeps its value.
  sim.execute("clear *");
  EXPECT_EQ(sim.execute("fault 1 ignore_write function=6"), "ok 1 units: ignore_write function=6");
  const Bytes other = rtu({0x01, 0x06, 0x00, 0x05, 0x00, 0x09});
  EXPECT_EQ(ask_rtu(sim, other)[0].bytes, other);
  EXPECT_EQ(ask_rtu(sim, read)[0].bytes, rtu({0x01, 0x03, 0x02, 0x00, 0x07}));
  EXPECT_TRUE(sim.execute("fault 1 silence function=0x80").starts_with("error"));
}

TEST(ModbusSimFaults, TcpTruncatedKeepsMbapLengthConsistent) {
  Simulator sim = one_unit(Framing::tcp);
  const Bytes frame{0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, 0x04, 0x00, 0x00, 0x00, 0x02};
  const Request r{.framing = Framing::tcp, .unit = 1, .transaction = 1, .frame = frame};
  auto out = sim.handle(0, r, std::span(frame).subspan(7), 0);
  EXPECT_EQ(out[0].bytes,
            (Bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x01, 0x04, 0x04, 0x43, 0x66, 0x33, 0x34}));
  sim.execute("fault 1 truncated bytes=3");
  out = sim.handle(0, r, std::span(frame).subspan(7), 0);
  EXPECT_EQ(out[0].bytes, (Bytes{0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x01, 0x04, 0x04, 0x43}));
  sim.execute("clear *");
  sim.execute("fault 1 bad_byte_count");
  out = sim.handle(0, r, std::span(frame).subspan(7), 0);
  EXPECT_EQ(out[0].bytes[8], 0x06);
  const Request other{.framing = Framing::tcp, .unit = 7, .transaction = 2, .frame = frame};
  out = sim.handle(0, other, std::span(frame).subspan(7), 0);
  EXPECT_EQ(out[0].bytes, (Bytes{0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x07, 0x84, 0x0B}));
}

TEST(ModbusSimControl, RejectsBadCommands) {
  Simulator sim = one_unit(Framing::tcp);
  EXPECT_EQ(sim.execute("ping"), "ok");
  EXPECT_TRUE(sim.execute("fault 1 gremlins").starts_with("error unknown fault kind"));
  EXPECT_TRUE(sim.execute("fault 9 silence").starts_with("error"));
  EXPECT_TRUE(sim.execute("fault 1 late delay_ms=abc").starts_with("error"));
  EXPECT_TRUE(sim.execute("dance").starts_with("error"));
  EXPECT_EQ(sim.execute("set 1 holding 3 0x1234 7"), "ok 1 units");
  EXPECT_TRUE(sim.execute("set 1 holding 65535 1 2").starts_with("error"));
  EXPECT_TRUE(sim.execute("stats").starts_with("ok units=1 requests=0"));
}

TEST(ModbusSimConfig, DefaultConfigHasFourDemoDevices) {
  const auto config = load_sim_config(default_config_text(), "<default>");
  ASSERT_EQ(config.buses.size(), 1u);
  EXPECT_EQ(config.buses[0].port, 5020);
  ASSERT_EQ(config.buses[0].units.size(), 4u);
  Bus bus = config.buses[0];
  bus.reindex();
  // SDM630 L1 voltage near 230 V as float32 ABCD at input register 0.
  const auto pdu = serve_pdu(bus.unit(1)->device, Bytes{0x04, 0x00, 0x00, 0x00, 0x02}, 12.5);
  ASSERT_EQ(pdu.size(), 6u);
  const std::uint32_t bits =
      (std::uint32_t{pdu[2]} << 24) | (pdu[3] << 16) | (pdu[4] << 8) | pdu[5];
  const float volts = std::bit_cast<float>(bits);
  EXPECT_GT(volts, 226.0f);
  EXPECT_LT(volts, 234.0f);
}

TEST(ModbusSimConfig, FleetAndOverrides) {
  CliOverrides cli;
  cli.fleet = 10000;
  cli.tcp_port = 0;
  cli.rtu_device = "/dev/null";
  const auto config = load_sim_config("", "<empty>", cli);
  // Demo TCP listener, RTU line, then 50 fleet listeners of 200 units.
  ASSERT_EQ(config.buses.size(), 52u);
  EXPECT_EQ(config.buses[0].port, 0);
  EXPECT_EQ(config.buses[1].device, "/dev/null");
  EXPECT_EQ(config.buses[2].units.size(), 200u);
  EXPECT_EQ(config.buses[51].units.back().device.id, 200);
}

TEST(ModbusSimConfig, ErrorsNameSourceLineAndKey) {
  const std::string text =
      "[[unit]]\nid = 1\n\n[[unit.signal]]\ntable = \"holding\"\ntype = \"float33\"\n";
  try {
    load_sim_config(text, "sim.toml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "sim.toml:6: type: unknown type 'float33'");
  }
  EXPECT_THROW(load_sim_config("[[unit]]\nid = 300\n", "x.toml"), ConfigError);
  EXPECT_THROW(
      load_sim_config("[[unit]]\nid = 1\n[[unit.fault]]\nkind = \"late\"\nevery = 0\n", "x"),
      ConfigError);
  EXPECT_THROW(load_sim_config("[[tcp]]\nunits = [5]\n[[unit]]\nid = 1\n", "x"), ConfigError);
  EXPECT_THROW(load_sim_config("colour = 1\n", "x"), ConfigError);
}

TEST(ModbusSimBus, TimingFollowsBaudRate) {
  Bus bus;
  bus.baud = 9600;
  EXPECT_EQ(bus.frame_gap(), std::chrono::microseconds{3645});  // 3.5 × 10 bits / 9600
  EXPECT_EQ(bus.transmit_time(9), std::chrono::microseconds{9375});
  bus.baud = 115200;
  EXPECT_EQ(bus.frame_gap(), std::chrono::microseconds{1750});
}

}  // namespace
}  // namespace fieldhub::sim
