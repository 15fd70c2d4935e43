// SPDX-License-Identifier: Apache-2.0
#pragma once

// Shared support for integration tests: loopback ports, temp dirs, child processes started and
// stopped by pid, polling with deadlines, and a real Mosquitto broker per test.
// Everything binds or connects to 127.0.0.1 only. Not thread-safe; use from the test's thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fieldhub::testing {

// Binds 127.0.0.1:0, returns the port the kernel chose, closes. Another process may take the port
// before the caller binds it; MosquittoServer retries with a new one if that happens.
std::uint16_t free_tcp_port();

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process (fork + execvp) in its own process group, stdin from /dev/null, stdout and
// stderr appended to log_file. extra_env entries are "NAME=value" and override the inherited
// environment. The destructor SIGKILLs the group and reaps it if it is still running.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log_file,
               std::vector<std::string> extra_env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();        // reaps if exited
  void signal(int sig);  // to the child's pid; nothing once it has been reaped
  // Exit code (128 + signal number if killed by a signal), or -1 if still running at the deadline.
  int wait(std::chrono::milliseconds deadline);
  std::string log() const;  // contents of the log file

 private:
  bool reap(bool block);

  pid_t pid_ = -1;
  std::filesystem::path log_file_;
  bool exited_ = false;
  int status_ = -1;
};

// Polls `condition` every `poll` until it holds (true) or `deadline` has passed (false).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds{20});
// Polls until a TCP connect to 127.0.0.1:port succeeds.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds deadline);

// A real /usr/sbin/mosquitto on 127.0.0.1, its own temp dir for config, persistence and log.
// stop() is a clean shutdown (the broker saves persistence), kill() is SIGKILL; restart() keeps
// the port and data dir. The destructor kills a running broker.
class MosquittoServer {
 public:
  explicit MosquittoServer(std::uint16_t port = 0);  // 0: pick a free port
  ~MosquittoServer();
  MosquittoServer(const MosquittoServer&) = delete;
  MosquittoServer& operator=(const MosquittoServer&) = delete;

  void start();  // waits until the port accepts connections (10 s), throws on failure
  void stop();   // SIGTERM and wait
  void kill();   // SIGKILL and reap
  void restart();
  std::uint16_t port() const { return port_; }
  bool running();
  std::string log() const;
  const std::filesystem::path& data_dir() const { return dir_.path(); }

 private:
  void write_config() const;

  std::uint16_t port_;
  bool port_chosen_by_us_;
  bool started_once_ = false;
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
};

// Where fieldhub's binaries are: $FIELDHUB_BIN_DIR (set by fieldhub_test), else the directory of
// the running test executable (which CMake puts in the same bin/).
std::filesystem::path bin_dir();
// The source tree: $FIELDHUB_SOURCE_DIR, else the tree this library was configured from.
std::filesystem::path source_dir();

}  // namespace fieldhub::testing
