// SPDX-License-Identifier: Apache-2.0
// Browser half of issue #6 point 12: an urgent event published over MQTT → its alarm on screen in
// K open alarm consoles in Debian's headless Chromium, idle and under a telemetry load.
//
//   node bench/browser-alarm-latency.mjs [--bin-dir build/ci/bin] [--events 1000] [--rate 20]
//        [--dashboards 1] [--load-rate 5000] [--tabs] [--out-dir DIR]
//   e.g. four consoles:  node bench/browser-alarm-latency.mjs --dashboards 4 --rate 5 --load-rate 0
//
// Needs a built fieldhub and fieldhub-load (bench/load/) in --bin-dir (default: build/bench/bin,
// the Release build of bench/run-e2e.sh, if it exists, else build/ci/bin), Mosquitto, Chromium and
// node_modules (scripts/install-deps.sh). Runs, for each K of --dashboards, --events events idle
// and again under the telemetry load (none with --load-rate 0) and prints the figures of each
// scenario (the defaults: about 3 minutes). Figures and their reading: docs/PERFORMANCE.md.
//
// What runs: a real Mosquitto (TCP_NODELAY, as bench/run-e2e.sh) and fieldhub (memory live
// state, SQLite history) on random loopback ports, via tests/browser/harness.mjs; one call point
// per event (distinct devices, site "bench"), whose profile raises a high alarm (the full-screen
// takeover) for each "code_blue" event. The events are published by a QoS 1 MQTT client in this
// process at --rate per second, each timed with Date.now() at the socket write. K dashboards are
// K windows of one Chromium (as on K operator screens; --tabs: K tabs of one window, of which only
// the front one is displayed). In every page a probe (page.evaluate once the console is live)
// watches the takeover and the alarm table;
// when an alarm first shows in either it notes the time, then waits for the end of the frame that
// draws it (the frame after a change made outside a frame, or the current one for a change made
// in an animation frame: the table is drawn in one) and takes that as "on screen": the main
// thread has painted and committed the frame; rasterising and showing it (compositor) is not
// included. Page times are performance.timeOrigin + performance.now(), corrected by the page's
// measured offset to Date.now() (the same system clock as the publisher). Once an alarm is on
// screen in every page this script acknowledges it over REST (as an operator would), so a
// console holds a few open alarms at a time, not 1,000. Under load, fieldhub-load publishes
// telemetry at --load-rate msgs/s (1,000 devices, one value per message, QoS 1) for the whole
// scenario; every page receives that telemetry on its live feed too.
//
// Every loop is bounded by count and time; every process started here is stopped by pid.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const sourceDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    'bin-dir': { type: 'string' },
    events: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    dashboards: { type: 'string', default: '1' },
    'load-rate': { type: 'string', default: '5000' },
    'out-dir': { type: 'string' },
    tabs: { type: 'boolean', default: false },
  },
});
const EVENTS = Number(opts.events);
const RATE = Number(opts.rate);
const LOAD_RATE = Number(opts['load-rate']);
const DASHBOARDS = opts.dashboards.split(',').map(Number);
if (!(EVENTS > 0 && EVENTS <= 100000 && RATE > 0 && RATE <= 1000 && LOAD_RATE >= 0 && DASHBOARDS.every((k) => k >= 1 && k <= 16))) {
  console.error('bad arguments: --events 1..100000, --rate 1..1000, --load-rate >= 0, --dashboards K,K… with 1 ≤ K ≤ 16');
  process.exit(2);
}
const defaultBin = fs.existsSync(path.join(sourceDir, 'build/bench/bin/fieldhub')) ? 'build/bench/bin' : 'build/ci/bin';
const binDir = path.resolve(sourceDir, opts['bin-dir'] || defaultBin);
for (const tool of ['fieldhub', ...(LOAD_RATE > 0 ? ['fieldhub-load'] : [])]) {
  if (!fs.existsSync(path.join(binDir, tool))) {
    console.error(`${path.join(binDir, tool)} is missing: build it first (see the header of this script)`);
    process.exit(2);
  }
}

