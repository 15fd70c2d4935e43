// SPDX-License-Identifier: Apache-2.0
#include "common/metrics.h"

#include <gtest/gtest.h>

namespace fieldhub::common {
namespace {

TEST(Metrics, SameNameAndLabelsIsSameCounter) {
  Metrics m;
  auto& a = m.counter("x_total", "help", {{"reason", "r1"}});
  auto& b = m.counter("x_total", "help", {{"reason", "r1"}});
  auto& c = m.counter("x_total", "help", {{"reason", "r2"}});
  a.inc();
  b.inc(2);
  c.inc();
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(m.counter_value("x_total", {{"reason", "r1"}}), 3u);
  EXPECT_EQ(m.counter_value("x_total", {{"reason", "r2"}}), 1u);
  EXPECT_EQ(m.counter_value("missing_total"), 0u);
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.counter("fieldhub_rejected_total", "Rejected", {{"reason", "invalid_json"}}).inc(4);
  m.gauge("fieldhub_queue_depth", "Depth", {{"queue", "history"}}).set(7);
  m.histogram("fieldhub_commit_seconds", "Commit").observe(0.003);
  const std::string text = m.render_prometheus();
  EXPECT_NE(text.find("# TYPE fieldhub_rejected_total counter"), std::string::npos);
  EXPECT_NE(text.find("fieldhub_rejected_total{reason=\"invalid_json\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("fieldhub_queue_depth{queue=\"history\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("fieldhub_commit_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("fieldhub_commit_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("fieldhub_commit_seconds_count 1\n"), std::string::npos);
}

TEST(Histogram, QuantileUpperBound) {
  Histogram h;
  for (int i = 0; i < 99; ++i) h.observe(0.0008);
  h.observe(0.2);
  EXPECT_DOUBLE_EQ(h.quantile_upper_bound(0.5), 0.001);
  EXPECT_DOUBLE_EQ(h.quantile_upper_bound(0.99), 0.001);
  EXPECT_DOUBLE_EQ(h.quantile_upper_bound(1.0), 0.25);
}

}  // namespace
}  // namespace fieldhub::common
