// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "alarms/alarm.h"
#include "common/metrics.h"

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
// append() only buffers; flush() writes and fdatasyncs. With a `defer` function (the io
// executor's post), the first append after a flush schedules one flush, so a burst of changes
// costs one fsync, and that flush runs before any later-posted handler (such as the history
// commit that acknowledges the message which raised the alarm). Without `defer`, append flushes
// at once (tests). A failed write keeps the lines and is retried at the next flush; it is
// counted (fieldhub_alarm_journal_errors_total) and logged, never thrown.
// Threads: the io executor only.
class AlarmJournal {
 public:
  using Defer = std::function<void(std::function<void()>)>;

  AlarmJournal(std::filesystem::path file, common::Metrics& metrics, Defer defer = {});
  ~AlarmJournal();
  AlarmJournal(const AlarmJournal&) = delete;
  AlarmJournal& operator=(const AlarmJournal&) = delete;

  JournalLoad load() const;
  void append(const Alarm& alarm);
  bool flush();
  // Rewrites the file with just these alarms (temporary file, fsync, rename, fsync of the folder).
  bool compact(const std::vector<const Alarm*>& keep);
  std::size_t lines_written() const { return lines_; }
  const std::filesystem::path& file() const { return file_; }

  static std::string encode(const Alarm& alarm);
  static std::optional<Alarm> decode(std::string_view line);

 private:
  bool open_for_append();

  std::filesystem::path file_;
  Defer defer_;
  int fd_ = -1;
  std::string buffer_;
  bool flush_scheduled_ = false;
  std::size_t lines_ = 0;
  common::Counter& errors_;
  common::Counter& syncs_;
};

}  // namespace fieldhub::alarms
