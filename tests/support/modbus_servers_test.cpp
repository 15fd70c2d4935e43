// SPDX-License-Identifier: Apache-2.0
// Both Modbus peers (our simulator and pymodbus) over TCP and RTU (socat ptys), checked with
// hand-written requests and the published test vectors; every simulator fault seen on the wire.
#include "support/modbus_servers.h"

#include <gtest/gtest.h>

#include <bit>
#include <fstream>

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Published SDM630 vectors (shared/test-vectors/README.md).
const Bytes rtu_request = hex_bytes("01 04 00 00 00 02 71 CB");
const Bytes rtu_response = hex_bytes("01 04 04 43 66 33 34 1B 38");
const Bytes tcp_request = hex_bytes("00 01 00 00 00 06 01 04 00 00 00 02");
const Bytes tcp_response = hex_bytes("00 01 00 00 00 07 01 04 04 43 66 33 34");

// Unit 1 holds the vector's bytes; unit 2 is the PLC template; unit 3 a plain holding bank.
const char* sim_config = R"(
[[unit]]
id = 1
name = "sdm630-vector"
registers = [ { table = "input", address = 0, values = [0x4366, 0x3334] } ]

[[unit]]
id = 2
template = "plc"

[[unit]]
id = 3
registers = [ { table = "holding", address = 0, values = [0x47F1, 0x2000, 0x2000, 0x47F1] } ]
)";

// ---- The published vectors against both servers -------------------------------------------

TEST(ModbusPeers, SimTcpAnswersPublishedVector) {
  ModbusSimServer sim({.config_toml = sim_config});
  auto conn = ByteStream::connect_tcp(sim.port());
  conn.write(tcp_request);
  EXPECT_EQ(to_hex(conn.read_exact(tcp_response.size(), 2000ms)), to_hex(tcp_response));
}

TEST(ModbusPeers, PymodbusTcpAnswersPublishedVector) {
  PymodbusServer py;
  auto conn = ByteStream::connect_tcp(py.port());
  conn.write(tcp_request);
  EXPECT_EQ(to_hex(conn.read_exact(tcp_response.size(), 3000ms)), to_hex(tcp_response));
  // The byte orders of 123456.0 (0x47F12000): ABCD, CDAB, BADC, DCBA at holding 0, 2, 4, 6.
  conn.write(hex_bytes("00 02 00 00 00 06 01 03 00 00 00 08"));
  EXPECT_EQ(to_hex(conn.read_exact(9 + 16, 3000ms)),
            "00 02 00 00 00 13 01 03 10 47 F1 20 00 20 00 47 F1 F1 47 00 20 00 20 F1 47");
  // int16 -1234, int32 -123456789, uint32 3000000000, int64 -1234567890123, uint16 65535.
  conn.write(hex_bytes("00 04 00 00 00 06 01 03 00 08 00 0A"));
  EXPECT_EQ(to_hex(conn.read_exact(9 + 20, 3000ms)),
            "00 04 00 00 00 17 01 03 14 FB 2E F8 A4 32 EB B2 D0 5E 00 FF FF FE E0 8E 04 FB 35 "
            "FF FF");
  conn.write(hex_bytes("00 03 00 00 00 06 01 01 00 00 00 08"));
  EXPECT_EQ(to_hex(conn.read_exact(10, 3000ms)), "00 03 00 00 00 04 01 01 01 8D");
}

TEST(ModbusPeers, SimRtuAnswersPublishedVector) {
  PtyPair pty;
  ModbusSimServer sim({.config_toml = sim_config, .tcp = false, .rtu_device = pty.a()});
  auto line = ByteStream::open_serial(pty.b());
  line.write(rtu_request);
  EXPECT_EQ(to_hex(line.read_exact(rtu_response.size(), 5000ms)), to_hex(rtu_response));
}

