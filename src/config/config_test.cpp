// SPDX-License-Identifier: Apache-2.0
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace fieldhub::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A fresh folder per test holding fieldhub.toml and profiles/.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("fieldhub-config-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "profiles");
    write("profiles/meter.toml", R"(kind = "kwh_meter"
expected_interval = "10s"
[[metrics]]
name = "energy"
unit = "kWh"
counter = true
min = 0
)");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  // Loads `text` as fieldhub.toml and returns the error message, or "" if it loaded.
  std::string error_of(const std::string& text) {
    try {
      load_config(write("fieldhub.toml", text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::string profile_error_of(const std::string& text) {
    try {
      load_profile(write("profiles/bad.toml", text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

constexpr const char* one_device = R"(
[[devices]]
id = "m1"
site = "plant"
profile = "meter"
)";

TEST(ParseDuration, AcceptsEachUnit) {
  EXPECT_EQ(parse_duration("500ms"), milliseconds{500});
  EXPECT_EQ(parse_duration("10s"), milliseconds{10000});
  EXPECT_EQ(parse_duration("5m"), milliseconds{300000});
  EXPECT_EQ(parse_duration("2h"), milliseconds{7200000});
  EXPECT_EQ(parse_duration("7d"), milliseconds{604800000});
  EXPECT_EQ(parse_duration("0s"), milliseconds{0});
  EXPECT_EQ(parse_duration("5y"), milliseconds{5LL * 365 * 86400000});
}

TEST(ParseDuration, RefusesMalformed) {
  for (const char* bad : {"", "10", "s", "-1s", "1.5s", "10 s", "10sec", "10S", " 10s", "1e3s",
                          "99999999999999999999d", "9223372036854775807d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST_F(ConfigFiles, LoadsEverySection) {
  const auto path = write("fieldhub.toml", R"(
data_dir = "var"
profiles_dir = "profiles"
[server]
listen = "0.0.0.0:9090"
static_dir = "web"
vendor_dir = "node_modules"
[mqtt]
host = "broker.local"
port = 8883
client_id = "hub-1"
username = "u"
password = "p"
keepalive = "45s"
clean_session = true
reconnect_min = "1s"
reconnect_max = "1m"
max_payload = 1024
[pipeline]
queue_capacity = 10
queue_readings = 40
batch_max = 5
batch_interval = "50ms"
max_future_skew = "1m"
max_past_age = "2d"
dead_letter_payload_cap = 100
[stores]
live = "memory:"
history = "sqlite:var/h.db"
sqlite_synchronous = "normal"
[[devices]]
id = "m1"
site = "plant"
profile = "meter"
location = { bed = "2", room = 12, ward = "3B", zone = "z", campus = "north", annex = "a" }
[[devices]]
id = "m2"
site = "plant"
kind = "sub_meter"
profile = "meter"
address = "meter-two"
expected_interval = "1m"
)");
  const Config c = load_config(path);
  EXPECT_EQ(c.data_dir, dir_ / "var");
  EXPECT_EQ(c.profiles_dir, dir_ / "profiles");
  EXPECT_EQ(c.server.listen_address, "0.0.0.0");
  EXPECT_EQ(c.server.listen_port, 9090);
  EXPECT_EQ(c.server.static_dir, dir_ / "web");
  EXPECT_EQ(c.server.vendor_dir, dir_ / "node_modules");
  EXPECT_EQ(c.mqtt.host, "broker.local");
  EXPECT_EQ(c.mqtt.port, 8883);
  EXPECT_EQ(c.mqtt.client_id, "hub-1");
  EXPECT_EQ(c.mqtt.username, "u");
  EXPECT_EQ(c.mqtt.password, "p");
  EXPECT_EQ(c.mqtt.keepalive, std::chrono::seconds{45});
  EXPECT_TRUE(c.mqtt.clean_session);
  EXPECT_EQ(c.mqtt.reconnect_min, milliseconds{1000});
  EXPECT_EQ(c.mqtt.reconnect_max, milliseconds{60000});
  EXPECT_EQ(c.mqtt.max_payload, 1024u);
  EXPECT_EQ(c.pipeline.queue_capacity, 10u);
  EXPECT_EQ(c.pipeline.queue_readings, 40u);
  EXPECT_EQ(c.pipeline.batch_max, 5u);
  EXPECT_EQ(c.pipeline.batch_interval, milliseconds{50});
  EXPECT_EQ(c.pipeline.max_future_skew, milliseconds{60000});
  EXPECT_EQ(c.pipeline.max_past_age, std::chrono::hours{48});
  EXPECT_EQ(c.pipeline.dead_letter_payload_cap, 100u);
  EXPECT_EQ(c.stores.live_url, "memory:");
  EXPECT_EQ(c.stores.history_url, "sqlite:" + (dir_ / "var/h.db").string());
  EXPECT_EQ(c.stores.sqlite_synchronous, "normal");

  ASSERT_EQ(c.devices.size(), 2u);
  const auto& m1 = c.devices[0];
  EXPECT_EQ(m1.id, "m1");
  EXPECT_EQ(m1.kind, "kwh_meter") << "kind defaults to the profile's";
  EXPECT_EQ(m1.protocol, "mqtt");
  EXPECT_EQ(m1.address, "m1") << "address defaults to the id";
  EXPECT_EQ(m1.expected_interval, milliseconds{10000}) << "interval defaults to the profile's";
  const model::Location want = {{"campus", "north"}, {"ward", "3B"}, {"room", "12"},
                                {"bed", "2"},        {"annex", "a"}, {"zone", "z"}};
  EXPECT_EQ(m1.location, want);
  const auto& m2 = c.devices[1];
  EXPECT_EQ(m2.kind, "sub_meter");
  EXPECT_EQ(m2.address, "meter-two");
  EXPECT_EQ(m2.expected_interval, milliseconds{60000});

  ASSERT_EQ(c.profiles.size(), 1u) << "each profile once";
  const Profile* p = c.profile("meter");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->mqtt.format, PayloadFormat::fieldhub);
  EXPECT_EQ(p->mqtt.telemetry_topic, "fieldhub/{site}/{device}/telemetry");
  EXPECT_EQ(p->mqtt.event_topic, "fieldhub/{site}/{device}/event");
  const MetricSpec* energy = p->metric("energy");
  ASSERT_NE(energy, nullptr);
  EXPECT_EQ(energy->path, "values.energy");
  EXPECT_TRUE(energy->counter);
  EXPECT_EQ(energy->min, 0.0);
  EXPECT_FALSE(energy->max.has_value());
  EXPECT_EQ(p->metric("nope"), nullptr);
  EXPECT_EQ(c.profile("nope"), nullptr);
}

TEST_F(ConfigFiles, DefaultsWithoutSections) {
  const Config c = load_config(write("fieldhub.toml", ""));
  EXPECT_EQ(c.data_dir, dir_ / "data");
  EXPECT_EQ(c.stores.history_url, "sqlite:" + (dir_ / "data/history.db").string());
  EXPECT_EQ(c.mqtt.port, 1883);
  EXPECT_TRUE(c.devices.empty());
}

TEST_F(ConfigFiles, SpoolDefaultsFollowTheHistoryStore) {
  const Config sqlite = load_config(write("fieldhub.toml", ""));
  EXPECT_FALSE(sqlite.spool.enabled);
  EXPECT_EQ(sqlite.spool.dir, sqlite.data_dir / "spool");
  EXPECT_EQ(sqlite.spool.max_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(sqlite.spool.segment_bytes, std::uint64_t{64} << 20);
  EXPECT_EQ(sqlite.spool.sync_interval, milliseconds{0});
  const Config pg =
      load_config(write("fieldhub.toml", "[stores]\nhistory = \"postgresql://h/db\"\n"));
  EXPECT_TRUE(pg.spool.enabled);
  const Config c = load_config(write("fieldhub.toml", R"(
[spool]
enabled = true
dir = "/var/spool/fieldhub"
max_bytes = 1048576
segment_bytes = 65536
sync_interval = "5ms"
)"));
  EXPECT_TRUE(c.spool.enabled);
  EXPECT_EQ(c.spool.dir, fs::path("/var/spool/fieldhub"));
  EXPECT_EQ(c.spool.max_bytes, 1048576u);
  EXPECT_EQ(c.spool.segment_bytes, 65536u);
  EXPECT_EQ(c.spool.sync_interval, milliseconds{5});

  EXPECT_EQ(error_of("[spool]\nenabled = \"yes\"\n"),
            file("fieldhub.toml") + ":2: key 'spool.enabled': must be true or false");
  EXPECT_EQ(error_of("[spool]\nmax_bytes = 1000\n"),
            file("fieldhub.toml") + ":2: key 'spool.max_bytes': must be 65536..1099511627776");
  EXPECT_EQ(error_of("[spool]\nmax_bytes = 1048576\nsegment_bytes = 524288\n"),
            file("fieldhub.toml") +
                ":3: key 'spool.segment_bytes': must be at most a quarter of max_bytes");
  EXPECT_EQ(
      error_of("[spool]\nsync_interval = \"2s\"\n"),
      file("fieldhub.toml") + ":2: key 'spool.sync_interval': must be between 0ms and 1000ms");
  EXPECT_EQ(error_of("[spool]\nsize = 3\n"),
            file("fieldhub.toml") + ":2: key 'spool.size': unknown key");
}

TEST_F(ConfigFiles, HistoryRetentionPerTier) {
  const Config none = load_config(write("fieldhub.toml", ""));
  EXPECT_EQ(none.history.retention_raw, milliseconds{0});  // kept forever
  EXPECT_EQ(none.history.retention_hour, milliseconds{0});
  const Config c = load_config(write("fieldhub.toml", R"(
[history.retention]
raw = "30d"
minute = "180d"
hour = "5y"
)"));
  EXPECT_EQ(c.history.retention_raw, std::chrono::hours{24 * 30});
  EXPECT_EQ(c.history.retention_minute, std::chrono::hours{24 * 180});
  EXPECT_EQ(c.history.retention_hour, std::chrono::hours{24 * 365 * 5});

  EXPECT_EQ(error_of("[history.retention]\nraw = \"30d\"\nminute = \"10m\"\n"),
            file("fieldhub.toml") +
                ":3: key 'history.retention.minute': must be between 3600000ms and "
                "3153600000000ms");
  EXPECT_EQ(error_of("[history.retention]\nhour = \"forever\"\n"),
            file("fieldhub.toml") + ":2: key 'history.retention.hour': 'forever' is not a " +
                "duration (a whole number with ms, s, m, h, d or y)");
  EXPECT_EQ(error_of("[history.retention]\nraw = \"30d\"\nsecond = \"1d\"\n"),
            file("fieldhub.toml") + ":3: key 'history.retention.second': unknown key");
  EXPECT_EQ(error_of("[history]\nretention = 3\n"),
            file("fieldhub.toml") + ":2: key 'history.retention': must be a table");
}

TEST_F(ConfigFiles, StoreTuningKeysAreReadAndAbsentOnesKeepTheStoresDefaults) {
  const Config none = load_config(write("fieldhub.toml", ""));
  EXPECT_FALSE(none.stores.postgres.timeout.has_value());
  EXPECT_FALSE(none.stores.redis.command_timeout.has_value());
  const Config c = load_config(write("fieldhub.toml", R"(
[stores.postgres]
timeout = "3s"
partitions_ahead = 4
maintenance_interval = "10m"
replay_digest_retention = "2h"
rollup_fold_interval = "5s"
rollup_fold_rows = 5000

[stores.redis]
connect_timeout = "500ms"
command_timeout = "1s"
heartbeat_interval = "250ms"
reconnect_min = "50ms"
reconnect_max = "5s"
max_pending = 50000
devices_per_round = 128
)"));
  EXPECT_EQ(c.stores.postgres.timeout, milliseconds{3000});
  EXPECT_EQ(c.stores.postgres.partitions_ahead, 4);
  EXPECT_EQ(c.stores.postgres.maintenance_interval, std::chrono::minutes{10});
  EXPECT_EQ(c.stores.postgres.replay_digest_retention, std::chrono::hours{2});
  EXPECT_EQ(c.stores.postgres.rollup_fold_interval, milliseconds{5000});
  EXPECT_EQ(c.stores.postgres.rollup_fold_rows, 5000);
  EXPECT_EQ(c.stores.redis.connect_timeout, milliseconds{500});
  EXPECT_EQ(c.stores.redis.command_timeout, milliseconds{1000});
  EXPECT_EQ(c.stores.redis.heartbeat_interval, milliseconds{250});
  EXPECT_EQ(c.stores.redis.reconnect_min, milliseconds{50});
  EXPECT_EQ(c.stores.redis.reconnect_max, milliseconds{5000});
  EXPECT_EQ(c.stores.redis.max_pending, 50000u);
  EXPECT_EQ(c.stores.redis.devices_per_round, 128u);

  EXPECT_EQ(error_of("[stores.postgres]\ntimeout = \"1ms\"\n"),
            file("fieldhub.toml") +
                ":2: key 'stores.postgres.timeout': must be between 100ms and 600000ms");
  EXPECT_EQ(error_of("[stores.redis]\nreconnect_min = \"9s\"\nreconnect_max = \"1s\"\n"),
            file("fieldhub.toml") +
                ":2: key 'stores.redis.reconnect_min': must not exceed reconnect_max");
  EXPECT_EQ(error_of("[stores.redis]\ncommand_timeout = \"1s\"\npipeline = 3\n"),
            file("fieldhub.toml") + ":3: key 'stores.redis.pipeline': unknown key");
  EXPECT_EQ(error_of("[stores.postgres]\npartitions_ahead = -1\n"),
            file("fieldhub.toml") + ":2: key 'stores.postgres.partitions_ahead': must be 0..60");
}
TEST_F(ConfigFiles, AlarmSettingsWithTechnicalAlarmPriorities) {
  const Config none = load_config(write("fieldhub.toml", ""));
  EXPECT_EQ(none.alarms.link_down, model::Priority::medium);
  EXPECT_EQ(none.alarms.system, model::Priority::medium);
  const Config c = load_config(write("fieldhub.toml", R"(
[alarms]
chatter_window = "2m"
link_down = "high"
system = "none"
)"));
  EXPECT_EQ(c.alarms.chatter_window, std::chrono::minutes{2});
  EXPECT_EQ(c.alarms.link_down, model::Priority::high);
  EXPECT_EQ(c.alarms.system, model::Priority::none);
  EXPECT_EQ(error_of("[alarms]\nsystem = \"urgent\"\n"),
            file("fieldhub.toml") + ":2: key 'alarms.system': must be high, medium, low or none");
}

TEST_F(ConfigFiles, SyntaxErrorNamesFileAndLine) {
  const auto e = error_of("[mqtt]\nport = 1883\nhost = \"x\n");
  EXPECT_EQ(e.rfind(file("fieldhub.toml") + ":3:", 0), 0u) << e;
  EXPECT_NE(e.find("syntax"), std::string::npos) << e;
}

TEST_F(ConfigFiles, MissingFile) {
  try {
    load_config(dir_ / "absent.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.toml"), std::string::npos) << e.what();
  }
}

TEST_F(ConfigFiles, UnknownKeysAreTypos) {
  EXPECT_EQ(error_of("[mqtt]\nhost = \"h\"\nprot = 1883\n"),
            file("fieldhub.toml") + ":3: key 'mqtt.prot': unknown key");
  EXPECT_EQ(error_of("data_dir = \"d\"\n[mqt]\nport = 1\n"),
            file("fieldhub.toml") + ":2: key 'mqt': unknown key");
  EXPECT_EQ(error_of(std::string(one_device) + "adress = \"x\"\n"),
            file("fieldhub.toml") + ":6: key 'devices[0].adress': unknown key");
  EXPECT_EQ(
      error_of(std::string(one_device) + "location = { ward = \"1\", bed = [1] }\n"),
      file("fieldhub.toml") + ":6: key 'devices[0].location.bed': must be a string or an integer");
}

TEST_F(ConfigFiles, WrongTypes) {
  EXPECT_EQ(error_of("[mqtt]\nport = \"1883\"\n"),
            file("fieldhub.toml") + ":2: key 'mqtt.port': must be an integer");
  EXPECT_EQ(error_of("[mqtt]\nclean_session = 1\n"),
            file("fieldhub.toml") + ":2: key 'mqtt.clean_session': must be true or false");
  EXPECT_EQ(error_of("mqtt = 3\n"), file("fieldhub.toml") + ":1: key 'mqtt': must be a table");
  EXPECT_EQ(error_of("[devices]\nid = 1\n"),
            file("fieldhub.toml") + ":1: key 'devices': must be an array of tables ([[devices]])");
}

TEST_F(ConfigFiles, OutOfRange) {
  EXPECT_EQ(error_of("[mqtt]\nport = 70000\n"),
            file("fieldhub.toml") + ":2: key 'mqtt.port': must be 1..65535");
  EXPECT_EQ(error_of("[pipeline]\n\nbatch_max = 0\n"),
            file("fieldhub.toml") + ":3: key 'pipeline.batch_max': must be 1..1000000");
  EXPECT_EQ(error_of("[server]\nlisten = \"127.0.0.1:0\"\n"),
            file("fieldhub.toml") + ":2: key 'server.listen': port must be 1..65535");
  EXPECT_EQ(error_of("[mqtt]\nreconnect_min = \"10s\"\nreconnect_max = \"1s\"\n"),
            file("fieldhub.toml") + ":3: key 'mqtt.reconnect_max': must be >= reconnect_min");
  EXPECT_EQ(error_of("[stores]\nsqlite_synchronous = \"off\"\n"),
            file("fieldhub.toml") +
                ":2: key 'stores.sqlite_synchronous': must be \"full\" or \"normal\"");
}

TEST_F(ConfigFiles, BadDurations) {
  EXPECT_EQ(error_of("[mqtt]\nkeepalive = \"30\"\n"),
            file("fieldhub.toml") + ":2: key 'mqtt.keepalive': '30' is not a duration (a whole " +
                "number with ms, s, m, h, d or y)");
  EXPECT_EQ(
      error_of("[mqtt]\nkeepalive = 30\n"),
      file("fieldhub.toml") +
          ":2: key 'mqtt.keepalive': must be a duration string such as \"500ms\", \"10s\", \"5m\"");
  EXPECT_EQ(error_of("[mqtt]\nkeepalive = \"1500ms\"\n"),
            file("fieldhub.toml") + ":2: key 'mqtt.keepalive': must be whole seconds");
}

TEST_F(ConfigFiles, DuplicateDeviceId) {
  EXPECT_EQ(error_of(std::string(one_device) + one_device),
            file("fieldhub.toml") +
                ":8: key 'devices[1].id': duplicate device id 'm1' (first at line 3)");
}

TEST_F(ConfigFiles, DuplicateAddress) {
  EXPECT_EQ(
      error_of(
          std::string(one_device) +
          "[[devices]]\nid = \"m2\"\nsite = \"plant\"\nprofile = \"meter\"\naddress = \"m1\"\n"),
      file("fieldhub.toml") +
          ":10: key 'devices[1].address': device 'm2' has the same mqtt address 'm1' as "
          "device 'm1' (line 3)");
  // The same address under another protocol is another device.
  EXPECT_EQ(error_of(std::string(one_device) +
                     "[[devices]]\nid = \"m2\"\nsite = \"plant\"\nprofile = \"meter\"\n"
                     "address = \"m1\"\nprotocol = \"websocket\"\ntoken = \"t\"\n"
                     "[websocket]\n"),
            "");
}

TEST_F(ConfigFiles, MissingRequiredKeyPointsAtTheTable) {
  EXPECT_EQ(error_of("\n[[devices]]\nid = \"m1\"\nprofile = \"meter\"\n"),
            file("fieldhub.toml") + ":2: key 'devices[0].site': is required");
}

TEST_F(ConfigFiles, UnknownProfilePointsAtTheDevicesProfileLine) {
  const auto e = error_of(std::string(one_device) +
                          "[[devices]]\nid = \"m2\"\nsite = \"plant\"\nprofile = \"metre\"\n");
  EXPECT_EQ(e.rfind(file("fieldhub.toml") + ":9: key 'devices[1].profile': no profile 'metre'", 0),
            0u)
      << e;
  EXPECT_EQ(error_of("[[devices]]\nid = \"m2\"\nsite = \"plant\"\nprofile = \"../x\"\n"),
            file("fieldhub.toml") + ":4: key 'devices[0].profile': '../x' is not a profile name");
}

TEST_F(ConfigFiles, BadProfileFileNamesThatFile) {
  write("profiles/meter.toml",
        "kind = \"kwh_meter\"\n[[metrics]]\nname = \"energy\"\nunit = \"kwh\"\n");
  const auto e = error_of(one_device);
  EXPECT_EQ(
      e.rfind(file("profiles/meter.toml") + ":4: key 'metrics[0].unit': 'kwh' is not a known unit",
              0),
      0u)
      << e;
}

TEST_F(ConfigFiles, DeviceAddressMustBeOneTopicLevel) {
  EXPECT_EQ(
      error_of(std::string(one_device) + "address = \"a/b\"\n"),
      file("fieldhub.toml") +
          ":6: key 'devices[0].address': an MQTT address is one topic level: no '/', '+', '#'");
  EXPECT_EQ(error_of("[[devices]]\nid = \"a b\"\nsite = \"s\"\nprofile = \"meter\"\n"),
            file("fieldhub.toml") +
                ":2: key 'devices[0].id': 'a b' may hold only letters, digits, '-', '_', '.', ':'");
}

TEST_F(ConfigFiles, ProfileErrors) {
  const std::string bad = file("profiles/bad.toml");
  EXPECT_EQ(profile_error_of("description = \"x\"\n[[metrics]]\nname = \"a\"\n"),
            bad + ":1: key 'kind': is required");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n"),
            bad + ":1: key 'metrics': a profile needs at least one metric or event");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[[metrics]]\nname = \"a\"\ntype = \"float\"\n"),
            bad + ":4: key 'metrics[0].type': must be number, bool or text");
  EXPECT_EQ(
      profile_error_of("kind = \"k\"\n[[metrics]]\nname = \"a\"\n[[metrics]]\nname = \"a\"\n"),
      bad + ":5: key 'metrics[1].name': metric 'a' is defined twice");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[[metrics]]\nname = \"a\"\nmin = 5\nmax = 1\n"),
            bad + ":5: key 'metrics[0].max': must be >= min");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[[metrics]]\nname = \"a\"\nmni = 5\n"),
            bad + ":4: key 'metrics[0].mni': unknown key");
  EXPECT_EQ(
      profile_error_of("kind = \"k\"\n[[metrics]]\nname = \"a\"\ntype = \"bool\"\nunit = \"V\"\n"),
      bad + ":5: key 'metrics[0].unit': only number metrics have a unit");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[[events]]\ntype = \"call\"\npriority = \"urgent\"\n"),
            bad + ":4: key 'events[0].priority': must be high, medium, low or none");
  EXPECT_EQ(
      profile_error_of("kind = \"k\"\n[mqtt]\nformat = \"json\"\n[[metrics]]\nname = \"a\"\n"),
      bad + ":2: key 'mqtt.telemetry_topic': is required for format \"json\"");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[mqtt]\nformat = \"json\"\ntelemetry_topic = "
                             "\"tele/+/x\"\n[[metrics]]\nname = \"a\"\n"),
            bad +
                ":4: key 'mqtt.telemetry_topic': level '+': placeholders must fill a whole level "
                "and wildcards are not allowed");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[mqtt]\nformat = \"json\"\ntelemetry_topic = "
                             "\"tele/{site}\"\n[[metrics]]\nname = \"a\"\n"),
            bad + ":4: key 'mqtt.telemetry_topic': must contain {device} exactly once");
  EXPECT_EQ(profile_error_of("kind = \"k\"\n[mqtt]\nformat = \"json\"\ntelemetry_topic = "
                             "\"t/{device}\"\n[[events]]\ntype = \"a\"\n"),
            bad + ":5: key 'events[0].path': is required for format \"json\"");
  EXPECT_EQ(
      profile_error_of("kind = \"k\"\n[mqtt]\ntimestamp = \"Time\"\n[[metrics]]\nname = \"a\"\n"),
      bad + ":3: key 'mqtt.timestamp': only for format \"json\" (fieldhub uses \"ts\")");
}

