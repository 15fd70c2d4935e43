// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <vector>

#include "adapters/adapter.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "pipeline/pipeline.h"

namespace fieldhub::adapters {

// The one explicit list of adapters: builds each adapter the configuration needs.
std::vector<std::unique_ptr<Adapter>> make_adapters(boost::asio::any_io_executor io,
                                                    const config::Config& config,
                                                    pipeline::Pipeline& pipeline,
                                                    common::Metrics& metrics,
                                                    const common::Clock& clock);

}  // namespace fieldhub::adapters