TEST(ModbusPeers, PymodbusRtuAnswersPublishedVector) {
  PtyPair pty;
  PymodbusServer py(pty.a());
  auto line = ByteStream::open_serial(pty.b());
  line.write(rtu_request);
  // By length, not by a quiet gap: a busy machine can split the reply with a pause.
  EXPECT_EQ(to_hex(line.read_exact(rtu_response.size(), 5000ms)), to_hex(rtu_response)) << py.log();
  // Another id on the same line: pymodbus stays silent, like a real bus.
  line.write(with_modbus_crc(hex_bytes("02 04 00 00 00 02")));
  EXPECT_TRUE(line.read_until_quiet(300ms).empty());
}

// ---- The simulator over TCP ----------------------------------------------------------------

class SimTcp : public ::testing::Test {
 protected:
  Bytes ask(const Bytes& request, std::size_t expect, std::chrono::milliseconds wait = 2000ms) {
    conn_.write(request);
    return conn_.read_exact(expect, wait);
  }

  ModbusSimServer sim_{{.config_toml = sim_config}};
  ByteStream conn_ = ByteStream::connect_tcp(sim_.port());
};

TEST_F(SimTcp, ManyUnitsAndConnections) {
  auto other = ByteStream::connect_tcp(sim_.port());
  other.write(hex_bytes("00 07 00 00 00 06 03 03 00 00 00 02"));
  EXPECT_EQ(to_hex(other.read_exact(13, 2000ms)), "00 07 00 00 00 07 03 03 04 47 F1 20 00");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), to_hex(tcp_response));
  // Unknown unit behind the "gateway": exception 0x0B.
  EXPECT_EQ(to_hex(ask(hex_bytes("00 09 00 00 00 06 09 04 00 00 00 02"), 9)),
            "00 09 00 00 00 03 09 84 0B");
}

TEST_F(SimTcp, WriteThenReadBack) {
  EXPECT_EQ(to_hex(ask(hex_bytes("00 04 00 00 00 06 02 06 00 10 00 FA"), 12)),
            "00 04 00 00 00 06 02 06 00 10 00 FA");
  EXPECT_EQ(to_hex(ask(hex_bytes("00 05 00 00 00 06 02 03 00 10 00 01"), 11)),
            "00 05 00 00 00 05 02 03 02 00 FA");
}

TEST_F(SimTcp, LateReplyArrivesAfterTheDelay) {
  sim_.control("fault 1 late delay_ms=600");
  const auto start = Clock::now();
  conn_.write(tcp_request);
  EXPECT_TRUE(conn_.read_exact(1, 400ms).empty());  // a 500 ms client timeout has passed
  // A second request is answered at once (by transaction id), the late one follows.
  sim_.control("clear 1");
  EXPECT_EQ(to_hex(ask(hex_bytes("00 02 00 00 00 06 03 03 00 00 00 01"), 11)),
            "00 02 00 00 00 05 03 03 02 47 F1");
  EXPECT_EQ(to_hex(conn_.read_exact(13, 2000ms)), to_hex(tcp_response));
  EXPECT_GE(Clock::now() - start, 600ms);
}

TEST_F(SimTcp, MalformedReplies) {
  sim_.control("fault 1 exception code=2 from=0 to=1");
  EXPECT_EQ(to_hex(ask(tcp_request, 9)), "00 01 00 00 00 03 01 84 02");
  sim_.control("clear 1");
  sim_.control("fault 1 wrong_unit");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), "00 01 00 00 00 07 02 04 04 43 66 33 34");
  sim_.control("clear 1");
  sim_.control("fault 1 wrong_function");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), "00 01 00 00 00 07 01 03 04 43 66 33 34");
  sim_.control("clear 1");
  sim_.control("fault 1 bad_byte_count");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), "00 01 00 00 00 07 01 04 06 43 66 33 34");
  sim_.control("clear 1");
  sim_.control("fault 1 truncated bytes=2");
  EXPECT_EQ(to_hex(ask(tcp_request, 11)), "00 01 00 00 00 05 01 04 04 43 66");
  sim_.control("clear 1");
  sim_.control("fault 1 duplicate");
  EXPECT_EQ(to_hex(ask(tcp_request, 26)), to_hex(tcp_response) + " " + to_hex(tcp_response));
  sim_.control("clear 1");
  sim_.control("fault 1 noise_before bytes=2");
  EXPECT_EQ(to_hex(ask(tcp_request, 15)), "FF 00 " + to_hex(tcp_response));
}

