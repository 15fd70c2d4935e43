// SPDX-License-Identifier: Apache-2.0
// Modbus register maps in profiles, Modbus device addressing and serial buses.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "config/config.h"
#include "config/config_text.h"

namespace fieldhub::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Profile text → the error message, or "" if it loaded.
std::string profile_error(const std::string& text) {
  try {
    parse_profile(text, "p.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// A profile with one metric whose modbus table is `modbus`, on line 5.
std::string one_register(const std::string& modbus, const std::string& extra = "") {
  return "kind = \"plc\"\n[modbus]\nmax_hole = 4\n[[metrics]]\nmodbus = " + modbus +
         "\nname = \"m\"\nunit = \"\"\nmin = 0\nmax = 1\n" + extra;
}

TEST(ModbusProfile, ReadsTheRegisterMap) {
  const Profile p = parse_profile(R"(kind = "kwh_meter"
[modbus]
poll_interval = "2s"
max_hole = 3
max_registers_per_read = 60
[modbus.groups]
fast = "200ms"
[[metrics]]
name = "voltage"
unit = "V"
modbus = { function = "input", address = 0, type = "float32", order = "CDAB", scale = 0.5, offset = 1, group = "fast" }
[[metrics]]
name = "relay"
modbus = { function = "coil", address = 7, writable = true }
[[metrics]]
name = "alarm"
[metrics.modbus]
function = "holding"
address = 10
type = "bit"
bit = 15
[[metrics]]
name = "model"
modbus = { function = "holding", address = 20, type = "string", length = 8, order = "BADC" }
[[metrics]]
name = "counter"
unit = ""
modbus = { function = "holding", address = 30, type = "uint64", order = "DCBA" }
)",
                                  "p.toml");
  EXPECT_EQ(p.modbus.poll_interval, milliseconds{2000});
  EXPECT_EQ(p.modbus.max_hole, 3);
  EXPECT_EQ(p.modbus.max_registers_per_read, 60);
  EXPECT_EQ(p.modbus.interval_of("fast"), milliseconds{200});
  EXPECT_EQ(p.modbus.interval_of(""), milliseconds{2000});
  ASSERT_EQ(p.registers.size(), 5u);
  const auto& v = p.registers[0];
  EXPECT_EQ(v.metric, "voltage");
  EXPECT_EQ(v.metric_index, 0u);
  EXPECT_EQ(v.function, ModbusFunction::input);
  EXPECT_EQ(v.type, ModbusType::float32);
  EXPECT_EQ(v.order, ByteOrder::cdab);
  EXPECT_EQ(v.scale, 0.5);
  EXPECT_EQ(v.offset, 1.0);
  EXPECT_EQ(v.group, "fast");
  EXPECT_EQ(v.width(), 2);
  EXPECT_EQ(v.line, 11u);
  const auto& relay = p.registers[1];
  EXPECT_EQ(relay.type, ModbusType::boolean);
  EXPECT_TRUE(relay.writable);
  EXPECT_EQ(p.metrics[1].type, model::ValueType::boolean);  // inferred from the coil
  EXPECT_EQ(p.registers[2].type, ModbusType::bit);
  EXPECT_EQ(p.registers[2].bit, 15);
  EXPECT_EQ(p.registers[3].width(), 8);
  EXPECT_EQ(p.metrics[3].type, model::ValueType::text);
  EXPECT_EQ(p.registers[4].width(), 4);
  EXPECT_EQ(p.registers[4].order, ByteOrder::dcba);
}

TEST(ModbusProfile, ImpossibleMapsAreRefusedNamingLineAndKey) {
  const std::string at = "p.toml:5: key 'metrics[0].modbus.";
  EXPECT_EQ(profile_error(one_register("{ address = 0 }")),
            "p.toml:5: key 'metrics[0].modbus.function': is required (coil, discrete_input, "
            "holding or input)");
  EXPECT_EQ(profile_error(one_register("{ function = \"register\", address = 0 }")),
            at + "function': must be coil, discrete_input, holding or input");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\" }")),
            at + "address': is required (0-based wire address)");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 65536 }")),
            at + "address': must be 0..65535");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 65535, type = "
                                       "\"float32\" }")),
            at + "address': 65535 + 2 registers runs past the last address 65535");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"real\" }")),
            at + "type': must be bool, bit, int16, uint16, int32, uint32, int64, uint64, float32, "
                 "float64 or string");
  EXPECT_EQ(profile_error(one_register(
                "{ function = \"holding\", address = 0, type = \"string\", length = 0 }")),
            at + "length': must be 1..125");
  EXPECT_EQ(
      profile_error(one_register("{ function = \"holding\", address = 0, type = \"string\" }")),
      at + "length': is required for type \"string\" (registers, two characters each)");
  EXPECT_EQ(profile_error(one_register(
                "{ function = \"holding\", address = 0, type = \"string\", length = 126 }")),
            at + "length': must be 1..125");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"bit\", "
                                       "bit = 16 }")),
            at + "bit': must be 0..15");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"bit\" }")),
            at + "bit': is required for type \"bit\" (0 = least significant)");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, bit = 3 }")),
            at + "bit': only for type \"bit\"");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"int16\", "
                                       "order = \"CDAB\" }")),
            at + "order': a word order cannot apply to a 16-bit register: use ABCD, or BADC to "
                 "swap the two bytes of each register");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"float32\", "
                                       "order = \"BIG\" }")),
            at + "order': must be ABCD, CDAB, BADC or DCBA");
  EXPECT_EQ(profile_error(one_register("{ function = \"coil\", address = 0, type = \"uint16\" }")),
            at + "type': a coil or discrete input holds one bit: type must be \"bool\"");
  EXPECT_EQ(profile_error(one_register("{ function = \"holding\", address = 0, type = \"bool\" }")),
            at + "type': a register holds 16 bits: use type = \"bit\" with bit = 0..15, or a "
                 "number type");
  EXPECT_EQ(profile_error(one_register("{ function = \"input\", address = 0, writable = true }")),
            at + "writable': only coils and holding registers can be written");
  EXPECT_EQ(profile_error(one_register("{ function = \"input\", address = 0, scale = 0 }")),
            at + "scale': must not be 0");
  EXPECT_EQ(profile_error(one_register("{ function = \"input\", address = 0, group = \"fast\" }")),
            at + "group': no group 'fast' in [modbus.groups] (declare it with its interval)");
  EXPECT_EQ(profile_error(one_register("{ function = \"input\", address = 0, adress = 1 }")),
            at + "adress': unknown key");
  // Scaling lives in one place.
  EXPECT_EQ(profile_error(one_register("{ function = \"input\", address = 0 }", "scale = 2\n")),
            "p.toml:10: key 'metrics[0].scale': put scale in modbus = { ... }");
  // The register decides the metric's type.
  EXPECT_EQ(profile_error("kind = \"plc\"\n[[metrics]]\nname = \"on\"\ntype = \"number\"\n"
                          "modbus = { function = \"coil\", address = 0 }\n"),
            "p.toml:4: key 'metrics[0].type': the register type makes this a \"bool\" metric");
}

