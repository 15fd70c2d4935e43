// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fieldhub::testing {

// A TCP proxy on 127.0.0.1 between an MQTT client (fieldhub) and the broker that records the
// payload of every QoS 1 message the client acknowledged (sent PUBACK for), so a test knows
// exactly what "acknowledged" covered when the client was killed. A PUBLISH is recorded before it
// is forwarded, so its PUBACK is never seen first. Accepts any number of connections one after
// another (the client reconnecting after a restart); each has its own packet ids.
class AckRecorder {
 public:
  explicit AckRecorder(std::uint16_t broker_port);
  ~AckRecorder();
  AckRecorder(const AckRecorder&) = delete;
  AckRecorder& operator=(const AckRecorder&) = delete;

  std::uint16_t port() const { return port_; }
  // Payloads acknowledged so far, in order.
  std::vector<std::string> acknowledged() const;
  // Connections currently open (a killed client's is closed once its last bytes were read).
  int open_connections() const { return open_.load(); }

 private:
  struct Connection;
  void accept_loop();
  void pump_down(Connection& c);  // broker → client: records QoS 1 PUBLISH packet ids
  void pump_up(Connection& c);    // client → broker: records PUBACKs

  std::uint16_t broker_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> acked_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace fieldhub::testing
