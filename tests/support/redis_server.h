// SPDX-License-Identifier: Apache-2.0
#pragma once

// A real redis-server for integration tests, on 127.0.0.1 and a free port, nothing persisted
// (--save "" --appendonly no), its own temp dir for the working directory and log.
// Not thread-safe; use from the test's thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "support/test_support.h"

namespace fieldhub::testing {

class RedisServer {
 public:
  explicit RedisServer(std::uint16_t port = 0);  // 0: pick a free port
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Whether a redis-server binary is installed (tests skip without one).
  static bool available();

  void start();    // waits until it accepts connections (10 s), throws on failure
  void stop();     // SIGTERM and wait
  void kill();     // SIGKILL and reap
  void pause();    // SIGSTOP: a hung server (connections open, nothing answered)
  void resume();   // SIGCONT
  void restart();  // stop() then start() on the same port; the data is gone (nothing is saved)
  bool running();
  std::uint16_t port() const { return port_; }
  std::string url(int db = 0) const;  // redis://127.0.0.1:<port>/<db>
  std::string log() const;

 private:
  std::uint16_t port_;
  bool port_chosen_by_us_;
  bool started_once_ = false;
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace fieldhub::testing
