// SPDX-License-Identifier: Apache-2.0
// The spool's faults end to end (issue 4, points 4 and 5; decision 0012), with the real fieldhub
// binary, a real Mosquitto and the counting oracle (oracle.h):
// - the spool's disk fills up: nothing unsynced is acknowledged, fieldhub says degraded, keeps
//   what it has and recovers by itself when space returns;
// - a record PostgreSQL really refuses (a rollup sum that overflows double precision) is
//   dead-lettered alone as history_rejected, the rest is stored, the writer does not stall;
// - PostgreSQL refusing every insert (INSERT revoked) is an outage: held, nothing dead-lettered,
//   written once INSERT is granted again (decision 0015);
// - a torn tail as a power loss leaves it after a SIGKILL under load: truncated, counted, and
//   nothing acknowledged (PUBACKed, as recorded by a proxy in front of the broker) is lost;
// - EIO from fdatasync, then from write, on the spool's files (strace injecting into the running
//   binary): nothing acknowledged while they fail, degraded shown, recovery and a clean oracle.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "ack_recorder.h"
#include "fieldhub_process.h"
#include "model/time.h"
#include "oracle.h"
#include "pipeline/spool_codec.h"
#include "support/postgres_server.h"

namespace fieldhub::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

void expect_clean(const Plan& plan, const FieldhubProcess& fh) {
  const Reconciliation r = reconcile(plan, fh);
  const auto m = fh.metrics();
  std::cout << "oracle: " << plan.valid << " valid messages (+" << plan.duplicates
            << " repeats), stored " << r.stored << ", missing " << r.missing << ", duplicates "
            << r.duplicated << ", unexpected " << r.unexpected << "\n";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
  for (const auto& [reason, sent] : plan.rejected) {
    EXPECT_EQ(metric(m, "fieldhub_messages_rejected_total{reason=\"" + reason + "\"}"),
              static_cast<double>(sent))
        << reason;
  }
}

// ---- disk full ----

// The argv prefix that runs fieldhub in a private mount namespace with a tmpfs of `size` mounted
// on `mount_point` (visible to fieldhub only; gone with it).
std::vector<std::string> tmpfs_launcher(const fs::path& mount_point, const std::string& size) {
  return {"unshare",
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          "mount -t tmpfs -o size=" + size + " fieldhub-spool \"$0\" && exec \"$@\"",
          mount_point.string()};
}

// Why a tmpfs cannot be mounted that way here, or "" when it can.
std::string tmpfs_unavailable(const fs::path& scratch) {
  const fs::path mount_point = scratch / "probe";
  fs::create_directories(mount_point);
  std::vector<std::string> argv = tmpfs_launcher(mount_point, "64k");
  argv.emplace_back("true");
  ChildProcess probe(argv, scratch / "probe.log");
  if (probe.wait(10s) == 0) return "";
  return "cannot mount a small tmpfs in a private mount namespace (unshare --mount; needs root "
         "with CAP_SYS_ADMIN): " +
         probe.log();
}