TEST_F(SimTcp, EveryExceptionCode) {
  for (const char* code : {"01", "02", "03", "04", "05", "06", "0A", "0B"}) {
    sim_.control("clear 1");
    sim_.control(std::string("fault 1 exception code=0x") + code);
    EXPECT_EQ(to_hex(ask(tcp_request, 9)), std::string("00 01 00 00 00 03 01 84 ") + code);
  }
  // The request was not executed: a write under an exception leaves the register as it was.
  sim_.control("clear *");
  sim_.control("fault 3 exception code=4");
  EXPECT_EQ(to_hex(ask(hex_bytes("00 05 00 00 00 06 03 06 00 00 12 34"), 9)),
            "00 05 00 00 00 03 03 86 04");
  sim_.control("clear 3");
  EXPECT_EQ(to_hex(ask(hex_bytes("00 06 00 00 00 06 03 03 00 00 00 01"), 11)),
            "00 06 00 00 00 05 03 03 02 47 F1");
}

TEST_F(SimTcp, EveryOtherExceptionForChosenAddressesOnly) {
  sim_.control("fault 2 exception code=6 from=16 to=16 every=2");
  const Bytes setpoint = hex_bytes("00 01 00 00 00 06 02 03 00 10 00 01");
  EXPECT_EQ(to_hex(ask(setpoint, 11)), "00 01 00 00 00 05 02 03 02 00 D7");  // 215
  EXPECT_EQ(to_hex(ask(setpoint, 9)), "00 01 00 00 00 03 02 83 06");
  EXPECT_EQ(to_hex(ask(setpoint, 11)), "00 01 00 00 00 05 02 03 02 00 D7");
  // Status (address 1) is outside the faulted range.
  EXPECT_EQ(to_hex(ask(hex_bytes("00 02 00 00 00 06 02 03 00 01 00 01"), 11)),
            "00 02 00 00 00 05 02 03 02 00 01");
}

TEST_F(SimTcp, SilenceAndDeviceStopped) {
  sim_.control("fault 1 silence");
  EXPECT_TRUE(ask(tcp_request, 13, 300ms).empty());
  sim_.control("clear 1");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), to_hex(tcp_response));
  sim_.control("stop 1");
  EXPECT_TRUE(ask(tcp_request, 13, 300ms).empty());
  sim_.control("start 1");
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), to_hex(tcp_response));
  EXPECT_FALSE(conn_.peer_closed());
  const std::string stats = sim_.command("stats 1");
  EXPECT_TRUE(stats.starts_with("ok units=1 requests=4 replies=2")) << stats;
}

TEST_F(SimTcp, BadMbapHeaderClosesTheConnection) {
  conn_.write(hex_bytes("00 01 00 07 00 06 01 04 00 00 00 02"));  // protocol id 7
  conn_.read_for(300ms);
  EXPECT_TRUE(conn_.peer_closed());
  EXPECT_TRUE(sim_.command("stats").find("bad_frames=1") != std::string::npos);
  EXPECT_TRUE(sim_.command("fault 1 gremlins").starts_with("error"));
}

TEST_F(SimTcp, SurvivesGarbage) {
  // Shortest legal MBAP frame (a lone function code): exception 03, connection kept.
  EXPECT_EQ(to_hex(ask(hex_bytes("00 01 00 00 00 02 01 04"), 9)), "00 01 00 00 00 03 01 84 03");
  std::uint32_t x = 12345;
  Bytes garbage(4096);
  for (auto& b : garbage) b = static_cast<std::uint8_t>((x = x * 1103515245 + 12345) >> 16);
  auto noisy = ByteStream::connect_tcp(sim_.port());
  noisy.write(garbage);
  noisy.read_for(200ms);
  EXPECT_EQ(to_hex(ask(tcp_request, 13)), to_hex(tcp_response));
  auto fresh = ByteStream::connect_tcp(sim_.port());
  fresh.write(tcp_request);
  EXPECT_EQ(to_hex(fresh.read_exact(13, 2000ms)), to_hex(tcp_response));
}

// ---- The simulator over RTU ----------------------------------------------------------------

