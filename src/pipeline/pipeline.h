// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "config/config.h"
#include "health/health_tracker.h"
#include "pipeline/envelope.h"
#include "pipeline/history_writer.h"
#include "pipeline/recent_digests.h"
#include "pipeline/spool.h"
#include "pipeline/validate.h"
#include "stores/history_store.h"
#include "stores/live_store.h"

namespace fieldhub::pipeline {

// Where live records go as they arrive (the web's LiveHub; a recorder in tests). Called on the io
// executor; must not block.
class LiveFeed {
 public:
  virtual ~LiveFeed() = default;
  virtual void publish_readings(std::span<const model::Reading> readings) = 0;
  virtual void publish_event(const model::Event& event) = 0;
};

// Who else sees every accepted record, right after the live feed (the alarm engine). Called on the
// io executor; must not block. `message_digest` identifies the inbound message (0: none).
class RecordObserver {
 public:
  virtual ~RecordObserver() = default;
  virtual void on_events(std::span<const model::Event> events, std::uint64_t message_digest) = 0;
  virtual void on_readings(std::span<const model::Reading> readings) = 0;
};

// A second durability an acknowledgement must wait for, besides history: the alarm journal.
// mark() is the position after everything appended so far; durable() the position made durable.
// Both are read on the io executor; the owner calls Pipeline::gate_advanced() there whenever
// durable() moves.
class DurabilityGate {
 public:
  virtual ~DurabilityGate() = default;
  virtual std::uint64_t mark() const = 0;
  virtual std::uint64_t durable() const = 0;
};

// The only place records flow. Every adapter hands each inbound message to submit() as an
// Envelope; the pipeline validates it, drops redeliveries it has already taken, and fans it out:
// events to the live feed at once (they never wait behind telemetry batches), readings to the
// live store and the live feed, and everything to history. Without a spool, the history commit
// releases the message's acknowledgement; with one, the spool's sync does, and the history writer
// drains the spool behind it.
//
// Runs on the io executor (submit, completions) plus the history writer's (and spool's) thread.
// The queue to history (or to the spool's sync) is bounded: at queue_capacity envelopes or
// queue_readings readings, or while the spool is full of events, the pipeline reports saturation
// so adapters stop reading (TCP and the broker hold the rest); with both below half, relief.
class Pipeline {
 public:
  Pipeline(boost::asio::any_io_executor io, const config::PipelineConfig& config,
           const common::Clock& clock, common::Metrics& metrics, stores::LiveStore& live,
           stores::HistoryStore& history, LiveFeed& feed, Spool* spool = nullptr);

  void start();
  void stop();

  // Takes one message. Never blocks and never throws on bad input: what cannot be used becomes a
  // dead letter with a counted reason. `digest` identifies the message for redelivery detection
  // (0: the adapter has none).
  void submit(Envelope&& env, std::uint64_t digest);

  // A health change as an event (type "health"): stored in history and pushed on the live feed
  // like any event, but it is not data from the device, so it neither observes the device in the
  // health tracker nor moves its last_seen in the live store.
  void submit_health_event(model::Event&& event);

  // A record the process itself makes (an alarm change and who made it): history only, not the
  // live feed (the caller publishes its own frame) and not the health tracker.
  void submit_system_event(model::Event&& event);

  // A message with nothing to store (a device's status message): acknowledged once everything
  // queued before it is durable, so acknowledgements keep the order of the messages.
  void acknowledge_in_order(AckToken ack);

  // The health tracker fed with every accepted record's device and receipt time (observe()). Set
  // by the composition root before adapters start; adapters reach it here for their link state.
  // Null: no health tracking (unit tests).
  void set_health(health::HealthTracker* tracker) { health_ = tracker; }
  health::HealthTracker* health() const { return health_; }
  // The alarm engine; null: none (unit tests).
  void set_observer(RecordObserver* observer) { observer_ = observer; }
  // Messages whose events the observer saw are acknowledged only once `gate` has their mark
  // durable too (acknowledgements keep their order, so later ones wait behind them).
  void set_gate(DurabilityGate* gate) { gate_ = gate; }
  void gate_advanced();

  bool saturated() const { return saturated_; }
  // Called on the io executor when saturation starts (true) or ends (false). Every adapter that
  // reads a stream registers one; they are called in registration order.
  void on_saturation(std::function<void(bool)> handler) {
    on_saturation_.push_back(std::move(handler));
  }
  bool history_healthy() const { return writer_.healthy(); }
  // The store's message when history became degraded; empty while healthy.
  std::string history_degraded_reason() const { return writer_.degraded_reason(); }
  // True without a spool.
  bool spool_healthy() const { return spool_ == nullptr || spool_->healthy(); }

 private:
  void enqueue(Envelope&& env);
  void on_durable(HistoryWriter::Completion&& done);
  void release(std::span<const AckToken> acks);
  void count_dead_letters(const Envelope& env, bool whole_message);
  void update_saturation();

  const config::PipelineConfig& config_;
  const common::Clock& clock_;
  common::Metrics& metrics_;
  stores::LiveStore& live_;
  LiveFeed& feed_;
  ValidationLimits limits_;
  boost::asio::any_io_executor io_;
  Spool* spool_;
  HistoryWriter writer_;
  bool saturated_ = false;
  health::HealthTracker* health_ = nullptr;
  RecordObserver* observer_ = nullptr;
  DurabilityGate* gate_ = nullptr;
  std::deque<AckToken> held_acks_;  // durable in history, waiting for the gate (in order)
  std::vector<std::function<void(bool)>> on_saturation_;

  // Digests of recent messages, to drop a broker redelivery of a message still in flight here.
  // Bounded: the broker redelivers only unacknowledged messages, at most its inflight window.
  RecentDigests recent_{std::size_t{1} << 16};

  common::Counter& messages_received_;
  common::Counter& messages_accepted_;
  common::Counter& messages_deduplicated_;
  common::Counter& readings_ingested_;
  common::Counter& events_ingested_;
  common::Counter& readings_stored_;
  common::Counter& readings_duplicate_;
  common::Counter& events_stored_;
  common::Counter& events_duplicate_;
  common::Counter& dead_letters_stored_;
  common::Counter& future_timestamps_;
  common::Counter& missing_timestamps_;
  common::Counter& saturation_episodes_;
};

}  // namespace fieldhub::pipeline
