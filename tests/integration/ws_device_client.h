// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fieldhub::testing {

// A WebSocket device as a vendor would build it, on Beast: dials 127.0.0.1:<port><target> with
// "Authorization: Bearer <token>", sends text messages and collects what fieldhub answers. Its
// own io thread; every method is called from the test's thread.
class WsDeviceClient {
 public:
  WsDeviceClient();
  ~WsDeviceClient();
  WsDeviceClient(const WsDeviceClient&) = delete;
  WsDeviceClient& operator=(const WsDeviceClient&) = delete;

  // The upgrade's HTTP status: 101 when connected, else fieldhub's refusal (401, 404, ...) with
  // its body in refusal(). 0: no connection at all.
  int connect(std::uint16_t port, const std::string& target, const std::string& token);
  const std::string& refusal() const { return refusal_; }

  void send(std::string text);
  // Every text message received so far, in order.
  std::vector<std::string> received() const;
  // True once fieldhub closed the connection; its close code (0 if it just dropped).
  bool closed() const;
  int close_code() const;
  // Closes the TCP connection without a close frame (the device loses power).
  void drop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
  std::string refusal_;
};

}  // namespace fieldhub::testing
