// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/device.h"
#include "model/event.h"

namespace fieldhub::config {

// A configuration error, with where it is: "fieldhub.toml:12: key 'mqtt.port': must be 1..65535".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MqttConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  std::string client_id = "fieldhub";
  std::string username;  // empty: anonymous
  std::string password;
  std::chrono::seconds keepalive{30};
  bool clean_session = false;  // persistent session: the broker keeps our QoS 1 queue while away
  std::chrono::milliseconds reconnect_min{500};
  // Capped low: RELIABILITY.md wants the broker link back within 5 s of the broker returning.
  std::chrono::milliseconds reconnect_max{4000};
  std::size_t max_payload = 64 * 1024;  // larger messages are rejected as "oversized"
};

struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  std::filesystem::path static_dir;  // the web pages; resolved against the config file's folder
  // Served under /vendor/: the dashboard's npm libraries (the repository's node_modules);
  // resolved like static_dir. Empty: /vendor/ answers 404 and the page says what is missing.
  std::filesystem::path vendor_dir;
};

// [websocket]: the listener WebSocket devices dial in to (src/adapters/websocket/README.md). Off
// unless the section is present.
struct WebSocketConfig {
  bool enabled = false;
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8081;
  std::string path = "/devices";        // a device connects to <path>/<device id>
  std::size_t max_message = 64 * 1024;  // larger messages: close 1009, counted "too_big"
  // A connection with no frame (data, ping or pong) for this long is closed as "timeout".
  std::chrono::milliseconds idle_timeout{30000};
  // fieldhub pings every connection this often and measures the round trip from the pong.
  std::chrono::milliseconds ping_interval{10000};
};

// A WebSocket device's credential, from its [[devices]] entry (`token`). Kept out of
// model::Device so it never reaches the API, the live feed or a log.
struct WebSocketCredential {
  std::string device_id;
  std::string token;
};

struct PipelineConfig {
  std::size_t queue_capacity = 200000;  // envelopes waiting for history; adapters pause above it
  // Readings in those envelopes (a Modbus cycle is one envelope of many readings): adapters also
  // pause above this, so memory is bounded whatever the readings per message (≈ 0.5 KiB each).
  std::size_t queue_readings = 500000;
  std::size_t batch_max = 10000;                 // readings per history transaction
  std::chrono::milliseconds batch_interval{20};  // a partial batch waits at most this long
  std::chrono::milliseconds max_future_skew{std::chrono::minutes{5}};
  std::chrono::milliseconds max_past_age{std::chrono::hours{24 * 7}};
  std::size_t dead_letter_payload_cap = 4096;  // bytes of raw payload kept per dead letter
};

// [stores.postgres]: tuning of the PostgreSQL history store. Absent keys keep the store's own
// defaults (src/stores/postgres/postgres_history_store.h).
struct PostgresConfig {
  std::optional<std::chrono::milliseconds> timeout;  // connect, one statement or one COPY
  std::optional<std::chrono::milliseconds> replay_digest_retention;
  std::optional<int> partitions_ahead;
  std::optional<std::chrono::milliseconds> maintenance_interval;
  std::optional<std::chrono::milliseconds> rollup_fold_interval;
  std::optional<std::int64_t> rollup_fold_rows;
};

// [stores.redis]: tuning of the Redis live store (defaults in src/stores/redis/redis_live_store.h).
struct RedisConfig {
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::chrono::milliseconds> command_timeout;
  std::optional<std::chrono::milliseconds> heartbeat_interval;
  std::optional<std::chrono::milliseconds> reconnect_min;
  std::optional<std::chrono::milliseconds> reconnect_max;
  std::optional<std::size_t> max_pending;
  std::optional<std::size_t> devices_per_round;
};

struct StoreConfig {
  std::string live_url = "memory:";
  std::string history_url;  // sqlite:<path>; default sqlite:<data_dir>/history.db
  std::string sqlite_synchronous =
      "full";  // full: a commit survives power loss; normal: crash only
  PostgresConfig postgres;
  RedisConfig redis;
};

// [spool]: the durable spool in front of history (docs/decisions/0012-disk-spool.md). On by
// default when history is PostgreSQL (a server that can be down or hung), off for SQLite (a local
// file the spool would only duplicate).
struct SpoolConfig {
  bool enabled = false;
  std::filesystem::path dir;                              // default <data_dir>/spool
  std::uint64_t max_bytes = std::uint64_t{1} << 30;       // 1 GiB
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // 64 MiB
  std::chrono::milliseconds sync_interval{0};             // the most a sync waits to group appends
};

// [history.retention]: how long each history tier is kept; zero (the key absent) keeps it forever.
// raw: every reading; minute, hour: the rollup buckets trends are drawn from.
struct HistoryConfig {
  std::chrono::milliseconds retention_raw{0};
  std::chrono::milliseconds retention_minute{0};
  std::chrono::milliseconds retention_hour{0};
};

