// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace fieldhub::common {

// Writes all of `data` to `fd`, retrying short writes and EINTR. False on any other error (errno
// says which); the caller decides what a failed write means for what was already written.
bool write_all(int fd, std::string_view data);

}  // namespace fieldhub::common
