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
};

struct PipelineConfig {
  std::size_t queue_capacity = 200000;  // envelopes waiting for history; adapters pause above it
  std::size_t batch_max = 10000;        // readings per history transaction
  std::chrono::milliseconds batch_interval{20};  // a partial batch waits at most this long
  std::chrono::milliseconds max_future_skew{std::chrono::minutes{5}};
  std::chrono::milliseconds max_past_age{std::chrono::hours{24 * 7}};
  std::size_t dead_letter_payload_cap = 4096;  // bytes of raw payload kept per dead letter
};

struct StoreConfig {
  std::string live_url = "memory:";
  std::string history_url;          // sqlite:<path>; default sqlite:<data_dir>/history.db
  std::string sqlite_synchronous = "full";  // full: a commit survives power loss; normal: crash only
};

// How a profile's metric is found in a payload and what it means.
struct MetricSpec {
  std::string name;
  std::string unit;           // normalized unit symbol
  model::ValueType type = model::ValueType::number;
  std::string path;           // dotted JSON path in the payload; default "values.<name>" (fieldhub format)
  double scale = 1.0;         // value = raw * scale + offset
  double offset = 0.0;
  std::optional<double> min;  // outside [min, max]: kept with quality bad, reason out_of_range
  std::optional<double> max;
  bool counter = false;       // monotonic total (kWh, m³): trends show consumption per interval
};

struct EventSpec {
  std::string type;  // call, code_blue, panic, door, lock_state, tamper, fault, ...
  model::Priority priority = model::Priority::none;
  std::string path;  // json format: the field whose presence raises this event; empty for fieldhub
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

struct Profile {
  std::string name;  // the file's stem: profiles/<name>.toml
  std::string kind;
  std::string description;
  std::string source;  // where the map comes from (vendor manual, format documentation)
  std::chrono::milliseconds expected_interval{0};
  MqttMapping mqtt;
  std::vector<MetricSpec> metrics;
  std::vector<EventSpec> events;
  std::filesystem::path file;

  const MetricSpec* metric(std::string_view name) const;
  const EventSpec* event(std::string_view type) const;
};

struct Config {
  std::filesystem::path file;      // the config file itself
  std::filesystem::path data_dir;  // resolved against the config file's folder
  std::filesystem::path profiles_dir;
  ServerConfig server;
  MqttConfig mqtt;
  PipelineConfig pipeline;
  StoreConfig stores;
  std::vector<Profile> profiles;      // every profile a device uses
  std::vector<model::Device> devices;

  const Profile* profile(std::string_view name) const;
};

// Loads the config file and every profile its devices name. Relative paths are resolved against
// the config file's folder. Throws ConfigError naming file, line and key for anything wrong:
// syntax, unknown keys, wrong types, out-of-range values, duplicate device ids, unknown profiles.
Config load_config(const std::filesystem::path& file);

// Loads one profile file (also used by tests and tools).
Profile load_profile(const std::filesystem::path& file);

// "500ms", "10s", "5m", "2h", "7d" → duration; nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace fieldhub::config