// Appends to `file` until its filesystem refuses (ENOSPC); bytes written.
std::uint64_t fill_up(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + file.string());
  const std::string block(64 * 1024, 'b');
  std::uint64_t total = 0;
  for (int i = 0; i < 100000; ++i) {  // bounded: 6 GB
    const ssize_t n = ::write(fd, block.data(), block.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return total;
}

TEST(SpoolDiskFull, NothingUnsyncedIsAcknowledgedDegradedIsShownAndItRecoversWhenSpaceReturns) {
  TempDir scratch;
  if (const std::string why = tmpfs_unavailable(scratch.path()); !why.empty()) {
    GTEST_SKIP() << why;
  }
  MosquittoServer broker;
  broker.start();
  const fs::path mount_point = scratch.path() / "spool";
  fs::create_directories(mount_point);
  // History on SQLite (the spool is on regardless): the spool's own disk is the fault here.
  // max_bytes far above the 16 MiB filesystem: the disk fills before the spool's own bound.
  FieldhubProcess fh({.broker_port = broker.port(),
                      .devices = oracle_devices,
                      .extra_config = "[spool]\nenabled = true\ndir = \"" + mount_point.string() +
                                      "\"\nmax_bytes = 268435456\nsegment_bytes = 262144\n",
                      .launcher = tmpfs_launcher(mount_point, "16m")});
  fh.start();
  // The spool's folder as fieldhub sees it (its mount namespace, through /proc).
  const fs::path ballast =
      fs::path("/proc/" + std::to_string(fh.pid()) + "/root" + mount_point.string()) / "ballast";

  const Plan plan = make_plan(1, 12000);
  std::atomic<std::size_t> published_acked{0};
  PublishResult published;
  std::jthread publisher([&] {
    published = publish_all(
        broker.port(), plan.messages, 120s, 500,
        [&](std::size_t acked) { published_acked.store(acked); }, 3000);
  });
  const auto received = [&] { return metric(fh.metrics(), "fieldhub_messages_received_total"); };
  ASSERT_TRUE(wait_until([&] { return received() >= 2000; }, 30s)) << fh.log();

  // Another process fills the disk, and keeps it full: space that history frees (committed
  // segments are deleted) is taken again at once.
  const std::uint64_t ballast_bytes = fill_up(ballast);
  const auto full_at = steady::now();
  std::jthread keep_full([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      fill_up(ballast);
      std::this_thread::sleep_for(5ms);
    }
  });
  ASSERT_TRUE(
      wait_until([&] { return metric(fh.metrics(), "fieldhub_spool_healthy") == 0; }, 5s, 10ms))
      << fh.log();
  const double degraded_after = seconds_since(full_at);
  ASSERT_TRUE(
      wait_until([&] { return health_component(fh, "spool").starts_with("degraded"); }, 5s, 20ms));
  ASSERT_TRUE(wait_until([&] { return !alarm_state(fh, "spool_degraded").empty(); }, 5s, 20ms));
  const double alarm_after = seconds_since(full_at);

  // Full for 3 s more while the publisher goes on.
  auto m = fh.metrics();
  const double received_at_full = metric(m, "fieldhub_messages_received_total");
  const std::size_t published_at_full = published_acked.load();
  std::this_thread::sleep_for(3s);
  m = fh.metrics();
  const double received_full = metric(m, "fieldhub_messages_received_total");
  const double synced_full = metric(m, "fieldhub_spool_synced_records_total");
  const std::size_t published_full = published_acked.load();
  std::cout << "disk full: " << ballast_bytes << " bytes of ballast; spool unhealthy after "
            << degraded_after << " s, alarm after " << alarm_after << " s; while full "
            << published_full - published_at_full << " messages reached the broker, fieldhub "
            << "received " << received_full - received_at_full << "; write errors "
            << metric(m, "fieldhub_spool_write_errors_total") << "\n";
  EXPECT_LE(degraded_after, 5.0);
  EXPECT_LE(alarm_after, 5.0);
  EXPECT_EQ(metric(m, "fieldhub_spool_healthy"), 0);
  EXPECT_GT(metric(m, "fieldhub_spool_write_errors_total"), 0);
  // Every message fieldhub received is one record (valid, repeated or refused: a dead letter).
  // The broker lets at most 1000 unacknowledged messages be in flight to fieldhub, and fieldhub
  // acknowledges a message only once its record is synced: received ≤ synced + 1000. Had it
  // acknowledged unsynced messages, it would have received everything the broker got meanwhile.
  EXPECT_LE(received_full, synced_full + 1000);
  EXPECT_GT(static_cast<double>(published_full - published_at_full),
            received_full - received_at_full + 1000)
      << "the publisher did not outrun the full spool; the test proves nothing";
  EXPECT_EQ(health_component(fh, "spool").substr(0, 8), "degraded");

  // Space returns.
  keep_full.request_stop();
  keep_full.join();
  fs::remove(ballast);
  const auto freed_at = steady::now();
  ASSERT_TRUE(
      wait_until([&] { return metric(fh.metrics(), "fieldhub_spool_healthy") == 1; }, 5s, 10ms))
      << fh.log();
  const double recovered_after = seconds_since(freed_at);
  // /healthz follows within one status poll (500 ms).
  EXPECT_TRUE(wait_until([&] { return health_component(fh, "spool") == "ok"; }, 5s, 20ms));
  publisher.join();
  ASSERT_EQ(published.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_all_stored(fh, plan, 60s)) << fh.log();
  m = fh.metrics();
  std::cout << "space returned: spool healthy again after " << recovered_after << " s\n";
  EXPECT_LE(recovered_after, 2.0);  // the retry backoff is at most 1 s
  EXPECT_EQ(metric(m, "fieldhub_spool_dropped_readings_total"), 0);
  EXPECT_EQ(metric(m, "fieldhub_spool_corrupt_records_total"), 0);
  expect_clean(plan, fh);
}