const h = await import(path.join(sourceDir, 'tests/browser/harness.mjs'));
const { chromium } = createRequire(path.join(sourceDir, 'package.json'))('playwright-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- a minimal MQTT 3.1.1 publisher (QoS 1, TCP_NODELAY): the publish time is the socket write --

class Publisher {
  constructor(port) {
    this.port = port;
    this.nextId = 1;
    this.unacked = 0; // PUBLISHes without their PUBACK yet
    this.buffer = Buffer.alloc(0);
  }

  static length(n) {
    const bytes = [];
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      bytes.push(b);
    } while (n > 0);
    return Buffer.from(bytes);
  }

  static str(s) {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.socket = net.connect({ port: this.port, host: '127.0.0.1' });
      this.socket.setNoDelay(true);
      this.socket.once('error', reject);
      this.onConnack = resolve;
      this.socket.on('data', (d) => this.onData(d));
      this.socket.once('connect', () => {
        // Protocol "MQTT" level 4, clean session, keep-alive 0 (off), client id.
        const body = Buffer.concat([Publisher.str('MQTT'), Buffer.from([4, 0x02, 0, 0]), Publisher.str(`bbench-${process.pid}`)]);
        this.socket.write(Buffer.concat([Buffer.from([0x10]), Publisher.length(body.length), body]));
      });
    });
  }

  onData(d) {
    this.buffer = Buffer.concat([this.buffer, d]);
    for (;;) {
      if (this.buffer.length < 2) return;
      let len = 0;
      let mult = 1;
      let i = 1;
      for (; i < this.buffer.length; i += 1) {
        len += (this.buffer[i] & 0x7f) * mult;
        mult *= 128;
        if ((this.buffer[i] & 0x80) === 0) break;
      }
      if (i >= this.buffer.length || this.buffer.length < i + 1 + len) return;
      const type = this.buffer[0] >> 4;
      const body = this.buffer.subarray(i + 1, i + 1 + len);
      this.buffer = this.buffer.subarray(i + 1 + len);
      if (type === 2) this.onConnack();
      if (type === 4 && body.length >= 2) this.unacked -= 1;
    }
  }

  // Writes one QoS 1 PUBLISH; `payloadAt(ms)` builds the payload from the write time, returned.
  publish(topic, payloadAt) {
    const id = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    const at = Date.now();
    const packetId = Buffer.alloc(2);
    packetId.writeUInt16BE(id);
    const body = Buffer.concat([Publisher.str(topic), packetId, Buffer.from(payloadAt(at), 'utf8')]);
    this.unacked += 1;
    this.socket.write(Buffer.concat([Buffer.from([0x32]), Publisher.length(body.length), body]));
    return at;
  }

  close() {
    this.socket.end(Buffer.from([0xe0, 0]));
  }
}

// ---- the in-page probe ---------------------------------------------------------------------------

// Runs in the page once its console is live. Records [alarm id, "takeover"|"row", dom ms, on-screen ms]
// the first time an alarm shows in the takeover or the table.
function probe() {
  const clock = () => performance.timeOrigin + performance.now();
  const raf = window.requestAnimationFrame.bind(window);
  let inFrame = false;
  // The dashboard's own frame callbacks: a change made inside one is painted by this frame.
  window.requestAnimationFrame = (cb) =>
    raf((t) => {
      inFrame = true;
      try {
        cb(t);
      } finally {
        queueMicrotask(() => {
          inFrame = false;
        });
      }
    });
  const seen = new Set();
  const done = [];
  let framed = []; // drawn by the frame being rendered now
  let unframed = []; // changed outside a frame: drawn by the next one
  let rafQueued = false;
  let endQueued = false;
  const channel = new MessageChannel();
  // Posted during a frame, this runs once that frame's rendering task (style, layout, paint,
  // commit) has finished.
  channel.port1.onmessage = () => {
    endQueued = false;
    const t = clock();
    for (const r of framed) {
      r[3] = t;
      done.push(r);
    }
    framed = [];
  };
  const endOfFrame = () => {
    if (!endQueued) {
      endQueued = true;
      channel.port2.postMessage(0);
    }
  };
  const note = (id, via) => {
    if (seen.has(id)) return;
    seen.add(id);
    const r = [id, via, clock(), 0];
    if (inFrame) {
      framed.push(r);
      endOfFrame();
      return;
    }
    unframed.push(r);
    if (!rafQueued) {
      rafQueued = true;
      raf(() => {
        rafQueued = false;
        framed.push(...unframed);
        unframed = [];
        endOfFrame();
      });
    }
  };
  const scan = () => {
    const overlay = document.getElementById('alarm-overlay');
    if (!overlay.hidden && overlay.dataset.alarm) note(overlay.dataset.alarm, 'takeover');
    for (const tr of document.getElementById('alarms-body').children) if (tr.dataset.alarm) note(tr.dataset.alarm, 'row');
  };
  const observe = () => {
    const mo = new MutationObserver(scan);
    mo.observe(document.getElementById('alarm-overlay'), { attributes: true, attributeFilter: ['hidden', 'data-alarm'] });
    mo.observe(document.getElementById('alarms-body'), { childList: true });
  };
  // A window opened by window.open() may run this after its document has loaded.
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', observe);
  else queueMicrotask(observe);
  window.__bench = {
    take: () => done.splice(0),
    // Date.now() − this page's clock, the median of a few reads.
    offset: () => {
      const d = [];
      for (let i = 0; i < 9; i += 1) d.push(Date.now() - clock());
      return d.sort((a, b) => a - b)[4];
    },
  };
}

