// SPDX-License-Identifier: Apache-2.0
#include "web/system_status.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace fieldhub::web {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'700'000'000'000'000);

class SystemStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    status_.add("history", true, [this] { return history_; });
    status_.add("live", false, [this] { return live_; });
  }
  SystemStatus::Probe history_{true, "ok"};
  SystemStatus::Probe live_{true, "ok"};
  SystemStatus status_;
  simdjson::dom::parser parser_;
};

TEST_F(SystemStatusTest, OnlyAChangeIsReportedAndItCarriesSince) {
  EXPECT_TRUE(status_.poll(t0));  // the first state is news
  EXPECT_FALSE(status_.poll(t0 + 500ms));
  history_ = {false, "degraded: writes failing"};
  EXPECT_TRUE(status_.poll(t0 + 1s));
  EXPECT_FALSE(status_.poll(t0 + 1500ms));

  auto doc = parser_.parse(status_.frame());
  EXPECT_EQ(std::string_view(doc["type"]), "system");
  EXPECT_FALSE(bool(doc["ok"]));
  auto history = doc["components"]["history"];
  EXPECT_FALSE(bool(history["ok"]));
  EXPECT_EQ(std::string_view(history["state"]), "degraded: writes failing");
  EXPECT_EQ(std::string_view(history["since"]), model::format_rfc3339(t0 + 1s));
  EXPECT_EQ(std::string_view(doc["components"]["live"]["since"]), model::format_rfc3339(t0));
}

TEST_F(SystemStatusTest, ANonCriticalComponentIsShownButKeepsTheProcessOk) {
  live_ = {false, "degraded: Redis unreachable"};
  status_.poll(t0);
  const HealthReport r = status_.report();
  EXPECT_TRUE(r.ok);
  ASSERT_EQ(r.components.size(), 2u);
  EXPECT_EQ(r.components[1].first, "live");
  EXPECT_EQ(r.components[1].second, "degraded: Redis unreachable");
  auto doc = parser_.parse(status_.frame());
  EXPECT_TRUE(bool(doc["ok"]));
  EXPECT_FALSE(bool(doc["components"]["live"]["ok"]));

  history_ = {false, "degraded: writes failing"};
  status_.poll(t0 + 1s);
  EXPECT_FALSE(status_.report().ok);
}

}  // namespace
}  // namespace fieldhub::web