// ---- a record PostgreSQL refuses ----

// A reading of `value` for dev-0's metric "flow" at `ts_ms`.
Message flow(std::int64_t ts_ms, const std::string& value) {
  return {"fieldhub/lab/dev-0/telemetry",
          R"({"ts":)" + std::to_string(ts_ms) + R"(,"values":{"flow":)" + value + "}}"};
}

std::size_t flow_points(const FieldhubProcess& fh, std::int64_t from_ms) {
  const std::string from = model::format_rfc3339(model::from_micros(from_ms * 1000));
  const std::string to = model::format_rfc3339(model::from_micros((from_ms + 3'600'000) * 1000));
  const auto r = fh.get("/api/v1/devices/dev-0/history?metric=flow&from=" + from + "&to=" + to);
  if (!r || r->first != 200) return 0;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->second).get(doc)) return 0;
  return doc["points"].get_array().size();
}

// Seconds between the first log line containing `from` and the first after it containing `to`
// (log lines start with an RFC 3339 UTC time to the millisecond); -1 if either is missing.
double log_span(const std::string& log, const std::string& from, const std::string& to) {
  const auto at = [&](std::size_t pos) {
    const std::size_t line = log.rfind('\n', pos);
    const std::size_t start = line == std::string::npos ? 0 : line + 1;
    // 2026-11-24T22:51:36.842Z: hours, minutes, seconds.milliseconds
    return std::stod(log.substr(start + 11, 2)) * 3600 + std::stod(log.substr(start + 14, 2)) * 60 +
           std::stod(log.substr(start + 17, 6));
  };
  const std::size_t a = log.find(from);
  if (a == std::string::npos) return -1;
  const std::size_t b = log.find(to, a);
  if (b == std::string::npos) return -1;
  return at(b) - at(a);
}

