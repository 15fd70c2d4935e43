// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/read_plan.h"

#include <algorithm>
#include <numeric>
#include <tuple>

namespace fieldhub::modbus {

PlanOptions PlanOptions::from(const config::ModbusProfileSettings& settings) {
  PlanOptions o;
  o.max_hole = settings.max_hole;
  o.max_registers = std::min(settings.max_registers_per_read, max_registers_per_read);
  o.max_bits = std::min(settings.max_bits_per_read, max_bits_per_read);
  return o;
}

namespace {

bool is_bits(config::ModbusFunction f) {
  return f == config::ModbusFunction::coil || f == config::ModbusFunction::discrete_input;
}

}  // namespace

std::vector<ReadRequest> plan_reads(std::span<const config::RegisterSpec> registers,
                                    const PlanOptions& options,
                                    const config::ModbusProfileSettings& settings) {
  std::vector<std::size_t> order(registers.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // stable_sort keeps declaration order among equal keys, so the plan is deterministic.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& x = registers[a];
    const auto& y = registers[b];
    return std::tie(x.group, x.function, x.address) < std::tie(y.group, y.function, y.address);
  });

  std::vector<ReadRequest> plan;
  ReadRequest* open = nullptr;
  std::uint32_t open_end = 0;  // one past the last register the open request covers
  for (const std::size_t i : order) {
    const auto& r = registers[i];
    const std::uint16_t cap = is_bits(r.function) ? options.max_bits : options.max_registers;
    const std::uint32_t width = r.width();
    if (width == 0 || width > cap) continue;
    const std::uint32_t end = std::uint32_t{r.address} + width;
    if (open != nullptr && open->group == r.group && open->function == r.function &&
        r.address <= open_end + options.max_hole &&
        std::max(end, open_end) - open->address <= cap) {
      open_end = std::max(end, open_end);
      open->count = static_cast<std::uint16_t>(open_end - open->address);
      open->items.push_back({i, static_cast<std::uint16_t>(r.address - open->address)});
      continue;
    }
    plan.push_back(ReadRequest{.function = r.function,
                               .address = r.address,
                               .count = static_cast<std::uint16_t>(width),
                               .group = r.group,
                               .interval = settings.interval_of(r.group),
                               .items = {{i, 0}}});
    open = &plan.back();
    open_end = end;
  }
  return plan;
}

std::vector<ReadRequest> plan_reads(const config::Profile& profile) {
  return plan_reads(profile.registers, PlanOptions::from(profile.modbus), profile.modbus);
}

}  // namespace fieldhub::modbus
