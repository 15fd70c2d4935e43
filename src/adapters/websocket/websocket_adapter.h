// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>
#include <string_view>

#include "adapters/adapter.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// WebSocket devices (smart locks, vending machines) dial in to fieldhub's own listener
// ([websocket] in fieldhub.toml) at <path>/<device id>, presenting "Authorization: Bearer
// <token>"; an unknown device, a bad token or a missing upgrade is refused before the upgrade
// with an HTTP status and a JSON reason. Each message ({"id", "kind", ...}, README.md) is decoded
// by the Normalizer and submitted to the pipeline; {"ack": id} is sent only once it is durable,
// {"nack": id, "reason"} for a message refused whole (after its dead letter is durable).
//
// Health: one connection is the link "ws:<device id>": up on upgrade; down (the device offline
// "link down" at once) on a close, a drop, an idle timeout or a too-big message. Errors by kind
// (bad_frame, bad_json, unknown_device, auth, too_big, timeout) and the ping round trip go to the
// link. A device's {"kind": "status", "status": "offline"} makes it offline at once.
//
// Backpressure: while the pipeline is saturated, telemetry read from a connection is parked
// (at most max_parked per connection) and reading goes on, so events behind it are still read and
// submitted at once; a connection with max_parked parked messages stops being read (TCP holds the
// rest) until the pipeline is relieved, when the parked messages are submitted in order.
// Runs on the io executor.
class WebSocketAdapter final : public Adapter, public pipeline::AckTarget {
 public:
  // Telemetry messages a device may have unacknowledged (the protocol's window); also how many
  // are parked per connection while the pipeline is saturated.
  static constexpr std::size_t max_parked = 16;

  WebSocketAdapter(boost::asio::any_io_executor io, const config::Config& config,
                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                   const common::Clock& clock);
  ~WebSocketAdapter() override;

  std::string_view name() const override { return "websocket"; }
  // Binds the listener; a bind failure is logged and counted, and start() throws
  // std::runtime_error so fieldhub exits at start-up instead of running deaf.
  void start() override;
  void stop() override;
  void acknowledge(std::uint64_t cookie) override;
  // The bound port (listen port 0 in tests); 0 before start().
  std::uint16_t port() const;

  // The listener's state, shared with its connections (websocket_adapter.cpp only).
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace fieldhub::adapters