TEST(SpoolPoisonRecord, ARecordPostgresRefusesIsDeadLetteredAloneAndTheRestIsStored) {
  if (!PostgresServer::available()) GTEST_SKIP() << "PostgreSQL not installed";
  MosquittoServer broker;
  broker.start();
  PostgresServer postgres;
  postgres.start();
  FieldhubProcess fh({.broker_port = broker.port(),
                      .devices = oracle_devices,
                      .history_url = postgres.create_database()});
  // A number metric without a range, as a flow meter's profile may have: any finite double is
  // valid. (The spool is on by default with PostgreSQL history.)
  std::ofstream(fh.dir() / "profiles" / "test-counter.toml", std::ios::app)
      << "[[metrics]]\nname = \"flow\"\nunit = \"m³/h\"\ntype = \"number\"\n";
  fh.start();

  // The poison: a second reading of 1.5e308 in the same minute as a first one. Each is a valid
  // finite double, but the stored per-minute rollup's sum (value_sum double precision) is
  // updated in SQL, and PostgreSQL refuses 1.5e308 + 1.5e308: "value out of range: overflow".
  const std::int64_t minute_ms = (std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch() - 2h)
                                      .count() /
                                  60000) *
                                 60000;
  ASSERT_EQ(publish_all(broker.port(), {flow(minute_ms + 1000, "1.5e308")}, 10s).acknowledged, 1u);
  ASSERT_TRUE(wait_until([&] { return flow_points(fh, minute_ms) == 1; }, 10s)) << fh.log();

  Plan plan = make_plan(1, 6000);
  const std::size_t poison_at = plan.messages.size() / 2;
  plan.messages.insert(plan.messages.begin() + static_cast<std::ptrdiff_t>(poison_at),
                       flow(minute_ms + 2000, "1.5e308"));
  const auto start = steady::now();
  std::atomic<double> rejected_after{-1};
  std::jthread watch([&] {
    if (wait_until([&] { return metric(fh.metrics(), "fieldhub_history_rejected_total") >= 1; },
                   60s, 10ms)) {
      rejected_after = seconds_since(start);
    }
  });
  const PublishResult published = publish_all(broker.port(), plan.messages, 60s);
  ASSERT_EQ(published.acknowledged, plan.messages.size());
  const bool stored = wait_all_stored(fh, plan, 60s);
  const double all_stored_after = seconds_since(start);
  watch.join();
  ASSERT_TRUE(stored) << fh.log();
  const auto m = fh.metrics();
  const double bisect_seconds =
      log_span(fh.log(), "history: write failed", "kept as a dead letter (history_rejected)");
  std::cout << "poison: the bisect took " << bisect_seconds
            << " s from the first refused write to the dead letter ("
            << metric(m, "fieldhub_history_write_errors_total")
            << " failed writes: 3 tries of the whole batch, then one refused half per halving); "
            << "dead-lettered " << rejected_after.load() << " s after publishing began, all "
            << plan.valid << " valid messages stored " << all_stored_after << " s after\n";
  EXPECT_GE(bisect_seconds, 0);
  EXPECT_LT(bisect_seconds, 5.0);  // 0.3 s of backoff before the probe, then no waiting
  EXPECT_EQ(metric(m, "fieldhub_history_rejected_total"), 1);
  // One record the store refuses is not an outage: history was never shown degraded.
  EXPECT_EQ(metric(m, "fieldhub_history_healthy"), 1);
  EXPECT_EQ(alarm_state(fh, "history_degraded"), "");
  EXPECT_GE(rejected_after.load(), 0);
  EXPECT_EQ(flow_points(fh, minute_ms), 1u);  // the first reading only
  expect_clean(plan, fh);

  const auto letters = fh.get("/api/v1/dead-letters?reason=history_rejected");
  ASSERT_TRUE(letters && letters->first == 200);
  simdjson::dom::parser parser;
  const simdjson::dom::array list = parser.parse(letters->second).get_array();
  ASSERT_EQ(list.size(), 1u) << letters->second;
  const simdjson::dom::element letter = list.at(0);
  const std::string detail{std::string_view(letter["detail"])};
  const std::string payload{std::string_view(letter["payload"])};
  EXPECT_NE(detail.find("out of range"), std::string::npos) << detail;
  EXPECT_NE(payload.find("reading dev-0 flow = 1.5"), std::string::npos) << payload;
}

// ---- a PostgreSQL that refuses everything ----

