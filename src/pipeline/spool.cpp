// SPDX-License-Identifier: Apache-2.0
#include "pipeline/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/fd_io.h"
#include "common/log.h"
#include "pipeline/spool_codec.h"

namespace fieldhub::pipeline {

namespace fs = std::filesystem;
namespace codec = spool_codec;
using std::chrono::steady_clock;

namespace {

constexpr std::size_t read_chunk = std::size_t{4} << 20;

std::string segment_name(std::uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return name;
}

std::optional<std::uint64_t> segment_seq(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.size() != 24 || !name.ends_with(".seg")) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return v;
}

bool sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Up to `size` bytes of `path` from `offset`; fewer at the end of the file.
std::string read_range(const fs::path& path, std::uint64_t offset, std::size_t size) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  out.resize(size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

std::string read_whole(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return {};
  return read_range(path, 0, static_cast<std::size_t>(size));
}

struct ScanResult {
  std::size_t valid_end = 0;  // after the last whole record
  std::uint64_t corrupt = 0;  // damaged regions followed by a whole record
  bool trailing_garbage = false;
};

// Calls on_record(view) for every whole record in `bytes`, resynchronising past damage.
template <class OnRecord>
ScanResult scan(std::string_view bytes, OnRecord&& on_record) {
  ScanResult r;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const codec::RecordView v = codec::parse_record(bytes.substr(pos));
    if (v.status == codec::Parse::ok) {
      on_record(v);
      pos += v.size;
      r.valid_end = pos;
      continue;
    }
    const std::size_t next = codec::resync(bytes.substr(pos));
    if (next == std::string_view::npos) {
      r.trailing_garbage = true;
      break;
    }
    ++r.corrupt;
    pos += next;
  }
  return r;
}

std::size_t weight(const Envelope& env) {
  return env.readings.size() + env.events.size() + 1;
}

}  // namespace

Spool::Spool(SpoolOptions options, common::Metrics& metrics)
    : options_(std::move(options)),
      bytes_gauge_(metrics.gauge("fieldhub_spool_bytes", "Bytes in the spool's segment files")),
      segments_gauge_(metrics.gauge("fieldhub_spool_segments", "Spool segment files")),
      healthy_gauge_(metrics.gauge("fieldhub_spool_healthy",
                                   "1 while spool writes and syncs succeed, 0 while they fail")),
      backlog_gauge_(metrics.gauge("fieldhub_spool_backlog_records",
                                   "Spooled records not yet committed to history")),
      appended_(
          metrics.counter("fieldhub_spool_appended_records_total", "Records written to the spool")),
      synced_(metrics.counter("fieldhub_spool_synced_records_total",
                              "Records made durable in the spool (fdatasync)")),
      replayed_(metrics.counter("fieldhub_spool_replayed_records_total",
                                "Records the history writer read back from the spool files")),
      sync_seconds_(metrics.histogram("fieldhub_spool_sync_seconds",
                                      "Time to write and fdatasync one group of spool records")),
      dropped_readings_(metrics.counter("fieldhub_spool_dropped_readings_total",
                                        "Readings dropped because the spool was full (oldest "
                                        "first; events and dead letters are never dropped)")),
      torn_tails_(metrics.counter("fieldhub_spool_torn_tail_total",
                                  "Partly written last records truncated at start-up")),
      corrupt_(metrics.counter("fieldhub_spool_corrupt_records_total",
                               "Damaged spool regions skipped at start-up")),
      write_errors_(metrics.counter("fieldhub_spool_write_errors_total",
                                    "Failed spool writes or syncs (retried)")),
      full_episodes_(metrics.counter("fieldhub_spool_full_total",
                                     "Times the spool was full of events and appends waited")) {
  healthy_gauge_.set(1);
}

Spool::~Spool() {
  stop(std::chrono::seconds{5});
}

