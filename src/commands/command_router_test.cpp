// SPDX-License-Identifier: Apache-2.0
#include "commands/command_router.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <vector>

namespace fieldhub::commands {
namespace {

using namespace std::chrono_literals;

const model::Timestamp t0 = model::from_micros(1'795'000'000'000'000);

// A downlink that holds each write until the test answers it, as a device on a link would.
class HeldWrites final : public adapters::Writable {
 public:
  struct Write {
    std::string device, metric;
    model::Value value;
    adapters::WriteCallback done;
  };
  void write(std::string_view device_id, std::string_view metric, model::Value value,
             adapters::WriteCallback done) override {
    writes.push_back(
        {std::string(device_id), std::string(metric), std::move(value), std::move(done)});
  }
  std::vector<Write> writes;
};

class CommandRouterTest : public ::testing::Test {
 protected:
  CommandRouterTest()
      : router_(clock_, metrics_, [this](model::Event&& e) { audited_.push_back(std::move(e)); }) {
    router_.add("modbus_tcp", plc_);
  }

  Command setpoint(double v) {
    return {.device_id = "plc-1",
            .protocol = "modbus_tcp",
            .metric = "speed_setpoint",
            .value = v,
            .by = "eng.a",
            .comment = "line 2 slower"};
  }

  common::FakeClock clock_{t0};
  common::Metrics metrics_;
  std::vector<model::Event> audited_;
  HeldWrites plc_;
  CommandRouter router_;
  simdjson::dom::parser parser_;
};

TEST_F(CommandRouterTest, AWriteIsRoutedByProtocolAndAuditedWithItsResultWhenTheDeviceAnswers) {
  std::vector<Outcome> outcomes;
  ASSERT_TRUE(router_.submit(setpoint(1450), [&](const Outcome& o) { outcomes.push_back(o); }));
  ASSERT_EQ(plc_.writes.size(), 1u);
  EXPECT_EQ(plc_.writes[0].device, "plc-1");
  EXPECT_EQ(plc_.writes[0].metric, "speed_setpoint");
  EXPECT_EQ(std::get<double>(plc_.writes[0].value), 1450.0);
  EXPECT_TRUE(outcomes.empty());  // nothing is said before the device answered
  EXPECT_TRUE(audited_.empty());
  EXPECT_EQ(router_.in_flight(), 1u);

  clock_.advance(120ms);
  plc_.writes[0].done({});
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].result.ok());
  EXPECT_EQ(outcomes[0].completed_at - outcomes[0].requested_at, 120ms);
  EXPECT_EQ(router_.in_flight(), 0u);

  ASSERT_EQ(audited_.size(), 1u);
  const model::Event& e = audited_[0];
  EXPECT_EQ(e.device_id, "plc-1");
  EXPECT_EQ(e.type, "command");
  EXPECT_EQ(e.ts(), t0 + 120ms);
  auto attrs = parser_.parse(e.attributes_json);
  EXPECT_EQ(std::string_view(attrs["metric"]), "speed_setpoint");
  EXPECT_EQ(double(attrs["value"]), 1450.0);
  EXPECT_EQ(std::string_view(attrs["by"]), "eng.a");
  EXPECT_EQ(std::string_view(attrs["comment"]), "line 2 slower");
  EXPECT_EQ(std::string_view(attrs["result"]), "ok");
  EXPECT_EQ(metrics_.counter_value("fieldhub_commands_total", {{"result", "ok"}}), 1u);
}

TEST_F(CommandRouterTest, AFailedWriteIsAuditedWithWhyAndEachCommandIsItsOwnHistoryRow) {
  std::vector<Outcome> outcomes;
  const auto keep = [&](const Outcome& o) { outcomes.push_back(o); };
  ASSERT_TRUE(router_.submit(setpoint(1), keep));
  ASSERT_TRUE(router_.submit(setpoint(2), keep));
  plc_.writes[0].done({adapters::WriteError::mismatch, "read back 1.5, wrote 1"});
  plc_.writes[1].done({adapters::WriteError::timeout, ""});  // same instant on the fake clock
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].result.error, adapters::WriteError::mismatch);
  ASSERT_EQ(audited_.size(), 2u);
  auto first = parser_.parse(audited_[0].attributes_json);
  EXPECT_EQ(std::string_view(first["result"]), "mismatch");
  EXPECT_EQ(std::string_view(first["detail"]), "read back 1.5, wrote 1");
  EXPECT_LT(audited_[0].ts(), audited_[1].ts());  // history's key (device, type, time) differs
  EXPECT_EQ(metrics_.counter_value("fieldhub_commands_total", {{"result", "mismatch"}}), 1u);
  EXPECT_EQ(metrics_.counter_value("fieldhub_commands_total", {{"result", "timeout"}}), 1u);
}

TEST_F(CommandRouterTest, AProtocolWithoutAWritePathIsRefusedAndAudited) {
  Command c = setpoint(1);
  c.protocol = "mqtt";
  std::vector<Outcome> outcomes;
  ASSERT_TRUE(router_.submit(c, [&](const Outcome& o) { outcomes.push_back(o); }));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].result.error, adapters::WriteError::not_writable);
  EXPECT_EQ(outcomes[0].result.detail, "devices on mqtt take no writes");
  EXPECT_EQ(audited_.size(), 1u);
  EXPECT_TRUE(plc_.writes.empty());
}

TEST_F(CommandRouterTest, PastTheInFlightBoundCommandsAreRefusedNotQueued) {
  for (std::size_t i = 0; i < CommandRouter::max_in_flight; ++i) {
    ASSERT_TRUE(router_.submit(setpoint(1), [](const Outcome&) {}));
  }
  bool called = false;
  EXPECT_FALSE(router_.submit(setpoint(1), [&](const Outcome&) { called = true; }));
  EXPECT_FALSE(called);
  EXPECT_EQ(plc_.writes.size(), CommandRouter::max_in_flight);
  EXPECT_EQ(metrics_.counter_value("fieldhub_commands_total", {{"result", "busy"}}), 1u);
  plc_.writes[0].done({});
  EXPECT_TRUE(router_.submit(setpoint(1), [](const Outcome&) {}));
}

}  // namespace
}  // namespace fieldhub::commands
