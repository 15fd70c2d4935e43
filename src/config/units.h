// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace fieldhub::config {

// The normalized unit symbols a profile may use (SI and the trade units meters print). A profile
// naming anything else fails at start-up, so a typo such as "kwh" never reaches a dashboard.
// The empty string is "unitless".
bool is_known_unit(std::string_view unit);

// The known units, comma-separated, for error messages.
std::string_view known_units_list();

}  // namespace fieldhub::config