SpoolRecovery Spool::open() {
  SpoolRecovery rec;
  fs::create_directories(options_.dir);
  std::vector<std::pair<std::uint64_t, fs::path>> files;
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    const fs::path& p = entry.path();
    if (p.extension() == ".tmp") {
      std::error_code ec;
      fs::remove(p, ec);  // an interrupted strip: the original is still there
      continue;
    }
    if (const auto seq = segment_seq(p)) files.emplace_back(*seq, p);
  }
  std::sort(files.begin(), files.end());
  {
    std::ifstream in(options_.dir / "committed");
    std::uint64_t v = 0;
    if (in >> v) committed_seq_ = v;
  }
  std::uint64_t max_seq = committed_seq_;
  const std::lock_guard lock(state_mutex_);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& [first, path] = files[i];
    const std::string bytes = read_whole(path);
    Segment seg{path, bytes.size(), 0, false};
    const ScanResult r = scan(bytes, [&](const codec::RecordView& v) {
      ++rec.records;
      seg.last_seq = std::max(seg.last_seq, v.seq);
      if (v.seq > committed_seq_) ++rec.uncommitted;
    });
    rec.corrupt += r.corrupt;
    if (r.trailing_garbage) {
      if (i + 1 == files.size()) {
        // The last record of the newest segment was being written when the process died.
        std::error_code ec;
        fs::resize_file(path, r.valid_end, ec);
        seg.bytes = r.valid_end;
        ++rec.torn_tails;
        common::log(common::LogLevel::warn, "spool",
                    "truncated a torn tail of " + std::to_string(bytes.size() - r.valid_end) +
                        " bytes in " + path.string());
      } else {
        ++rec.corrupt;
      }
    }
    if (r.corrupt > 0) {
      common::log(common::LogLevel::error, "spool",
                  "skipped " + std::to_string(r.corrupt) + " damaged regions in " + path.string());
    }
    max_seq = std::max(max_seq, seg.last_seq);
    total_bytes_ += seg.bytes;
    segments_.emplace(first, std::move(seg));
  }
  if (!files.empty()) sync_folder(options_.dir);
  next_seq_ = max_seq + 1;
  synced_seq_ = max_seq;
  next_take_ = committed_seq_ + 1;
  delete_committed();
  rec.segments = segments_.size();
  rec.committed_seq = committed_seq_;
  torn_tails_.inc(rec.torn_tails);
  corrupt_.inc(rec.corrupt);
  update_gauges();
  return rec;
}

void Spool::start(OnSynced on_synced) {
  on_synced_ = std::move(on_synced);
  thread_ = std::thread([this] { run(); });
}

void Spool::stop(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return;
  flush(timeout);
  {
    const std::lock_guard lock(queue_mutex_);
    stop_ = true;
  }
  queue_wake_.notify_all();
  thread_.join();
  const std::lock_guard lock(state_mutex_);
  close_active();
}

void Spool::append(Envelope&& env) {
  {
    const std::lock_guard lock(queue_mutex_);
    pending_readings_.fetch_add(env.readings.size(), std::memory_order_relaxed);
    queue_.push_back(std::move(env));
    ++queued_total_;
    pending_.store(static_cast<std::size_t>(queued_total_ - synced_total_),
                   std::memory_order_relaxed);
  }
  queue_wake_.notify_one();
}

bool Spool::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(queue_mutex_);
  const std::uint64_t target = queued_total_;
  return flushed_.wait_for(lock, timeout, [&] { return synced_total_ >= target; });
}