TEST_F(ConfigFiles, JsonProfile) {
  const Profile p = load_profile(write("profiles/plug.toml", R"(kind = "kwh_meter"
[mqtt]
format = "json"
telemetry_topic = "tele/{device}/SENSOR"
timestamp = "Time"
timestamp_format = "naive_utc"
[[metrics]]
name = "energy"
unit = "kWh"
path = "ENERGY.Total"
scale = 0.001
[[events]]
type = "press"
priority = "low"
path = "action"
)"));
  EXPECT_EQ(p.name, "plug");
  EXPECT_EQ(p.mqtt.format, PayloadFormat::json);
  EXPECT_EQ(p.mqtt.telemetry_topic, "tele/{device}/SENSOR");
  EXPECT_EQ(p.mqtt.event_topic, "");
  EXPECT_EQ(p.mqtt.timestamp_path, "Time");
  EXPECT_EQ(p.mqtt.timestamp_format, TimestampFormat::naive_utc);
  EXPECT_EQ(p.metrics.at(0).path, "ENERGY.Total");
  EXPECT_DOUBLE_EQ(p.metrics.at(0).scale, 0.001);
  EXPECT_EQ(p.events.at(0).priority, model::Priority::low);
  EXPECT_EQ(p.events.at(0).path, "action");
}

// Every profile the project ships loads, names its source, and bounds every number.
TEST(ShippedProfiles, AllLoad) {
  const fs::path dir = fs::path(FIELDHUB_SOURCE_ROOT) / "profiles";
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++count;
    SCOPED_TRACE(entry.path().string());
    const Profile p = load_profile(entry.path());
    EXPECT_FALSE(p.source.empty());
    EXPECT_FALSE(p.description.empty());
    EXPECT_GT(p.expected_interval.count(), 0);
    for (const auto& m : p.metrics) {
      if (m.type != model::ValueType::number) continue;
      EXPECT_TRUE(m.min.has_value() && m.max.has_value()) << m.name;
    }
  }
  EXPECT_GE(count, 12u);
}

TEST(ShippedConfig, ExampleLoads) {
  const Config c = load_config(fs::path(FIELDHUB_SOURCE_ROOT) / "config" / "fieldhub.example.toml");
  EXPECT_FALSE(c.devices.empty());
  for (const auto& d : c.devices) EXPECT_NE(c.profile(d.profile), nullptr) << d.id;
}

}  // namespace
}  // namespace fieldhub::config
