// SPDX-License-Identifier: Apache-2.0
// What an operator sees when fieldhub cannot start: a clear message naming file, line and key,
// and a non-zero exit — never a half-started service.
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_support.h"

namespace fieldhub::testing {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  int status;
  std::string log;
};

Outcome run_fieldhub(const std::string& config_text) {
  TempDir dir;
  const auto file = dir.path() / "bad.toml";
  std::ofstream(file) << config_text;
  ChildProcess fh({(bin_dir() / "fieldhub").string(), "--config", file.string()},
                  dir.path() / "fieldhub.log");
  const int status = fh.wait(10s);
  return {status, fh.log()};
}

TEST(Startup, BadConfigNamesFileLineAndKeyAndExitsNonZero) {
  const auto out = run_fieldhub("[mqtt]\nhost = \"127.0.0.1\"\nport = 70000\n");
  EXPECT_EQ(out.status, 2) << out.log;
  EXPECT_NE(out.log.find("bad.toml:3: key 'mqtt.port': must be 1..65535"), std::string::npos)
      << out.log;
}

TEST(Startup, UnknownKeyIsAnErrorNotSilentlyIgnored) {
  const auto out = run_fieldhub("[mqtt]\nhots = \"127.0.0.1\"\n");
  EXPECT_EQ(out.status, 2) << out.log;
  EXPECT_NE(out.log.find("bad.toml:2: key 'mqtt.hots'"), std::string::npos) << out.log;
}

TEST(Startup, MissingConfigFileIsNamed) {
  TempDir dir;
  const auto missing = dir.path() / "nope.toml";
  ChildProcess fh({(bin_dir() / "fieldhub").string(), "--config", missing.string()},
                  dir.path() / "fieldhub.log");
  EXPECT_EQ(fh.wait(10s), 2);
  EXPECT_NE(fh.log().find("nope.toml"), std::string::npos) << fh.log();
}

}  // namespace
}  // namespace fieldhub::testing
