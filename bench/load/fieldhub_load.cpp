// SPDX-License-Identifier: Apache-2.0
// fieldhub-load: end-to-end load through a real broker. Publishes numbered QoS 1 messages and
// reports what arrived where:
//   --mode bare      a bare subscriber in this process (the broker's own limit, same run);
//                    with --sessions N, N persistent sessions of one shared subscription
//                    ($share/load/<filter>); with --broker-pid, the broker's CPU;
//   --mode fieldhub  fieldhub as the subscriber: sustained readings/s fully stored (from its
//                    /metrics), publish → live feed latency (WebSocket /api/v1/live),
//                    history commit time per batch (fieldhub_history_commit_seconds: batches,
//                    mean, and the histogram bucket bound that holds p50 and p99), and
//                    fieldhub's CPU and peak RSS (from /proc/<pid>).
// Every loop is bounded by --count and --timeout.
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "adapters/mqtt/mqtt_client.h"
#include "common/clock.h"
#include "common/metrics.h"

namespace {

using namespace fieldhub;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string mode = "fieldhub";
  std::uint16_t broker_port = 1883;
  std::uint16_t http_port = 8080;
  int pid = 0;
  std::int64_t count = 100000;
  int devices = 1000;
  int values = 1;
  double rate = 0;  // messages/s; 0: as fast as the window allows
  std::size_t window = 1000;
  std::string site = "lab";
  std::chrono::seconds timeout{300};
  std::int64_t first_seq = 0;
  std::int64_t event_every = 0;  // every Nth message is an urgent event instead of telemetry
  int dashboards = 1;            // live feed sessions watching (events are timed on each)
  int consoles = 0;  // alarm consoles: live feed sessions with telemetry off (events timed too)
  int board_interval_ms = 0;  // dashboards after the first ask for telemetry at this interval
  int sessions = 0;  // bare mode: 0 one plain subscription, N ≥ 1 N sessions of a shared one
  int broker_pid = 0;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string http_get(std::uint16_t port, const std::string& target) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(req));
  std::string resp;
  boost::system::error_code ec;
  boost::asio::read(s, boost::asio::dynamic_buffer(resp), ec);
  const auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : resp.substr(body + 4);
}

// Sums every sample of a metric family (all label sets) from /metrics.
double scrape(std::uint16_t port, const std::string& name) {
  std::istringstream in(http_get(port, "/metrics"));
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A histogram's cumulative bucket counts from /metrics (upper bound in seconds → count), with
// its _sum and _count.
struct HistogramScrape {
  std::vector<std::pair<double, double>> buckets;  // le, cumulative count; in /metrics order
  double sum = 0;
  double count = 0;

  static HistogramScrape read(std::uint16_t port, const std::string& name) {
    HistogramScrape h;
    std::istringstream in(http_get(port, "/metrics"));
    std::string line;
    const std::string bucket = name + "_bucket{le=\"";
    while (std::getline(in, line)) {
      if (line.rfind(name, 0) != 0) continue;
      const double value = std::stod(line.substr(line.rfind(' ') + 1));
      if (line.rfind(bucket, 0) == 0) {
        const std::string le =
            line.substr(bucket.size(), line.find('"', bucket.size()) - bucket.size());
        h.buckets.emplace_back(
            le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le), value);
      } else if (line.rfind(name + "_sum ", 0) == 0) {
        h.sum = value;
      } else if (line.rfind(name + "_count ", 0) == 0) {
        h.count = value;
      }
    }
    return h;
  }
  // The observations since `before` (same buckets).
  HistogramScrape operator-(const HistogramScrape& before) const {
    HistogramScrape d = *this;
    for (std::size_t i = 0; i < d.buckets.size() && i < before.buckets.size(); ++i) {
      d.buckets[i].second -= before.buckets[i].second;
    }
    d.sum -= before.sum;
    d.count -= before.count;
    return d;
  }
  // Upper bound of the bucket that holds quantile q: "p99 ≤ this"; 0 without observations.
  double quantile_upper_bound(double q) const {
    if (count <= 0) return 0;
    for (const auto& [le, cumulative] : buckets) {
      if (cumulative >= q * count) return le;
    }
    return std::numeric_limits<double>::infinity();
  }
};

