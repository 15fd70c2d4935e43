// SPDX-License-Identifier: Apache-2.0
#include "alarms/alarm_journal.h"

#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>

#include "common/fd_io.h"
#include "common/json_writer.h"
#include "common/log.h"

namespace fieldhub::alarms {

namespace {

using simdjson::dom::element;

std::string_view sv(const std::string& s) {
  return s;
}

void time_or_null(common::JsonWriter& w, std::string_view key,
                  const std::optional<model::Timestamp>& t) {
  if (t) {
    w.field(key, model::to_micros(*t));
  } else {
    w.key(key).null();
  }
}

bool sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

std::optional<model::Timestamp> time_of(element e) {
  if (e.is_null()) return std::nullopt;
  std::int64_t us = 0;
  if (e.get_int64().get(us) != simdjson::SUCCESS) return std::nullopt;
  return model::from_micros(us);
}

}  // namespace

AlarmJournal::AlarmJournal(std::filesystem::path file, common::Metrics& metrics, OnSynced on_synced)
    : file_(std::move(file)),
      on_synced_(std::move(on_synced)),
      errors_(metrics.counter("fieldhub_alarm_journal_errors_total",
                              "Failed writes or syncs of the alarm journal (retried)")),
      syncs_(metrics.counter("fieldhub_alarm_journal_syncs_total",
                             "Alarm journal writes made durable (fdatasync)")),
      thread_([this] { run(); }) {}

AlarmJournal::~AlarmJournal() {
  flush(std::chrono::seconds{5});
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

std::string AlarmJournal::encode(const Alarm& a) {
  std::string line;
  common::JsonWriter w(line);
  w.begin_object().field("id", a.id).field("src", sv(a.source)).field("dev", sv(a.device));
  w.field("link", sv(a.link)).field("site", sv(a.site));
  w.key("loc").begin_array();
  for (const auto& [level, name] : a.location) {
    w.begin_array().value(level).value(name).end_array();
  }
  w.end_array();
  w.field("kind", to_string(a.kind)).field("type", sv(a.type));
  w.field("pri", model::to_string(a.priority)).field("base", model::to_string(a.base_priority));
  w.field("state", to_string(a.state)).field("latch", a.latch).field("normal", a.normal);
  w.field("msg", sv(a.message));
  w.field("raised", model::to_micros(a.raised_at)).field("changed", model::to_micros(a.changed_at));
  w.field("esc", model::to_micros(a.escalation_from));
  w.field("notified", model::to_micros(a.notified_at));
  time_or_null(w, "acked", a.acked_at);
  w.field("acked_by", sv(a.acked_by));
  time_or_null(w, "cleared", a.cleared_at);
  time_or_null(w, "shelved", a.shelved_until);
  w.field("shelved_by", sv(a.shelved_by));
  w.field("count", static_cast<std::uint64_t>(a.count));
  w.field("tier", static_cast<std::uint64_t>(a.tier));
  w.key("comments").begin_array();
  for (const auto& c : a.comments) {
    w.begin_array().value(c.by).value(model::to_micros(c.at)).value(c.text).end_array();
  }
  w.end_array();
  w.key("origins").begin_array();
  for (const auto o : a.origins) w.value(o);
  w.end_array().end_object();
  line += '\n';
  return line;
}

std::optional<Alarm> AlarmJournal::decode(std::string_view line) {
  thread_local simdjson::dom::parser parser;
  element root;
  if (parser.parse(line.data(), line.size()).get(root) != simdjson::SUCCESS) return std::nullopt;
  Alarm a;
  std::string_view text;
  std::uint64_t u = 0;
  bool b = false;
  const auto str = [&](const char* key, std::string& out) {
    if (root[key].get_string().get(text) != simdjson::SUCCESS) return false;
    out = std::string(text);
    return true;
  };
  const auto time = [&](const char* key, model::Timestamp& out) {
    element e;
    if (root[key].get(e) != simdjson::SUCCESS) return false;
    const auto t = time_of(e);
    if (!t) return false;
    out = *t;
    return true;
  };
  const auto opt_time = [&](const char* key, std::optional<model::Timestamp>& out) {
    element e;
    if (root[key].get(e) != simdjson::SUCCESS) return false;
    out = time_of(e);
    return e.is_null() || out.has_value();
  };
  if (root["id"].get_uint64().get(a.id) != simdjson::SUCCESS || a.id == 0) return std::nullopt;
  std::string kind;
  std::string priority;
  std::string base;
  std::string state;
  if (!str("src", a.source) || !str("dev", a.device) || !str("link", a.link) ||
      !str("site", a.site) || !str("kind", kind) || !str("type", a.type) || !str("pri", priority) ||
      !str("base", base) || !str("state", state) || !str("msg", a.message) ||
      !str("acked_by", a.acked_by) || !str("shelved_by", a.shelved_by)) {
    return std::nullopt;
  }
  const auto k = parse_kind(kind);
  const auto p = model::parse_priority(priority);
  const auto bp = model::parse_priority(base);
  const auto s = parse_state(state);
  if (!k || !p || !bp || !s) return std::nullopt;
  a.kind = *k;
  a.priority = *p;
  a.base_priority = *bp;
  a.state = *s;
  if (root["latch"].get_bool().get(b) != simdjson::SUCCESS) return std::nullopt;
  a.latch = b;
  if (root["normal"].get_bool().get(b) != simdjson::SUCCESS) return std::nullopt;
  a.normal = b;
  if (!time("raised", a.raised_at) || !time("changed", a.changed_at) ||
      !time("esc", a.escalation_from) || !time("notified", a.notified_at) ||
      !opt_time("acked", a.acked_at) || !opt_time("cleared", a.cleared_at) ||
      !opt_time("shelved", a.shelved_until)) {
    return std::nullopt;
  }
  if (root["count"].get_uint64().get(u) != simdjson::SUCCESS) return std::nullopt;
  a.count = static_cast<std::uint32_t>(u);
  if (root["tier"].get_uint64().get(u) != simdjson::SUCCESS) return std::nullopt;
  a.tier = static_cast<std::uint32_t>(u);
  simdjson::dom::array arr;
  if (root["loc"].get_array().get(arr) != simdjson::SUCCESS) return std::nullopt;
  for (element pair : arr) {
    std::string_view level;
    std::string_view name;
    if (pair.at(0).get_string().get(level) != simdjson::SUCCESS ||
        pair.at(1).get_string().get(name) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    a.location.emplace_back(std::string(level), std::string(name));
  }
  if (root["comments"].get_array().get(arr) != simdjson::SUCCESS) return std::nullopt;
  for (element c : arr) {
    std::string_view by;
    std::int64_t at = 0;
    std::string_view body;
    if (c.at(0).get_string().get(by) != simdjson::SUCCESS ||
        c.at(1).get_int64().get(at) != simdjson::SUCCESS ||
        c.at(2).get_string().get(body) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    a.comments.push_back({std::string(by), model::from_micros(at), std::string(body)});
  }
  if (root["origins"].get_array().get(arr) != simdjson::SUCCESS) return std::nullopt;
  for (element o : arr) {
    if (o.get_uint64().get(u) != simdjson::SUCCESS) return std::nullopt;
    a.origins.push_back(u);
  }
  return a;
}

JournalLoad AlarmJournal::load() const {
  JournalLoad out;
  std::ifstream in(file_, std::ios::binary);
  if (!in) return out;
  std::map<std::uint64_t, Alarm> last;
  std::string line;
  while (std::getline(in, line)) {
    ++out.lines;
    auto alarm = decode(line);
    if (!alarm) {
      ++out.malformed;
      continue;
    }
    const std::uint64_t id = alarm->id;
    last.insert_or_assign(id, std::move(*alarm));
  }
  out.alarms.reserve(last.size());
  for (auto& [id, a] : last) out.alarms.push_back(std::move(a));
  return out;
}

void AlarmJournal::append(const Alarm& alarm) {
  std::string line = encode(alarm);
  ++lines_;
  {
    const std::lock_guard lock(mutex_);
    queue_ += line;
    queued_seq_ = ++appended_;
  }
  wake_.notify_one();
}

bool AlarmJournal::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_seq_;
  return synced_.wait_for(lock, timeout, [&] { return durable() >= target; });
}

bool AlarmJournal::write_out(const std::string& text) {
  if (fd_ < 0) fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ >= 0 && common::write_all(fd_, text) && ::fdatasync(fd_) == 0) return true;
  // The file may hold part of the text: loading skips a torn line, and the text is written again
  // whole (the last line per alarm wins, so a repeat is harmless).
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return false;
}

void AlarmJournal::run() {
  std::string text;
  std::uint64_t seq = 0;
  std::chrono::milliseconds backoff{10};
  std::uint64_t failures = 0;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty() || !text.empty(); });
      if (stop_ && (text.empty() && queue_.empty())) return;
      text += queue_;  // after a failure: the unsynced lines first, then the newer ones
      queue_.clear();
      seq = queued_seq_;
    }
    bool ok = false;
    {
      const std::lock_guard file_lock(file_mutex_);
      ok = write_out(text);
    }
    if (ok) {
      text.clear();
      backoff = std::chrono::milliseconds{10};
      syncs_.inc();
      {
        const std::lock_guard lock(mutex_);
        durable_.store(seq, std::memory_order_release);
      }
      synced_.notify_all();
      if (on_synced_) on_synced_();
      continue;
    }
    errors_.inc();
    if (failures++ % 100 == 0) {
      common::log(common::LogLevel::error, "alarms",
                  "cannot write " + file_.string() + ": " + std::strerror(errno) +
                      " (retrying; acknowledgements wait)");
    }
    std::unique_lock lock(mutex_);
    if (stop_) return;  // shutting down with the disk refusing: the broker still has them
    wake_.wait_for(lock, backoff, [&] { return stop_; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds{1000});
  }
}

bool AlarmJournal::compact(const std::vector<const Alarm*>& keep) {
  if (!flush()) return false;
  const std::lock_guard file_lock(file_mutex_);
  const std::filesystem::path tmp = file_.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    errors_.inc();
    return false;
  }
  std::string text;
  for (const Alarm* a : keep) text += encode(*a);
  const bool ok = common::write_all(fd, text) && ::fsync(fd) == 0;
  ::close(fd);
  std::error_code ec;
  if (!ok || (std::filesystem::rename(tmp, file_, ec), ec) || !sync_folder(file_.parent_path())) {
    errors_.inc();
    common::log(common::LogLevel::error, "alarms", "cannot compact " + file_.string());
    return false;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;  // the writer reopens the new file
  lines_ = keep.size();
  return true;
}

}  // namespace fieldhub::alarms