void Spool::run() {
  std::vector<Pending> batch;  // kept across failures: written again from the same position
  std::string encoded;
  std::vector<std::size_t> record_ends;
  auto last_sync = steady_clock::now() - std::chrono::hours{1};
  std::chrono::milliseconds backoff{10};
  std::uint64_t failures = 0;
  std::vector<Envelope> incoming;
  while (true) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_wake_.wait(lock, [&] { return stop_ || !queue_.empty() || !batch.empty(); });
      if (stop_ && queue_.empty() && batch.empty()) return;
      if (options_.sync_interval.count() > 0 && !stop_) {
        queue_wake_.wait_until(lock, last_sync + options_.sync_interval, [&] { return stop_; });
      }
      incoming.swap(queue_);
    }
    // Encoded outside the lock, so the io thread's appends never wait for it.
    for (auto& env : incoming) {
      Pending p;
      if (codec::has_content(env)) {
        p.seq = next_seq_++;
        codec::append_record(p.seq, env, encoded);
        record_ends.push_back(encoded.size());
      }
      p.env = std::move(env);
      batch.push_back(std::move(p));
    }
    incoming.clear();
    const auto started = steady_clock::now();
    if (write_batch(batch, encoded, record_ends)) {
      last_sync = steady_clock::now();
      sync_seconds_.observe(std::chrono::duration<double>(last_sync - started).count());
      if (!healthy_.exchange(true)) {
        healthy_gauge_.set(1);
        common::log(common::LogLevel::info, "spool", "writes succeed again");
      }
      backoff = std::chrono::milliseconds{10};
      std::vector<AckToken> acks;
      for (const auto& p : batch) {
        if (p.env.ack.target != nullptr) acks.push_back(p.env.ack);
      }
      const std::size_t count = batch.size();
      std::size_t readings = 0;
      for (const auto& p : batch) readings += p.env.readings.size();
      {
        // The history writer gets the envelopes from memory while the window has room and no
        // record is waiting on disk before them.
        const std::lock_guard lock(state_mutex_);
        for (auto& p : batch) {
          if (p.seq == 0) continue;
          const bool contiguous =
              memory_.empty() ? p.seq == next_take_ : memory_.back().first + 1 == p.seq;
          if (contiguous && memory_.size() < options_.memory_window &&
              memory_readings_ + p.env.readings.size() <= options_.memory_readings) {
            p.env.ack = {};
            memory_readings_ += p.env.readings.size();
            memory_.emplace_back(p.seq, std::move(p.env));
          }
        }
      }
      synced_wake_.notify_all();
      batch.clear();
      encoded.clear();
      record_ends.clear();
      if (on_synced_ && !acks.empty()) on_synced_(std::move(acks));
      {
        const std::lock_guard lock(queue_mutex_);
        synced_total_ += count;
        pending_readings_.fetch_sub(readings, std::memory_order_relaxed);
        pending_.store(static_cast<std::size_t>(queued_total_ - synced_total_),
                       std::memory_order_relaxed);
      }
      flushed_.notify_all();
      continue;
    }
    if (!full_.load(std::memory_order_relaxed)) {
      write_errors_.inc();
      if (healthy_.exchange(false)) healthy_gauge_.set(0);
      if (failures++ % 100 == 0) {
        common::log(common::LogLevel::error, "spool",
                    "cannot write " + options_.dir.string() + ": " + std::strerror(errno) +
                        " (retrying; acknowledgements wait)");
      }
    }
    std::unique_lock lock(queue_mutex_);
    if (stop_) return;  // shutting down with the disk refusing: the broker still has them
    queue_wake_.wait_for(lock, backoff, [&] { return stop_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds{1000});
  }
}

