// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus_tcp/tcp_poller.h"

#include <boost/asio/post.hpp>

namespace fieldhub::modbus {

namespace asio = boost::asio;

TcpPoller::TcpPoller(asio::any_io_executor io, std::vector<TcpDeviceTarget> devices,
                     TcpPollerOptions options, common::Metrics& metrics, const common::Clock& clock,
                     CycleSink sink)
    : options_(std::move(options)), sink_(std::move(sink)), io_(io) {
  for (auto& d : devices) {
    const std::string key = d.host + ":" + std::to_string(d.port);
    auto it = links_.find(key);
    if (it == links_.end()) {
      // The config loader made devices on one target agree; the first one's settings apply.
      TcpLinkOptions link = options_.link;
      if (d.response_timeout) link.response_timeout = *d.response_timeout;
      if (d.connect_timeout) link.connect_timeout = *d.connect_timeout;
      if (d.max_in_flight) link.max_in_flight = *d.max_in_flight;
      it = links_.emplace(key, std::make_shared<TcpLink>(io, d.host, d.port, link, metrics)).first;
    }
    std::weak_ptr<TcpLink> weak = it->second;
    auto send = [weak](Request request, std::function<void(const LinkResult&)> done) {
      if (auto link = weak.lock()) link->send(std::move(request), std::move(done));
    };
    DevicePoller::Identity identity{std::move(d.device_id), d.profile, d.unit, "modbus_tcp", key};
    devices_.push_back(
        Device{std::make_shared<DevicePoller>(io, std::move(identity), std::move(send), options_,
                                              metrics, clock, sink_, hooks_),
               it->second});
  }
  for (auto& [key, link] : links_) {
    std::vector<std::weak_ptr<DevicePoller>> mine;
    for (auto& d : devices_) {
      if (d.link == link) mine.push_back(d.poller);
    }
    link->on_link([this, mine, target = key](bool up, const std::string& reason) {
      if (hooks_.link) hooks_.link(target, up, reason);
      if (!up) return;
      for (auto& w : mine) {
        if (auto d = w.lock()) d->poke();
      }
    });
  }
}

TcpPoller::~TcpPoller() {
  stop();
}

void TcpPoller::start() {
  for (auto& [key, link] : links_) link->start();
  for (auto& d : devices_) d.poller->start();
}

void TcpPoller::stop() {
  for (auto& d : devices_) d.poller->stop();
  for (auto& [key, link] : links_) {
    link->stop();
    link->on_link(nullptr);  // the link may outlive the poller in pending handlers
  }
}

bool TcpPoller::device_online(std::string_view device_id) const {
  for (const auto& d : devices_) {
    if (d.poller->device_id() == device_id) return d.poller->online();
  }
  return false;
}

bool TcpPoller::link_up(std::string_view target) const {
  auto it = links_.find(target);
  return it != links_.end() && it->second->up();
}

std::uint64_t TcpPoller::late_replies(std::string_view target) const {
  auto it = links_.find(target);
  return it == links_.end() ? 0 : it->second->late_replies();
}

void TcpPoller::write(std::string_view device_id, std::string_view metric, model::Value value,
                      WriteCallback done) {
  for (auto& d : devices_) {
    if (d.poller->device_id() == device_id) {
      return d.poller->write(metric, std::move(value), std::move(done));
    }
  }
  asio::post(io_, [done = std::move(done), id = std::string(device_id)] {
    done({WriteError::not_writable, "no Modbus TCP device '" + id + "'"});
  });
}

}  // namespace fieldhub::modbus