class SimRtu : public ::testing::Test {
 protected:
  Bytes ask(const Bytes& request, std::chrono::milliseconds wait = 2000ms) {
    line_.write(request);
    return line_.read_until_quiet(wait);
  }

  PtyPair pty_;
  ModbusSimServer sim_{
      {.config_toml = sim_config, .tcp = false, .rtu_device = pty_.a(), .baud = 19200}};
  ByteStream line_ = ByteStream::open_serial(pty_.b());
};

TEST_F(SimRtu, ManySlavesOnOneLine) {
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(rtu_response));
  EXPECT_EQ(to_hex(ask(with_modbus_crc(hex_bytes("03 03 00 02 00 02")))),
            to_hex(with_modbus_crc(hex_bytes("03 03 04 20 00 47 F1"))));
  // Unknown slave and a frame with a bad CRC: silence, as on a real bus.
  EXPECT_TRUE(ask(with_modbus_crc(hex_bytes("09 04 00 00 00 02")), 300ms).empty());
  EXPECT_TRUE(ask(hex_bytes("01 04 00 00 00 02 71 CC"), 300ms).empty());
  EXPECT_TRUE(sim_.command("stats").find("bad_frames=1") != std::string::npos);
  // Broadcast write: executed by every slave, answered by none.
  EXPECT_TRUE(ask(with_modbus_crc(hex_bytes("00 06 00 10 00 2A")), 300ms).empty());
  EXPECT_EQ(to_hex(ask(with_modbus_crc(hex_bytes("02 03 00 10 00 01")))),
            to_hex(with_modbus_crc(hex_bytes("02 03 02 00 2A"))));
}

TEST_F(SimRtu, SurvivesGarbage) {
  std::uint32_t x = 99;
  for (int burst = 0; burst < 20; ++burst) {
    Bytes garbage(1 + burst * 13);
    for (auto& b : garbage) b = static_cast<std::uint8_t>((x = x * 1103515245 + 12345) >> 16);
    line_.write(garbage);
  }
  line_.read_for(200ms);  // whatever a garbage frame may have provoked
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(rtu_response));
}

TEST_F(SimRtu, BadCrcIsReallyBad) {
  sim_.control("fault 1 bad_crc");
  const Bytes reply = ask(rtu_request);
  ASSERT_EQ(reply.size(), rtu_response.size());
  EXPECT_TRUE(std::equal(reply.begin(), reply.end() - 2, rtu_response.begin()));
  EXPECT_NE(with_modbus_crc(Bytes(reply.begin(), reply.end() - 2)), reply);
}

TEST_F(SimRtu, EchoThenReply) {
  sim_.control("fault 1 echo");
  line_.write(rtu_request);
  // The echo and the reply are separate frames; together they are the request then the answer.
  Bytes both = line_.read_until_quiet(2000ms, 200ms);
  EXPECT_EQ(to_hex(both), to_hex(rtu_request) + " " + to_hex(rtu_response));
}

TEST_F(SimRtu, NoiseTruncationWrongUnitDuplicate) {
  sim_.control("fault 1 noise_before bytes=3");
  EXPECT_EQ(to_hex(ask(rtu_request)), "FF 00 A5 " + to_hex(rtu_response));
  sim_.control("clear *");
  sim_.control("fault 1 noise_after bytes=2");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(rtu_response) + " FF 00");
  sim_.control("clear *");
  sim_.control("fault 1 truncated bytes=4");
  EXPECT_EQ(to_hex(ask(rtu_request)), "01 04 04 43 66");
  sim_.control("clear *");
  sim_.control("fault 1 wrong_unit");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(with_modbus_crc(hex_bytes("02 04 04 43 66 33 34"))));
  sim_.control("clear *");
  sim_.control("fault 1 wrong_function");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(with_modbus_crc(hex_bytes("01 03 04 43 66 33 34"))));
  sim_.control("clear *");
  sim_.control("fault 1 bad_byte_count");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(with_modbus_crc(hex_bytes("01 04 06 43 66 33 34"))));
  sim_.control("clear *");
  sim_.control("fault 1 exception code=0x0A");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(with_modbus_crc(hex_bytes("01 84 0A"))));
  sim_.control("clear *");
  sim_.control("fault 1 duplicate");
  line_.write(rtu_request);
  EXPECT_EQ(to_hex(line_.read_until_quiet(2000ms, 200ms)),
            to_hex(rtu_response) + " " + to_hex(rtu_response));
}

