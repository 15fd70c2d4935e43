// SPDX-License-Identifier: Apache-2.0
#pragma once

// A real PostgreSQL 15 for integration tests: initdb into a temp dir, one postgres process on
// 127.0.0.1 and a random port, started and stopped by pid. As root (CI containers), initdb and
// postgres refuse to run, so both run as the "postgres" user through setpriv (which execs, so
// the child's pid is the postmaster's) with the temp dir handed to that user.
// Not thread-safe; use from the test's thread (execute() and terminate_backends() open their own
// connection, so they may run while a store on another thread is blocked).

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace fieldhub::testing {

// Where the cluster lives. memory: /dev/shm when it has room (fsync costs nothing there, so a
// restart after kill() takes a fraction of a second instead of seconds of syncing), else $TMPDIR;
// disk: $TMPDIR always (benchmarks).
enum class PostgresStorage { memory, disk };

class PostgresServer {
 public:
  // Where initdb and postgres are: $FIELDHUB_PG_BIN, else /usr/lib/postgresql/15/bin.
  static std::filesystem::path bin_dir();
  // True if the binaries are there (tests skip otherwise).
  static bool available();

  // initdb only; throws std::runtime_error if it fails.
  explicit PostgresServer(PostgresStorage storage = PostgresStorage::memory);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Starts the server (fsync and synchronous_commit on) and waits until it accepts connections
  // (15 s); throws on failure. After kill() it runs crash recovery first. Call it from a thread
  // that outlives the server (the test's main thread): the server is killed when that thread
  // exits, so that a crashed test leaves no server behind.
  void start();
  void stop();     // fast shutdown (SIGINT: clients are disconnected, not waited for) and wait
  void kill();     // SIGKILL to the postmaster and every backend, reaped
  void freeze();   // SIGSTOP to the postmaster and every backend: a hung server
  void thaw();     // SIGCONT
  void restart();  // stop() then start(), same port and data
  bool running();

  std::uint16_t port() const { return port_; }
  // postgresql://fieldhub@127.0.0.1:<port>/<database>
  std::string url(const std::string& database = "postgres") const;
  // CREATE DATABASE with a fresh name; returns its url.
  std::string create_database();
  // Runs SQL (one or more statements) on the database at url; throws on failure.
  void execute(const std::string& database_url, const std::string& sql);
  // Calls pg_terminate_backend for every session with this application_name; how many.
  int terminate_backends(const std::string& application_name);
  // The first row's first column, which must be a bigint (count(*) is), or -1 if no row.
  std::int64_t query_int(const std::string& database_url, const std::string& sql);
  std::string log() const;

 private:
  // The argv prefix that runs a command as the server's user (as root), and with die_with_test,
  // SIGKILLed when the test process dies.
  std::vector<std::string> as_server_user(bool die_with_test) const;
  void kill_group(int sig);

  // Owned temp dir (not TempDir: it may be under /dev/shm), removed by the destructor.
  struct Dir {
    explicit Dir(PostgresStorage storage);
    ~Dir();
    Dir(const Dir&) = delete;
    Dir& operator=(const Dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path path_;
  };
  Dir dir_;
  std::filesystem::path data_dir_;
  std::uint16_t port_ = 0;
  bool started_once_ = false;
  int database_counter_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// One server for the whole test binary, started on first use and killed at exit; each test makes
// its own database. Null (after printing why) if PostgreSQL is not installed or did not start.
PostgresServer* shared_postgres_server();

}  // namespace fieldhub::testing
