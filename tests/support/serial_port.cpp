// SPDX-License-Identifier: Apache-2.0
#include "support/serial_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

namespace fieldhub::testing {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::runtime_error system_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Bytes hex_bytes(std::string_view hex) {
  Bytes out;
  int high = -1;
  for (const char c : hex) {
    if (c == ' ') continue;
    const int d = hex_digit(c);
    if (d < 0) throw std::invalid_argument("hex_bytes: bad digit in '" + std::string(hex) + "'");
    if (high < 0) {
      high = d;
    } else {
      out.push_back(static_cast<std::uint8_t>(high * 16 + d));
      high = -1;
    }
  }
  if (high >= 0) throw std::invalid_argument("hex_bytes: odd digit count");
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (const auto b : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[b >> 4];
    out += digits[b & 0xF];
  }
  return out;
}

PtyPair::PtyPair() : PtyPair(std::filesystem::path{}, std::filesystem::path{}) {}

PtyPair::PtyPair(std::filesystem::path a, std::filesystem::path b)
    : a_(a.empty() ? dir_.path() / "a" : std::move(a)),
      b_(b.empty() ? dir_.path() / "b" : std::move(b)) {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/socat", "-d", "-d", "pty,raw,echo=0,link=" + a_.string(),
                               "pty,raw,echo=0,link=" + b_.string()},
      dir_.path() / "socat.log");
  // socat logs "starting data transfer loop" once both ends are open; the links exist before.
  const bool up = wait_until(
      [&] {
        return std::filesystem::exists(a_) && std::filesystem::exists(b_) &&
               process_->log().find("starting data transfer loop") != std::string::npos;
      },
      milliseconds{5000});
  if (!up) throw std::runtime_error("socat did not create the pty pair: " + process_->log());
}

PtyPair::~PtyPair() {
  // Killed, socat would leave its links behind, pointing at /dev/pts numbers the kernel hands to
  // the next pty opened on the machine (another test's, under ctest -j): a bus reopening "the
  // device" would find someone else's line. Let it stop, then make sure the links are gone.
  process_->signal(SIGTERM);
  process_->wait(milliseconds{2000});
  std::error_code ec;
  std::filesystem::remove(a_, ec);
  std::filesystem::remove(b_, ec);
}

ByteStream ByteStream::open_serial(const std::filesystem::path& device) {
  const int fd = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw system_error("open " + device.string());
  termios tio{};
  if (::tcgetattr(fd, &tio) == 0) {
    ::cfmakeraw(&tio);
    ::tcsetattr(fd, TCSANOW, &tio);
  }
  return ByteStream(fd);
}

ByteStream ByteStream::connect_tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw system_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const auto error = system_error("connect 127.0.0.1:" + std::to_string(port));
    ::close(fd);
    throw error;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return ByteStream(fd);
}

ByteStream::~ByteStream() {
  if (fd_ >= 0) ::close(fd_);
}

ByteStream::ByteStream(ByteStream&& other) noexcept
    : fd_(other.fd_), peer_closed_(other.peer_closed_) {
  other.fd_ = -1;
}

void ByteStream::write(std::span<const std::uint8_t> bytes) {
  std::size_t done = 0;
  const auto deadline = Clock::now() + milliseconds{5000};
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) throw system_error("write");
    if (Clock::now() > deadline) throw std::runtime_error("write: timed out");
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
}

bool ByteStream::read_some(Bytes& out, milliseconds wait, std::size_t max) {
  if (peer_closed_ || max == 0) return false;
  pollfd p{fd_, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(wait.count()));
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return false;
  std::uint8_t buf[4096];
  const ssize_t n = ::read(fd_, buf, std::min(sizeof buf, max));
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    peer_closed_ = true;
    return false;
  }
  if (n < 0) return true;
  out.insert(out.end(), buf, buf + n);
  return true;
}

Bytes ByteStream::read_exact(std::size_t n, milliseconds deadline) {
  Bytes out;
  const auto end = Clock::now() + deadline;
  while (out.size() < n && !peer_closed_) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
    if (left.count() < 0) break;
    read_some(out, left, n - out.size());
  }
  return out;
}

Bytes ByteStream::read_until_quiet(milliseconds first_byte, milliseconds quiet) {
  Bytes out;
  const auto end = Clock::now() + first_byte;
  while (out.empty() && !peer_closed_) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
    if (left.count() < 0) return out;
    read_some(out, left, 65536);
  }
  while (read_some(out, quiet, 65536)) {
  }
  return out;
}

Bytes ByteStream::read_for(milliseconds window) {
  Bytes out;
  const auto end = Clock::now() + window;
  while (!peer_closed_) {
    const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
    if (left.count() < 0) break;
    if (!read_some(out, left, 65536) && window.count() == 0) break;
  }
  return out;
}

}  // namespace fieldhub::testing