// ---- set-up --------------------------------------------------------------------------------------

const PROFILE = `kind = "call_point"
description = "Bench call point: every code_blue event is a high alarm (a takeover); not latched, so an ack closes it"
source = "fieldhub bench"
expected_interval = "1h"
[[metrics]]
name = "battery"
unit = "%"
[[events]]
type = "code_blue"
priority = "high"
[[alarms]]
event = "code_blue"
priority = "high"
message = "Code blue"
`;

// fieldhub-load's devices (bench/run-e2e.sh's profile, without its alarm rule).
let LOAD_PROFILE = 'kind = "test_counter"\ndescription = "load test device"\nsource = "fieldhub bench"\n[[metrics]]\nname = "seq"\nunit = ""\n';
for (let v = 1; v <= 9; v += 1) LOAD_PROFILE += `[[metrics]]\nname = "v${v}"\nunit = "W"\n`;
const LOAD_DEVICES = 1000;

const scenarios = [];
for (const k of DASHBOARDS) {
  scenarios.push({ dashboards: k, load: false });
  if (LOAD_RATE > 0) scenarios.push({ dashboards: k, load: true });
}
const device = (s, i) => `cp-${s}-${String(i).padStart(5, '0')}`;

function config(httpPort, brokerPort) {
  const lines = [
    'data_dir = "data"',
    'profiles_dir = "profiles"',
    '[server]',
    `listen = "127.0.0.1:${httpPort}"`,
    `static_dir = "${path.join(sourceDir, 'src/web/static')}"`,
    `vendor_dir = "${path.join(sourceDir, 'node_modules')}"`,
    '[mqtt]',
    'host = "127.0.0.1"',
    `port = ${brokerPort}`,
    'client_id = "fieldhub-bbench"',
    '[stores]',
    'live = "memory:"',
    'history = "sqlite:data/history.db"',
  ];
  scenarios.forEach((_, s) => {
    for (let i = 0; i < EVENTS; i += 1) {
      const ward = 1 + (i % 8);
      lines.push(
        '[[devices]]',
        `id = "${device(s, i)}"`,
        'kind = "call_point"',
        'site = "bench"',
        'profile = "bench-call-point"',
        `location = { ward = "${ward}", room = "${1 + (Math.floor(i / 8) % 40)}", bed = "${1 + (i % 2)}" }`,
      );
    }
  });
  if (LOAD_RATE > 0) {
    for (let d = 0; d < LOAD_DEVICES; d += 1) {
      lines.push('[[devices]]', `id = "dev-${d}"`, 'kind = "test_counter"', 'site = "load"', 'profile = "load-counter"');
    }
  }
  return `${lines.join('\n')}\n`;
}

const dir = opts['out-dir'] ? path.resolve(opts['out-dir']) : h.tempDir('fieldhub-bbench-');
fs.mkdirSync(path.join(dir, 'profiles'), { recursive: true });
fs.writeFileSync(path.join(dir, 'profiles/bench-call-point.toml'), PROFILE);
fs.writeFileSync(path.join(dir, 'profiles/load-counter.toml'), LOAD_PROFILE);

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] : NaN);
const fmt = (v) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(1) : v.toFixed(0)) : '-');
const stats = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return `${fmt(pct(s, 0.5))} / ${fmt(pct(s, 0.99))} / ${fmt(s[s.length - 1])}`;
};