// How a profile's metric is found in a payload and what it means.
struct MetricSpec {
  std::string name;
  std::string unit;  // normalized unit symbol
  model::ValueType type = model::ValueType::number;
  std::string path;    // dotted JSON path in the payload; default "values.<name>" (fieldhub format)
  double scale = 1.0;  // value = raw * scale + offset
  double offset = 0.0;
  std::optional<double> min;  // outside [min, max]: kept with quality bad, reason out_of_range
  std::optional<double> max;
  bool counter = false;  // monotonic total (kWh, m³): trends show consumption per interval
};

struct EventSpec {
  std::string type;  // call, code_blue, panic, door, lock_state, tamper, fault, ...
  model::Priority priority = model::Priority::none;
  std::string path;  // json format: the field whose presence raises this event; empty for fieldhub
};

// When an alarm is raised, from a device's profile ([[alarms]]). One rule, one alarm source per
// device: a repeat while its alarm is still open counts on the same alarm (chattering grouped).
struct AlarmRule {
  enum class Trigger : std::uint8_t { event, threshold, health };
  std::string name;  // unique in the profile; the alarm's type
  Trigger trigger = Trigger::event;
  std::string event;        // event: the event type that raises it
  std::string clear_event;  // event: the event type that returns it to normal (e.g. cancel)
  bool latch = false;       // stays active after returning to normal until an operator resets it
  std::string metric;       // threshold: the number metric watched
  std::optional<double> above;
  std::optional<double> below;
  std::chrono::milliseconds hold{0};  // threshold: "for": the condition must hold this long
  double deadband = 0.0;              // threshold: returns to normal only this far inside the limit
  model::Priority priority = model::Priority::medium;
  std::string message;
  // Unacknowledged: sound again every `renotify` (0: never) and escalate at each delay after the
  // raise, the first tier also raising the priority to `escalate_priority` when set.
  std::chrono::milliseconds renotify{0};
  std::vector<std::chrono::milliseconds> escalate;
  std::optional<model::Priority> escalate_priority;
  std::uint32_t line = 0;
};

// Site-wide alarm settings ([alarms] in fieldhub.toml).
struct AlarmSettings {
  // A source that raises again within this time after its alarm closed reopens that alarm (count
  // + 1) instead of opening another: chattering is grouped.
  std::chrono::milliseconds chatter_window{std::chrono::seconds{60}};
  // A link going down (broker, Modbus connection, serial bus) raises a technical alarm with this
  // priority; none: no link alarms.
  model::Priority link_down = model::Priority::medium;
  // fieldhub itself degraded (history not written, live state not reaching Redis, ...) raises a
  // technical alarm with this priority; none: no system alarms.
  model::Priority system = model::Priority::medium;
};

enum class PayloadFormat { fieldhub, json };
enum class TimestampFormat { rfc3339, epoch_ms, epoch_s, naive_utc };

struct MqttMapping {
  PayloadFormat format = PayloadFormat::fieldhub;
  // Topic patterns with placeholders {site} and {device} (a whole level each). For the fieldhub
  // format these default to fieldhub/{site}/{device}/telemetry and .../event.
  std::string telemetry_topic;
  std::string event_topic;
  std::string timestamp_path;  // json format: where the time is; empty: none
  TimestampFormat timestamp_format = TimestampFormat::rfc3339;
};

// Modbus (src/adapters/modbus/README.md). Addresses are 0-based wire addresses: Modicon 30001 is
// input register 0, 40001 holding register 0.
enum class ModbusFunction : std::uint8_t { coil, discrete_input, holding, input };

// How a metric's value sits in registers. boolean: one coil or discrete input; bit: bit N of a
// 16-bit register; string: N registers, two characters each.
enum class ModbusType : std::uint8_t {
  boolean,
  bit,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  float32,
  float64,
  string
};

// Byte order, named by where the bytes of the big-endian value ABCD land on the wire. ABCD: big
// endian (Modbus default); CDAB: words swapped; BADC: bytes swapped in each word; DCBA: both.
// For 64-bit values the same two swaps apply to four words (ABCD = ABCDEFGH, CDAB = GHEFCDAB,
// BADC = BADCFEHG, DCBA = HGFEDCBA).
enum class ByteOrder : std::uint8_t { abcd, cdab, badc, dcba };