TEST(ModbusProfile, SettingsRanges) {
  EXPECT_EQ(profile_error("kind = \"plc\"\n[modbus]\nmax_registers_per_read = 126\n"
                          "[[metrics]]\nname = \"x\"\n"),
            "p.toml:3: key 'modbus.max_registers_per_read': must be 1..125");
  EXPECT_EQ(
      profile_error("kind = \"plc\"\n[modbus]\npoll_interval = \"1\"\n[[metrics]]\nname = \"x\"\n"),
      "p.toml:3: key 'modbus.poll_interval': '1' is not a duration (a whole number with ms, "
      "s, m, h, d or y)");
  EXPECT_EQ(
      profile_error("kind = \"plc\"\n[modbus.groups]\nFast = \"1s\"\n[[metrics]]\nname = \"x\"\n"),
      "p.toml:3: key 'modbus.groups.Fast': group name must be lower-case letters, digits and _");
  // A register wider than the device's read cap could never be read.
  EXPECT_EQ(profile_error("kind = \"plc\"\n[modbus]\nmax_registers_per_read = 4\n[[metrics]]\n"
                          "name = \"s\"\nmodbus = { function = \"holding\", address = 0, type = "
                          "\"string\", length = 5 }\n"),
            "p.toml:6: key 'metrics[0].modbus.length': 5 registers do not fit one read of 4");
}

TEST(ModbusProfile, OverlapsMustReadTheSameWay) {
  const std::string head = "kind = \"plc\"\n";
  auto metric = [](const std::string& name, const std::string& modbus) {
    return "[[metrics]]\nname = \"" + name + "\"\nmodbus = " + modbus + "\n";
  };
  // A float32 across half of an int32: refused, naming both metrics and lines.
  EXPECT_EQ(profile_error(
                head + metric("a", "{ function = \"holding\", address = 0, type = \"int32\" }") +
                metric("b", "{ function = \"holding\", address = 1, type = \"float32\" }")),
            "p.toml:7: key 'metrics[1].modbus.address': metric 'b' overlaps metric 'a' (line 4) "
            "with a different type or order");
  // The same register in another order: refused.
  EXPECT_NE(profile_error(head +
                          metric("a", "{ function = \"holding\", address = 0, type = \"int32\" }") +
                          metric("b",
                                 "{ function = \"holding\", address = 0, type = \"int32\", "
                                 "order = \"CDAB\" }")),
            "");
  // Same layout twice, bits of a word, a word and its bits, other functions: fine.
  EXPECT_EQ(profile_error(
                head + metric("a", "{ function = \"holding\", address = 0, type = \"int32\" }") +
                metric("b",
                       "{ function = \"holding\", address = 0, type = \"int32\", "
                       "scale = 0.1 }") +
                metric("w", "{ function = \"holding\", address = 5 }") +
                metric("b0", "{ function = \"holding\", address = 5, type = \"bit\", bit = 0 }") +
                metric("b1", "{ function = \"holding\", address = 5, type = \"bit\", bit = 1 }") +
                metric("i", "{ function = \"input\", address = 0, type = \"float32\" }")),
            "");
}