bool Spool::write_batch(std::vector<Pending>& batch, const std::string& encoded,
                        const std::vector<std::size_t>& record_ends) {
  if (encoded.empty()) return true;  // acknowledgements only
  {
    const std::lock_guard lock(state_mutex_);
    if (!make_room(encoded.size())) {
      if (!full_.exchange(true)) {
        full_episodes_.inc();
        common::log(common::LogLevel::error, "spool",
                    "full of events and dead letters (" + std::to_string(total_bytes_) +
                        " bytes): appends wait until history takes some");
      }
      return false;
    }
    full_.store(false, std::memory_order_relaxed);
  }
  // Records go to the active segment; a new one starts when it would pass segment_bytes.
  // The descriptor is the spool thread's own, so the writes and the sync run without the lock.
  const bool had_active = active_fd_ >= 0;
  const std::uint64_t start_first = active_first_;
  std::uint64_t start_bytes = 0;
  {
    const std::lock_guard lock(state_mutex_);
    if (had_active) start_bytes = segments_.at(active_first_).bytes;
  }
  std::vector<std::uint64_t> created;
  bool ok = true;
  std::size_t begin = 0;
  std::size_t record = 0;
  std::size_t seq_index = 0;
  std::uint64_t active_bytes = start_bytes;
  while (ok && record < record_ends.size()) {
    while (batch[seq_index].seq == 0) ++seq_index;
    const std::uint64_t seq = batch[seq_index++].seq;
    const std::size_t size = record_ends[record] - begin;
    if (active_fd_ < 0 || (active_bytes > 0 && active_bytes + size > options_.segment_bytes)) {
      if (active_fd_ >= 0 && ::fdatasync(active_fd_) != 0) {
        ok = false;
        break;
      }
      const std::lock_guard lock(state_mutex_);
      close_active();
      if (!open_active(seq)) {
        ok = false;
        break;
      }
      created.push_back(seq);
      active_bytes = 0;
    }
    if (!common::write_all(active_fd_, std::string_view(encoded).substr(begin, size))) {
      ok = false;
      break;
    }
    active_bytes += size;
    {
      const std::lock_guard lock(state_mutex_);
      Segment& seg = segments_.at(active_first_);
      seg.bytes += size;
      seg.last_seq = seq;
      total_bytes_ += size;
    }
    begin = record_ends[record];
    ++record;
  }
  if (ok && ::fdatasync(active_fd_) != 0) ok = false;
  const std::lock_guard lock(state_mutex_);
  if (ok) {
    synced_seq_ = segments_.at(active_first_).last_seq;
    backlog_gauge_.set(static_cast<std::int64_t>(synced_seq_ - committed_seq_));
    appended_.inc(record_ends.size());
    synced_.inc(record_ends.size());
    update_gauges();
    return true;
  }
  // A failed write or sync is never trusted: the new segments go, the old one is cut back to
  // what was synced, and the whole group is written again on a fresh descriptor.
  const int saved_errno = errno;
  close_active();
  for (const std::uint64_t first : created) {
    auto it = segments_.find(first);
    if (it == segments_.end()) continue;
    std::error_code ec;
    fs::remove(it->second.path, ec);
    total_bytes_ -= it->second.bytes;
    segments_.erase(it);
  }
  if (auto it = segments_.find(start_first); had_active && it != segments_.end()) {
    std::error_code ec;
    fs::resize_file(it->second.path, start_bytes, ec);
    total_bytes_ -= it->second.bytes - start_bytes;
    it->second.bytes = start_bytes;
    it->second.last_seq = std::min(it->second.last_seq, synced_seq_);
    // The retry starts a new segment on a new descriptor.
  }
  update_gauges();
  errno = saved_errno;
  return false;
}

bool Spool::open_active(std::uint64_t first_seq) {
  const fs::path path = options_.dir / segment_name(first_seq);
  active_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (active_fd_ < 0) return false;
  // The new name must be durable before anything in it is acknowledged.
  if (!sync_folder(options_.dir)) {
    ::close(active_fd_);
    active_fd_ = -1;
    return false;
  }
  if (auto it = segments_.find(first_seq); it != segments_.end()) {
    total_bytes_ -= it->second.bytes;
    segments_.erase(it);
  }
  segments_.emplace(first_seq, Segment{path, 0, 0, false});
  active_first_ = first_seq;
  return true;
}

void Spool::close_active() {
  if (active_fd_ >= 0) ::close(active_fd_);
  active_fd_ = -1;
}

bool Spool::make_room(std::uint64_t incoming) {
  delete_committed();
  while (total_bytes_ + incoming > options_.max_bytes) {
    auto it = segments_.begin();
    while (it != segments_.end() &&
           (it->second.stripped || (active_fd_ >= 0 && it->first == active_first_))) {
      ++it;
    }
    if (it == segments_.end()) {
      // Only the active segment is left to strip: close it so it can be (the next append
      // starts a new one).
      if (active_fd_ >= 0 && !segments_.at(active_first_).stripped &&
          segments_.at(active_first_).last_seq != 0) {
        close_active();
        continue;
      }
      return false;
    }
    if (!strip_segment(it)) return false;
  }
  return true;
}

