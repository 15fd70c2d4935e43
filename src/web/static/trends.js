// SPDX-License-Identifier: Apache-2.0
// Meter trends: pick a device, a metric and a range; the history API answers raw points or
// rollups (step=auto picks by range, see src/web/README.md); uPlot draws them. Outages are gaps,
// never interpolated; counters (kWh, m³) are drawn as consumption per interval, not the total.
import { $, el, formatValue, getJson, now } from './util.js';

const RANGES = { '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400 };
const STEP_S = { '1m': 60, '1h': 3600 };
const GAP_FACTOR = 2.5; // a silence longer than this many expected intervals is an outage

// Points → uPlot columns [xs, ys], with a null point inside every outage so the line breaks.
// For counters, ys are the consumption since the previous point (or the bucket's delta).
export function toSeries(answer, expectedIntervalS) {
  const rollup = answer.resolution && answer.resolution !== 'raw';
  const bucketS = rollup ? STEP_S[answer.resolution] || 60 : 0;
  const pts = (answer.points || [])
    .map((p) => ({ t: Date.parse(p.ts) / 1000, p }))
    .filter((x) => !Number.isNaN(x.t))
    .sort((a, b) => a.t - b.t);
  // The expected spacing: a bucket for rollups, else the device's interval or, if unknown, the
  // median spacing of the answer itself.
  let spacing = bucketS || expectedIntervalS || 0;
  if (!spacing && pts.length > 2) {
    const gaps = pts.slice(1).map((x, i) => x.t - pts[i].t).sort((a, b) => a - b);
    spacing = gaps[Math.floor(gaps.length / 2)];
  }
  const gapS = rollup ? Math.max(1.5 * bucketS, GAP_FACTOR * (expectedIntervalS || 0)) : GAP_FACTOR * spacing;
  const xs = [];
  const ys = [];
  let prev = null; // previous point with a value: {t, v}
  for (const { t, p } of pts) {
    let v;
    if (rollup) v = answer.counter ? p.delta : p.mean;
    else v = typeof p.value === 'number' ? p.value : null;
    if (v === undefined) v = null;
    const outage = prev !== null && gapS > 0 && t - prev.t > gapS;
    if (outage) {
      xs.push((prev.t + t) / 2);
      ys.push(null);
    }
    if (answer.counter && !rollup) {
      // Consumption since the previous reading; unknown after an outage or a register reset.
      const delta = prev !== null && v !== null && !outage ? v - prev.v : null;
      xs.push(t);
      ys.push(delta !== null && delta >= 0 ? delta : null);
    } else {
      xs.push(t);
      ys.push(v);
    }
    if (v !== null) prev = { t, v };
    else if (rollup) prev = { t, v: 0 };
  }
  return { xs, ys, resolution: answer.resolution || 'raw', bucketS };
}

export class Trends {
  constructor({ devices }) {
    this.devices = devices; // the board's device map (id → {info, metrics})
    this.chart = null;
    this.request = 0;
    $('trend-device').addEventListener('change', () => this.pickDevice());
    $('trend-metric').addEventListener('change', () => this.load());
    $('trend-range').addEventListener('change', () => this.load());
    $('trend-reload').addEventListener('click', () => this.load());
    window.addEventListener('resize', () => this.resize());
  }

  // Called when the view opens, with optional ?device=&metric=&range= from the URL.
  async open(params) {
    this.fillDevices();
    if (params.get('range') && RANGES[params.get('range')]) $('trend-range').value = params.get('range');
    const wanted = params.get('device');
    if (wanted && this.devices.has(wanted)) $('trend-device').value = wanted;
    await this.pickDevice(params.get('metric'));
  }

  fillDevices() {
    const select = $('trend-device');
    const current = select.value;
    const ids = [...this.devices.keys()].sort();
    if (select.options.length === ids.length) return;
    select.replaceChildren(
      ...ids.map((id) => {
        const d = this.devices.get(id);
        return el('option', { value: id, text: `${id} (${d.info.kind || '?'}, ${d.info.site || ''})` });
      }),
    );
    if (current && this.devices.has(current)) select.value = current;
    else {
      // A meter first: that is what trends are for.
      const meter = ids.find((id) => /meter/.test(this.devices.get(id).info.kind || ''));
      if (meter) select.value = meter;
    }
  }

  async pickDevice(wantedMetric) {
    const id = $('trend-device').value;
    if (!id) {
      $('trend-status').textContent = 'No devices.';
      return;
    }
    try {
      const detail = await getJson(`/api/v1/devices/${encodeURIComponent(id)}`);
      const names = Object.entries(detail.metrics || {})
        .filter(([, m]) => m.value === null || typeof m.value === 'number')
        .map(([name, m]) => el('option', { value: name, text: m.unit ? `${name} (${m.unit})` : name }));
      $('trend-metric').replaceChildren(...names);
      if (wantedMetric && detail.metrics && wantedMetric in detail.metrics) $('trend-metric').value = wantedMetric;
      this.expectedIntervalS = detail.expected_interval_s || 0;
      await this.load();
    } catch (e) {
      $('trend-status').textContent = `Could not load ${id}: ${e.message}`;
    }
  }

  fetchHistory(id, metric, from, to) {
    const q = new URLSearchParams({ metric, from, to, step: 'auto' });
    return getJson(`/api/v1/devices/${encodeURIComponent(id)}/history?${q}`);
  }

  async load() {
    const id = $('trend-device').value;
    const metric = $('trend-metric').value;
    const range = $('trend-range').value;
    if (!id || !metric) {
      $('trend-status').textContent = id ? 'This device has no numeric metric.' : 'No devices.';
      return;
    }
    const ticket = ++this.request;
    const to = new Date(now());
    const from = new Date(to.getTime() - RANGES[range] * 1000);
    history.replaceState(null, '', `#trends?device=${encodeURIComponent(id)}&metric=${encodeURIComponent(metric)}&range=${range}`);
    $('trend-status').textContent = 'Loading…';
    let answer;
    try {
      answer = await this.fetchHistory(id, metric, from.toISOString(), to.toISOString());
    } catch (e) {
      if (ticket === this.request) $('trend-status').textContent = `Could not load the history: ${e.message}`;
      return;
    }
    if (ticket !== this.request) return; // a newer choice is on its way
    this.draw(answer, from.getTime() / 1000, to.getTime() / 1000);
  }

  draw(answer, fromS, toS) {
    const series = toSeries(answer, this.expectedIntervalS);
    const counter = Boolean(answer.counter);
    const unit = answer.unit || '';
    const per = series.bucketS ? `per ${answer.resolution}` : 'per reading';
    const label = counter ? `${answer.metric}: consumption ${per}${unit ? ` (${unit})` : ''}` : `${answer.metric}${unit ? ` (${unit})` : ''}`;
    const values = series.ys.filter((v) => v !== null);
    const box = $('trend-chart');
    box.dataset.points = String(values.length);
    box.dataset.resolution = series.resolution;
    box.dataset.counter = String(counter);
    const total = counter ? values.reduce((a, b) => a + b, 0) : null;
    $('trend-status').textContent = values.length
      ? `${values.length} ${series.resolution === 'raw' ? 'readings' : `${series.resolution} buckets`}` +
        (counter ? ` · consumed ${formatValue(total)} ${unit} in range` : ` · last ${formatValue(values[values.length - 1])} ${unit}`)
      : 'No data in this range.';

    if (typeof window.uPlot !== 'function') {
      box.replaceChildren(
        el('p', { class: 'error', text: 'Chart library missing: uPlot is not served under /vendor/ (run scripts/install-deps.sh, which runs npm ci, and set server.vendor_dir).' }),
      );
      return;
    }
    const width = Math.max(300, box.clientWidth || 800);
    const opts = {
      width,
      height: 360,
      scales: { x: { time: true, range: [fromS, toS] } },
      axes: [{}, { label, size: 70 }],
      series: [
        {},
        counter
          ? { label, stroke: '#2563eb', fill: 'rgba(37,99,235,0.35)', paths: window.uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } }
          : { label, stroke: '#2563eb', width: 2, spanGaps: false, points: { show: values.length < 200 } },
      ],
    };
    if (this.chart) this.chart.destroy();
    box.replaceChildren();
    this.chart = new window.uPlot(opts, [series.xs, series.ys], box);
  }

  resize() {
    const box = $('trend-chart');
    if (this.chart && box.clientWidth) this.chart.setSize({ width: box.clientWidth, height: 360 });
  }
}
