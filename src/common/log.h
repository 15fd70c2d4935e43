// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace fieldhub::common {

enum class LogLevel { debug, info, warn, error };

// Writes one line to stderr: time, level, component, message. Thread-safe. Never pass secrets
// (passwords, tokens) in the message.
void log(LogLevel level, std::string_view component, std::string_view message);
void set_log_level(LogLevel level);

}  // namespace fieldhub::common