bool Spool::strip_segment(std::map<std::uint64_t, Segment>::iterator it) {
  Segment& seg = it->second;
  const std::string bytes = read_whole(seg.path);
  std::string out;
  out.reserve(bytes.size() / 4);
  std::uint64_t dropped = 0;
  scan(bytes, [&](const codec::RecordView& v) {
    std::optional<Envelope> env;
    // Records the writer has taken are on their way to history: they are kept whole.
    if (v.seq >= next_take_) env = codec::decode_payload(v.payload);
    if (!env || env->readings.empty()) {
      out.append(v.payload.data() - codec::header_bytes, v.size);
      return;
    }
    dropped += env->readings.size();
    env->readings.clear();
    if (codec::has_content(*env)) codec::append_record(v.seq, *env, out);
  });
  if (dropped == 0) {
    seg.stripped = true;  // nothing to drop: events, dead letters or records already taken
    return true;
  }
  const fs::path tmp = seg.path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && common::write_all(fd, out) && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  std::error_code ec;
  ok = ok && (fs::rename(tmp, seg.path, ec), !ec) && sync_folder(options_.dir);
  if (!ok) {
    write_errors_.inc();
    fs::remove(tmp, ec);
    common::log(common::LogLevel::error, "spool",
                "cannot rewrite " + seg.path.string() + " without its readings");
    return false;
  }
  // The same records in memory lose their readings too, so what history gets is what the
  // spool kept, and the count is exact.
  for (auto& [seq, env] : memory_) {
    if (seq >= it->first && seq <= seg.last_seq) {
      memory_readings_ -= env.readings.size();
      env.readings.clear();
    }
  }
  if (cursor_.segment == it->first) cursor_ = {};
  total_bytes_ -= seg.bytes - out.size();
  seg.bytes = out.size();
  seg.stripped = true;
  dropped_readings_.inc(dropped);
  common::log(common::LogLevel::warn, "spool",
              "full: dropped the " + std::to_string(dropped) + " oldest readings in " +
                  seg.path.filename().string());
  update_gauges();
  return true;
}

void Spool::delete_committed() {
  while (!segments_.empty()) {
    auto it = segments_.begin();
    const bool active = active_fd_ >= 0 && it->first == active_first_;
    if (active || it->second.last_seq > committed_seq_) break;
    std::error_code ec;
    fs::remove(it->second.path, ec);
    total_bytes_ -= it->second.bytes;
    if (cursor_.segment == it->first) cursor_ = {};
    segments_.erase(it);
  }
  update_gauges();
}

Spool::Batch Spool::take(std::size_t max_records, std::chrono::milliseconds wait) {
  Batch out;
  std::unique_lock lock(state_mutex_);
  synced_wake_.wait_for(lock, wait, [&] { return next_take_ <= synced_seq_; });
  std::size_t records = 0;
  while (records < max_records && next_take_ <= synced_seq_) {
    if (!memory_.empty() && memory_.front().first == next_take_) {
      auto& [seq, env] = memory_.front();
      records += weight(env);
      memory_readings_ -= env.readings.size();
      out.last_seq = seq;
      next_take_ = seq + 1;
      out.envelopes.push_back(std::move(env));
      memory_.pop_front();
      continue;
    }
    const std::uint64_t limit = memory_.empty() ? synced_seq_ : memory_.front().first - 1;
    const std::size_t before = out.envelopes.size();
    read_from_disk(limit, max_records - records, out);
    for (std::size_t i = before; i < out.envelopes.size(); ++i) {
      records += weight(out.envelopes[i]);
    }
    replayed_.inc(out.envelopes.size() - before);
    if (next_take_ <= limit && out.envelopes.size() == before) next_take_ = limit + 1;
    if (records >= max_records) break;
  }
  backlog_gauge_.set(static_cast<std::int64_t>(synced_seq_ - committed_seq_));
  return out;
}