// --- Devices and serial buses ---------------------------------------------------------------

class ModbusDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("fieldhub-config-modbus-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "profiles");
    std::ofstream(dir_ / "profiles" / "meter.toml")
        << "kind = \"kwh_meter\"\n[[metrics]]\nname = \"voltage\"\nunit = \"V\"\n"
           "modbus = { function = \"input\", address = 0, type = \"float32\" }\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config load(const std::string& text) {
    std::ofstream(dir_ / "fieldhub.toml") << text;
    return load_config(dir_ / "fieldhub.toml");
  }
  std::string error_of(const std::string& text) {
    try {
      load(text);
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      const std::string prefix = (dir_ / "fieldhub.toml").string();
      return what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what;
    }
    return "";
  }

  fs::path dir_;
};

constexpr const char* bus = R"([[serial_buses]]
name = "bus1"
device = "/dev/ttyUSB0"
baud = 19200
parity = "N"
data_bits = 8
stop_bits = 2
echo = true
)";

std::string device(const std::string& id, const std::string& keys) {
  return "[[devices]]\nid = \"" + id + "\"\nsite = \"plant\"\nprofile = \"meter\"\n" + keys;
}

TEST_F(ModbusDevices, TcpAndRtu) {
  const Config c =
      load(std::string(bus) +
           device("tcp1",
                  "protocol = \"modbus_tcp\"\naddress = \"127.0.0.1:5020\"\n"
                  "unit_id = 3\n") +
           device("tcp2", "protocol = \"modbus_tcp\"\naddress = \"10.0.0.5\"\n") +
           device("tcp3", "protocol = \"modbus_tcp\"\naddress = \"10.0.0.5:502/7\"\n") +
           device("rtu1", "protocol = \"modbus_rtu\"\nbus = \"bus1\"\nunit_id = 3\n"));
  ASSERT_EQ(c.serial_buses.size(), 1u);
  const SerialBus& b = c.serial_buses[0];
  EXPECT_EQ(b.device, "/dev/ttyUSB0");
  EXPECT_EQ(b.baud, 19200u);
  EXPECT_EQ(b.parity, 'N');
  EXPECT_EQ(b.stop_bits, 2u);
  EXPECT_TRUE(b.echo);
  ASSERT_EQ(c.modbus_devices.size(), 4u);
  const auto* tcp1 = c.modbus_device("tcp1");
  ASSERT_NE(tcp1, nullptr);
  EXPECT_FALSE(tcp1->rtu);
  EXPECT_EQ(tcp1->host, "127.0.0.1");
  EXPECT_EQ(tcp1->port, 5020);
  EXPECT_EQ(tcp1->unit_id, 3);
  EXPECT_EQ(c.devices[0].address, "127.0.0.1:5020/3");
  EXPECT_EQ(c.modbus_device("tcp2")->port, 502);
  EXPECT_EQ(c.modbus_device("tcp2")->unit_id, 1);
  EXPECT_EQ(c.modbus_device("tcp3")->unit_id, 7);
  const auto* rtu = c.modbus_device("rtu1");
  ASSERT_NE(rtu, nullptr);
  EXPECT_TRUE(rtu->rtu);
  EXPECT_EQ(rtu->bus, "bus1");
  EXPECT_EQ(rtu->unit_id, 3);
  EXPECT_EQ(c.devices[3].address, "bus1/3");
  EXPECT_NE(c.serial_bus("bus1"), nullptr);
  EXPECT_EQ(c.profile("meter")->registers.size(), 1u);
}

