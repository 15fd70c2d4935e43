// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <vector>

#include "adapters/modbus/poll_wiring.h"
#include "adapters/modbus_rtu/rtu_poller.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// The Modbus RTU devices of the configuration (protocol "modbus_rtu", on [[serial_buses]]),
// polled by a modbus::RtuPoller. Each device's cycle becomes one Envelope submitted to the
// pipeline, its readings with provenance adapter "modbus_rtu" and link = the bus name. Bus state
// and errors go to the pipeline's health tracker as link "serial:<bus>". Runs on the io executor
// (each bus on a strand of it); `config` outlives the adapter.
class ModbusRtuAdapter final : public PollingAdapter<modbus::RtuPoller> {
 public:
  ModbusRtuAdapter(boost::asio::any_io_executor io, const config::Config& config,
                   pipeline::Pipeline& pipeline, common::Metrics& metrics,
                   const common::Clock& clock, modbus::RtuPollerOptions options = {});

  std::string_view name() const override { return "modbus_rtu"; }

  // The config's modbus_rtu devices as poll targets (devices whose profile has no registers are
  // skipped: there is nothing to read).
  static std::vector<modbus::RtuDeviceTarget> targets(const config::Config& config);
};

}  // namespace fieldhub::adapters