let mosquitto;
let hub;
let browser;
try {
  mosquitto = await h.startMosquitto(dir, 'set_tcp_nodelay true\nmax_inflight_messages 1000\n');
  const httpPort = await h.freePort();
  hub = new h.Fieldhub(binDir, dir, httpPort, config(httpPort, mosquitto.port));
  await hub.start();
  browser = await h.launchBrowser(chromium);
  const publisher = new Publisher(mosquitto.port);
  await publisher.connect();
  const cpus = (await import('node:os')).cpus().length;
  const version = spawnSync(h.CHROMIUM, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`# ${new Date().toISOString()} ${cpus} cores, ${binDir}, ${version}`);
  console.log(`# ${EVENTS} code blues per scenario at ${RATE}/s, each on its own call point; telemetry load ${LOAD_RATE} msgs/s; times in ms as p50 / p99 / max`);

  for (const [s, sc] of scenarios.entries()) {
    const pages = [];
    // Anything left open by an earlier scenario is acknowledged first: every console starts empty.
    for (const a of (await hub.get('/api/v1/alarms?state=unacked')).alarms) {
      await fetch(`${hub.base}/api/v1/alarms/${a.id}/ack`, { method: 'POST', body: JSON.stringify({ by: 'bench' }) });
    }
    for (let i = 0; i < sc.dashboards; i += 1) {
      let page;
      // Each dashboard in its own window, as on K operator screens; with --tabs, K tabs of one
      // window (only the front one is displayed, the others still run their frames).
      if (i === 0 || opts.tabs) {
        page = await browser.context.newPage();
        await page.goto(`${hub.base}/#alarms`);
      } else {
        [page] = await Promise.all([
          browser.context.waitForEvent('page'),
          pages[0].evaluate((url) => window.open(url, '_blank', 'popup,noopener,width=1280,height=860'), `${hub.base}/#alarms`),
        ]);
      }
      page.on('pageerror', (e) => console.log(`page ${i} error: ${e.message}`));
      await page.locator('#feed-state[data-state="live"]').waitFor({ timeout: 10000 });
      await page.locator('#alarms-status', { hasText: 'No open alarms.' }).waitFor({ timeout: 10000 });
      await page.evaluate(probe);
      const visible = await page.evaluate(() => document.visibilityState);
      if (visible !== 'visible') throw new Error(`page ${i} is ${visible}: it would not draw`);
      pages.push(page);
    }

    let load;
    const seconds = EVENTS / RATE;
    if (sc.load) {
      load = new h.Child(
        `load-${s}`,
        [
          path.join(binDir, 'fieldhub-load'),
          '--mode', 'fieldhub', '--broker-port', String(mosquitto.port), '--http-port', String(httpPort),
          '--pid', String(hub.child.proc.pid), '--devices', String(LOAD_DEVICES), '--site', 'load', '--values', '1',
          '--rate', String(LOAD_RATE), '--count', String(Math.round(LOAD_RATE * (seconds + 6))),
          '--first-seq', String(s * 10000000), '--timeout', String(Math.ceil(seconds + 60)),
        ],
        dir,
      );
      await sleep(2000); // the load is running before the first event
    }

    const offsets = await Promise.all(pages.map((p) => p.evaluate(() => window.__bench.offset())));
    const published = new Array(EVENTS).fill(0); // publish ms per event
    const byDevice = new Map(); // device id → event index
    const byAlarm = new Map(); // alarm id → {seen: [record per page], acked}
    const events = new Array(EVENTS).fill(null); // {alarm, received ms}
    let ackErrors = 0;
    let repeats = 0;
    let acksInFlight = 0;

    const ack = async (id, entry) => {
      acksInFlight += 1;
      try {
        const res = await fetch(`${hub.base}/api/v1/alarms/${id}/ack`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ by: 'bench' }),
        });
        if (!res.ok) {
          ackErrors += 1;
          return;
        }
        const alarm = await res.json();
        const i = byDevice.get(alarm.device);
        if (i === undefined) return;
        if (alarm.count !== 1) repeats += 1;
        events[i] = { entry, received: Date.parse(alarm.raised_at) };
      } catch {
        ackErrors += 1;
      } finally {
        acksInFlight -= 1;
      }
    };

    let publishing = true;
    const poll = async () => {
      const records = await Promise.all(pages.map((p) => p.evaluate(() => window.__bench.take())));
      records.forEach((list, pi) => {
        for (const r of list) {
          let entry = byAlarm.get(r[0]);
          if (!entry) {
            entry = { seen: new Array(pages.length).fill(null), acked: false };
            byAlarm.set(r[0], entry);
          }
          entry.seen[pi] = { via: r[1], dom: r[2] + offsets[pi], screen: r[3] + offsets[pi] };
        }
      });
      for (const [id, entry] of byAlarm) {
        if (!entry.acked && entry.seen.every(Boolean)) {
          entry.acked = true;
          ack(id, entry);
        }
      }
    };
    const poller = (async () => {
      const deadline = Date.now() + (seconds + 20) * 1000;
      while (Date.now() < deadline) {
        await poll();
        if (!publishing && acksInFlight === 0 && events.every(Boolean)) break;
        await sleep(50);
      }
    })();

    const t0 = Date.now() + 100;
    for (let i = 0; i < EVENTS; i += 1) {
      const wait = t0 + (i * 1000) / RATE - Date.now();
      if (wait > 0) await sleep(wait);
      const id = device(s, i);
      byDevice.set(id, i);
      published[i] = publisher.publish(`fieldhub/bench/${id}/event`, (at) =>
        JSON.stringify({ ts: new Date(at).toISOString(), type: 'code_blue', seq: i }),
      );
    }
    const publishSeconds = (Date.now() - t0) / 1000;
    publishing = false;
    await poller;
    await h.waitUntil(() => publisher.unacked === 0, 10000, 'the broker to acknowledge every event');

    let loadLine = '';
    if (load) {
      await Promise.race([load.exited, sleep(90000)]);
      await load.stop();
      loadLine = load.log().split('\n').find((l) => l.startsWith('mode=fieldhub')) || `(no summary: ${load.log().slice(-300)})`;
    }

    const toFieldhub = [];
    const perPage = pages.map(() => []);
    const domPerPage = pages.map(() => []);
    const onAll = [];
    let viaRow = 0;
    let missing = 0;
    events.forEach((e, i) => {
      if (!e) {
        missing += 1;
        return;
      }
      toFieldhub.push(e.received - published[i]);
      let last = 0;
      e.entry.seen.forEach((seen, pi) => {
        perPage[pi].push(seen.screen - published[i]);
        domPerPage[pi].push(seen.dom - published[i]);
        last = Math.max(last, seen.screen - published[i]);
        if (seen.via === 'row') viaRow += 1;
      });
      onAll.push(last);
    });
    const all = perPage.flat();
    const allDom = domPerPage.flat();
    console.log(
      `\n## ${sc.dashboards} dashboard${sc.dashboards > 1 ? 's' : ''}, ${sc.load ? `telemetry ${LOAD_RATE} msgs/s` : 'idle'}: ` +
        `${EVENTS} events in ${publishSeconds.toFixed(1)} s, ${EVENTS - missing} on screen in every page, ${missing} missing, ` +
        `${viaRow} page×event first shown as a table row (else the takeover), ${repeats} repeats, ${ackErrors} ack errors, ` +
        `page clock offsets ${offsets.map((o) => o.toFixed(1)).join(', ')} ms`,
    );
    console.log(`publish → fieldhub received (alarm raised_at): ${stats(toFieldhub)}`);
    perPage.forEach((v, pi) => console.log(`publish → on screen, page ${pi + 1}: ${stats(v)}   (DOM changed: ${stats(domPerPage[pi])})`));
    if (pages.length > 1) {
      console.log(`publish → on screen, all pages: ${stats(all)}   (DOM changed: ${stats(allDom)})`);
      console.log(`publish → on screen in every page (the last page per event): ${stats(onAll)}`);
    }
    if (loadLine) console.log(`fieldhub-load: ${loadLine}`);
    for (const p of pages) await p.close();
  }
  publisher.close();
} finally {
  if (browser) await browser.context.close();
  await h.stopAll();
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  console.log(`\nlogs and data: ${dir}`);
}
