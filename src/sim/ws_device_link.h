// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace fieldhub::sim {

// One simulated WebSocket device's connection to fieldhub, as a vendor would write it
// (src/adapters/websocket/README.md): dials ws://host:port<path>/<device id> with its bearer
// token, reconnects with doubling, jittered backoff (0.5 s … 8 s), keeps every message until its
// ack or nack, resends the unanswered ones after a reconnect, keeps at most 16 telemetry messages
// unanswered and sends events ahead of waiting telemetry. Runs on the executor given (one thread).
class WsDeviceLink {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8081;
    std::string path = "/devices";
    std::string device_id;
    std::string token;
  };
  WsDeviceLink(boost::asio::any_io_executor io, Options options);
  ~WsDeviceLink();
  WsDeviceLink(const WsDeviceLink&) = delete;
  WsDeviceLink& operator=(const WsDeviceLink&) = delete;

  void start();
  void stop();
  // `body` is a fieldhub-format JSON object ({"ts", "values"} or {"ts", "type", ...}); the link
  // adds the id and kind.
  void send(const std::string& body, bool event);

  std::uint64_t acknowledged() const;
  std::uint64_t refused() const;  // nacks

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fieldhub::sim