// One metric's place in a Modbus device's register map.
struct RegisterSpec {
  std::string metric;            // the profile metric it feeds
  std::size_t metric_index = 0;  // index into Profile::metrics
  ModbusFunction function = ModbusFunction::holding;
  std::uint16_t address = 0;  // 0-based wire address of the first register / bit
  ModbusType type = ModbusType::uint16;
  ByteOrder order = ByteOrder::abcd;
  std::uint8_t bit = 0;      // type bit: 0 = least significant
  std::uint16_t length = 0;  // type string: registers
  double scale = 1.0;        // value = raw * scale + offset
  double offset = 0.0;
  std::string group;       // poll group; empty: the profile's default interval
  bool writable = false;   // commands may write it (coil or holding only)
  std::uint32_t line = 0;  // where it was declared, for later errors

  // Registers (or bits, for coils and discrete inputs) the value spans.
  std::uint16_t width() const;
};

struct PollGroup {
  std::string name;
  std::chrono::milliseconds interval{1000};
};

struct ModbusProfileSettings {
  std::chrono::milliseconds poll_interval{1000};  // for registers without a group
  std::uint16_t max_hole = 8;                     // unused registers a merged read may span
  std::uint16_t max_registers_per_read = 125;     // some meters take fewer than Modbus's 125
  std::uint16_t max_bits_per_read = 2000;
  std::vector<PollGroup> groups;

  const PollGroup* group(std::string_view name) const;
  // The interval registers of `group` are read at ("" = poll_interval).
  std::chrono::milliseconds interval_of(std::string_view group) const;
};

struct Profile {
  std::string name;  // the file's stem: profiles/<name>.toml
  std::string kind;
  std::string description;
  std::string source;  // where the map comes from (vendor manual, format documentation)
  std::chrono::milliseconds expected_interval{0};
  MqttMapping mqtt;
  std::vector<MetricSpec> metrics;
  std::vector<EventSpec> events;
  std::vector<AlarmRule> alarms;
  ModbusProfileSettings modbus;
  std::vector<RegisterSpec> registers;  // Modbus register map, in declaration order
  std::filesystem::path file;

  const MetricSpec* metric(std::string_view name) const;
  const EventSpec* event(std::string_view type) const;
};

// A serial line shared by Modbus RTU devices: one bus is read by one strand, one request at a time.
struct SerialBus {
  std::string name;
  std::string device;  // /dev/ttyUSB0
  unsigned baud = 9600;
  char parity = 'E';  // 'N', 'E', 'O'; Modbus over serial line §2.5.1 defaults to even
  unsigned data_bits = 8;
  unsigned stop_bits = 1;
  bool echo = false;                                // a 2-wire adapter that hears its own requests
  std::chrono::milliseconds response_timeout{500};  // per request (RELIABILITY.md defaults)
  // After a timeout, that slave is not asked again for this long (its late reply cannot be taken
  // for the next answer); the other slaves are served meanwhile.
  std::chrono::milliseconds late_reply_window{500};
};

// Where a Modbus device answers. model::Device::address carries the canonical form
// ("host:port/unit" or "bus/unit") so duplicate targets are refused like any other address.
struct ModbusEndpoint {
  std::string device_id;
  bool rtu = false;
  std::string host;  // modbus_tcp
  std::uint16_t port = 502;
  std::string bus;  // modbus_rtu: SerialBus::name
  std::uint8_t unit_id = 1;
  // modbus_tcp transport settings of the connection to host:port (shared by every device there,
  // so devices on one target may not disagree); unset: the defaults (500 ms, 3 s, 1).
  std::optional<std::chrono::milliseconds> response_timeout;
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::size_t> max_in_flight;
};

struct Config {
  std::filesystem::path file;      // the config file itself
  std::filesystem::path data_dir;  // resolved against the config file's folder
  std::filesystem::path profiles_dir;
  ServerConfig server;
  MqttConfig mqtt;
  PipelineConfig pipeline;
  StoreConfig stores;
  AlarmSettings alarms;
  HistoryConfig history;
  SpoolConfig spool;
  std::vector<Profile> profiles;  // every profile a device uses
  std::vector<model::Device> devices;
  std::vector<SerialBus> serial_buses;
  std::vector<ModbusEndpoint> modbus_devices;  // one per modbus_tcp / modbus_rtu device
  WebSocketConfig websocket;
  std::vector<WebSocketCredential> websocket_credentials;  // one per websocket device

  const Profile* profile(std::string_view name) const;
  const SerialBus* serial_bus(std::string_view name) const;
  const ModbusEndpoint* modbus_device(std::string_view device_id) const;
  const WebSocketCredential* websocket_credential(std::string_view device_id) const;
};

// Loads the config file and every profile its devices name. Relative paths are resolved against
// the config file's folder. Throws ConfigError naming file, line and key for anything wrong:
// syntax, unknown keys, wrong types, out-of-range values, duplicate device ids, unknown profiles.
Config load_config(const std::filesystem::path& file);

// Loads one profile file (also used by tests and tools).
Profile load_profile(const std::filesystem::path& file);

// "500ms", "10s", "5m", "2h", "7d", "5y" (365 days) → duration; nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace fieldhub::config
