// SPDX-License-Identifier: Apache-2.0
#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace fieldhub::common {

namespace {

std::string render_labels(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out.push_back(',');
    out += k;
    out += "=\"";
    for (char c : v) {
      if (c == '\\' || c == '"') out.push_back('\\');
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out;
}

std::string with_labels(const std::string& name, const std::string& labels,
                        const std::string& extra = {}) {
  std::string all = labels;
  if (!extra.empty()) {
    if (!all.empty()) all.push_back(',');
    all += extra;
  }
  if (all.empty()) return name;
  return name + "{" + all + "}";
}

std::string format_double(double d) {
  if (std::isinf(d)) return "+Inf";
  std::string s = std::to_string(d);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < bucket_count && seconds > bounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const double micros = std::max(0.0, seconds * 1e6);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(micros), std::memory_order_relaxed);
}

double Histogram::quantile_upper_bound(double q) const {
  const std::uint64_t total = count();
  if (total == 0) return 0.0;
  const auto target = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= target) return bounds[i];
  }
  return std::numeric_limits<double>::infinity();
}

Metrics::Entry& Metrics::find_or_add(std::string_view name, std::string_view help, Type type,
                                     const Labels& labels) {
  const std::string rendered = render_labels(labels);
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    if (e.name == name && e.labels == rendered) return e;
  }
  auto& e = entries_.emplace_back();
  e.name = std::string(name);
  e.help = std::string(help);
  e.type = type;
  e.labels = rendered;
  return e;
}

Counter& Metrics::counter(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_add(name, help, Type::counter, labels).counter;
}

Gauge& Metrics::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_add(name, help, Type::gauge, labels).gauge;
}

Histogram& Metrics::histogram(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_add(name, help, Type::histogram, labels).histogram;
}

std::uint64_t Metrics::counter_value(std::string_view name, const Labels& labels) const {
  const std::string rendered = render_labels(labels);
  std::lock_guard lock(mutex_);
  for (const auto& e : entries_) {
    if (e.name == name && e.labels == rendered) return e.counter.value();
  }
  return 0;
}

std::string Metrics::render_prometheus() const {
  std::lock_guard lock(mutex_);
  // Group by name so HELP and TYPE appear once per family.
  std::map<std::string, std::vector<const Entry*>> families;
  for (const auto& e : entries_) families[e.name].push_back(&e);
  std::string out;
  for (const auto& [name, members] : families) {
    const Entry& first = *members.front();
    out += "# HELP " + name + " " + first.help + "\n";
    out += "# TYPE " + name + " ";
    out += first.type == Type::counter ? "counter"
           : first.type == Type::gauge ? "gauge"
                                       : "histogram";
    out += "\n";
    for (const Entry* e : members) {
      switch (e->type) {
        case Type::counter:
          out += with_labels(name, e->labels) + " " + std::to_string(e->counter.value()) + "\n";
          break;
        case Type::gauge:
          out += with_labels(name, e->labels) + " " + std::to_string(e->gauge.value()) + "\n";
          break;
        case Type::histogram: {
          std::uint64_t cumulative = 0;
          for (std::size_t i = 0; i <= Histogram::bucket_count; ++i) {
            cumulative += e->histogram.buckets_[i].load(std::memory_order_relaxed);
            const double le = i < Histogram::bucket_count ? Histogram::bounds[i]
                                                          : std::numeric_limits<double>::infinity();
            out += with_labels(name + "_bucket", e->labels, "le=\"" + format_double(le) + "\"") +
                   " " + std::to_string(cumulative) + "\n";
          }
          out += with_labels(name + "_sum", e->labels) + " " +
                 format_double(static_cast<double>(e->histogram.sum_micros_.load()) / 1e6) + "\n";
          out += with_labels(name + "_count", e->labels) + " " +
                 std::to_string(e->histogram.count()) + "\n";
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace fieldhub::common
