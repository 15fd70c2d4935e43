// SPDX-License-Identifier: Apache-2.0
// The trend view's data shaping (src/web/static/trends.js toSeries), in node without a browser:
// outages become gaps (a null point, never a line across), counters become consumption per
// interval, rollup buckets use their mean or delta.
// Usage: node trend_series_test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toSeries } from '../../src/web/static/trends.js';

const t0 = Date.parse('2026-11-24T10:00:00Z');
const at = (s) => new Date(t0 + s * 1000).toISOString();
const x = (s) => t0 / 1000 + s;

test('raw values: an outage longer than 2.5 expected intervals is a gap', () => {
  const answer = {
    metric: 'power', unit: 'W', counter: false, resolution: 'raw',
    points: [0, 10, 20, 30, 300, 310].map((s, i) => ({ ts: at(s), value: 100 + i, quality: 'good' })),
  };
  const { xs, ys } = toSeries(answer, 10);
  assert.deepEqual(ys, [100, 101, 102, 103, null, 104, 105]);
  assert.equal(xs[4], x(165)); // inside the outage
  // Late but within 2.5 intervals: no gap.
  const late = toSeries({ ...answer, points: answer.points.slice(0, 2).concat([{ ts: at(34), value: 7 }]) }, 10);
  assert.deepEqual(late.ys, [100, 101, 7]);
});

test('raw values without a declared interval: the median spacing decides', () => {
  const answer = { metric: 'v', resolution: 'raw', points: [0, 5, 10, 15, 100].map((s) => ({ ts: at(s), value: s })) };
  assert.deepEqual(toSeries(answer, 0).ys, [0, 5, 10, 15, null, 100]);
});

test('raw counter: consumption per reading; unknown after an outage or a register reset', () => {
  const answer = {
    metric: 'energy', unit: 'kWh', counter: true, resolution: 'raw',
    points: [
      { ts: at(0), value: 1000 },
      { ts: at(10), value: 1002 },
      { ts: at(20), value: 1005 },
      { ts: at(200), value: 1030 }, // after an outage: not 25 kWh in one step
      { ts: at(210), value: 1031 },
      { ts: at(220), value: 3 }, // meter replaced / reset
      { ts: at(230), value: 4.5 },
    ],
  };
  assert.deepEqual(toSeries(answer, 10).ys, [null, 2, 3, null, null, 1, null, 1.5]);
});

test('rollups: means, counter deltas, and a missing bucket is a gap', () => {
  const bucket = (s, mean, delta) => ({ ts: at(s), min: mean, max: mean, mean, count: 6, last: mean, delta });
  const plain = { metric: 'power', counter: false, resolution: '1m', points: [bucket(0, 5, null), bucket(60, 6, null), bucket(180, 7, null)] };
  const p = toSeries(plain, 10);
  assert.deepEqual(p.ys, [5, 6, null, 7]);
  assert.equal(p.bucketS, 60);
  const counter = { metric: 'energy', counter: true, resolution: '1h', points: [bucket(0, 10, 1.5), bucket(3600, 12, 2), bucket(7200, 13, null)] };
  assert.deepEqual(toSeries(counter, 10).ys, [1.5, 2, null]);
});
