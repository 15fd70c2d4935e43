// SPDX-License-Identifier: Apache-2.0
#include "support/redis_server.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace fieldhub::testing {

namespace {

constexpr const char* redis_binary = "/usr/bin/redis-server";

std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

RedisServer::RedisServer(std::uint16_t port)
    : port_(port == 0 ? free_tcp_port() : port), port_chosen_by_us_(port == 0) {}

RedisServer::~RedisServer() = default;  // ~ChildProcess kills a running server

bool RedisServer::available() {
  return ::access(redis_binary, X_OK) == 0;
}

void RedisServer::start() {
  if (running()) return;
  const int attempts = (port_chosen_by_us_ && !started_once_) ? 5 : 1;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const auto log_file = dir_.path() / "redis.log";
    const auto log_offset = read_all(log_file).size();
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{redis_binary, "--port", std::to_string(port_), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                 dir_.path().string(), "--protected-mode", "no", "--daemonize",
                                 "no", "--logfile", ""},
        log_file);
    // "Ready to accept connections" follows the listener; checking it and that our child is
    // alive avoids mistaking another process on a reused port for our server.
    const bool up = wait_until(
        [&] {
          return process_->running() &&
                 read_all(log_file).find("Ready to accept", log_offset) != std::string::npos &&
                 wait_for_port(port_, std::chrono::milliseconds{0});
        },
        std::chrono::seconds{10});
    if (up) {
      started_once_ = true;
      return;
    }
    process_.reset();
    if (attempt + 1 < attempts) port_ = free_tcp_port();
  }
  throw std::runtime_error("redis-server did not start on 127.0.0.1:" + std::to_string(port_) +
                           "\n" + log());
}

void RedisServer::stop() {
  if (!process_) return;
  process_->signal(SIGCONT);  // a paused server cannot handle SIGTERM
  process_->signal(SIGTERM);
  if (process_->wait(std::chrono::seconds{10}) < 0) process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void RedisServer::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds{5});
  process_.reset();
}

void RedisServer::pause() {
  if (process_) process_->signal(SIGSTOP);
}

void RedisServer::resume() {
  if (process_) process_->signal(SIGCONT);
}

void RedisServer::restart() {
  stop();
  start();
}

bool RedisServer::running() {
  return process_ && process_->running();
}

std::string RedisServer::url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

std::string RedisServer::log() const {
  return read_all(dir_.path() / "redis.log");
}

}  // namespace fieldhub::testing
