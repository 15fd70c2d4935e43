// SPDX-License-Identifier: Apache-2.0
#include "ack_recorder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <stdexcept>

#include "adapters/mqtt/mqtt_codec.h"

namespace fieldhub::testing {

struct AckRecorder::Connection {
  int client = -1;
  int broker = -1;
  std::mutex mutex;
  std::map<std::uint16_t, std::string> inflight;  // QoS 1 PUBLISH packet id → payload
  std::atomic<int> pumps{2};
};

namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

bool send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

AckRecorder::AckRecorder(std::uint16_t broker_port) : broker_port_(broker_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("AckRecorder: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

AckRecorder::~AckRecorder() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  acceptor_.join();
  ::close(listen_fd_);
  {
    const std::lock_guard lock(mutex_);
    for (const auto& c : connections_) {
      ::shutdown(c->client, SHUT_RDWR);
      ::shutdown(c->broker, SHUT_RDWR);
    }
  }
  for (auto& t : threads_) t.join();
  for (const auto& c : connections_) {
    ::close(c->client);
    ::close(c->broker);
  }
}

std::vector<std::string> AckRecorder::acknowledged() const {
  const std::lock_guard lock(mutex_);
  return acked_;
}

void AckRecorder::accept_loop() {
  while (!stopping_) {
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    const int broker = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in a = loopback(broker_port_);
    if (broker < 0 || ::connect(broker, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      if (broker >= 0) ::close(broker);
      ::close(client);
      continue;  // the broker is down: the client retries
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(broker, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Connection>();
    c->client = client;
    c->broker = broker;
    Connection& conn = *c;
    ++open_;
    const std::lock_guard lock(mutex_);
    connections_.push_back(std::move(c));
    threads_.emplace_back([this, &conn] { pump_down(conn); });
    threads_.emplace_back([this, &conn] { pump_up(conn); });
  }
}

void AckRecorder::pump_down(Connection& c) {
  mqtt::PacketDecoder decoder(std::size_t{64} << 20);
  std::vector<char> buffer(64 * 1024);
  while (true) {
    const ssize_t n = ::recv(c.broker, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    for (auto r = decoder.next(); r.packet; r = decoder.next()) {
      if (const auto* p = std::get_if<mqtt::Publish>(&*r.packet); p != nullptr && p->qos == 1) {
        const std::lock_guard lock(c.mutex);
        c.inflight[p->packet_id] = std::string(p->payload);
      }
    }
    if (!send_all(c.client, buffer.data(), static_cast<std::size_t>(n))) break;
  }
  ::shutdown(c.client, SHUT_RDWR);
  ::shutdown(c.broker, SHUT_RDWR);
  if (--c.pumps == 0) --open_;
}

void AckRecorder::pump_up(Connection& c) {
  std::string pending;  // bytes of an incomplete packet
  std::vector<char> buffer(64 * 1024);
  while (true) {
    const ssize_t n = ::recv(c.client, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer.data(), static_cast<std::size_t>(n));
    // Fixed header: type in the high nibble, then the remaining length (1..4 bytes, 7 bits each).
    while (pending.size() >= 2) {
      std::size_t length = 0;
      std::size_t at = 1;
      int shift = 0;
      bool complete = false;
      while (at < pending.size() && at <= 4) {
        const auto byte = static_cast<unsigned char>(pending[at++]);
        length |= static_cast<std::size_t>(byte & 0x7F) << shift;
        shift += 7;
        if ((byte & 0x80) == 0) {
          complete = true;
          break;
        }
      }
      if (!complete || pending.size() < at + length) break;
      const auto type = static_cast<unsigned char>(pending[0]) >> 4;
      if (type == 4 && length >= 2) {  // PUBACK
        const auto id = static_cast<std::uint16_t>(static_cast<unsigned char>(pending[at]) << 8 |
                                                   static_cast<unsigned char>(pending[at + 1]));
        const std::lock_guard lock(c.mutex);
        if (auto it = c.inflight.find(id); it != c.inflight.end()) {
          const std::lock_guard all(mutex_);
          acked_.push_back(std::move(it->second));
          c.inflight.erase(it);
        }
      }
      pending.erase(0, at + length);
    }
    if (!send_all(c.broker, buffer.data(), static_cast<std::size_t>(n))) break;
  }
  ::shutdown(c.client, SHUT_RDWR);
  ::shutdown(c.broker, SHUT_RDWR);
  if (--c.pumps == 0) --open_;
}

}  // namespace fieldhub::testing
