// SPDX-License-Identifier: Apache-2.0
#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include "model/time.h"

namespace fieldhub::common {

namespace {
std::atomic<LogLevel> min_level{LogLevel::info};
std::mutex log_mutex;

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}
}  // namespace

void set_log_level(LogLevel level) {
  min_level = level;
}

void log(LogLevel level, std::string_view component, std::string_view message) {
  if (level < min_level.load()) return;
  const auto now =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  std::string line = model::format_rfc3339(now);
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  std::lock_guard lock(log_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace fieldhub::common