// decision 0015: PostgreSQL up but refusing every insert (here INSERT on readings revoked from
// fieldhub's role, SQLSTATE 42501) is an outage, not a stream of poison records: nothing is
// dead-lettered, the spool holds the backlog, history is shown degraded with the server's message,
// and once the DBA grants INSERT again the backlog is written with a clean oracle.
TEST(StoreRefusesEverything, RevokedInsertIsAnOutageNothingIsDeadLetteredAndGrantDrainsIt) {
  if (!PostgresServer::available()) GTEST_SKIP() << "PostgreSQL not installed";
  MosquittoServer broker;
  broker.start();
  PostgresServer postgres;
  postgres.start();
  // fieldhub's own role, as a site runs it: not a superuser (a superuser passes every privilege
  // check), owner of its database, so it creates its tables itself.
  postgres.execute(postgres.url(), "CREATE ROLE fieldhub_app LOGIN");
  postgres.execute(postgres.url(), "CREATE DATABASE refusals OWNER fieldhub_app");
  const std::string admin_url = postgres.url("refusals");
  std::string app_url = admin_url;
  app_url.replace(app_url.find("fieldhub@"), 9, "fieldhub_app@");
  FieldhubProcess fh(
      {.broker_port = broker.port(), .devices = oracle_devices, .history_url = app_url});
  fh.start();

  constexpr double rate = 1000;  // messages/s
  const Plan plan = make_plan(1, 9000);
  PublishResult published;
  std::jthread publisher(
      [&] { published = publish_all(broker.port(), plan.messages, 120s, 500, {}, rate); });
  const auto stored = [&] { return metric(fh.metrics(), "fieldhub_readings_stored_total"); };
  ASSERT_TRUE(wait_until([&] { return stored() >= 1000; }, 30s)) << fh.log();

  postgres.execute(admin_url, "REVOKE INSERT ON readings FROM fieldhub_app");
  const auto revoked_at = steady::now();
  ASSERT_TRUE(wait_until([&] { return health_component(fh, "history").starts_with("degraded"); },
                         10s, 20ms))
      << fh.log();
  const double degraded_after = seconds_since(revoked_at);
  const std::string shown = health_component(fh, "history");
  EXPECT_NE(shown.find("permission denied"), std::string::npos) << shown;
  EXPECT_TRUE(wait_until([&] { return alarm_state(fh, "history_degraded") == "active_unacked"; },
                         5s, 50ms));

  // Refused for 3 s more while messages keep coming: they are held in the spool (synced, so
  // acknowledged to the broker), not dead-lettered.
  const double backlog_at = metric(fh.metrics(), "fieldhub_spool_backlog_records");
  std::this_thread::sleep_for(3s);
  auto m = fh.metrics();
  const double backlog = metric(m, "fieldhub_spool_backlog_records");
  std::cout << "INSERT revoked: history degraded shown after " << degraded_after << " s (\""
            << shown << "\"); spool backlog " << backlog_at << " -> " << backlog
            << " records; failed writes " << metric(m, "fieldhub_history_write_errors_total")
            << ", dead-lettered " << metric(m, "fieldhub_history_rejected_total") << "\n";
  EXPECT_LE(degraded_after, 5.0);
  EXPECT_GT(backlog, backlog_at + 1000);
  EXPECT_EQ(metric(m, "fieldhub_history_rejected_total"), 0);
  EXPECT_EQ(metric(m, "fieldhub_history_healthy"), 0);

  postgres.execute(admin_url, "GRANT INSERT ON readings TO fieldhub_app");
  const auto granted_at = steady::now();
  ASSERT_TRUE(wait_until([&] { return health_component(fh, "history") == "ok"; }, 15s, 20ms))
      << fh.log();
  const double resumed_after = seconds_since(granted_at);
  publisher.join();
  ASSERT_EQ(published.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_all_stored(fh, plan, 60s)) << fh.log();
  std::cout << "INSERT granted again: writes resumed after " << resumed_after
            << " s (the retry backoff is at most 5 s)\n";
  EXPECT_LE(resumed_after, 7.0);
  m = fh.metrics();
  EXPECT_EQ(metric(m, "fieldhub_history_rejected_total"), 0);
  EXPECT_EQ(metric(m, "fieldhub_history_breaker_trips_total"), 0);
  expect_clean(plan, fh);
  const auto letters = fh.get("/api/v1/dead-letters?reason=history_rejected");
  ASSERT_TRUE(letters && letters->first == 200);
  EXPECT_EQ(letters->second, "[]");
}

// ---- torn tail ----

// The last whole record of the newest segment in `spool_dir`, with the oracle's seq it carries.
struct LastRecord {
  fs::path segment;
  std::size_t begin = 0;
  std::size_t end = 0;
  std::optional<std::int64_t> seq;
};

std::optional<LastRecord> last_record(const fs::path& spool_dir) {
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(spool_dir)) {
    if (e.path().extension() == ".seg") segments.push_back(e.path());
  }
  if (segments.empty()) return std::nullopt;
  const fs::path newest = *std::max_element(segments.begin(), segments.end());
  std::ifstream in(newest, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::optional<LastRecord> last;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const auto v = pipeline::spool_codec::parse_record(std::string_view(bytes).substr(pos));
    if (v.status != pipeline::spool_codec::Parse::ok) break;
    last = LastRecord{newest, pos, pos + v.size, std::nullopt};
    if (const auto env = pipeline::spool_codec::decode_payload(v.payload)) {
      for (const auto& r : env->readings) {
        if (const auto* d = std::get_if<double>(&r.value); d != nullptr && r.metric == "seq") {
          last->seq = static_cast<std::int64_t>(*d);
        }
      }
    }
    pos += v.size;
  }
  return last;
}

