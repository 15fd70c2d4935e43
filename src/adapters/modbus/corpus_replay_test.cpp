// SPDX-License-Identifier: Apache-2.0
// Replays the Modbus response parsers' fuzz corpora (tests/fuzz/corpus/modbus_*) through the fuzz
// entry points, so every build runs the inputs that once found a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int modbus_tcp_response_fuzz_one(const std::uint8_t* data, std::size_t size);
extern "C" int modbus_rtu_response_fuzz_one(const std::uint8_t* data, std::size_t size);

namespace {

std::size_t replay(const std::string& folder, int (*entry)(const std::uint8_t*, std::size_t)) {
  std::size_t count = 0;
  for (const auto& file : std::filesystem::directory_iterator(
           std::filesystem::path(FIELDHUB_MODBUS_CORPUS_DIR) / folder)) {
    if (!file.is_regular_file()) continue;
    std::ifstream in(file.path(), std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    SCOPED_TRACE(file.path().filename().string());
    EXPECT_EQ(entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0);
    ++count;
  }
  return count;
}

TEST(ModbusCorpus, ReplaysTcpResponses) {
  EXPECT_GE(replay("modbus_tcp_response", modbus_tcp_response_fuzz_one), 8u);
}

TEST(ModbusCorpus, ReplaysRtuResponses) {
  EXPECT_GE(replay("modbus_rtu_response", modbus_rtu_response_fuzz_one), 8u);
}

}  // namespace
