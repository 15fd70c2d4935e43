// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/modbus/device_poller.h"
#include "adapters/modbus_tcp/tcp_link.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "model/reading.h"

namespace fieldhub::modbus {

struct TcpPollerOptions : PollOptions {
  TcpLinkOptions link;
};

// One Modbus TCP device to poll: who it is, its register map and where it answers.
struct TcpDeviceTarget {
  std::string device_id;
  const config::Profile* profile = nullptr;  // outlives the poller
  std::string host;
  std::uint16_t port = 502;
  std::uint8_t unit = 1;
  // Settings of the connection to host:port from fieldhub.toml; unset: TcpPollerOptions::link.
  std::optional<std::chrono::milliseconds> response_timeout;
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<std::size_t> max_in_flight;
};

using TcpStatusHooks = PollHooks;

// Polls Modbus TCP devices: one TcpLink per host:port, shared by every unit behind it; per device
// a DevicePoller (plan, fault rules, writes; see device_poller.h), one request of a device in
// flight at a time (devices on one link run concurrently, up to the link's window). 0A/0B mark
// the device offline while the link stays up.
//
// Single-threaded: constructed, started, stopped and queried on the io executor, where the sink
// is called too. After stop() returns the sink is never called again.
class TcpPoller {
 public:
  TcpPoller(boost::asio::any_io_executor io, std::vector<TcpDeviceTarget> devices,
            TcpPollerOptions options, common::Metrics& metrics, const common::Clock& clock,
            CycleSink sink);
  ~TcpPoller();
  TcpPoller(const TcpPoller&) = delete;
  TcpPoller& operator=(const TcpPoller&) = delete;

  // Before start().
  void set_status_hooks(TcpStatusHooks hooks) { hooks_ = std::move(hooks); }

  void start();
  void stop();

  // Introspection for health and tests. Unknown names: false / 0.
  bool device_online(std::string_view device_id) const;
  bool link_up(std::string_view target) const;  // "host:port"
  std::uint64_t late_replies(std::string_view target) const;
  std::size_t link_count() const { return links_.size(); }

  // Writes `value` to `metric` of `device_id` between its polls, reads it back; `done` is called
  // once on the io executor (not_writable for an unknown device).
  void write(std::string_view device_id, std::string_view metric, model::Value value,
             WriteCallback done);

 private:
  TcpPollerOptions options_;
  CycleSink sink_;
  TcpStatusHooks hooks_;
  std::map<std::string, std::shared_ptr<TcpLink>, std::less<>> links_;
  struct Device {
    std::shared_ptr<DevicePoller> poller;
    std::shared_ptr<TcpLink> link;
  };
  boost::asio::any_io_executor io_;
  std::vector<Device> devices_;
};

}  // namespace fieldhub::modbus
