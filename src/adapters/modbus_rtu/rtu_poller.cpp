// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_rtu/rtu_poller.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

namespace fieldhub::modbus {

namespace asio = boost::asio;

RtuPoller::RtuPoller(asio::any_io_executor io, const std::vector<config::SerialBus>& buses,
                     std::vector<RtuDeviceTarget> devices, RtuPollerOptions options,
                     common::Metrics& metrics, const common::Clock& clock, CycleSink sink)
    : io_(io), options_(std::move(options)), sink_(std::move(sink)) {
  std::map<std::string, asio::any_io_executor, std::less<>> strands;
  for (auto& d : devices) {
    auto it = buses_.find(d.bus);
    if (it == buses_.end()) {
      const auto spec = std::find_if(buses.begin(), buses.end(),
                                     [&](const config::SerialBus& b) { return b.name == d.bus; });
      if (spec == buses.end()) continue;
      auto strand = asio::make_strand(io);
      strands.emplace(d.bus, strand);
      it = buses_.emplace(d.bus, std::make_shared<RtuBus>(strand, *spec, options_.bus, metrics))
               .first;
    }
    std::weak_ptr<RtuBus> weak = it->second;
    auto send = [weak](Request request, std::function<void(const LinkResult&)> done) {
      if (auto bus = weak.lock()) bus->send(std::move(request), std::move(done));
    };
    DevicePoller::Identity identity{std::move(d.device_id), d.profile, d.unit, "modbus_rtu", d.bus};
    devices_.push_back(Device{
        std::make_shared<DevicePoller>(strands.at(it->first), std::move(identity), std::move(send),
                                       options_, metrics, clock, sink_, hooks_),
        it->second});
  }
  for (auto& [name, bus] : buses_) {
    std::vector<std::weak_ptr<DevicePoller>> mine;
    for (auto& d : devices_) {
      if (d.bus == bus) mine.push_back(d.poller);
    }
    bus->on_link([this, mine, name = name](bool up, const std::string& reason) {
      if (hooks_.link) hooks_.link(name, up, reason);
      if (!up) return;
      for (auto& w : mine) {
        if (auto d = w.lock()) d->poke();
      }
    });
    bus->on_error([this, name = name](std::string_view kind) {
      if (hooks_.error) hooks_.error(name, kind);
    });
  }
}

RtuPoller::~RtuPoller() {
  stop();
}

void RtuPoller::start() {
  for (auto& [name, bus] : buses_) bus->start();
  for (auto& d : devices_) d.poller->start();
}

void RtuPoller::stop() {
  for (auto& d : devices_) d.poller->stop();
  for (auto& [name, bus] : buses_) {
    bus->stop();
    bus->on_link(nullptr);  // the bus may outlive the poller in pending handlers
    bus->on_error(nullptr);
  }
}

void RtuPoller::write(std::string_view device_id, std::string_view metric, model::Value value,
                      WriteCallback done) {
  for (auto& d : devices_) {
    if (d.poller->device_id() == device_id) {
      return d.poller->write(metric, std::move(value), std::move(done));
    }
  }
  asio::post(io_, [done = std::move(done), id = std::string(device_id)] {
    done({WriteError::not_writable, "no Modbus RTU device '" + id + "'"});
  });
}

bool RtuPoller::device_online(std::string_view device_id) const {
  for (const auto& d : devices_) {
    if (d.poller->device_id() == device_id) return d.poller->online();
  }
  return false;
}

bool RtuPoller::bus_up(std::string_view bus) const {
  auto it = buses_.find(bus);
  return it != buses_.end() && it->second->up();
}

std::uint64_t RtuPoller::bus_errors(std::string_view bus, std::string_view kind) const {
  auto it = buses_.find(bus);
  return it == buses_.end() ? 0 : it->second->errors(kind);
}

}  // namespace fieldhub::modbus
