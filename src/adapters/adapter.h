// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

namespace fieldhub::adapters {

// One protocol's way in. An adapter reads its protocol, turns what arrives into canonical records
// and hands them to the pipeline; it never reaches a store.
// start() and stop() are called on the io executor by the composition root. After start()
// returns the adapter connects, and keeps reconnecting, on its own; after stop() returns it
// submits nothing more.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string_view name() const = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
};

}  // namespace fieldhub::adapters
