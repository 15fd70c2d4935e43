// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "alarms/alarm.h"
#include "common/metrics.h"
#include "pipeline/pipeline.h"

namespace fieldhub::alarms {

struct JournalLoad {
  std::vector<Alarm> alarms;  // the last state of every alarm in the file, by id
  std::size_t lines = 0;
  std::size_t malformed = 0;  // skipped: a torn last line after a crash, or damage
};

// The alarm engine's own durable state: an append-only file of JSON lines, one alarm's whole
// state after each change (times as integer microseconds, so timers restore exactly). Loading
// keeps the last line per alarm. Independent of the history store, so alarms and their timers
// survive a restart while PostgreSQL is down.
//
// append() never touches the disk: it queues the line and returns; the journal's own thread
// writes whatever is queued and fdatasyncs it (one sync per burst), then calls `on_synced` (the
// composition root posts Pipeline::gate_advanced to the io thread). As a pipeline
// DurabilityGate, it holds back the MQTT acknowledgement of a message whose event changed an
// alarm until that change is durable here. A failed write or sync is counted
// (fieldhub_alarm_journal_errors_total), logged, and retried from the same lines on a reopened
// file (a failed fsync is never trusted to be retried on the same descriptor); acknowledgements
// wait meanwhile, so the broker keeps the messages.
// Threads: append/mark/compact/lines_written on the io executor; the writer thread inside.
class AlarmJournal final : public pipeline::DurabilityGate {
 public:
  using OnSynced = std::function<void()>;

  AlarmJournal(std::filesystem::path file, common::Metrics& metrics, OnSynced on_synced = {});
  ~AlarmJournal() override;  // writes what is queued (while the disk lets it), then stops
  AlarmJournal(const AlarmJournal&) = delete;
  AlarmJournal& operator=(const AlarmJournal&) = delete;

  JournalLoad load() const;
  void append(const Alarm& alarm);
  // Waits until everything appended so far is durable, at most `timeout`; false if it is not.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds{10});
  // Rewrites the file with just these alarms (temporary file, fsync, rename, fsync of the folder).
  bool compact(const std::vector<const Alarm*>& keep);
  std::size_t lines_written() const { return lines_; }
  const std::filesystem::path& file() const { return file_; }

  std::uint64_t mark() const override { return appended_; }
  std::uint64_t durable() const override { return durable_.load(std::memory_order_acquire); }

  static std::string encode(const Alarm& alarm);
  static std::optional<Alarm> decode(std::string_view line);

 private:
  void run();
  bool write_out(const std::string& text);  // under file_mutex_

  std::filesystem::path file_;
  OnSynced on_synced_;
  std::uint64_t appended_ = 0;  // io
  std::size_t lines_ = 0;       // io
  std::atomic<std::uint64_t> durable_{0};

  std::mutex mutex_;  // guards queue_, queued_seq_, stop_
  std::condition_variable wake_;
  std::condition_variable synced_;
  std::string queue_;
  std::uint64_t queued_seq_ = 0;
  bool stop_ = false;

  std::mutex file_mutex_;  // the descriptor: the writer thread and compact()
  int fd_ = -1;
  common::Counter& errors_;
  common::Counter& syncs_;
  std::thread thread_;
};

}  // namespace fieldhub::alarms