// The oracle's seq in a message payload, if it has one.
std::optional<std::int64_t> seq_in(const std::string& payload) {
  const auto at = payload.find("\"seq\":");
  if (at == std::string::npos) return std::nullopt;
  return std::strtoll(payload.c_str() + at + 6, nullptr, 10);
}

TEST(SpoolTornTail, APowerLossTornLastRecordIsTruncatedCountedAndNothingAcknowledgedIsLost) {
  MosquittoServer broker;
  broker.start();
  AckRecorder recorder(broker.port());
  FieldhubProcess fh({.broker_port = recorder.port(),
                      .devices = oracle_devices,
                      .extra_config = "[spool]\nenabled = true\n"});
  fh.start();
  const fs::path spool_dir = fh.dir() / "data" / "spool";
  const Plan plan = make_plan(1, 30000);
  PublishResult published;
  std::jthread publisher(
      [&] { published = publish_all(broker.port(), plan.messages, 120s, 500, {}, 4000); });
  const auto received = [&] { return metric(fh.metrics(), "fieldhub_messages_received_total"); };
  const auto seed = std::random_device{}();
  std::mt19937 rng(seed);

  // A SIGKILL leaves every written record whole in the page cache; a power loss may also lose
  // or tear what was written after the last fdatasync, never what was synced before it. Every
  // acknowledged message was synced before its PUBACK, so its record cannot be torn by a power
  // loss; a record whose message was not acknowledged may be, and fieldhub must survive that
  // with nothing acknowledged lost (the broker still has the message). So the last record is cut
  // only when its message was not acknowledged; otherwise fieldhub restarts as it is and is
  // killed again later.
  std::optional<LastRecord> cut;
  std::size_t cut_at = 0;
  double restart_seconds = 0;
  int kills = 0;
  while (!cut && kills < 6) {
    const double before = received();
    if (!wait_until([&] { return received() >= before + 500 + rng() % 1000; }, 30s)) break;
    fh.kill();
    ++kills;
    // Every PUBACK fieldhub sent before it died has been read by the recorder.
    ASSERT_TRUE(wait_until([&] { return recorder.open_connections() == 0; }, 5s));
    std::set<std::int64_t> acked;
    for (const auto& p : recorder.acknowledged()) {
      if (const auto s = seq_in(p)) acked.insert(*s);
    }
    if (auto last = last_record(spool_dir); last && last->seq && !acked.contains(*last->seq)) {
      cut_at = last->begin + 1 + rng() % (last->end - last->begin - 1);
      fs::resize_file(last->segment, cut_at);
      cut = last;
    }
    const auto t = steady::now();
    fh.start();
    restart_seconds = seconds_since(t);
  }
  ASSERT_TRUE(cut) << "in " << kills << " kills under load the last record was always "
                   << "acknowledged already (seed " << seed << ")";
  const double torn = metric(fh.metrics(), "fieldhub_spool_torn_tail_total");
  publisher.join();
  ASSERT_EQ(published.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_all_stored(fh, plan, 60s)) << fh.log();
  const auto m = fh.metrics();
  std::cout << "torn tail: kill " << kills << " (seed " << seed << "): cut "
            << cut->segment.filename().string() << " at " << cut_at << ", inside the record ["
            << cut->begin << ", " << cut->end << ") of seq " << *cut->seq
            << " (not acknowledged); restarted ready in " << restart_seconds << " s; torn tails "
            << torn << "; " << recorder.acknowledged().size() << " messages acknowledged "
            << "across the run\n";
  EXPECT_EQ(torn, 1);
  EXPECT_EQ(metric(m, "fieldhub_spool_corrupt_records_total"), 0);
  EXPECT_NE(fh.log().find("truncated a torn tail"), std::string::npos);
  EXPECT_LE(restart_seconds, 5.0);
  // The cut message was unacknowledged, so the broker delivered it again; everything
  // acknowledged was in the synced part and is stored: the oracle is clean.
  const Reconciliation r = reconcile(plan, fh);
  std::cout << "oracle: stored " << r.stored << ", missing " << r.missing << ", duplicates "
            << r.duplicated << ", unexpected " << r.unexpected << "\n";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
}

