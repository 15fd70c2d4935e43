// SPDX-License-Identifier: Apache-2.0
// The live feed (/api/v1/live) with a watchdog: the server sends a heartbeat every second, so no
// frame for WATCHDOG_MS (two heartbeats missed, and a half) means this console is not receiving
// alarms, whether the socket closed or silently stalled; checked every 100 ms, the banner is up
// within 2.6 s of the last frame, inside the 3 s the issue allows. Reconnects by itself with capped backoff; every new connection starts with
// hello (+ snapshot when telemetry is on) + alarms, which the views take as a full resync.
// Telemetry (readings frames) is asked for only while a view shows it (setTelemetry): the alarm
// console does not pay for every meter update. The server answers a change with "subscribed" and,
// when telemetry is turned on, a fresh snapshot. A view may ask for telemetry at a display rate
// (interval_ms: the newest value per metric once per interval), which keeps a board of thousands
// of busy meters smooth and cheap; events and alarms never wait for it.
import { learnServerTime } from './util.js';

const WATCHDOG_MS = 2500;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

export class Feed {
  // onFrame(msg) for every frame; onState(up, text) when the connection state changes.
  constructor({ onFrame, onState }) {
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.up = false;
    this.lastFrameAt = 0;
    this.delay = RECONNECT_MIN_MS;
    this.retryTimer = null;
    this.silentMs = null;
    this.telemetry = true; // what the page wants
    this.intervalMs = 0; // telemetry at most this often (0: as it comes, every 10 ms tick)
    this.socketTelemetry = true; // what the current socket was asked for
    this.socketIntervalMs = 0;
    setInterval(() => this.watch(), 100);
  }

  start() {
    this.lastFrameAt = Date.now();
    this.connect();
  }

  connect() {
    this.retryTimer = null;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      const query = !this.telemetry
        ? '?telemetry=off'
        : this.intervalMs > 0
          ? `?interval_ms=${this.intervalMs}`
          : '';
      ws = new WebSocket(`${scheme}://${location.host}/api/v1/live${query}`);
      this.socketTelemetry = this.telemetry;
      this.socketIntervalMs = this.intervalMs;
    } catch (e) {
      this.down(`Cannot open the live feed (${e.message})`);
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      if (ws === this.socket) this.sendSubscription();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.socket) return;
      this.lastFrameAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('fieldhub: unparsable frame');
        return;
      }
      if (msg.type === 'hello') {
        this.delay = RECONNECT_MIN_MS;
        this.setState(true, 'Live');
      }
      if (msg.ts && (msg.type === 'hello' || msg.type === 'heartbeat')) learnServerTime(msg.ts);
      this.onFrame(msg);
    };
    ws.onclose = () => {
      if (ws !== this.socket) return;
      this.silentMs = Date.now() - this.lastFrameAt;
      this.down('Live feed closed');
    };
  }

  // Turns the readings frames (and the snapshot) on or off for this page, at most one frame per
  // intervalMs (0: every tick).
  setTelemetry(on, intervalMs = 0) {
    this.telemetry = on;
    this.intervalMs = on ? intervalMs : 0;
    this.sendSubscription();
  }

  sendSubscription() {
    const ws = this.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (this.socketTelemetry === this.telemetry && this.socketIntervalMs === this.intervalMs) return;
    ws.send(
      JSON.stringify({ type: 'subscribe', telemetry: this.telemetry, interval_ms: this.intervalMs }),
    );
    this.socketTelemetry = this.telemetry;
    this.socketIntervalMs = this.intervalMs;
  }

  // Gives up on the current socket and schedules the next attempt.
  down(text) {
    const ws = this.socket;
    this.socket = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onopen = null;
      ws.close();
    }
    this.setState(false, `${text} — reconnecting`);
    if (!this.retryTimer) {
      this.retryTimer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
    }
  }

  watch() {
    const silent = Date.now() - this.lastFrameAt;
    if (silent <= WATCHDOG_MS) return;
    if (this.socket) {
      this.silentMs = silent; // how long the feed had been quiet when the page declared it down
      this.down(`No heartbeat for ${Math.round(silent / 1000)} s`);
    } else if (this.up) {
      this.setState(false, 'Live feed down — reconnecting');
    }
  }

  setState(up, text) {
    const changed = up !== this.up;
    this.up = up;
    this.onState(up, text, changed);
  }
}
