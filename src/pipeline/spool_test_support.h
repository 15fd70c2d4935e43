// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "pipeline/envelope.h"

namespace fieldhub::pipeline::testing {

// A fresh folder under the system temp folder, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("fieldhub-spool-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Polls `done` every millisecond until it holds (true) or `deadline` has passed (false).
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return true;
}

inline void expect_same(const Envelope& a, const Envelope& b) {
  ASSERT_EQ(a.readings.size(), b.readings.size());
  for (std::size_t i = 0; i < a.readings.size(); ++i) {
    const auto& x = a.readings[i];
    const auto& y = b.readings[i];
    EXPECT_EQ(x.device_id, y.device_id);
    EXPECT_EQ(x.metric, y.metric);
    EXPECT_EQ(x.value, y.value);
    EXPECT_EQ(x.unit, y.unit);
    EXPECT_EQ(x.source_ts, y.source_ts);
    EXPECT_EQ(x.received_ts, y.received_ts);
    EXPECT_EQ(x.quality, y.quality);
    EXPECT_EQ(x.quality_reason, y.quality_reason);
    EXPECT_EQ(x.source_ts_trusted, y.source_ts_trusted);
    EXPECT_EQ(x.provenance.adapter, y.provenance.adapter);
    EXPECT_EQ(x.provenance.link, y.provenance.link);
  }
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    const auto& x = a.events[i];
    const auto& y = b.events[i];
    EXPECT_EQ(x.device_id, y.device_id);
    EXPECT_EQ(x.type, y.type);
    EXPECT_EQ(x.priority, y.priority);
    EXPECT_EQ(x.source_ts, y.source_ts);
    EXPECT_EQ(x.received_ts, y.received_ts);
    EXPECT_EQ(x.source_ts_trusted, y.source_ts_trusted);
    EXPECT_EQ(x.attributes_json, y.attributes_json);
    EXPECT_EQ(x.provenance.adapter, y.provenance.adapter);
    EXPECT_EQ(x.provenance.link, y.provenance.link);
  }
  ASSERT_EQ(a.dead_letters.size(), b.dead_letters.size());
  for (std::size_t i = 0; i < a.dead_letters.size(); ++i) {
    const auto& x = a.dead_letters[i];
    const auto& y = b.dead_letters[i];
    EXPECT_EQ(x.received_ts, y.received_ts);
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(x.reason, y.reason);
    EXPECT_EQ(x.detail, y.detail);
    EXPECT_EQ(x.payload, y.payload);
  }
  EXPECT_EQ(a.replay_digest, b.replay_digest);
  EXPECT_EQ(a.redelivered, b.redelivered);
  EXPECT_EQ(a.device_heard, b.device_heard);
}

}  // namespace fieldhub::pipeline::testing
