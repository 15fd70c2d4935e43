// SPDX-License-Identifier: Apache-2.0
#include "support/postgres_server.h"

#include <pwd.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "stores/postgres/pg_conn.h"

namespace fieldhub::testing {

namespace {

constexpr const char* superuser = "fieldhub";

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// initdb and postgres refuse to run as root; CI containers run as root. Debian's package creates
// a "postgres" user; "nobody" works as well where it does not exist.
const passwd* server_user() {
  if (::geteuid() != 0) return nullptr;
  if (const passwd* pw = ::getpwnam("postgres")) return pw;
  return ::getpwnam("nobody");
}

pg::Connection connect_or_throw(const std::string& url) {
  auto c = pg::Connection::open({url, "fieldhub-test", std::chrono::seconds{10}});
  if (!c.ok()) throw std::runtime_error("postgres test: " + c.status().message());
  return std::move(c.value());
}

}  // namespace

std::filesystem::path PostgresServer::bin_dir() {
  if (const char* dir = std::getenv("FIELDHUB_PG_BIN"); dir && *dir) return dir;
  return "/usr/lib/postgresql/15/bin";
}

bool PostgresServer::available() {
  std::error_code ec;
  return std::filesystem::exists(bin_dir() / "initdb", ec) &&
         std::filesystem::exists(bin_dir() / "postgres", ec) &&
         (::geteuid() != 0 ||
          (server_user() != nullptr && std::filesystem::exists("/usr/bin/setpriv", ec)));
}

std::vector<std::string> PostgresServer::as_server_user(bool die_with_test) const {
  // setpriv execs the command in place (runuser would fork and stay the parent), so signals sent
  // to the child's pid reach the postmaster itself. --pdeathsig: a test binary that crashes (and
  // so never runs our destructor) takes its server with it instead of leaving it running; the
  // backends follow their postmaster.
  std::error_code ec;
  if (!std::filesystem::exists("/usr/bin/setpriv", ec)) return {};
  std::vector<std::string> argv = {"/usr/bin/setpriv"};
  if (die_with_test) argv.emplace_back("--pdeathsig=KILL");
  if (const passwd* pw = server_user()) {
    argv.push_back("--reuid=" + std::to_string(pw->pw_uid));
    argv.push_back("--regid=" + std::to_string(pw->pw_gid));
    argv.emplace_back("--clear-groups");
  } else if (!die_with_test) {
    return {};
  }
  argv.emplace_back("--");
  return argv;
}

PostgresServer::Dir::Dir(PostgresStorage storage) {
  std::string base;
  struct statvfs fs {};
  // 1 GiB free: a cluster with a few dozen test databases stays well below that.
  if (storage == PostgresStorage::memory && ::statvfs("/dev/shm", &fs) == 0 &&
      static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize >= (std::uint64_t{1} << 30)) {
    base = "/dev/shm";
  } else {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  std::string pattern = base + "/fieldhub-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
  path_ = pattern;
}

PostgresServer::Dir::~Dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

PostgresServer::PostgresServer(PostgresStorage storage)
    : dir_(storage), data_dir_(dir_.path() / "data") {
  if (const passwd* pw = server_user()) {
    if (::chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + dir_.path().string() + " to " + pw->pw_name);
    }
  }
  std::vector<std::string> argv = as_server_user(/*die_with_test=*/false);
  // --no-sync: the cluster is thrown away with the test; the server itself runs with fsync on.
  for (std::string a :
       {(bin_dir() / "initdb").string(), std::string("-D"), data_dir_.string(), std::string("-U"),
        std::string(superuser), std::string("--auth=trust"), std::string("--encoding=UTF8"),
        std::string("--locale=C.UTF-8"), std::string("--no-sync")}) {
    argv.push_back(std::move(a));
  }
  ChildProcess initdb(argv, dir_.path() / "initdb.log");
  const int code = initdb.wait(std::chrono::seconds{60});
  if (code != 0) {
    throw std::runtime_error("initdb failed (" + std::to_string(code) + "):\n" + initdb.log());
  }
}

PostgresServer::~PostgresServer() {
  if (process_) {
    kill_group(SIGCONT);  // a frozen server cannot shut down
    kill();
  }
}

void PostgresServer::kill_group(int sig) {
  // Every backend makes itself a process group leader (InitPostmasterChild calls setsid), so a
  // signal to the postmaster's group misses them: signal each child of the postmaster, found by
  // its parent pid in /proc/<pid>/stat. A stopped postmaster is stopped first, so it forks no
  // child after the scan.
  if (!process_ || !process_->running()) return;
  const pid_t postmaster = process_->pid();
  if (sig == SIGSTOP) ::kill(postmaster, sig);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_all(entry.path() / "stat");
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == postmaster) ::kill(static_cast<pid_t>(std::stol(name)), sig);
  }
  if (sig != SIGSTOP) ::kill(postmaster, sig);
}