TEST_F(ModbusDevices, Refusals) {
  EXPECT_EQ(error_of(device("r", "protocol = \"modbus_rtu\"\nbus = \"bus9\"\nunit_id = 1\n")),
            ":6: key 'devices[0].bus': no serial bus 'bus9' in [[serial_buses]]");
  EXPECT_EQ(error_of(std::string(bus) + device("r", "protocol = \"modbus_rtu\"\nbus = \"bus1\"\n")),
            ":9: key 'devices[0].unit_id': is required for modbus_rtu (1..247)");
  EXPECT_EQ(error_of(std::string(bus) +
                     device("r", "protocol = \"modbus_rtu\"\nbus = \"bus1\"\nunit_id = 248\n")),
            ":15: key 'devices[0].unit_id': must be 1..247");
  EXPECT_EQ(error_of(std::string(bus) + device("r",
                                               "protocol = \"modbus_rtu\"\nbus = \"bus1\"\n"
                                               "unit_id = 2\naddress = \"x\"\n")),
            ":16: key 'devices[0].address': an RTU device is addressed by bus and unit_id");
  EXPECT_EQ(error_of(device("t", "protocol = \"modbus_tcp\"\naddress = \"h:0\"\n")),
            ":6: key 'devices[0].address': port must be 1..65535");
  EXPECT_EQ(
      error_of(device("t", "protocol = \"modbus_tcp\"\naddress = \"h:502/1\"\nunit_id = 2\n")),
      ":7: key 'devices[0].unit_id': differs from the unit in address");
  EXPECT_EQ(error_of(device("t", "protocol = \"modbus_tcp\"\n")),
            ":1: key 'devices[0].address': is required (host:port)");
  EXPECT_EQ(error_of(device("t", "unit_id = 1\n")),
            ":5: key 'devices[0].unit_id': only for Modbus devices");
  // Two devices on one target.
  EXPECT_EQ(error_of(device("a", "protocol = \"modbus_tcp\"\naddress = \"h:502\"\n") +
                     device("b", "protocol = \"modbus_tcp\"\naddress = \"h\"\nunit_id = 1\n")),
            ":12: key 'devices[1].address': device 'b' has the same modbus_tcp address 'h:502/1' "
            "as device 'a' (line 2)");
  // Two units behind one gateway are two devices.
  EXPECT_EQ(error_of(device("a", "protocol = \"modbus_tcp\"\naddress = \"h:502\"\n") +
                     device("b", "protocol = \"modbus_tcp\"\naddress = \"h:502\"\nunit_id = 2\n")),
            "");
  EXPECT_EQ(error_of("[[serial_buses]]\nname = \"b\"\ndevice = \"/dev/x\"\nparity = \"X\"\n"),
            ":4: key 'serial_buses[0].parity': must be \"N\", \"E\" or \"O\"");
  EXPECT_EQ(error_of("[[serial_buses]]\nname = \"b\"\ndevice = \"/dev/x\"\n"
                     "[[serial_buses]]\nname = \"c\"\ndevice = \"/dev/x\"\n"),
            ":6: key 'serial_buses[1].device': '/dev/x' is already bus 'b' (one port, one bus)");
}

TEST_F(ModbusDevices, TransportSettings) {
  const Config c = load(
      "[[serial_buses]]\nname = \"b\"\ndevice = \"/dev/x\"\nresponse_timeout = \"250ms\"\n"
      "late_reply_window = \"1s\"\n" +
      device("a",
             "protocol = \"modbus_tcp\"\naddress = \"h:502\"\nresponse_timeout = \"1s\"\n"
             "connect_timeout = \"5s\"\nmax_in_flight = 4\n") +
      device("b", "protocol = \"modbus_tcp\"\naddress = \"h:502\"\nunit_id = 2\n"));
  EXPECT_EQ(c.serial_buses[0].response_timeout, milliseconds{250});
  EXPECT_EQ(c.serial_buses[0].late_reply_window, milliseconds{1000});
  const auto* a = c.modbus_device("a");
  EXPECT_EQ(a->response_timeout, milliseconds{1000});
  EXPECT_EQ(a->connect_timeout, milliseconds{5000});
  EXPECT_EQ(a->max_in_flight, 4u);
  EXPECT_FALSE(c.modbus_device("b")->response_timeout);  // the connection's, from device a
  // One connection, one setting.
  EXPECT_EQ(error_of(device("a",
                            "protocol = \"modbus_tcp\"\naddress = \"h:502\"\n"
                            "max_in_flight = 2\n") +
                     device("b",
                            "protocol = \"modbus_tcp\"\naddress = \"h:502\"\nunit_id = 2\n"
                            "max_in_flight = 3\n")),
            ":15: key 'devices[1].max_in_flight': differs from device 'a' on the same connection "
            "h:502");
  EXPECT_EQ(error_of(device("a",
                            "protocol = \"modbus_tcp\"\naddress = \"h\"\n"
                            "max_in_flight = 0\n")),
            ":7: key 'devices[0].max_in_flight': must be 1..64");
  EXPECT_EQ(error_of("[[serial_buses]]\nname = \"b\"\ndevice = \"/dev/x\"\n"
                     "response_timeout = \"1ms\"\n"),
            ":4: key 'serial_buses[0].response_timeout': must be between 10ms and 60000ms");
}

}  // namespace
}  // namespace fieldhub::config
