// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace fieldhub::testing {

// The real fieldhub binary, started as a separate process with a generated configuration in a
// temporary folder, so tests can stop it, kill it with SIGKILL and start it again on the same data.
class FieldhubProcess {
 public:
  struct Options {
    std::uint16_t broker_port = 0;
    std::string site = "lab";
    int devices = 10;
    std::string extra_config;  // appended TOML
    std::string live_url = "memory:";
    std::string history_url = "sqlite:data/history.db";
    // Prepended to fieldhub's command line (a wrapper that execs it, so the pid stays fieldhub's).
    std::vector<std::string> launcher;
  };
  explicit FieldhubProcess(Options options);
  ~FieldhubProcess();

  void start();  // waits until the HTTP port accepts and /healthz reports the broker up
  void kill();   // SIGKILL, then reaps
  void stop();   // SIGTERM, waits for a clean exit
  std::uint16_t http_port() const { return http_port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  std::string log() const;
  const std::filesystem::path& dir() const { return dir_.path(); }

  // GET over HTTP/1.0; returns status and body, or nullopt if the connection failed.
  std::optional<std::pair<int, std::string>> get(const std::string& target) const;
  // Any method, with an optional JSON body and extra header lines ("Origin: …\r\n").
  std::optional<std::pair<int, std::string>> request(const std::string& method,
                                                     const std::string& target,
                                                     const std::string& body = {},
                                                     const std::string& headers = {}) const;
  // Prometheus text parsed into "name{labels}" → value.
  std::map<std::string, double> metrics() const;

 private:
  Options options_;
  TempDir dir_;
  std::uint16_t http_port_;
  std::unique_ptr<ChildProcess> process_;
  int starts_ = 0;
};

// The state /healthz gives one component ("ok", "degraded: …"), or "" when unreachable.
std::string health_component(const FieldhubProcess& fh, const std::string& name);
// The state of the open alarm of this type, or "" when there is none.
std::string alarm_state(const FieldhubProcess& fh, const std::string& type);

// Publishes numbered QoS 1 messages through the broker with fieldhub's own MQTT client, keeping
// at most `window` unacknowledged; retries across broker restarts (the client resends with DUP).
struct Message {
  std::string topic;
  std::string payload;
};
struct PublishResult {
  std::size_t acknowledged = 0;
  std::size_t failed = 0;
};
// Calls `progress(acknowledged)` on every acknowledgement, from the publisher's thread. With
// `rate` > 0 the messages go out at that many per second (a steady ingest), else as fast as the
// window allows.
PublishResult publish_all(std::uint16_t broker_port, const std::vector<Message>& messages,
                          std::chrono::milliseconds deadline, std::size_t window = 500,
                          const std::function<void(std::size_t)>& progress = {}, double rate = 0);

}  // namespace fieldhub::testing
