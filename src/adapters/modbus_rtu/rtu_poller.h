// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/modbus/device_poller.h"
#include "adapters/modbus_rtu/rtu_bus.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"

namespace fieldhub::modbus {

struct RtuPollerOptions : PollOptions {
  RtuBusOptions bus;
};

// One Modbus RTU device to poll: who it is, its register map, its bus and slave address.
struct RtuDeviceTarget {
  std::string device_id;
  const config::Profile* profile = nullptr;  // outlives the poller
  std::string bus;                           // config::SerialBus::name
  std::uint8_t unit = 1;
};

// Polls Modbus RTU devices: one RtuBus per serial bus (one transaction at a time on it), and per
// device a DevicePoller (plan, fault rules, writes; see device_poller.h) whose requests queue on
// the bus. Each bus and its devices run on a strand of their own made from the executor given
// ("one serial bus is one strand"); sink and hooks are called there.
//
// Constructed, started, stopped and queried on the executor given (the io thread). After stop()
// returns the sink is never called again.
class RtuPoller {
 public:
  // `buses`: the serial buses the targets name (others are ignored); a target naming an unknown
  // bus is skipped.
  RtuPoller(boost::asio::any_io_executor io, const std::vector<config::SerialBus>& buses,
            std::vector<RtuDeviceTarget> devices, RtuPollerOptions options,
            common::Metrics& metrics, const common::Clock& clock, CycleSink sink);
  ~RtuPoller();
  RtuPoller(const RtuPoller&) = delete;
  RtuPoller& operator=(const RtuPoller&) = delete;

  // Before start(). PollHooks::link and ::error name the bus.
  void set_status_hooks(PollHooks hooks) { hooks_ = std::move(hooks); }

  void start();
  void stop();

  // Writes `value` to `metric` of `device_id` between its polls, reads it back; `done` is called
  // once (not_writable for an unknown device).
  void write(std::string_view device_id, std::string_view metric, model::Value value,
             WriteCallback done);

  // Introspection for health and tests. Unknown names: false / 0.
  bool device_online(std::string_view device_id) const;
  bool bus_up(std::string_view bus) const;
  std::uint64_t bus_errors(std::string_view bus, std::string_view kind) const;
  std::size_t bus_count() const { return buses_.size(); }

 private:
  struct Device {
    std::shared_ptr<DevicePoller> poller;
    std::shared_ptr<RtuBus> bus;
  };

  boost::asio::any_io_executor io_;
  RtuPollerOptions options_;
  CycleSink sink_;
  PollHooks hooks_;
  std::map<std::string, std::shared_ptr<RtuBus>, std::less<>> buses_;
  std::vector<Device> devices_;
};

}  // namespace fieldhub::modbus
