// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <string_view>

#include "config/config.h"

namespace fieldhub::config {

// load_config / load_profile on text already in memory, as if it had been read from `file`:
// errors name `file`, relative paths resolve against its folder, and profiles named by devices
// are still read from profiles_dir. For the fuzz target and tools that check a config.
Config parse_config(std::string_view text, const std::filesystem::path& file);
Profile parse_profile(std::string_view text, const std::filesystem::path& file);

}  // namespace fieldhub::config
