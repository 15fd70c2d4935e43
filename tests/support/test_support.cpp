// SPDX-License-Identifier: Apache-2.0
#include "support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace fieldhub::testing {

namespace {

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool port_accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sockaddr_in addr = loopback(port);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw system_error("socket");
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const auto error = system_error("bind 127.0.0.1:0");
    ::close(fd);
    throw error;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/fieldhub-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw system_error("mkdtemp " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path log_file,
                           std::vector<std::string> extra_env)
    : log_file_(std::move(log_file)) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& x : extra_env) {
      if (x.substr(0, x.find('=')) == name) overridden = true;
    }
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (auto& x : extra_env) env_strings.push_back(x);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw system_error("open " + log_file_.string());
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::string exec_failed = "ChildProcess: exec " + argv[0] + " failed\n";

  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    throw system_error("fork");
  }
  if (pid_ == 0) {
    ::setpgid(0, 0);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execvpe(args[0], args.data(), env.data());
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // also here, so the group exists before we might signal it
  ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_ && !reap(false)) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool ChildProcess::reap(bool block) {
  if (exited_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exited_ = true;
    if (WIFEXITED(status)) status_ = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) status_ = 128 + WTERMSIG(status);
    return true;
  }
  if (r < 0) {  // not our child any more (already reaped elsewhere)
    exited_ = true;
    return true;
  }
  return false;
}

bool ChildProcess::running() {
  return !reap(false);
}

void ChildProcess::signal(int sig) {
  if (!exited_ && !reap(false)) ::kill(pid_, sig);
}

int ChildProcess::wait(std::chrono::milliseconds deadline) {
  if (!wait_until([this] { return reap(false); }, deadline, std::chrono::milliseconds{5})) {
    return -1;
  }
  return status_;
}

std::string ChildProcess::log() const {
  return read_file(log_file_);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(poll);
  }
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds deadline) {
  return wait_until([port] { return port_accepts(port); }, deadline);
}

MosquittoServer::MosquittoServer(std::uint16_t port)
    : port_(port == 0 ? free_tcp_port() : port), port_chosen_by_us_(port == 0) {}

MosquittoServer::~MosquittoServer() = default;  // ~ChildProcess kills a running broker

void MosquittoServer::write_config() const {
  // Mosquitto drops root privileges to the "mosquitto" user by default, which then cannot write
  // persistence into our temp dir: run it as whoever we are.
  const passwd* pw = ::getpwuid(::geteuid());
  std::ofstream conf(dir_.path() / "mosquitto.conf", std::ios::trunc);
  conf << "# Generated by fieldhub_test_support.\n"
          "# A broker is not a buffer: by default Mosquitto queues only 1000 QoS 1/2 messages per\n"
          "# offline client and then drops the rest silently, and persistence is off. fieldhub's\n"
          "# tests (and deployments) rely on the settings below; see docs/decisions/0001.\n"
       << "listener " << port_ << " 127.0.0.1\n"
       << "allow_anonymous true\n"
       << "persistence true\n"
       << "persistence_location " << dir_.path().string() << "/\n"
       << "max_inflight_messages 1000\n"
       << "max_queued_messages 1000000\n"
       << "set_tcp_nodelay true\n"
       << "log_dest stderr\n"  // the ChildProcess log file
       << "connection_messages true\n";
  if (pw != nullptr) conf << "user " << pw->pw_name << "\n";
}

void MosquittoServer::start() {
  if (running()) return;
  const int attempts = (port_chosen_by_us_ && !started_once_) ? 5 : 1;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    write_config();
    const auto log_offset = log().size();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/mosquitto", "-c",
                                 (dir_.path() / "mosquitto.conf").string()},
        dir_.path() / "mosquitto.log");
    // "running" is logged once the listener is open; checking it (and that our child is still
    // alive) avoids mistaking another process on a reused port for our broker.
    const bool up = wait_until(
        [&] {
          return process_->running() && log().find(" running", log_offset) != std::string::npos &&
                 port_accepts(port_);
        },
        std::chrono::seconds{10});
    if (up) {
      started_once_ = true;
      return;
    }
    process_.reset();
    if (attempt + 1 < attempts) port_ = free_tcp_port();
  }
  throw std::runtime_error("mosquitto did not start on 127.0.0.1:" + std::to_string(port_) + "\n" +
                           log());
}

void MosquittoServer::stop() {
  if (!process_) return;
  process_->signal(SIGTERM);
  if (process_->wait(std::chrono::seconds{10}) < 0) process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void MosquittoServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void MosquittoServer::restart() {
  stop();
  start();
}

bool MosquittoServer::running() {
  return process_ && process_->running();
}

std::string MosquittoServer::log() const {
  return read_file(dir_.path() / "mosquitto.log");
}

std::filesystem::path bin_dir() {
  if (const char* dir = std::getenv("FIELDHUB_BIN_DIR"); dir && *dir) return dir;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}

std::filesystem::path source_dir() {
  if (const char* dir = std::getenv("FIELDHUB_SOURCE_DIR"); dir && *dir) return dir;
  return FIELDHUB_TEST_SOURCE_DIR;
}

}  // namespace fieldhub::testing
