// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <vector>

#include "adapters/modbus/poll_wiring.h"
#include "adapters/modbus_tcp/tcp_poller.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// The Modbus TCP devices of the configuration (protocol "modbus_tcp"), polled by a
// modbus::TcpPoller. Each device's cycle becomes one Envelope submitted to the pipeline
// (no acknowledgement: a poll is simply repeated), its readings with provenance adapter
// "modbus_tcp" and link "host:port". Runs on the io executor; `config` outlives the adapter.
class ModbusTcpAdapter final : public PollingAdapter<modbus::TcpPoller> {
 public:
  ModbusTcpAdapter(boost::asio::any_io_executor io, const config::Config& config,
                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                   const common::Clock& clock, modbus::TcpPollerOptions options = {});

  std::string_view name() const override { return "modbus_tcp"; }

  // The config's modbus_tcp devices as poll targets (devices whose profile has no registers are
  // skipped: there is nothing to read).
  static std::vector<modbus::TcpDeviceTarget> targets(const config::Config& config);
};

}  // namespace fieldhub::adapters
