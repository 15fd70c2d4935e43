// SPDX-License-Identifier: Apache-2.0
// Replays one libFuzzer corpus (FIELDHUB_CORPUS_DIR) through its fuzz target's entry point, so
// every build — not only clang fuzz builds — runs the inputs that once found a crash, under
// ASan+UBSan in the sanitizer build. Built once per target by fieldhub_corpus_replay().
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(FIELDHUB_CORPUS_NAME, ReplaysEveryInput) {
  const std::filesystem::path dir = FIELDHUB_CORPUS_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
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
  EXPECT_GE(count, 10u) << "a corpus this small tests little";
}

}  // namespace
