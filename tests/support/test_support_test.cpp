// SPDX-License-Identifier: Apache-2.0
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

TEST(TempDir, IsRemovedWithItsContents) {
  std::filesystem::path kept;
  {
    TempDir dir;
    kept = dir.path();
    std::filesystem::create_directories(dir.path() / "a" / "b");
    std::ofstream(dir.path() / "a" / "b" / "f.txt") << "x";
    EXPECT_TRUE(std::filesystem::is_directory(kept));
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

TEST(FreeTcpPort, ReturnsAPortNobodyListensOn) {
  const std::uint16_t port = free_tcp_port();
  EXPECT_GT(port, 0);
  EXPECT_FALSE(wait_for_port(port, 0ms));
}

TEST(ChildProcess, ReportsExitCodeAndCapturesOutput) {
  TempDir dir;
  ChildProcess p({"/bin/sh", "-c", "echo out; echo err >&2; echo \"$FH_X\"; exit 3"},
                 dir.path() / "log", {"FH_X=extra-env"});
  EXPECT_EQ(p.wait(5s), 3);
  EXPECT_FALSE(p.running());
  EXPECT_NE(p.log().find("out\n"), std::string::npos);
  EXPECT_NE(p.log().find("err\n"), std::string::npos);
  EXPECT_NE(p.log().find("extra-env\n"), std::string::npos);
}

TEST(ChildProcess, WaitTimesOutThenSignalEndsIt) {
  TempDir dir;
  ChildProcess p({"sleep", "30"}, dir.path() / "log");
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.wait(50ms), -1);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(5s), 128 + SIGTERM);
}

TEST(ChildProcess, ExecFailureIsExit127) {
  TempDir dir;
  ChildProcess p({"/nonexistent/fieldhub-binary"}, dir.path() / "log");
  EXPECT_EQ(p.wait(5s), 127);
  EXPECT_NE(p.log().find("exec /nonexistent/fieldhub-binary failed"), std::string::npos);
}

TEST(ChildProcess, DestructorKillsARunningChild) {
  TempDir dir;
  pid_t pid = 0;
  {
    ChildProcess p({"sleep", "30"}, dir.path() / "log");
    pid = p.pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: the pid no longer exists
}

TEST(WaitUntil, TrueAsSoonAsConditionHolds) {
  int calls = 0;
  EXPECT_TRUE(wait_until([&] { return ++calls == 3; }, 5s, 1ms));
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(wait_until([] { return false; }, 30ms, 5ms));
}

TEST(MosquittoServer, StartsRestartsOnSamePortAndStops) {
  MosquittoServer broker;
  broker.start();
  EXPECT_TRUE(broker.running());
  EXPECT_TRUE(wait_for_port(broker.port(), 1s));
  const auto port = broker.port();
  broker.restart();
  EXPECT_EQ(broker.port(), port);
  EXPECT_TRUE(wait_for_port(port, 1s));
  broker.stop();
  EXPECT_FALSE(broker.running());
  // A clean stop saves persistence.
  EXPECT_TRUE(std::filesystem::exists(broker.data_dir() / "mosquitto.db"));
  EXPECT_NE(broker.log().find("Saving in-memory database"), std::string::npos);
  broker.start();
  broker.kill();
  EXPECT_FALSE(broker.running());
}

TEST(Environment, BinAndSourceDirs) {
  EXPECT_TRUE(std::filesystem::is_directory(bin_dir()));
  EXPECT_TRUE(std::filesystem::exists(source_dir() / "CMakeLists.txt"));
}

}  // namespace
}  // namespace fieldhub::testing
