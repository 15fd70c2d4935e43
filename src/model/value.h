// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <variant>

namespace fieldhub::model {

// A reading's value. monostate means "no value": a bad-quality reading of a metric that could not
// be read carries no number, so an error is never shown as 0.
using Value = std::variant<std::monostate, double, bool, std::string>;

enum class ValueType : unsigned char { none, number, boolean, text };

inline ValueType type_of(const Value& v) {
  return static_cast<ValueType>(v.index());
}

}  // namespace fieldhub::model