// The oracle's counters, as deltas over a run.
struct Oracle {
  double received = 0, stored = 0, duplicate = 0, deduplicated = 0, rejected = 0;
  static Oracle read(std::uint16_t port) {
    return {scrape(port, "fieldhub_messages_received_total"),
            scrape(port, "fieldhub_readings_stored_total"),
            scrape(port, "fieldhub_readings_duplicate_total"),
            scrape(port, "fieldhub_messages_deduplicated_total"),
            scrape(port, "fieldhub_messages_rejected_total") +
                scrape(port, "fieldhub_records_rejected_total")};
  }
  Oracle operator-(const Oracle& o) const {
    return {received - o.received, stored - o.stored, duplicate - o.duplicate,
            deduplicated - o.deduplicated, rejected - o.rejected};
  }
};

struct ProcStat {
  double cpu_seconds = 0;
  double peak_rss_mib = 0;
  double runqueue_seconds = 0;  // main thread: runnable but waiting for a CPU (schedstat)
};

ProcStat proc_stat(int pid) {
  ProcStat st;
  if (pid <= 0) return st;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  const auto close = content.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(content.substr(close + 2));
    std::string field;
    std::vector<std::string> fields;
    while (rest >> field) fields.push_back(field);
    // After "pid (comm) ": state is field 0; utime 11, stime 12 (proc(5) fields 14 and 15).
    if (fields.size() > 12) {
      st.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) /
                       static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream schedstat("/proc/" + std::to_string(pid) + "/schedstat");
  double on_cpu_ns = 0, waiting_ns = 0;
  if (schedstat >> on_cpu_ns >> waiting_ns) st.runqueue_seconds = waiting_ns / 1e9;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) st.peak_rss_mib = std::stod(line.substr(6)) / 1024.0;
  }
  return st;
}

std::string payload(std::int64_t seq, int values, std::int64_t ts_ms) {
  std::string p =
      R"({"ts":)" + std::to_string(ts_ms) + R"(,"values":{"seq":)" + std::to_string(seq);
  for (int v = 1; v < values; ++v) {
    p += ",\"v" + std::to_string(v) +
         "\":" + std::to_string(static_cast<double>(seq % 1000) / 10.0 + v);
  }
  p += "}}";
  return p;
}

// Publishes count messages, paced or window-bound; records each message's publish time.
class Publisher {
 public:
  Publisher(const Options& o, std::vector<std::int64_t>& sent_ns) : o_(o), sent_ns_(sent_ns) {
    mqtt::ClientOptions co;
    co.port = o.broker_port;
    co.client_id = "fieldhub-load-pub-" + std::to_string(::getpid());
    co.clean_session = true;
    co.max_outbound_inflight = o.window;
    client_ = std::make_unique<mqtt::Client>(io_.get_executor(), co, metrics_, clock_);
  }

  void run() {
    client_->start();
    started_ = Clock::now();
    boost::asio::post(io_, [this] { fill(); });
    io_.run_for(o_.timeout);
  }
  std::int64_t acked() const { return acked_; }
  Clock::time_point started() const { return started_; }

