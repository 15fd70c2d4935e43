// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <utility>

namespace fieldhub::common {

// A value, or the error that explains why there is none. Each library wrapper (SQLite, libpq,
// hiredis) has its own Error type and an alias: `template <class T> using Result =
// common::Result<T, Status>;`. Failures are values, never exceptions.
template <class T, class Error>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  const Error& status() const { return error_; }

 private:
  std::optional<T> value_;
  Error error_;
};

}  // namespace fieldhub::common
