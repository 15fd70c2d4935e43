// SPDX-License-Identifier: Apache-2.0
// Replays the live codec's fuzz corpus (src/stores/redis/fuzz_corpus/) through the fuzz entry
// point, so every build runs the inputs that once found a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(RedisLiveCodecCorpus, ReplaysEveryInput) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FIELDHUB_REDIS_CORPUS_DIR)) {
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