void Spool::read_from_disk(std::uint64_t limit, std::size_t max_records, Batch& out) {
  std::size_t records = 0;
  while (records < max_records && next_take_ <= limit) {
    auto it = segments_.upper_bound(next_take_);
    if (it == segments_.begin()) {
      if (it == segments_.end()) {
        next_take_ = limit + 1;  // nothing on disk (every record was dropped)
        return;
      }
      next_take_ = it->first;  // records before the oldest segment are gone
      continue;
    }
    --it;
    const Segment& seg = it->second;
    const auto after = std::next(it);
    const std::uint64_t segment_end = after == segments_.end() ? limit + 1 : after->first;
    if (seg.last_seq < next_take_) {
      next_take_ = std::max(next_take_, segment_end);
      continue;
    }
    std::uint64_t offset =
        cursor_.segment == it->first && cursor_.next_seq <= next_take_ ? cursor_.offset : 0;
    std::size_t want = read_chunk;
    bool segment_done = false;
    while (!segment_done && records < max_records && next_take_ <= limit) {
      const std::string chunk = read_range(seg.path, offset, want);
      const bool at_eof = chunk.size() < want;
      want = read_chunk;
      const std::string_view view(chunk);
      std::size_t pos = 0;
      while (pos < view.size() && records < max_records && next_take_ <= limit) {
        const codec::RecordView v = codec::parse_record(view.substr(pos));
        if (v.status == codec::Parse::ok) {
          if (v.seq > limit) {
            cursor_ = {it->first, offset + pos, v.seq};
            return;
          }
          if (v.seq >= next_take_) {
            if (auto env = codec::decode_payload(v.payload)) {
              records += weight(*env);
              out.envelopes.push_back(std::move(*env));
              out.last_seq = v.seq;
            }
            next_take_ = v.seq + 1;
          }
          pos += v.size;
          continue;
        }
        if (v.status == codec::Parse::incomplete && !at_eof) {
          // Read again from this record; a record longer than a chunk is read whole.
          if (pos == 0) want = std::max(read_chunk, codec::announced_size(view));
          break;
        }
        const std::size_t next = codec::resync(view.substr(pos));
        if (next != std::string_view::npos) {
          pos += next;
          continue;
        }
        if (at_eof) {
          segment_done = true;
        } else {
          pos = std::max(pos + 1, view.size() - codec::header_bytes);
        }
        break;
      }
      offset += pos;
      cursor_ = {it->first, offset, next_take_};
      if (at_eof && pos >= view.size()) segment_done = true;
    }
    if (segment_done) next_take_ = std::max(next_take_, segment_end);
  }
}

void Spool::committed(std::uint64_t seq) {
  {
    const std::lock_guard lock(state_mutex_);
    if (seq <= committed_seq_) return;
    committed_seq_ = seq;
    delete_committed();
    backlog_gauge_.set(static_cast<std::int64_t>(synced_seq_ - committed_seq_));
  }
  // No fsync: after a crash a stale value only replays records history already has, and the
  // stores recognise those (unique keys, replay digests).
  const fs::path file = options_.dir / "committed";
  const fs::path tmp = options_.dir / "committed.tmp";
  std::error_code ec;
  {
    // Checked after the close: on a full disk the write fails only when the buffer is flushed,
    // and an empty mark must not replace the last good one.
    std::ofstream o(tmp, std::ios::trunc);
    o << seq << '\n';
    o.close();
    if (!o) {
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, file, ec);
  queue_wake_.notify_all();  // a full spool may have room now
}

std::uint64_t Spool::backlog() const {
  const std::lock_guard lock(state_mutex_);
  return synced_seq_ - committed_seq_;
}

std::uint64_t Spool::bytes() const {
  const std::lock_guard lock(state_mutex_);
  return total_bytes_;
}

void Spool::update_gauges() {
  bytes_gauge_.set(static_cast<std::int64_t>(total_bytes_));
  segments_gauge_.set(static_cast<std::int64_t>(segments_.size()));
}

}  // namespace fieldhub::pipeline