 private:
  void publish_one() {
    const std::int64_t i = next_++;
    const std::int64_t seq = o_.first_seq + i;
    const int device = static_cast<int>(seq % o_.devices);
    // Wall-clock ms, but strictly increasing per device: two readings of one series at the same
    // time are one reading to the history store (its unique key), so a burst that gave one device
    // two messages within a millisecond would be counted as a duplicate, not stored twice.
    if (last_ts_ms_.empty()) last_ts_ms_.assign(static_cast<std::size_t>(o_.devices), 0);
    std::int64_t& last = last_ts_ms_[static_cast<std::size_t>(device)];
    const std::int64_t ts_ms =
        std::max(last + 1, std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
    last = ts_ms;
    sent_ns_[static_cast<std::size_t>(i)] = now_ns();
    ++outstanding_;
    const bool event = o_.event_every > 0 && seq % o_.event_every == 0;
    const std::string topic = "fieldhub/" + o_.site + "/dev-" + std::to_string(device) +
                              (event ? "/event" : "/telemetry");
    std::string body = event ? R"({"ts":)" + std::to_string(ts_ms) + R"(,"type":"call","seq":)" +
                                   std::to_string(seq) + "}"
                             : payload(seq, o_.values, ts_ms);
    client_->publish(topic, std::move(body), 1, false, [this](std::error_code ec) {
      --outstanding_;
      if (!ec) ++acked_;
      if (acked_ == o_.count) {
        client_->stop();
        return;
      }
      if (o_.rate <= 0) fill();
    });
  }

  void fill() {
    if (o_.rate <= 0) {
      while (next_ < o_.count && outstanding_ < o_.window) publish_one();
      return;
    }
    // Paced: publish what is due by now, then come back in 1 ms.
    const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
    const auto due =
        std::min<std::int64_t>(o_.count, static_cast<std::int64_t>(elapsed * o_.rate) + 1);
    while (next_ < due && outstanding_ < 50 * o_.window) publish_one();
    if (next_ < o_.count) {
      timer_.expires_after(1ms);
      timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) fill();
      });
    }
  }

  const Options& o_;
  std::vector<std::int64_t>& sent_ns_;
  std::vector<std::int64_t> last_ts_ms_;  // per device: the newest timestamp sent
  boost::asio::io_context io_;
  boost::asio::steady_timer timer_{io_};
  common::SystemClock clock_;
  common::Metrics metrics_;
  std::unique_ptr<mqtt::Client> client_;
  std::int64_t next_ = 0;
  std::int64_t acked_ = 0;
  std::size_t outstanding_ = 0;
  Clock::time_point started_;
};

// Reads the live feed and records when each numbered reading arrived.
class FeedWatcher {
 public:
  // query: what the session asks for beyond the site ("&telemetry=off", "&interval_ms=250").
  FeedWatcher(const Options& o, std::vector<std::int64_t>& seen_ns, std::string query)
      : o_(o), seen_ns_(seen_ns), query_(std::move(query)) {}

  void start() {
    thread_ = std::thread([this] { run(); });
    // Wait until the WebSocket is open so the first messages are measured too.
    const auto deadline = Clock::now() + 10s;
    while (!open_ && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::int64_t frames() const { return frames_; }

 private:
  void run() {
    namespace ws = boost::beast::websocket;
    boost::asio::io_context io;
    ws::stream<boost::asio::ip::tcp::socket> stream(io);
    try {
      stream.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), o_.http_port});
      stream.handshake("127.0.0.1:" + std::to_string(o_.http_port),
                       "/api/v1/live?site=" + o_.site + query_);
      stream.next_layer().non_blocking(false);
      timeval tv{0, 200000};
      setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    } catch (const std::exception& e) {
      std::cerr << "fieldhub-load: live feed: " << e.what() << "\n";
      open_ = true;
      return;
    }
    open_ = true;
    simdjson::dom::parser parser;
    boost::beast::flat_buffer buffer;
    while (!stop_) {
      boost::system::error_code ec;
      stream.read(buffer, ec);
      if (ec) {
        if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again ||
            ec == boost::asio::error::timed_out) {
          continue;
        }
        break;
      }
      const std::int64_t at = now_ns();
      ++frames_;
      const auto data = boost::beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      simdjson::dom::element doc;
      if (parser.parse(data).get(doc)) continue;
      std::string_view type;
      if (doc["type"].get(type)) continue;
      if (type == "event") {
        double seq = 0;
        if (doc["attributes"]["seq"].get(seq)) continue;
        record(static_cast<std::int64_t>(seq), at);
        continue;
      }
      if (type != "readings") continue;
      simdjson::dom::array items;
      if (doc["items"].get(items)) continue;
      for (auto item : items) {
        std::string_view metric;
        double value = 0;
        if (item["metric"].get(metric) || metric != "seq" || item["value"].get(value)) continue;
        record(static_cast<std::int64_t>(value), at);
      }
    }
  }

  void record(std::int64_t seq, std::int64_t at) {
    const auto i = seq - o_.first_seq;
    if (i >= 0 && i < static_cast<std::int64_t>(seen_ns_.size()) &&
        seen_ns_[static_cast<std::size_t>(i)] == 0) {
      seen_ns_[static_cast<std::size_t>(i)] = at;
    }
  }

  const Options& o_;
  std::vector<std::int64_t>& seen_ns_;
  const std::string query_;
  std::thread thread_;
  std::atomic<bool> open_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> frames_{0};
};

