// SPDX-License-Identifier: Apache-2.0
#pragma once

// Store and feed doubles for adapter tests that drive a real pipeline::Pipeline (the Modbus TCP
// and RTU adapter tests). Header-only.

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/pipeline.h"
#include "stores/history_store.h"
#include "stores/live_store.h"

namespace fieldhub::testing {

// Keeps the newest reading per "device/metric". Called on the io executor.
class RecordingLiveStore final : public stores::LiveStore {
 public:
  std::size_t apply(std::span<const model::Reading> readings) override {
    for (const auto& r : readings) latest[r.device_id + "/" + r.metric] = r;
    return readings.size();
  }
  void touch(std::string_view, model::Timestamp) override {}
  std::optional<stores::DeviceState> get(std::string_view) const override { return std::nullopt; }
  std::vector<stores::DeviceState> all() const override { return {}; }

  std::map<std::string, model::Reading> latest;
};

// Takes every batch and counts its readings; while held (hold()), writes wait until release(),
// as a stalled database would. Called on the pipeline's writer thread.
class CountingHistoryStore final : public stores::HistoryStore {
 public:
  stores::WriteResult write(std::span<const pipeline::Envelope> batch) override {
    std::unique_lock lock(mutex_);
    released_.wait(lock, [&] { return !held_; });
    stores::WriteResult r;
    r.ok = true;
    for (const auto& env : batch) r.readings_stored += env.readings.size();
    readings_written += r.readings_stored;
    return r;
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    released_.notify_all();
  }
  std::vector<model::Reading> readings(const stores::ReadingQuery&) override { return {}; }
  std::vector<stores::RollupBucket> rollups(const stores::RollupQuery&) override { return {}; }
  std::vector<model::Event> events(const stores::EventQuery&) override { return {}; }
  std::vector<pipeline::DeadLetter> dead_letters(const stores::DeadLetterQuery&) override {
    return {};
  }

  std::atomic<std::uint64_t> readings_written{0};

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool held_ = false;
};

class NullFeed final : public pipeline::LiveFeed {
 public:
  void publish_readings(std::span<const model::Reading>) override {}
  void publish_event(const model::Event&) override {}
};

}  // namespace fieldhub::testing