// ---- I/O errors ----

// The newest segment of `spool_dir` and the seq of its last whole record (0 if none).
struct NewestSegment {
  fs::path segment;
  std::uint64_t last_seq = 0;
};

std::optional<NewestSegment> newest_segment(const fs::path& spool_dir) {
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(spool_dir)) {
    if (e.path().extension() == ".seg") segments.push_back(e.path());
  }
  if (segments.empty()) return std::nullopt;
  NewestSegment newest{*std::max_element(segments.begin(), segments.end())};
  std::ifstream in(newest.segment, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const auto v = pipeline::spool_codec::parse_record(std::string_view(bytes).substr(pos));
    if (v.status != pipeline::spool_codec::Parse::ok) break;
    newest.last_seq = v.seq;
    pos += v.size;
  }
  return newest;
}

std::string segment_path(const fs::path& spool_dir, std::uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return (spool_dir / name).string();
}

// A disk that answers EIO, for the spool's files only: Debian's strace attached to every thread
// of the running fieldhub, failing `syscall` (write or fdatasync) with EIO when it is on the
// spool's active segment or on any segment its retry may open (a failed group is written again
// into a new segment named by the group's first seq, about the seq after the last one on disk;
// -P matches whole paths, so they are listed, 2000 back and 4000 ahead). Sockets, the alarm journal
// and SQLite are not touched. The fault ends when strace is stopped (it detaches).
class SpoolIoFault {
 public:
  SpoolIoFault(pid_t pid, const fs::path& spool_dir, const std::string& syscall,
               const fs::path& log)
      : log_(log) {
    const auto newest = newest_segment(spool_dir);
    if (!newest) throw std::runtime_error("no spool segment in " + spool_dir.string());
    std::vector<std::string> argv = {"strace", "-f",
                                     "-o",     "/dev/null",
                                     "-p",     std::to_string(pid),
                                     "-e",     "trace=" + syscall,
                                     "-e",     "inject=" + syscall + ":error=EIO",
                                     "-P",     newest->segment.string()};
    // From before the last record on disk too: a group being written while it was read may fail.
    const std::uint64_t from = newest->last_seq > 2000 ? newest->last_seq - 2000 : 1;
    for (std::uint64_t seq = from; seq <= newest->last_seq + 4000; ++seq) {
      argv.push_back("-P");
      argv.push_back(segment_path(spool_dir, seq));
    }
    strace_ = std::make_unique<ChildProcess>(argv, log);
  }
  ~SpoolIoFault() { stop(); }
  // strace says "Process N attached" for each thread once the injection is in place.
  bool attached() { return strace_->log().find("attached") != std::string::npos; }
  void stop() {
    if (!strace_) return;
    strace_->signal(SIGTERM);
    strace_->wait(10s);
    strace_.reset();
  }

 private:
  fs::path log_;
  std::unique_ptr<ChildProcess> strace_;
};

bool strace_available() {
  std::error_code ec;
  return fs::exists("/usr/bin/strace", ec);
}

