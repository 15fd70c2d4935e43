// SPDX-License-Identifier: Apache-2.0
#include "oracle.h"

#include <simdjson.h>

#include "model/time.h"
#include "support/test_support.h"

namespace fieldhub::testing {

using namespace std::chrono_literals;

namespace {

std::int64_t base_ms() {
  static const std::int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch() - 1h)
                                       .count();
  return base;
}

std::string topic(int device, const std::string& site = "lab") {
  return "fieldhub/" + site + "/dev-" + std::to_string(device) + "/telemetry";
}

Message valid_message(std::int64_t seq) {
  const int device = static_cast<int>(seq % oracle_devices);
  return {topic(device), R"({"ts":)" + std::to_string(base_ms() + seq) + R"(,"values":{"seq":)" +
                             std::to_string(seq) + "}}"};
}

// One message per defect kind; each must be refused whole with exactly this reason.
std::vector<std::pair<std::string, Message>> malformed_kinds(std::int64_t seq) {
  const std::string ts = std::to_string(base_ms() + seq);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 100; ++i) deep += "}";
  return {
      {"invalid_json", {topic(1), R"({"ts":)" + ts + R"(,"values":{"seq":1})"}},
      {"invalid_json", {topic(2), ""}},
      {"invalid_json", {topic(2), R"({"values":{"seq":NaN}})"}},
      {"invalid_utf8", {topic(3), "{\"values\":{\"label\":\"\xff\xfe\"}}"}},
      {"unknown_device",
       {"fieldhub/lab/ghost-" + std::to_string(seq) + "/telemetry", valid_message(seq).payload}},
      {"site_mismatch", {topic(4, "elsewhere"), valid_message(seq).payload}},
      {"unknown_metric", {topic(5), R"({"ts":)" + ts + R"(,"values":{"bogus":1}})"}},
      {"wrong_type", {topic(6), R"({"ts":)" + ts + R"(,"values":{"seq":"seven"}})"}},
      {"too_deep", {topic(7), deep}},
      {"oversized", {topic(8), R"({"values":{"label":")" + std::string(70000, 'x') + "\"}}"}},
      {"nul_in_string", {topic(9), R"({"ts":)" + ts + R"(,"values":{"label":"a\u0000b"}})"}},
      {"invalid_timestamp", {topic(0), R"({"ts":"yesterday","values":{"seq":1}})"}},
      {"timestamp_too_old", {topic(1), R"({"ts":946684800000,"values":{"seq":1}})"}},
  };
}

// Every stored seq per device, read back through the history API.
std::map<std::string, std::vector<std::int64_t>> stored_points(const FieldhubProcess& fh) {
  std::map<std::string, std::vector<std::int64_t>> out;
  simdjson::dom::parser parser;
  const std::string from = model::format_rfc3339(model::from_micros((base_ms() - 1000) * 1000));
  const std::string to = model::format_rfc3339(model::from_micros((base_ms() + 3'600'000) * 1000));
  for (int d = 0; d < oracle_devices; ++d) {
    const std::string id = "dev-" + std::to_string(d);
    const auto r = fh.get("/api/v1/devices/" + id + "/history?metric=seq&from=" + from +
                          "&to=" + to + "&limit=100000");
    if (!r || r->first != 200) throw std::runtime_error("history query failed for " + id);
    auto doc = parser.parse(r->second);
    for (auto point : doc["points"].get_array()) {
      out[id].push_back(static_cast<std::int64_t>(double(point["value"])));
    }
  }
  return out;
}

}  // namespace

Plan make_plan(std::int64_t first_seq, std::int64_t count) {
  Plan plan;
  std::size_t k = 0;
  for (std::int64_t seq = first_seq; seq < first_seq + count; ++seq) {
    Message m = valid_message(seq);
    plan.messages.push_back(m);
    plan.expected["dev-" + std::to_string(seq % oracle_devices)].insert(seq);
    ++plan.valid;
    if (seq % 97 == 0) {
      plan.messages.push_back(m);
      ++plan.duplicates;
    }
    if (seq % 40 == 0) {
      auto kinds = malformed_kinds(seq);
      auto& [reason, bad] = kinds[k++ % kinds.size()];
      plan.messages.push_back(bad);
      ++plan.rejected[reason];
    }
  }
  return plan;
}

double metric(const std::map<std::string, double>& m, const std::string& key) {
  const auto it = m.find(key);
  return it == m.end() ? 0.0 : it->second;
}

Reconciliation reconcile(const Plan& plan, const FieldhubProcess& fh) {
  Reconciliation r;
  const auto points = stored_points(fh);
  for (const auto& [device, expected] : plan.expected) {
    std::multiset<std::int64_t> got;
    if (auto it = points.find(device); it != points.end())
      got.insert(it->second.begin(), it->second.end());
    r.stored += got.size();
    for (auto seq : expected) {
      const auto n = got.count(seq);
      if (n == 0) ++r.missing;
      if (n > 1) r.duplicated += n - 1;
    }
    for (auto seq : got) {
      if (!expected.contains(seq)) ++r.unexpected;
    }
  }
  return r;
}

bool wait_all_stored(const FieldhubProcess& fh, const Plan& plan,
                     std::chrono::milliseconds deadline) {
  return wait_until(
      [&] {
        const auto m = fh.metrics();
        return metric(m, "fieldhub_readings_stored_total") >= static_cast<double>(plan.valid) ||
               reconcile(plan, fh).missing == 0;
      },
      deadline, 200ms);
}

}  // namespace fieldhub::testing
