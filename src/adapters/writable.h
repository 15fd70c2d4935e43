// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "model/value.h"

namespace fieldhub::adapters {

// Why a write failed; none when it succeeded. to_string() gives the stable names.
enum class WriteError : std::uint8_t {
  none,
  not_writable,     // no such device or metric, or the profile does not mark it writable
  invalid_value,    // the register cannot hold the value (type, range): nothing was sent
  timeout,          // no reply to the write or its read-back
  exception,        // the device refused (detail: the exception's name)
  mismatch,         // the read-back differs from what was written
  bad_reply,        // a malformed reply (detail: the reply status)
  connection_lost,  // the connection or serial bus is down
  stopped,          // the adapter stopped before the write ran
};

inline std::string_view to_string(WriteError error) {
  switch (error) {
    case WriteError::none:
      return "ok";
    case WriteError::not_writable:
      return "not_writable";
    case WriteError::invalid_value:
      return "invalid_value";
    case WriteError::timeout:
      return "timeout";
    case WriteError::exception:
      return "exception";
    case WriteError::mismatch:
      return "mismatch";
    case WriteError::bad_reply:
      return "bad_reply";
    case WriteError::connection_lost:
      return "connection_lost";
    case WriteError::stopped:
      return "stopped";
  }
  return "unknown";
}

struct WriteResult {
  WriteError error = WriteError::none;
  std::string detail;  // human-readable: "illegal_data_address", "read back 214, wrote 215"
  bool ok() const { return error == WriteError::none; }
};

using WriteCallback = std::function<void(const WriteResult&)>;

// The downlink seam: an adapter that can set a value on a device (a coil, a setpoint). The
// command API calls it. Contract: called on the io thread; `done` is called exactly once on the
// io thread, never inside write(); a write is executed at most once and its result is a value
// (never an exception). Implemented by the Modbus TCP and RTU adapters.
class Writable {
 public:
  virtual ~Writable() = default;
  virtual void write(std::string_view device_id, std::string_view metric, model::Value value,
                     WriteCallback done) = 0;
};

}  // namespace fieldhub::adapters
