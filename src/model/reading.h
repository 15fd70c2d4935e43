// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "model/quality.h"
#include "model/time.h"
#include "model/value.h"

namespace fieldhub::model {

// Where a record came from: the adapter and the link it arrived on (e.g. "mqtt", "broker").
struct Provenance {
  std::string adapter;
  std::string link;
};

// One value of one metric of one device at one time.
struct Reading {
  std::string device_id;
  std::string metric;
  Value value;
  std::string unit;       // normalized unit symbol (kWh, m³, V, A, W, °C, %), empty for unitless
  Timestamp source_ts;    // when the device measured it (received_ts if the device sent none)
  Timestamp received_ts;  // when fieldhub received it
  Quality quality = Quality::good;
  std::string quality_reason;     // empty when good; otherwise why (e.g. "out_of_range", "timeout")
  bool source_ts_trusted = true;  // false: the device sent no timestamp or one beyond the skew
  Provenance provenance;

  // The time used for ordering: the device's own time when trusted, else receipt time.
  Timestamp ts() const { return source_ts_trusted ? source_ts : received_ts; }
};

}  // namespace fieldhub::model
