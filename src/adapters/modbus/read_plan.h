// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"

namespace fieldhub::modbus {

// Modbus application protocol v1.1b §6.1-6.4: one read returns at most 125 registers or 2000 bits.
constexpr std::uint16_t max_registers_per_read = 125;
constexpr std::uint16_t max_bits_per_read = 2000;

struct PlanOptions {
  std::uint16_t max_hole = 8;  // unused registers (or bits) one read may span to save a request
  std::uint16_t max_registers = max_registers_per_read;
  std::uint16_t max_bits = max_bits_per_read;

  static PlanOptions from(const config::ModbusProfileSettings& settings);
};

// One metric served by a read: its spec and where its first register (or bit) sits in the reply.
struct ReadItem {
  std::size_t spec_index = 0;  // index into the registers passed to plan_reads
  std::uint16_t offset = 0;    // registers (bits for coils/discrete inputs) from the read's start
};

// One FC01/02/03/04 request of a poll group.
struct ReadRequest {
  config::ModbusFunction function = config::ModbusFunction::holding;
  std::uint16_t address = 0;  // first register / bit, 0-based wire address
  std::uint16_t count = 0;    // registers / bits
  std::string group;          // poll group ("" = the profile's default interval)
  std::chrono::milliseconds interval{1000};
  std::vector<ReadItem> items;  // in address order, then declaration order
};

// Plans the reads that fetch every register of one device. Requests never mix poll groups or
// functions; within one, registers are merged while the span stays within the per-read cap and
// the gap between them is at most max_hole. Duplicate or overlapping specs share a read.
// Deterministic: the same input gives the same requests in the same order (by group name, then
// function coil, discrete_input, holding, input, then address). Pure; specs wider than the cap
// were refused by the config loader and are skipped here.
std::vector<ReadRequest> plan_reads(std::span<const config::RegisterSpec> registers,
                                    const PlanOptions& options,
                                    const config::ModbusProfileSettings& settings = {});

// The plan for a profile: its registers, options and group intervals.
std::vector<ReadRequest> plan_reads(const config::Profile& profile);

}  // namespace fieldhub::modbus