int run_bare(const Options& o) {
  boost::asio::io_context io;
  common::SystemClock clock;
  common::Metrics metrics;
  const std::string filter = "fieldhub/" + o.site + "/+/telemetry";
  const std::size_t n = static_cast<std::size_t>(std::max(1, o.sessions));
  std::vector<std::unique_ptr<mqtt::Client>> subs;
  std::vector<std::int64_t> per_session(n, 0);
  std::atomic<std::int64_t> received{0};
  std::atomic<std::size_t> subscribed{0};
  Clock::time_point last{};
  for (std::size_t i = 0; i < n; ++i) {
    mqtt::ClientOptions co;
    co.port = o.broker_port;
    co.client_id = "fieldhub-load-sub-" + std::to_string(::getpid());
    if (o.sessions > 0) co.client_id.append("-").append(std::to_string(i));
    // A shared subscription is measured as fieldhub would use it: persistent sessions.
    co.clean_session = o.sessions == 0;
    auto& sub =
        *subs.emplace_back(std::make_unique<mqtt::Client>(io.get_executor(), co, metrics, clock));
    sub.set_subscriptions({{o.sessions > 0 ? "$share/load/" + filter : filter, 1}});
    sub.on_link([&](const mqtt::LinkStatus& s) {
      if (s.event == mqtt::LinkEvent::connected) ++subscribed;
    });
    sub.on_message([&, i](const mqtt::InboundMessage& m) {
      if (m.qos > 0) subs[i]->acknowledge(m.packet_id, m.generation);
      last = Clock::now();
      ++per_session[i];
      if (++received == o.count) {
        for (auto& s : subs) s->stop();
      }
    });
    sub.start();
  }
  std::thread sub_thread([&] { io.run_for(o.timeout); });
  const auto deadline = Clock::now() + 10s;
  while (subscribed < n && Clock::now() < deadline) std::this_thread::sleep_for(10ms);

  std::vector<std::int64_t> sent(static_cast<std::size_t>(o.count), 0);
  Publisher pub(o, sent);
  const ProcStat broker_before = proc_stat(o.broker_pid);
  const ProcStat self_before = proc_stat(::getpid());
  pub.run();
  sub_thread.join();
  const ProcStat broker_after = proc_stat(o.broker_pid);
  const ProcStat self_after = proc_stat(::getpid());
  const double seconds = std::chrono::duration<double>(last - pub.started()).count();
  std::cout << "mode=bare sessions=" << o.sessions << " messages=" << received
            << " seconds=" << seconds << " msgs_per_s=" << static_cast<double>(received) / seconds;
  if (o.sessions > 0) {
    std::cout << " per_session=";
    for (std::size_t i = 0; i < n; ++i) std::cout << (i > 0 ? "," : "") << per_session[i];
  }
  if (o.broker_pid > 0) {
    // A single-threaded broker is limited by its CPU if it is on a core or waiting for one all
    // the time: cpu + runqueue ≈ 100 %.
    std::cout << " broker_cpu_percent="
              << 100.0 * (broker_after.cpu_seconds - broker_before.cpu_seconds) / seconds
              << " broker_runqueue_percent="
              << 100.0 * (broker_after.runqueue_seconds - broker_before.runqueue_seconds) / seconds;
  }
  std::cout << " load_tool_cpu_percent="
            << 100.0 * (self_after.cpu_seconds - self_before.cpu_seconds) / seconds << "\n";
  return received == o.count ? 0 : 1;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

int run_fieldhub(const Options& o) {
  const Oracle before_counts = Oracle::read(o.http_port);
  // PostgreSQL (or SQLite) commit time per history batch, over this run.
  const std::string commit_metric = "fieldhub_history_commit_seconds";
  const HistogramScrape before_commits = HistogramScrape::read(o.http_port, commit_metric);
  const ProcStat before = proc_stat(o.pid);
  const ProcStat broker_before = proc_stat(o.broker_pid);
  std::vector<std::int64_t> sent(static_cast<std::size_t>(o.count), 0);
  // One watcher per open dashboard, then one per console; readings are timed on the first (every
  // tick), events on every one.
  std::vector<std::vector<std::int64_t>> seen_by(
      static_cast<std::size_t>(o.dashboards + o.consoles),
      std::vector<std::int64_t>(sent.size(), 0));
  std::vector<std::unique_ptr<FeedWatcher>> feeds;
  for (auto& seen_ns : seen_by) {
    const auto n = static_cast<int>(feeds.size());
    std::string query = n >= o.dashboards ? "&telemetry=off"
                        : n > 0 && o.board_interval_ms > 0
                            ? "&interval_ms=" + std::to_string(o.board_interval_ms)
                            : "";
    feeds.push_back(std::make_unique<FeedWatcher>(o, seen_ns, std::move(query)));
    feeds.back()->start();
  }
  const std::vector<std::int64_t>& seen = seen_by.front();
  Publisher pub(o, sent);
  std::thread pub_thread([&] { pub.run(); });

  const std::int64_t event_count =
      o.event_every > 0 ? (o.count + o.event_every - 1) / o.event_every : 0;
  const double expected = static_cast<double>(o.count - event_count) * o.values;
  const auto deadline = Clock::now() + o.timeout;
  double stored = 0;
  Clock::time_point done_at = Clock::now();
  while (Clock::now() < deadline) {
    stored = scrape(o.http_port, "fieldhub_readings_stored_total") - before_counts.stored;
    done_at = Clock::now();
    if (stored >= expected) break;
    std::this_thread::sleep_for(50ms);
  }
  pub_thread.join();
  // Events are a few: give the last ones a moment to reach every dashboard.
  const auto settle = Clock::now() + 2s;
  const auto all_seen = [&] {
    for (std::size_t i = 0; i < sent.size(); ++i) {
      const std::int64_t seq = o.first_seq + static_cast<std::int64_t>(i);
      if (o.event_every == 0 || seq % o.event_every != 0 || sent[i] == 0) continue;
      for (const auto& seen_ns : seen_by) {
        if (seen_ns[i] == 0) return false;
      }
    }
    return true;
  };
  while (!all_seen() && Clock::now() < settle) std::this_thread::sleep_for(10ms);
  for (auto& f : feeds) f->stop();
  const ProcStat after = proc_stat(o.pid);
  const ProcStat broker_after = proc_stat(o.broker_pid);
  const Oracle counts = Oracle::read(o.http_port) - before_counts;
  const HistogramScrape commits =
      HistogramScrape::read(o.http_port, commit_metric) - before_commits;
  const double seconds = std::chrono::duration<double>(done_at - pub.started()).count();

  std::vector<double> latency_ms;
  std::vector<double> event_ms;      // each event on each dashboard
  std::vector<double> event_all_ms;  // each event on the last dashboard to show it
  std::vector<double> console_ms;    // each event on each console
  std::int64_t events_sent = 0;
  std::int64_t events_missed = 0;  // event × dashboard pairs never seen
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const std::int64_t seq = o.first_seq + static_cast<std::int64_t>(i);
    const bool event = o.event_every > 0 && seq % o.event_every == 0;
    events_sent += event ? 1 : 0;
    if (sent[i] == 0) continue;
    if (!event) {
      if (seen[i] != 0) latency_ms.push_back(static_cast<double>(seen[i] - sent[i]) / 1e6);
      continue;
    }
    double last = 0;
    for (std::size_t f = 0; f < seen_by.size(); ++f) {
      const auto& seen_ns = seen_by[f];
      if (seen_ns[i] == 0) {
        ++events_missed;
        continue;
      }
      const double ms = static_cast<double>(seen_ns[i] - sent[i]) / 1e6;
      event_ms.push_back(ms);
      if (f >= static_cast<std::size_t>(o.dashboards)) console_ms.push_back(ms);
      last = std::max(last, ms);
    }
    event_all_ms.push_back(last);
  }
  const std::size_t measured = latency_ms.size();
  std::cout << "mode=fieldhub messages=" << pub.acked() << " readings_stored=" << stored
            << " seconds=" << seconds << " readings_per_s=" << stored / seconds
            << " msgs_per_s=" << static_cast<double>(pub.acked()) / seconds
            << " live_measured=" << measured << " live_p50_ms=" << percentile(latency_ms, 0.50)
            << " live_p99_ms=" << percentile(latency_ms, 0.99)
            << " live_max_ms=" << (latency_ms.empty() ? 0 : latency_ms.back())
            << " cpu_percent=" << 100.0 * (after.cpu_seconds - before.cpu_seconds) / seconds
            << " peak_rss_mib=" << after.peak_rss_mib;
  if (o.broker_pid > 0) {
    std::cout << " broker_cpu_percent="
              << 100.0 * (broker_after.cpu_seconds - broker_before.cpu_seconds) / seconds;
  }
  std::cout << " received=" << counts.received << " duplicate=" << counts.duplicate
            << " deduplicated=" << counts.deduplicated << " rejected=" << counts.rejected
            << " commit_batches=" << commits.count << " commit_mean_ms="
            << (commits.count > 0 ? 1000.0 * commits.sum / commits.count : 0.0)
            << " commit_p50_le_ms=" << 1000.0 * commits.quantile_upper_bound(0.50)
            << " commit_p99_le_ms=" << 1000.0 * commits.quantile_upper_bound(0.99);
  if (o.event_every > 0) {
    std::cout << " dashboards=" << o.dashboards << " events_sent=" << events_sent
              << " event_frames_seen=" << event_ms.size()
              << " event_frames_missed=" << events_missed
              << " event_p50_ms=" << percentile(event_ms, 0.50)
              << " event_p99_ms=" << percentile(event_ms, 0.99)
              << " event_max_ms=" << (event_ms.empty() ? 0 : event_ms.back())
              << " event_on_all_p99_ms=" << percentile(event_all_ms, 0.99)
              << " event_on_all_max_ms=" << (event_all_ms.empty() ? 0 : event_all_ms.back());
    if (o.consoles > 0) {
      std::cout << " consoles=" << o.consoles
                << " console_event_p50_ms=" << percentile(console_ms, 0.50)
                << " console_event_p99_ms=" << percentile(console_ms, 0.99)
                << " console_event_max_ms=" << (console_ms.empty() ? 0 : console_ms.back());
    }
  }
  std::cout << "\n";
  return stored >= expected ? 0 : 1;
}

