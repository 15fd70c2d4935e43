// SPDX-License-Identifier: Apache-2.0
// The example in this folder loads with the shipped profiles, and every device gets a plan.
#include <gtest/gtest.h>

#include "adapters/modbus/read_plan.h"
#include "config/config.h"

namespace fieldhub::modbus {
namespace {

TEST(ModbusExample, LoadsAndPlans) {
  const config::Config c = config::load_config(FIELDHUB_MODBUS_EXAMPLE);
  ASSERT_EQ(c.modbus_devices.size(), 5u);
  ASSERT_EQ(c.serial_buses.size(), 1u);
  for (const auto& d : c.devices) {
    SCOPED_TRACE(d.id);
    const auto* endpoint = c.modbus_device(d.id);
    ASSERT_NE(endpoint, nullptr);
    const auto* profile = c.profile(d.profile);
    ASSERT_NE(profile, nullptr);
    EXPECT_FALSE(plan_reads(*profile).empty());
  }
  EXPECT_EQ(c.modbus_device("meter-office")->bus, "bus1");
  EXPECT_EQ(c.modbus_device("meter-hall")->unit_id, 2);
}

}  // namespace
}  // namespace fieldhub::modbus
