// SPDX-License-Identifier: Apache-2.0
#include "adapters/modbus/readings.h"

#include "adapters/modbus/codec.h"

namespace fieldhub::modbus {

namespace {

model::Reading base(const config::MetricSpec& metric, const ReadingContext& context) {
  model::Reading r;
  r.device_id = std::string(context.device_id);
  r.metric = metric.name;
  r.unit = metric.unit;
  r.source_ts = context.received;
  r.received_ts = context.received;
  r.source_ts_trusted = false;  // the device sent no time: ordered by receipt
  r.provenance = {std::string(context.adapter), std::string(context.link)};
  return r;
}

}  // namespace

void append_readings(const config::Profile& profile, const ReadRequest& request, const Reply& reply,
                     const ReadingContext& context, std::vector<model::Reading>& out) {
  const auto& specs = profile.registers;
  const bool bits = request.function == config::ModbusFunction::coil ||
                    request.function == config::ModbusFunction::discrete_input;
  for (const ReadItem& item : request.items) {
    const config::RegisterSpec& spec = specs[item.spec_index];
    const config::MetricSpec& metric = profile.metrics[spec.metric_index];
    model::Reading r = base(metric, context);
    DecodedValue d;
    if (bits) {
      d = item.offset < reply.bits.size() ? decode_bit(reply.bits[item.offset])
                                          : DecodedValue{{}, model::Quality::bad, "short_response"};
    } else {
      const std::span<const std::uint16_t> words(reply.registers);
      d = item.offset < words.size() ? decode_registers(spec, words.subspan(item.offset))
                                     : DecodedValue{{}, model::Quality::bad, "short_response"};
    }
    r.value = std::move(d.value);
    r.quality = d.quality;
    r.quality_reason = std::string(d.reason);
    if (const double* v = std::get_if<double>(&r.value)) {
      if ((metric.min && *v < *metric.min) || (metric.max && *v > *metric.max)) {
        r.quality = model::Quality::bad;
        r.quality_reason = "out_of_range";
      }
    }
    out.push_back(std::move(r));
  }
}

void append_failed(const config::Profile& profile, const ReadRequest& request,
                   std::string_view reason, const ReadingContext& context,
                   std::vector<model::Reading>& out) {
  for (const ReadItem& item : request.items) {
    const config::RegisterSpec& spec = profile.registers[item.spec_index];
    model::Reading r = base(profile.metrics[spec.metric_index], context);
    r.quality = model::Quality::bad;
    r.quality_reason = std::string(reason);
    out.push_back(std::move(r));
  }
}

std::vector<ReadRequest> split_per_item(const config::Profile& profile,
                                        const ReadRequest& request) {
  std::vector<ReadRequest> out;
  out.reserve(request.items.size());
  for (const ReadItem& item : request.items) {
    const config::RegisterSpec& spec = profile.registers[item.spec_index];
    ReadRequest one;
    one.function = request.function;
    one.address = spec.address;
    one.count = spec.width();
    one.group = request.group;
    one.interval = request.interval;
    one.items = {{item.spec_index, 0}};
    out.push_back(std::move(one));
  }
  return out;
}

Request to_request(std::uint8_t unit, const ReadRequest& read) {
  return read_request(unit, read_function(read.function), read.address, read.count);
}

}  // namespace fieldhub::modbus
