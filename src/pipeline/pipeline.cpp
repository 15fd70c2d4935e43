// SPDX-License-Identifier: Apache-2.0
#include "pipeline/pipeline.h"

#include <algorithm>
#include <boost/asio/post.hpp>

namespace fieldhub::pipeline {

namespace {

// Tells the tracker each device in the message was seen at its receipt time. A message is almost
// always one device's, so consecutive records of the same device cost one hash lookup in all.
void observe_devices(health::HealthTracker& tracker, const Envelope& env) {
  std::string_view last;
  const auto see = [&](const std::string& device, model::Timestamp received) {
    if (device == last) return;
    last = device;
    tracker.observe(device, received);
  };
  for (const auto& e : env.events) see(e.device_id, e.received_ts);
  for (const auto& r : env.readings) see(r.device_id, r.received_ts);
}

}  // namespace

Pipeline::Pipeline(boost::asio::any_io_executor io, const config::PipelineConfig& config,
                   const common::Clock& clock, common::Metrics& metrics, stores::LiveStore& live,
                   stores::HistoryStore& history, LiveFeed& feed, Spool* spool)
    : config_(config),
      clock_(clock),
      metrics_(metrics),
      live_(live),
      feed_(feed),
      limits_{config.max_future_skew, config.max_past_age},
      io_(io),
      spool_(spool),
      writer_(
          io, history, config, metrics,
          [this](HistoryWriter::Completion&& done) { on_durable(std::move(done)); }, spool),
      messages_received_(metrics.counter("fieldhub_messages_received_total",
                                         "Inbound messages handed to the pipeline")),
      messages_accepted_(metrics.counter("fieldhub_messages_accepted_total",
                                         "Messages of which at least one record was kept")),
      messages_deduplicated_(
          metrics.counter("fieldhub_messages_deduplicated_total",
                          "Redelivered messages recognised and not stored again")),
      readings_ingested_(metrics.counter("fieldhub_readings_ingested_total",
                                         "Readings accepted into the pipeline")),
      events_ingested_(
          metrics.counter("fieldhub_events_ingested_total", "Events accepted into the pipeline")),
      readings_stored_(
          metrics.counter("fieldhub_readings_stored_total", "Readings committed to history")),
      readings_duplicate_(
          metrics.counter("fieldhub_readings_duplicate_total",
                          "Readings already in history (same device, metric, time)")),
      events_stored_(
          metrics.counter("fieldhub_events_stored_total", "Events committed to history")),
      events_duplicate_(
          metrics.counter("fieldhub_events_duplicate_total", "Events already in history")),
      dead_letters_stored_(metrics.counter("fieldhub_dead_letters_stored_total",
                                           "Dead letters committed to history")),
      future_timestamps_(metrics.counter(
          "fieldhub_timestamps_untrusted_total",
          "Records ordered by receipt time because their own time is missing or untrusted",
          {{"reason", "future"}})),
      missing_timestamps_(metrics.counter(
          "fieldhub_timestamps_untrusted_total",
          "Records ordered by receipt time because their own time is missing or untrusted",
          {{"reason", "missing"}})),
      saturation_episodes_(
          metrics.counter("fieldhub_pipeline_saturated_total",
                          "Times the history queue filled and adapters were asked to pause")) {}

void Pipeline::start() {
  if (spool_ != nullptr) {
    spool_->start([this](std::vector<AckToken>&& acks) {
      boost::asio::post(io_, [this, acks = std::move(acks)] {
        release(acks);
        update_saturation();
      });
    });
  }
  writer_.start();
}

void Pipeline::stop() {
  // The spool syncs what is queued first, so history can drain it; what history does not take
  // before the deadline stays in the spool for the next start.
  if (spool_ != nullptr) spool_->flush(std::chrono::seconds{10});
  writer_.stop();
  if (spool_ != nullptr) spool_->stop();
}

void Pipeline::enqueue(Envelope&& env) {
  if (spool_ != nullptr) {
    spool_->append(std::move(env));
  } else {
    writer_.push(std::move(env));
  }
  update_saturation();
}

void Pipeline::count_dead_letters(const Envelope& env, bool whole_message) {
  if (whole_message) {
    metrics_
        .counter("fieldhub_messages_rejected_total", "Messages refused whole, by reason",
                 {{"reason", env.dead_letters.front().reason}})
        .inc();
    return;
  }
  for (const auto& d : env.dead_letters) {
    metrics_
        .counter("fieldhub_records_rejected_total",
                 "Parts of otherwise usable messages refused, by reason", {{"reason", d.reason}})
        .inc();
  }
}

void Pipeline::submit(Envelope&& env, std::uint64_t digest) {
  messages_received_.inc();
  if (digest != 0) {
    // Only a message flagged as a possible repeat is checked, so a device that legitimately sends
    // the same payload twice is never dropped; every message is remembered.
    const bool seen = recent_.seen_or_remember(digest);
    if (seen && env.redelivered) {
      messages_deduplicated_.inc();
      // Acknowledge it only after whatever is queued before it is durable: its original may still
      // be in the queue.
      Envelope ack_only;
      ack_only.ack = env.ack;
      enqueue(std::move(ack_only));
      return;
    }
  }

  const ValidationNotes notes = validate(env, limits_, clock_.now());
  future_timestamps_.inc(notes.future_timestamps);
  missing_timestamps_.inc(notes.missing_timestamps);
  const bool has_records = !env.readings.empty() || !env.events.empty();
  if (!env.dead_letters.empty()) count_dead_letters(env, !has_records);
  if (has_records) messages_accepted_.inc();

  // The store needs the digest only for records it cannot recognise by their own time.
  const bool needs_digest =
      std::any_of(env.readings.begin(), env.readings.end(),
                  [](const model::Reading& r) { return !r.source_ts_trusted; }) ||
      std::any_of(env.events.begin(), env.events.end(),
                  [](const model::Event& e) { return !e.source_ts_trusted; });
  // A dead letter has no key of its own either: with the digest, a replay of a committed message
  // (the spool's committed mark is not synced) does not store it twice.
  env.replay_digest = needs_digest || !env.dead_letters.empty() ? digest : 0;

  if (health_ != nullptr && env.device_heard) observe_devices(*health_, env);

  // Events first: an urgent call must not wait behind telemetry.
  for (const auto& e : env.events) {
    live_.touch(e.device_id, e.received_ts);
    feed_.publish_event(e);
  }
  events_ingested_.inc(env.events.size());
  if (observer_ != nullptr && !env.events.empty()) {
    observer_->on_events(env.events, digest);
    if (gate_ != nullptr) env.ack.gate_mark = gate_->mark();
  }
  if (!env.readings.empty()) {
    live_.apply(env.readings);
    feed_.publish_readings(env.readings);
    if (observer_ != nullptr) observer_->on_readings(env.readings);
    readings_ingested_.inc(env.readings.size());
  }
  enqueue(std::move(env));
}

void Pipeline::submit_health_event(model::Event&& event) {
  feed_.publish_event(event);
  events_ingested_.inc();
  Envelope env;
  env.events.push_back(std::move(event));
  enqueue(std::move(env));
}

void Pipeline::submit_system_event(model::Event&& event) {
  events_ingested_.inc();
  Envelope env;
  env.events.push_back(std::move(event));
  enqueue(std::move(env));
}

void Pipeline::acknowledge_in_order(AckToken ack) {
  Envelope ack_only;
  ack_only.ack = ack;
  enqueue(std::move(ack_only));
}

void Pipeline::update_saturation() {
  const std::size_t depth = spool_ != nullptr ? spool_->pending() : writer_.depth();
  const std::size_t readings =
      spool_ != nullptr ? spool_->pending_readings() : writer_.readings_depth();
  const bool full = spool_ != nullptr && spool_->full();
  // Envelopes and the readings in them: either bound pauses the adapters; both must fall below
  // half for them to resume.
  const bool now_saturated =
      full ||
      (saturated_ ? depth > config_.queue_capacity / 2 || readings > config_.queue_readings / 2
                  : depth >= config_.queue_capacity || readings >= config_.queue_readings);
  if (now_saturated == saturated_) return;
  saturated_ = now_saturated;
  if (saturated_) saturation_episodes_.inc();
  for (const auto& handler : on_saturation_) handler(saturated_);
}

void Pipeline::on_durable(HistoryWriter::Completion&& done) {
  const auto& r = done.result;
  readings_stored_.inc(r.readings_stored);
  readings_duplicate_.inc(r.readings_duplicate);
  events_stored_.inc(r.events_stored);
  events_duplicate_.inc(r.events_duplicate);
  messages_deduplicated_.inc(r.envelopes_duplicate);
  dead_letters_stored_.inc(r.dead_letters_stored);
  release(done.acks);
  update_saturation();
}

void Pipeline::release(std::span<const AckToken> acks) {
  for (const auto& ack : acks) {
    if (held_acks_.empty() && (gate_ == nullptr || ack.gate_mark <= gate_->durable())) {
      ack.target->acknowledge(ack.cookie);
    } else {
      held_acks_.push_back(ack);
    }
  }
}

void Pipeline::gate_advanced() {
  const std::uint64_t durable = gate_ != nullptr ? gate_->durable() : ~std::uint64_t{0};
  while (!held_acks_.empty() && held_acks_.front().gate_mark <= durable) {
    held_acks_.front().target->acknowledge(held_acks_.front().cookie);
    held_acks_.pop_front();
  }
}

}  // namespace fieldhub::pipeline
