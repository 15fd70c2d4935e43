// SPDX-License-Identifier: Apache-2.0
#pragma once

// Raw byte streams for integration tests that check what goes over the wire: a pseudo-terminal
// pair from socat (a null-modem cable between two paths) and a blocking-with-deadline byte
// stream over a serial device or a TCP connection to 127.0.0.1. Not thread-safe.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_support.h"

namespace fieldhub::testing {

using Bytes = std::vector<std::uint8_t>;

// "01 04 00 00" (spaces optional) -> bytes; throws std::invalid_argument on bad hex.
Bytes hex_bytes(std::string_view hex);
// Bytes -> "01 04 00 00", for assertion messages.
std::string to_hex(std::span<const std::uint8_t> bytes);

// /usr/bin/socat linking two raw ptys (echo off) at <temp dir>/a and <temp dir>/b: what is
// written to one is read from the other. The constructor waits (5 s) until both links exist and
// throws if socat does not come up; the destructor stops socat and removes both links.
class PtyPair {
 public:
  PtyPair();
  // The links at these paths instead (their folder must exist): a new pair can replace a killed
  // one at the same paths, as a USB adapter plugged back in.
  PtyPair(std::filesystem::path a, std::filesystem::path b);
  ~PtyPair();
  PtyPair(const PtyPair&) = delete;
  PtyPair& operator=(const PtyPair&) = delete;

  const std::filesystem::path& a() const { return a_; }
  const std::filesystem::path& b() const { return b_; }
  bool running() { return process_->running(); }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::filesystem::path a_;
  std::filesystem::path b_;
  std::unique_ptr<ChildProcess> process_;
};

// An open file descriptor of a serial device (raw mode) or a TCP socket, with reads that wait
// at most until a deadline. Closed on destruction.
class ByteStream {
 public:
  static ByteStream open_serial(const std::filesystem::path& device);  // throws on failure
  static ByteStream connect_tcp(std::uint16_t port);  // 127.0.0.1; throws on failure
  ~ByteStream();
  ByteStream(ByteStream&& other) noexcept;
  ByteStream& operator=(ByteStream&&) = delete;
  ByteStream(const ByteStream&) = delete;

  void write(std::span<const std::uint8_t> bytes);  // all of it; throws on failure
  // Up to n bytes: returns early with fewer if the deadline passes or the peer closes.
  Bytes read_exact(std::size_t n, std::chrono::milliseconds deadline);
  // Waits up to first_byte for data, then reads until `quiet` passes without any (an RTU frame
  // ends with silence). Empty if nothing arrived.
  Bytes read_until_quiet(std::chrono::milliseconds first_byte,
                         std::chrono::milliseconds quiet = std::chrono::milliseconds{50});
  // Everything that arrives during `window`.
  Bytes read_for(std::chrono::milliseconds window);
  void drain() { read_for(std::chrono::milliseconds{0}); }
  bool peer_closed() const { return peer_closed_; }

 private:
  explicit ByteStream(int fd) : fd_(fd) {}
  // Reads what is available within `wait`; false when nothing came (timeout or closed).
  bool read_some(Bytes& out, std::chrono::milliseconds wait, std::size_t max);

  int fd_ = -1;
  bool peer_closed_ = false;
};

}  // namespace fieldhub::testing
