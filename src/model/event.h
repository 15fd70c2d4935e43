// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/reading.h"
#include "model/time.h"

namespace fieldhub::model {

enum class Priority : std::uint8_t { high, medium, low, none };

std::string_view to_string(Priority p);
std::optional<Priority> parse_priority(std::string_view text);

// Something that happened at a device: a call, code blue, panic, door, lock state, tamper, fault.
struct Event {
  std::string device_id;
  std::string type;
  Priority priority = Priority::none;
  Timestamp source_ts;
  Timestamp received_ts;
  bool source_ts_trusted = true;
  std::string attributes_json = "{}";  // the event's other fields, as a JSON object
  Provenance provenance;

  Timestamp ts() const { return source_ts_trusted ? source_ts : received_ts; }
};

}  // namespace fieldhub::model
