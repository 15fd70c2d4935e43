// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the configuration loader. The first byte chooses a config file ('c') or a
// profile (anything else); the rest is the TOML text. The config's folder is
// src/normalize/testcases/ so profiles_dir = "../../../profiles" finds the shipped profiles.
// Every refusal must be a ConfigError; anything else escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "config/config_text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::filesystem::path dir(FIELDHUB_TESTCASES_DIR);
  try {
    if (data[0] == 'c') {
      (void)fieldhub::config::parse_config(text, dir / "fuzz.toml");
    } else {
      (void)fieldhub::config::parse_profile(text, dir / "fuzz-profile.toml");
    }
  } catch (const fieldhub::config::ConfigError&) {
  }
  return 0;
}