void PostgresServer::start() {
  if (running()) return;
  const int attempts = started_once_ ? 1 : 5;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (!started_once_) port_ = free_tcp_port();
    const auto log_offset = log().size();
    std::vector<std::string> argv = as_server_user(/*die_with_test=*/true);
    for (std::string a :
         {(bin_dir() / "postgres").string(), std::string("-D"), data_dir_.string(),
          std::string("-k"), dir_.path().string(), std::string("-h"), std::string("127.0.0.1"),
          std::string("-p"), std::to_string(port_), std::string("-c"), std::string("fsync=on"),
          std::string("-c"), std::string("synchronous_commit=on"), std::string("-c"),
          std::string("max_connections=40")}) {
      argv.push_back(std::move(a));
    }
    // After a kill the old backends may take a moment to disappear, and the new postmaster
    // refuses to start while they hold the shared memory: try again for a few seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
    while (std::chrono::steady_clock::now() < deadline) {
      process_ = std::make_unique<ChildProcess>(argv, dir_.path() / "postgres.log");
      const bool up = wait_until(
          [&] {
            if (!process_->running()) return true;
            auto c = pg::Connection::open({url(), "fieldhub-test", std::chrono::seconds{2}});
            return c.ok();
          },
          std::chrono::seconds{15}, std::chrono::milliseconds{30});
      if (up && process_->running()) {
        started_once_ = true;
        return;
      }
      process_.reset();
      if (log().find("could not bind", log_offset) != std::string::npos) break;  // port taken
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
  }
  throw std::runtime_error("postgres did not start on 127.0.0.1:" + std::to_string(port_) + "\n" +
                           log());
}

void PostgresServer::stop() {
  if (!process_) return;
  kill_group(SIGCONT);
  process_->signal(SIGINT);
  if (process_->wait(std::chrono::seconds{15}) < 0) kill_group(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void PostgresServer::kill() {
  if (!process_) return;
  kill_group(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void PostgresServer::freeze() {
  kill_group(SIGSTOP);
}
void PostgresServer::thaw() {
  kill_group(SIGCONT);
}

void PostgresServer::restart() {
  stop();
  start();
}

bool PostgresServer::running() {
  return process_ && process_->running();
}

std::string PostgresServer::url(const std::string& database) const {
  return "postgresql://" + std::string(superuser) + "@127.0.0.1:" + std::to_string(port_) + "/" +
         database;
}

std::string PostgresServer::create_database() {
  const std::string name = "fieldhub_test_" + std::to_string(++database_counter_);
  // Separate statements: a multi-statement string is one transaction, which CREATE DATABASE
  // refuses.
  execute(url(), "DROP DATABASE IF EXISTS " + name);
  execute(url(), "CREATE DATABASE " + name);
  return url(name);
}

void PostgresServer::execute(const std::string& database_url, const std::string& sql) {
  pg::Connection c = connect_or_throw(database_url);
  if (const pg::Status s = c.execute(sql); !s.ok()) {
    throw std::runtime_error("postgres test: " + sql + ": " + s.message());
  }
}

int PostgresServer::terminate_backends(const std::string& application_name) {
  pg::Connection c = connect_or_throw(url());
  auto rows = c.query(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
      pg::Params().text(application_name));
  if (!rows.ok()) throw std::runtime_error("terminate_backends: " + rows.status().message());
  return static_cast<int>(rows.value().int8(0, 0));
}

std::int64_t PostgresServer::query_int(const std::string& database_url, const std::string& sql) {
  pg::Connection c = connect_or_throw(database_url);
  auto rows = c.query(sql);
  if (!rows.ok())
    throw std::runtime_error("postgres test: " + sql + ": " + rows.status().message());
  if (rows.value().size() == 0 || rows.value().is_null(0, 0)) return -1;
  return rows.value().int8(0, 0);
}

std::string PostgresServer::log() const {
  return read_all(dir_.path() / "postgres.log");
}

PostgresServer* shared_postgres_server() {
  static std::unique_ptr<PostgresServer> server;
  static bool tried = false;
  if (tried) return server.get();
  tried = true;
  if (!PostgresServer::available()) {
    std::cerr << "PostgreSQL not found in " << PostgresServer::bin_dir() << "\n";
    return nullptr;
  }
  try {
    auto s = std::make_unique<PostgresServer>();
    s->start();
    server = std::move(s);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
  }
  return server.get();
}

}  // namespace fieldhub::testing
