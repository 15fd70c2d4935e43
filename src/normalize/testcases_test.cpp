// SPDX-License-Identifier: Apache-2.0
// Runs every folder in testcases/ through the normalizer: `topic` (one line), `payload` (raw
// bytes) and `expected.json`:
//   {"readings": [{"device", "metric", "value", "unit", "quality", "quality_reason"?, "ts"}],
//    "events": [{"device", "type", "priority", "ts", "attributes"}],
//    "dead_letters": [{"reason", "detail"?, "payload_bytes"?}]}
// "ts" is null when the message had no trusted time. A "detail" in expected.json need only be
// contained in the actual detail. FIELDHUB_UPDATE_TESTCASES=1 rewrites expected.json from the
// actual output (review the diff before committing).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json_writer.h"
#include "config/config.h"
#include "normalize/normalizer.h"

namespace fieldhub::normalize {
namespace {

namespace fs = std::filesystem;

const model::Timestamp received = *model::parse_rfc3339("2026-11-24T12:00:00Z");

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string render_reading(const model::Reading& r) {
  std::string out;
  common::JsonWriter w(out);
  w.begin_object()
      .key("device")
      .value(std::string_view(r.device_id))
      .key("metric")
      .value(std::string_view(r.metric))
      .key("value")
      .value(r.value);
  w.key("unit")
      .value(std::string_view(r.unit))
      .key("quality")
      .value(std::string_view(model::to_string(r.quality)));
  if (!r.quality_reason.empty()) w.key("quality_reason").value(std::string_view(r.quality_reason));
  w.key("ts");
  if (r.source_ts_trusted) {
    w.value(r.source_ts);
  } else {
    w.null();
  }
  w.end_object();
  return out;
}

std::string render_event(const model::Event& e) {
  std::string out;
  common::JsonWriter w(out);
  w.begin_object()
      .key("device")
      .value(std::string_view(e.device_id))
      .key("type")
      .value(std::string_view(e.type));
  w.key("priority").value(std::string_view(model::to_string(e.priority))).key("ts");
  if (e.source_ts_trusted) {
    w.value(e.source_ts);
  } else {
    w.null();
  }
  w.key("attributes").raw(e.attributes_json).end_object();
  return out;
}

std::string render_dead_letter(const pipeline::DeadLetter& d) {
  std::string out;
  common::JsonWriter w(out);
  w.begin_object()
      .key("reason")
      .value(std::string_view(d.reason))
      .key("detail")
      .value(std::string_view(d.detail));
  w.field("payload_bytes", static_cast<std::uint64_t>(d.payload.size())).end_object();
  return out;
}

template <typename T, typename F>
void render_list(std::string& out, std::string_view name, const std::vector<T>& items, F render,
                 bool last) {
  out += "  \"" + std::string(name) + "\": [";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += i == 0 ? "\n    " : ",\n    ";
    out += render(items[i]);
  }
  out += items.empty() ? "]" : "\n  ]";
  out += last ? "\n" : ",\n";
}

std::string render(const pipeline::Envelope& env) {
  std::string out = "{\n";
  render_list(out, "readings", env.readings, render_reading, false);
  render_list(out, "events", env.events, render_event, false);
  render_list(out, "dead_letters", env.dead_letters, render_dead_letter, true);
  out += "}\n";
  return out;
}

// Checks that `actual` has everything `expected` says (see the header comment).
void match(simdjson::dom::element expected, simdjson::dom::element actual, const std::string& where,
           std::vector<std::string>& errors) {
  using simdjson::dom::element_type;
  const auto et = expected.type();
  const auto at = actual.type();
  auto is_number = [](element_type t) {
    return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
  };
  if (is_number(et) && is_number(at)) {
    const double e = double(expected);
    const double a = double(actual);
    if (std::fabs(e - a) > 1e-9 * std::max(1.0, std::fabs(e))) {
      errors.push_back(where + ": expected " + std::to_string(e) + ", got " + std::to_string(a));
    }
    return;
  }
  if (et != at) {
    errors.push_back(where + ": expected " + simdjson::minify(expected) + ", got " +
                     simdjson::minify(actual));
    return;
  }
  if (et == element_type::OBJECT) {
    const auto eo = simdjson::dom::object(expected);
    const auto ao = simdjson::dom::object(actual);
    for (const auto field : eo) {
      simdjson::dom::element av;
      if (ao.at_key(field.key).get(av) != simdjson::SUCCESS) {
        errors.push_back(where + "." + std::string(field.key) + ": missing");
        continue;
      }
      if (field.key == "detail" && field.value.is_string() && av.is_string()) {
        const std::string_view want = field.value.get_string().value_unsafe();
        const std::string_view got = av.get_string().value_unsafe();
        if (got.find(want) == std::string_view::npos) {
          errors.push_back(where + ".detail: '" + std::string(got) + "' lacks '" +
                           std::string(want) + "'");
        }
        continue;
      }
      match(field.value, av, where + "." + std::string(field.key), errors);
    }
    for (const auto field : ao) {
      if (field.key == "detail" || field.key == "payload_bytes") continue;
      simdjson::dom::element ev;
      if (eo.at_key(field.key).get(ev) != simdjson::SUCCESS) {
        errors.push_back(where + "." + std::string(field.key) + ": not expected, got " +
                         simdjson::minify(field.value));
      }
    }
    return;
  }
  if (et == element_type::ARRAY) {
    const auto ea = simdjson::dom::array(expected);
    const auto aa = simdjson::dom::array(actual);
    if (ea.size() != aa.size()) {
      errors.push_back(where + ": expected " + std::to_string(ea.size()) + " items, got " +
                       std::to_string(aa.size()));
      return;
    }
    for (std::size_t i = 0; i < ea.size(); ++i) {
      match(ea.at(i).value_unsafe(), aa.at(i).value_unsafe(), where + "[" + std::to_string(i) + "]",
            errors);
    }
    return;
  }
  if (simdjson::minify(expected) != simdjson::minify(actual)) {
    errors.push_back(where + ": expected " + simdjson::minify(expected) + ", got " +
                     simdjson::minify(actual));
  }
}

std::vector<fs::path> case_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(FIELDHUB_TESTCASES_DIR)) {
    if (entry.is_directory()) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(NormalizeTestcases, EveryCaseMatchesItsExpectation) {
  const config::Config config =
      config::load_config(fs::path(FIELDHUB_TESTCASES_DIR) / "fieldhub.toml");
  Normalizer normalizer(config);
  const bool update = std::getenv("FIELDHUB_UPDATE_TESTCASES") != nullptr;
  const auto dirs = case_dirs();
  ASSERT_GE(dirs.size(), 40u);
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    std::string topic = read_file(dir / "topic");
    while (!topic.empty() && (topic.back() == '\n' || topic.back() == '\r')) topic.pop_back();
    const std::string payload = read_file(dir / "payload");
    const std::string actual = render(normalizer.normalize(topic, payload, received));
    if (update) {
      std::ofstream(dir / "expected.json", std::ios::binary) << actual;
      continue;
    }
    simdjson::dom::parser expected_parser;
    simdjson::dom::parser actual_parser;
    simdjson::dom::element expected;
    simdjson::dom::element got;
    const auto expected_error =
        expected_parser.load((dir / "expected.json").string()).get(expected);
    ASSERT_FALSE(expected_error) << "expected.json: " << simdjson::error_message(expected_error);
    ASSERT_FALSE(actual_parser.parse(actual).get(got)) << actual;
    std::vector<std::string> errors;
    match(expected, got, "$", errors);
    std::string all;
    for (const auto& e : errors) all += "\n  " + e;
    EXPECT_TRUE(errors.empty()) << all << "\nactual:\n" << actual;
  }
}

}  // namespace
}  // namespace fieldhub::normalize
