// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the JSON normalizer. Input: the MQTT topic, a newline, then the payload.
// The normalizer runs with the configuration of src/normalize/testcases/ (one device of every
// shipped profile), so topics from the corpus reach every payload format.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "config/config.h"
#include "normalize/normalizer.h"

namespace {

fieldhub::normalize::Normalizer& normalizer() {
  static const fieldhub::config::Config config = fieldhub::config::load_config(
      std::filesystem::path(FIELDHUB_TESTCASES_DIR) / "fieldhub.toml");
  static fieldhub::normalize::Normalizer n(config);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string_view topic = input.substr(0, newline);
  const std::string_view payload =
      newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  const auto env = normalizer().normalize(topic, payload, fieldhub::model::from_micros(0));
  // A refused message has no records; whatever is kept names a configured device.
  for (const auto& r : env.readings) {
    if (r.device_id.empty() || r.metric.empty()) __builtin_trap();
  }
  for (const auto& d : env.dead_letters) {
    if (d.reason.empty()) __builtin_trap();
  }
  return 0;
}