TEST_F(SimRtu, LateSilentAndStopped) {
  sim_.control("fault 1 late delay_ms=500");
  const auto start = Clock::now();
  line_.write(rtu_request);
  EXPECT_TRUE(line_.read_until_quiet(350ms).empty());
  EXPECT_EQ(to_hex(line_.read_until_quiet(2000ms)), to_hex(rtu_response));
  EXPECT_GE(Clock::now() - start, 500ms);
  sim_.control("clear *");
  sim_.control("fault 1 silence");
  EXPECT_TRUE(ask(rtu_request, 300ms).empty());
  sim_.control("clear *");
  sim_.control("stop 1");
  EXPECT_TRUE(ask(rtu_request, 300ms).empty());
  // The other slaves on the line still answer.
  EXPECT_EQ(to_hex(ask(with_modbus_crc(hex_bytes("03 03 00 00 00 01")))),
            to_hex(with_modbus_crc(hex_bytes("03 03 02 47 F1"))));
  sim_.control("start 1");
  EXPECT_EQ(to_hex(ask(rtu_request)), to_hex(rtu_response));
}

TEST(ModbusPeers, SimDemoDevicesOnAFreePort) {
  ModbusSimServer sim;
  auto conn = ByteStream::connect_tcp(sim.port());
  // Unit 1, the SDM630-like meter: L1 voltage near 230 V as float32 ABCD at input register 0.
  conn.write(tcp_request);
  const Bytes reply = conn.read_exact(13, 2000ms);
  ASSERT_EQ(reply.size(), 13u);
  EXPECT_EQ(to_hex(std::span(reply).first(9)), "00 01 00 00 00 07 01 04 04");
  const std::uint32_t bits = (std::uint32_t{reply[9]} << 24) | (std::uint32_t{reply[10]} << 16) |
                             (std::uint32_t{reply[11]} << 8) | reply[12];
  const float volts = std::bit_cast<float>(bits);
  EXPECT_GT(volts, 225.0f);
  EXPECT_LT(volts, 235.0f);
  EXPECT_NE(sim.command("list").find("4:plc"), std::string::npos);
}

TEST(ModbusPeers, SimRejectsBadConfigNamingFileLineAndKey) {
  TempDir dir;
  const auto config = dir.path() / "bad.toml";
  std::ofstream(config)
      << "[[unit]]\nid = 1\nsignal = [ { table = \"input\", type = \"float33\" } ]\n";
  ChildProcess sim({(bin_dir() / "fieldhub-modbus-sim").string(), "--config", config.string()},
                   dir.path() / "log");
  EXPECT_EQ(sim.wait(10000ms), 1);
  EXPECT_NE(sim.log().find("bad.toml:3: type: unknown type 'float33'"), std::string::npos)
      << sim.log();
  ChildProcess help({(bin_dir() / "fieldhub-modbus-sim").string(), "--help"}, dir.path() / "help");
  EXPECT_EQ(help.wait(10000ms), 0);
  EXPECT_NE(help.log().find("--control-port"), std::string::npos);
}

TEST(ModbusPeers, SimRtuPacesRepliesAtTheBaudRate) {
  PtyPair pty;
  ModbusSimServer sim(
      {.config_toml = sim_config, .tcp = false, .rtu_device = pty.a(), .baud = 1200});
  auto line = ByteStream::open_serial(pty.b());
  const auto start = Clock::now();
  line.write(rtu_request);
  EXPECT_EQ(to_hex(line.read_until_quiet(3000ms, 100ms)), to_hex(rtu_response));
  // 1200 baud 8N1: 3.5 characters of silence (29 ms) + 9 reply bytes (75 ms).
  EXPECT_GE(Clock::now() - start, 100ms);
}

}  // namespace
}  // namespace fieldhub::testing