void usage() {
  std::cout
      << "usage: fieldhub-load --mode bare|fieldhub --broker-port P [--http-port H] [--pid PID]\n"
         "         [--count N] [--devices D] [--values V] [--rate MSGS_PER_S] [--window W]\n"
         "         [--site S] [--timeout SECONDS] [--first-seq N] [--event-every N]\n"
         "         [--dashboards N] [--consoles N] [--board-interval MS] [--sessions N]\n"
         "         [--broker-pid PID]\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help") {
        usage();
        return 0;
      }
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      const std::string v = argv[++i];
      if (arg == "--mode")
        o.mode = v;
      else if (arg == "--broker-port")
        o.broker_port = static_cast<std::uint16_t>(std::stoi(v));
      else if (arg == "--http-port")
        o.http_port = static_cast<std::uint16_t>(std::stoi(v));
      else if (arg == "--pid")
        o.pid = std::stoi(v);
      else if (arg == "--count")
        o.count = std::stoll(v);
      else if (arg == "--devices")
        o.devices = std::stoi(v);
      else if (arg == "--values")
        o.values = std::stoi(v);
      else if (arg == "--rate")
        o.rate = std::stod(v);
      else if (arg == "--window")
        o.window = std::stoul(v);
      else if (arg == "--site")
        o.site = v;
      else if (arg == "--timeout")
        o.timeout = std::chrono::seconds{std::stoi(v)};
      else if (arg == "--first-seq")
        o.first_seq = std::stoll(v);
      else if (arg == "--event-every")
        o.event_every = std::stoll(v);
      else if (arg == "--dashboards")
        o.dashboards = std::max(1, std::stoi(v));
      else if (arg == "--consoles")
        o.consoles = std::max(0, std::stoi(v));
      else if (arg == "--board-interval")
        o.board_interval_ms = std::max(0, std::stoi(v));
      else if (arg == "--sessions")
        o.sessions = std::max(0, std::stoi(v));
      else if (arg == "--broker-pid")
        o.broker_pid = std::stoi(v);
      else
        throw std::invalid_argument("unknown argument " + arg);
    }
    if (o.count <= 0 || o.devices <= 0 || o.values <= 0)
      throw std::invalid_argument("counts must be > 0");
  } catch (const std::exception& e) {
    std::cerr << "fieldhub-load: " << e.what() << "\n";
    usage();
    return 2;
  }
  return o.mode == "bare" ? run_bare(o) : run_fieldhub(o);
}
