// SPDX-License-Identifier: Apache-2.0
// Replays every file of the MQTT decoder's fuzz corpus through the fuzz target, so builds without
// clang/libFuzzer still run it (and under ASan+UBSan in the sanitizer build).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(MqttDecoderCorpus, EveryFileReplaysWithoutCrashing) {
  const std::filesystem::path dir = FIELDHUB_MQTT_CORPUS_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
        0);
    ++files;
  }
  EXPECT_GE(files, 10u);
}

}  // namespace
