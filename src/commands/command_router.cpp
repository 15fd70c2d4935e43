// SPDX-License-Identifier: Apache-2.0
#include "commands/command_router.h"

#include <algorithm>

#include "common/json_writer.h"

namespace fieldhub::commands {

CommandRouter::CommandRouter(const common::Clock& clock, common::Metrics& metrics,
                             std::function<void(model::Event&&)> audit)
    : clock_(clock),
      metrics_(metrics),
      audit_(std::move(audit)),
      seconds_(metrics.histogram("fieldhub_command_seconds",
                                 "From a command's request to its adapter's answer (read-back "
                                 "included)")) {}

void CommandRouter::add(std::string protocol, adapters::Writable& writable) {
  writables_[std::move(protocol)] = &writable;
}

bool CommandRouter::submit(Command command, std::function<void(const Outcome&)> done) {
  if (in_flight_ >= max_in_flight) {
    metrics_.counter("fieldhub_commands_total", "Commands by result", {{"result", "busy"}}).inc();
    return false;
  }
  Outcome outcome;
  outcome.id = next_id_++;
  outcome.requested_at = clock_.now();
  outcome.command = std::move(command);
  const auto it = writables_.find(outcome.command.protocol);
  if (it == writables_.end()) {
    outcome.result = {adapters::WriteError::not_writable,
                      "devices on " + outcome.command.protocol + " take no writes"};
    ++in_flight_;
    finish(std::move(outcome), done);
    return true;
  }
  ++in_flight_;
  const std::string device = outcome.command.device_id;
  const std::string metric = outcome.command.metric;
  model::Value value = outcome.command.value;
  it->second->write(device, metric, std::move(value),
                    [this, outcome = std::move(outcome),
                     done = std::move(done)](const adapters::WriteResult& r) mutable {
                      outcome.result = r;
                      finish(std::move(outcome), done);
                    });
  return true;
}

void CommandRouter::finish(Outcome&& outcome, const std::function<void(const Outcome&)>& done) {
  --in_flight_;
  // Strictly increasing, so every command is its own row in history (unique device, type, time).
  outcome.completed_at = std::max(clock_.now(), last_audit_ + std::chrono::microseconds{1});
  last_audit_ = outcome.completed_at;
  seconds_.observe(
      std::chrono::duration<double>(outcome.completed_at - outcome.requested_at).count());
  metrics_
      .counter("fieldhub_commands_total", "Commands by result",
               {{"result", std::string(adapters::to_string(outcome.result.error))}})
      .inc();
  audit_(audit_event(outcome));
  done(outcome);
}

model::Event CommandRouter::audit_event(const Outcome& o) {
  model::Event e;
  e.device_id = o.command.device_id;
  e.type = "command";
  e.source_ts = e.received_ts = o.completed_at;
  e.provenance = {o.command.protocol, "api"};
  std::string attrs;
  common::JsonWriter w(attrs);
  w.begin_object().field("command_id", o.id).field("metric", o.command.metric);
  w.key("value").value(o.command.value);
  w.field("by", o.command.by);
  if (!o.command.comment.empty()) w.field("comment", o.command.comment);
  w.field("result", adapters::to_string(o.result.error));
  if (!o.result.detail.empty()) w.field("detail", o.result.detail);
  w.field("requested_at", o.requested_at);
  w.end_object();
  e.attributes_json = std::move(attrs);
  return e;
}

}  // namespace fieldhub::commands
