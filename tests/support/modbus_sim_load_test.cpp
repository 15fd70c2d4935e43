// SPDX-License-Identifier: Apache-2.0
// The simulator's own cost at the benchmark's scale: 10,000 SDM630-like devices (50 listeners of
// 200 unit ids), each read once a second (FC04, 20 registers) by 50 clients polling one request
// at a time. Prints the simulator's CPU time per wall second. FIELDHUB_MODBUS_LOAD_SECONDS
// lengthens the run (default 3).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/modbus_servers.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15, in clock ticks).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // the name may hold spaces
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST(ModbusSimLoad, TenThousandDevicesAtOnePollPerSecond) {
  constexpr unsigned devices = 10000;
  constexpr unsigned per_listener = 200;
  const char* env = std::getenv("FIELDHUB_MODBUS_LOAD_SECONDS");
  const int seconds = env != nullptr ? std::max(1, std::atoi(env)) : 3;

  ModbusSimServer sim({.config_toml = "[[unit]]\nid = 1\n", .tcp = false, .fleet = devices});
  const auto ports = sim.tcp_ports();
  ASSERT_EQ(ports.size(), devices / per_listener);

  std::atomic<std::uint64_t> good{0}, bad{0}, late_cycles{0};
  const auto start = Clock::now() + 200ms;
  const double cpu_before = cpu_seconds(sim.process().pid());
  std::vector<std::thread> clients;
  for (const auto port : ports) {
    clients.emplace_back([&, port] {
      auto conn = ByteStream::connect_tcp(port);
      std::uint16_t transaction = 0;
      for (int s = 0; s < seconds; ++s) {
        std::this_thread::sleep_until(start + std::chrono::seconds{s});
        for (unsigned unit = 1; unit <= per_listener; ++unit) {
          ++transaction;
          const Bytes request{static_cast<std::uint8_t>(transaction >> 8),
                              static_cast<std::uint8_t>(transaction & 0xFF),
                              0,
                              0,
                              0,
                              6,
                              static_cast<std::uint8_t>(unit),
                              0x04,
                              0,
                              0,
                              0,
                              20};
          conn.write(request);
          const Bytes reply = conn.read_exact(9 + 40, 2000ms);
          const bool ok = reply.size() == 49 && reply[0] == request[0] && reply[1] == request[1] &&
                          reply[5] == 43 && reply[6] == unit && reply[7] == 0x04 && reply[8] == 40;
          ++(ok ? good : bad);
        }
        if (Clock::now() > start + std::chrono::seconds{s + 1}) ++late_cycles;
      }
    });
  }
  for (auto& c : clients) c.join();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds(sim.process().pid()) - cpu_before;

  // The clients poll in bursts at each second; the cost per request scaled to 10,000 requests
  // a second is the figure that matters.
  const double replies = static_cast<double>(good.load());
  const double per_request_us = replies > 0 ? 1e6 * cpu / replies : 0;
  const double core_share = per_request_us * 1e-6 * devices;
  std::printf(
      "modbus sim load: %u devices x 20 registers (FC04), %d polls each over %.1f s: "
      "%llu replies, %llu bad, %llu late cycles; simulator CPU %.2f s = %.1f us per "
      "request = %.1f %% of one core at %u requests/s\n",
      devices, seconds, wall, static_cast<unsigned long long>(good.load()),
      static_cast<unsigned long long>(bad.load()),
      static_cast<unsigned long long>(late_cycles.load()), cpu, per_request_us, 100.0 * core_share,
      devices);
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(good.load(), std::uint64_t{devices} * static_cast<std::uint64_t>(seconds));
  // "Well under one core" with margin for a shared CI machine and a Debug build.
  EXPECT_LT(core_share, 0.9);
}

}  // namespace
}  // namespace fieldhub::testing
