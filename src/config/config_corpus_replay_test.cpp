// SPDX-License-Identifier: Apache-2.0
// Replays the configuration loader's fuzz corpus (tests/fuzz/corpus/config/) through the fuzz entry
// point, so every build runs the inputs that once found a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(ConfigCorpus, ReplaysEveryInput) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FIELDHUB_CONFIG_CORPUS_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
        0);
    ++count;
  }
  EXPECT_GE(count, 10u);
}

}  // namespace