// RELIABILITY.md: "A failed fsync is not retried as if it succeeded." An fdatasync that fails
// (and, in a second fault, a write that fails) on the spool's files: nothing is acknowledged
// (PUBACK, as the proxy in front of the broker records) while they fail, the spool is shown
// degraded, fieldhub does not crash, and once the disk answers again everything acknowledged is
// stored exactly once; after a restart the segments hold no damage (the failed bytes were cut
// off, never trusted).
TEST(SpoolIoError, AFailedSyncOrWriteIsNeverAcknowledgedAndTheSpoolRecoversWhenTheDiskDoes) {
  if (!strace_available()) GTEST_SKIP() << "strace not installed (scripts/install-deps.sh)";
  TempDir scratch;
  MosquittoServer broker;
  broker.start();
  AckRecorder recorder(broker.port());
  FieldhubProcess fh({.broker_port = recorder.port(),
                      .devices = oracle_devices,
                      .extra_config = "[spool]\nenabled = true\n"});
  fh.start();
  const fs::path spool_dir = fh.dir() / "data" / "spool";
  const Plan plan = make_plan(1, 12000);
  PublishResult published;
  std::jthread publisher(
      [&] { published = publish_all(broker.port(), plan.messages, 120s, 500, {}, 1000); });
  const auto received = [&] { return metric(fh.metrics(), "fieldhub_messages_received_total"); };

  for (const std::string call : {"fdatasync", "write"}) {
    ASSERT_TRUE(wait_until([&] { return received() >= 1500; }, 30s)) << fh.log();
    const double errors_before = metric(fh.metrics(), "fieldhub_spool_write_errors_total");
    SpoolIoFault fault(fh.pid(), spool_dir, call, scratch.path() / (call + ".log"));
    ASSERT_TRUE(wait_until([&] { return fault.attached(); }, 10s));
    const auto on_at = steady::now();
    ASSERT_TRUE(
        wait_until([&] { return health_component(fh, "spool").starts_with("degraded"); }, 5s, 20ms))
        << fh.log();
    const double shown_after = seconds_since(on_at);
    ASSERT_TRUE(wait_until([&] { return !alarm_state(fh, "spool_degraded").empty(); }, 5s, 20ms));
    // What was synced before the first failure has been acknowledged by now.
    std::this_thread::sleep_for(300ms);
    const std::size_t acked_then = recorder.acknowledged().size();
    const double synced_then = metric(fh.metrics(), "fieldhub_spool_synced_records_total");
    const double received_then = received();
    const double connects_then = metric(fh.metrics(), "fieldhub_mqtt_connects_total");
    std::this_thread::sleep_for(2s);
    const std::size_t acked_failing = recorder.acknowledged().size();
    auto m = fh.metrics();
    const double synced_failing = metric(m, "fieldhub_spool_synced_records_total");
    const double errors = metric(m, "fieldhub_spool_write_errors_total") - errors_before;
    fault.stop();
    const auto off_at = steady::now();
    ASSERT_TRUE(wait_until([&] { return health_component(fh, "spool") == "ok"; }, 5s, 20ms))
        << fh.log();
    const double recovered_after = seconds_since(off_at);
    std::cout << call << " fails with EIO: spool degraded shown after " << shown_after
              << " s; over 2 s failing " << errors << " failed groups, "
              << received() - received_then << " messages received, " << acked_failing - acked_then
              << " acknowledged, " << metric(m, "fieldhub_mqtt_connects_total") - connects_then
              << " broker reconnects; healthy " << recovered_after
              << " s after the disk answers again\n";
    // Not one PUBACK while every sync (or write) of the spool fails, and nothing counted synced.
    EXPECT_EQ(acked_failing, acked_then);
    EXPECT_EQ(synced_failing, synced_then);
    EXPECT_GT(received() - received_then, 100) << "no message came while it failed: proves nothing";
    EXPECT_GT(errors, 0);
    EXPECT_LE(shown_after, 5.0);
    EXPECT_LE(recovered_after, 5.0);
  }
  publisher.join();
  ASSERT_EQ(published.acknowledged, plan.messages.size());
  ASSERT_TRUE(wait_all_stored(fh, plan, 60s)) << fh.log();
  expect_clean(plan, fh);

  // Restarted on the same spool: what the failed groups had written was cut off, so nothing is
  // torn or damaged, and replaying gives no duplicate.
  fh.stop();
  fh.start();
  const auto m = fh.metrics();
  EXPECT_EQ(metric(m, "fieldhub_spool_torn_tail_total"), 0);
  EXPECT_EQ(metric(m, "fieldhub_spool_corrupt_records_total"), 0);
  const Reconciliation r = reconcile(plan, fh);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.unexpected, 0u);
}

}  // namespace
}  // namespace fieldhub::testing
