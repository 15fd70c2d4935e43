// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/modbus_tcp/tcp_link.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "model/reading.h"

namespace fieldhub::modbus {

struct TcpPollerOptions {
  TcpLinkOptions link;
  unsigned offline_after = 3;  // failed cycles in a row before the device is offline
  // An offline device is polled at a slower, doubling rate, up to this; a link reconnect polls
  // its offline devices at once.
  std::chrono::milliseconds offline_poll_max{10000};
  std::chrono::milliseconds busy_delay{200};  // before re-sending after 05 acknowledge / 06 busy
  unsigned busy_retries = 3;
};

// One Modbus TCP device to poll: who it is, its register map and where it answers.
struct TcpDeviceTarget {
  std::string device_id;
  const config::Profile* profile = nullptr;  // outlives the poller
  std::string host;
  std::uint16_t port = 502;
  std::uint8_t unit = 1;
};

// Receives each device's cycle: every reading of the requests due in that cycle, good or bad.
using CycleSink = std::function<void(const std::string& device_id, const std::string& link,
                                     std::vector<model::Reading>&& readings)>;

// Link and device state changes, for the health tracker. Optional; called on the io executor.
struct TcpStatusHooks {
  // A connection to "host:port" came up or went down (reason: "connect: Connection refused", ...).
  std::function<void(const std::string& target, bool up, const std::string& reason)> link;
  // A device's cycle ended. failed: no request was answered (timeouts, lost link, 0A/0B);
  // reason: the first failure's reason. target_offline: a gateway said the device is absent.
  std::function<void(const std::string& device_id, bool failed, bool target_offline,
                     const std::string& reason)>
      cycle;
  // The round-trip time of an answered request.
  std::function<void(const std::string& target, std::chrono::microseconds rtt)> rtt;
};

// Polls Modbus TCP devices: one TcpLink per host:port, shared by every unit behind it; per device
// the core's plan_reads() requests at their group intervals, one request of a device in flight at
// a time (devices on one link run concurrently, up to the link's window). Faults follow the
// core's classify(): timeouts and 04 are retried once, 05/06 re-sent after a pause, 01/02/03 split
// a merged read per item to find the misconfigured register (remembered; the rest is still
// read), 0A/0B mark the device offline while the link stays up, and a device failing
// offline_after cycles in a row is offline and polled at backoff rate. Every failure leaves
// bad-quality readings with a reason, never a value.
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

  struct Device;

 private:
  TcpPollerOptions options_;
  CycleSink sink_;
  TcpStatusHooks hooks_;
  std::map<std::string, std::shared_ptr<TcpLink>, std::less<>> links_;
  std::vector<std::shared_ptr<Device>> devices_;
};

}  // namespace fieldhub::modbus
