// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "pipeline/envelope.h"

namespace fieldhub::pipeline {

struct SpoolOptions {
  std::filesystem::path dir;
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  // The most a sync may wait after the previous one to group more appends; 0: at once.
  std::chrono::milliseconds sync_interval{0};
  // Envelopes kept in memory for the history writer after they are synced; beyond that the
  // writer reads them back from the segment files.
  std::size_t memory_window = 200000;
  // ... and at most this many readings in them.
  std::size_t memory_readings = 500000;
};

// What the spool found on disk when it opened.
struct SpoolRecovery {
  std::size_t segments = 0;
  std::uint64_t records = 0;      // whole records on disk
  std::uint64_t uncommitted = 0;  // of which not yet committed to history: replayed first
  std::uint64_t torn_tails = 0;   // a partly written last record, truncated
  std::uint64_t corrupt = 0;      // damaged regions skipped (resynchronised at the next record)
  std::uint64_t committed_seq = 0;
};

// The durable spool in front of history: append-only segment files of checksummed records
// (spool_codec.h) in <dir>/<first seq, 20 digits>.seg, numbered by a sequence that survives
// restarts, plus <dir>/committed (the last sequence history committed).
//
// append() runs on the io executor and never touches the disk: the spool's own thread takes
// everything queued, writes it, fdatasyncs once (group sync), then calls on_synced with those
// envelopes' acknowledgement tokens in order. An envelope with nothing to keep (an
// acknowledgement alone) is not written; its token is released in order with the others.
//
// The history writer takes synced records in sequence order with take() — from memory while it
// keeps up, from the files when the memory window overflowed or after a restart — and reports
// each commit with committed(). Wholly committed segments are deleted.
//
// Bounded: when an append would pass max_bytes, the readings of the oldest records the writer
// has not taken are dropped (segments rewritten to a temporary file and renamed), counted
// exactly; events and dead letters are never dropped. If only they remain, full() turns true and
// appends wait (the pipeline stops reading). A failed write or sync is counted, reported by
// healthy(), and retried with backoff from the last synced position on a reopened file; the
// acknowledgements wait meanwhile.
// Threads: append/pending/full/flush on the io executor; take/committed on the history writer's
// thread; open() before start(); everything else internal.
class Spool {
 public:
  using OnSynced = std::function<void(std::vector<AckToken>&&)>;  // called on the spool thread

  Spool(SpoolOptions options, common::Metrics& metrics);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Scans the segments: truncates a torn tail, skips damage, deletes committed segments. Never
  // refuses to start over the files' content; an error only when the folder is unusable.
  SpoolRecovery open();
  void start(OnSynced on_synced);
  // Syncs what is queued (waiting at most `timeout`), then stops the thread. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds{10});

  void append(Envelope&& env);
  // Waits until everything appended so far is synced; false after `timeout`.
  bool flush(std::chrono::milliseconds timeout);
  std::size_t pending() const { return pending_.load(std::memory_order_relaxed); }
  // Readings in the pending() envelopes.
  std::size_t pending_readings() const { return pending_readings_.load(std::memory_order_relaxed); }
  bool full() const { return full_.load(std::memory_order_relaxed); }
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }

  struct Batch {
    std::vector<Envelope> envelopes;
    std::uint64_t last_seq = 0;
  };
  // Up to about `max_records` readings+events of synced records after the last taken, waiting
  // at most `wait` for one; empty when there is none.
  Batch take(std::size_t max_records, std::chrono::milliseconds wait);
  // History committed everything taken up to `seq`.
  void committed(std::uint64_t seq);
  // Synced records not yet committed.
  std::uint64_t backlog() const;
  std::uint64_t bytes() const;

 private:
  struct Segment {
    std::filesystem::path path;
    std::uint64_t bytes = 0;
    std::uint64_t last_seq = 0;  // 0: no record
    bool stripped = false;       // its readings were dropped already
  };
  struct Pending {
    std::uint64_t seq = 0;  // 0: nothing to write
    Envelope env;
  };

  void run();
  bool write_batch(std::vector<Pending>& batch, const std::string& encoded,
                   const std::vector<std::size_t>& record_ends);
  bool make_room(std::uint64_t incoming);                             // under state_mutex_
  bool strip_segment(std::map<std::uint64_t, Segment>::iterator it);  // under state_mutex_
  bool open_active(std::uint64_t first_seq);                          // under state_mutex_
  void close_active();                                                // under state_mutex_
  void delete_committed();                                            // under state_mutex_
  void read_from_disk(std::uint64_t limit, std::size_t max_records, Batch& out);
  void update_gauges();  // under state_mutex_

  SpoolOptions options_;

  // Appends queued by the io thread for the spool thread.
  mutable std::mutex queue_mutex_;
  std::condition_variable queue_wake_;
  std::condition_variable flushed_;
  std::vector<Envelope> queue_;
  std::uint64_t queued_total_ = 0;  // envelopes ever queued
  std::uint64_t synced_total_ = 0;  // envelopes ever synced (their acks released)
  bool stop_ = false;
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::size_t> pending_readings_{0};
  std::atomic<bool> full_{false};
  std::atomic<bool> healthy_{true};

  // Segments, the memory window and the writer's position: spool thread and writer thread.
  mutable std::mutex state_mutex_;
  std::condition_variable synced_wake_;
  std::map<std::uint64_t, Segment> segments_;  // by first seq
  int active_fd_ = -1;
  std::uint64_t active_first_ = 0;  // key of the active segment in segments_ (fd open)
  std::uint64_t next_seq_ = 1;      // spool thread
  std::uint64_t synced_seq_ = 0;    // last seq durable on disk
  std::uint64_t next_take_ = 1;     // first seq the writer has not taken
  std::uint64_t committed_seq_ = 0;
  std::uint64_t total_bytes_ = 0;
  std::deque<std::pair<std::uint64_t, Envelope>> memory_;  // synced, not taken; contiguous
  std::size_t memory_readings_ = 0;                        // readings in memory_
  struct Cursor {
    std::uint64_t segment = 0;  // first seq of the segment, 0: none
    std::uint64_t offset = 0;
    std::uint64_t next_seq = 0;  // seq of the record at offset is at least this
  } cursor_;

  std::thread thread_;
  OnSynced on_synced_;

  common::Gauge& bytes_gauge_;
  common::Gauge& segments_gauge_;
  common::Gauge& healthy_gauge_;
  common::Gauge& backlog_gauge_;
  common::Counter& appended_;
  common::Counter& synced_;
  common::Counter& replayed_;
  common::Histogram& sync_seconds_;
  common::Counter& dropped_readings_;
  common::Counter& torn_tails_;
  common::Counter& corrupt_;
  common::Counter& write_errors_;
  common::Counter& full_episodes_;
};

}  // namespace fieldhub::pipeline
