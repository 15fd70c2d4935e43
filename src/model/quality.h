// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace fieldhub::model {

enum class Quality : std::uint8_t { good, uncertain, bad };

std::string_view to_string(Quality q);
std::optional<Quality> parse_quality(std::string_view text);

}  // namespace fieldhub::model
