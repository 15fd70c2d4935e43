// SPDX-License-Identifier: Apache-2.0
// The device and health board: one tile per device with its main values, unit, age (ticking)
// and health. Healthy, stale and offline look unmistakably different (style.css). Built for
// 10,000 devices: the grid is virtualised (only the tiles in view exist in the DOM), live
// updates only mark devices dirty, and DOM writes are batched once per animation frame.
import { $, el, formatAge, formatTime, formatValue, getJson, parseTs, titleCase } from './util.js';

const TILE_W = 236; // px, tile + gap: matches .tile in style.css
const TILE_H = 132;
const OVERSCAN_ROWS = 2;
const VALUES_SHOWN = 3;

// "offline since 10:02:11 · seen 5 min ago": how long a device has been silent, on every tile.
function footer(d) {
  const seen = `seen ${formatAge(d.lastSeen)}`;
  if (d.info.health !== 'offline') return seen;
  const since = parseTs(d.info.health_since);
  return `offline since ${since ? formatTime(since) : '?'} · ${seen}`;
}

export class Board {
  constructor() {
    this.devices = new Map(); // id → {info, metrics: Map(name → latest), lastSeen}
    this.view = []; // the filtered, sorted devices
    this.slots = new Map(); // device id → tile element in the DOM
    this.dirty = new Set();
    this.viewStale = true;
    this.queued = false;
    this.filter = { site: '', kind: '', health: '', text: '' };
    this.scroller = $('board-scroll');
    this.canvas = $('board-canvas');
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    window.addEventListener('resize', () => this.schedule());
    for (const key of ['site', 'kind', 'health']) {
      $(`filter-${key}`).addEventListener('change', (e) => this.setFilter(key, e.target.value));
    }
    $('filter-text').addEventListener('input', (e) => this.setFilter('text', e.target.value.trim().toLowerCase()));
  }

  // ---- data ----------------------------------------------------------------------------------

  // The device list from /api/v1/devices (all, or a server-side filtered subset): identity,
  // place and health, authoritative for health at the time of the answer.
  merge(list) {
    for (const info of list) {
      let d = this.devices.get(info.id);
      if (!d) {
        d = { info, metrics: new Map(), lastSeen: null };
        this.devices.set(info.id, d);
        this.viewStale = true;
      }
      if (d.info.health !== info.health) this.viewStale = true;
      d.info = { ...d.info, ...info };
      this.seen(d, parseTs(info.last_seen));
      this.mark(d);
    }
    this.fillFilterChoices();
  }

  async load() {
    const { site, kind, health } = this.filter;
    const q = new URLSearchParams();
    if (site) q.set('site', site);
    if (kind) q.set('kind', kind);
    if (health) q.set('health', health);
    const status = $('board-status');
    try {
      const list = await getJson(`/api/v1/devices${q.size ? `?${q}` : ''}`);
      this.merge(list);
      status.textContent = this.devices.size ? '' : 'No devices configured.';
    } catch (e) {
      status.textContent = `Could not load devices (${e.message}).`;
    }
  }

  seen(d, ms) {
    if (ms !== null && !Number.isNaN(ms) && (d.lastSeen === null || ms > d.lastSeen)) d.lastSeen = ms;
  }

  // Keeps the newest value per metric: an older update arriving late never replaces it.
  update(id, name, latest) {
    const d = this.devices.get(id);
    if (!d) return null;
    const held = d.metrics.get(name);
    if (held && held.ts && latest.ts && Date.parse(latest.ts) < Date.parse(held.ts)) return d;
    d.metrics.set(name, latest);
    this.seen(d, parseTs(latest.received_ts));
    this.mark(d);
    return d;
  }

  onSnapshot(devices) {
    for (const s of devices || []) {
      const d = this.devices.get(s.device);
      if (!d) continue;
      this.seen(d, parseTs(s.last_seen));
      for (const [name, m] of Object.entries(s.metrics || {})) this.update(s.device, name, m);
      this.mark(d);
    }
  }

  onReadings(items) {
    for (const item of items || []) this.update(item.device, item.metric, item);
  }

  onEvent(e) {
    const d = this.devices.get(e.device);
    if (!d) return;
    if (e.event_type === 'health' && e.attributes && e.attributes.to) {
      d.info = { ...d.info, health: e.attributes.to, health_since: e.ts, health_reason: e.attributes.reason };
      if (this.filter.health) this.viewStale = true;
    } else {
      this.seen(d, parseTs(e.received_ts));
    }
    this.mark(d);
  }

  // ---- filtering -----------------------------------------------------------------------------

  setFilter(key, value) {
    this.filter[key] = value;
    this.viewStale = true;
    this.scroller.scrollTop = 0;
    this.schedule();
    // Site, kind and health are also asked of the server, which refreshes those devices' health.
    if (key !== 'text') this.load();
  }

  matches(d) {
    const f = this.filter;
    const i = d.info;
    if (f.site && i.site !== f.site) return false;
    if (f.kind && i.kind !== f.kind) return false;
    if (f.health && (i.health || 'unknown') !== f.health) return false;
    if (f.text) {
      const hay = `${i.id} ${i.kind} ${i.site} ${Object.values(i.location || {}).join(' ')}`.toLowerCase();
      if (!hay.includes(f.text)) return false;
    }
    return true;
  }

  fillFilterChoices() {
    for (const key of ['site', 'kind']) {
      const select = $(`filter-${key}`);
      const have = new Set([...select.options].map((o) => o.value));
      const values = new Set();
      for (const d of this.devices.values()) if (d.info[key]) values.add(d.info[key]);
      for (const v of [...values].sort()) {
        if (!have.has(v)) select.append(el('option', { value: v, text: key === 'kind' ? titleCase(v) : v }));
      }
    }
  }

  // ---- rendering -----------------------------------------------------------------------------

  mark(d) {
    this.dirty.add(d.info.id);
    this.schedule();
  }

  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  draw() {
    if (this.scroller.offsetParent === null) return; // the board is not on screen
    if (this.viewStale) {
      this.view = [...this.devices.values()]
        .filter((d) => this.matches(d))
        .sort((a, b) => (a.info.site || '').localeCompare(b.info.site || '') || a.info.id.localeCompare(b.info.id));
      this.viewStale = false;
      for (const tile of this.slots.values()) tile.remove();
      this.slots.clear();
      $('board-count').textContent = `${this.view.length} of ${this.devices.size} devices`;
    }
    const cols = Math.max(1, Math.floor(this.scroller.clientWidth / TILE_W));
    const rows = Math.ceil(this.view.length / cols);
    this.canvas.style.height = `${rows * TILE_H}px`;
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / TILE_H) - OVERSCAN_ROWS);
    const last = Math.min(rows, Math.ceil((this.scroller.scrollTop + this.scroller.clientHeight) / TILE_H) + OVERSCAN_ROWS);
    const wanted = new Set();
    for (let i = first * cols; i < Math.min(this.view.length, last * cols); i += 1) {
      const d = this.view[i];
      wanted.add(d.info.id);
      let tile = this.slots.get(d.info.id);
      if (!tile) {
        tile = el('article', { class: 'tile', 'data-device': d.info.id });
        this.canvas.append(tile);
        this.slots.set(d.info.id, tile);
        this.fill(tile, d);
      } else if (this.dirty.has(d.info.id)) {
        this.fill(tile, d);
      }
      tile.style.transform = `translate(${(i % cols) * TILE_W}px, ${Math.floor(i / cols) * TILE_H}px)`;
    }
    for (const [id, tile] of this.slots) {
      if (!wanted.has(id)) {
        tile.remove();
        this.slots.delete(id);
      }
    }
    this.dirty.clear();
  }

  fill(tile, d) {
    const i = d.info;
    const health = i.health || 'unknown';
    tile.className = `tile health-${health}`;
    tile.dataset.health = health;
    const values = [...d.metrics.entries()].slice(0, VALUES_SHOWN).map(([name, m]) => {
      const v = formatValue(m.value);
      return el(
        'li',
        { class: m.quality && m.quality !== 'good' ? `q-${m.quality}` : null, title: m.quality_reason || null },
        el('span', { class: 'metric', text: name }),
        el('span', { class: 'value', text: v === null ? '—' : v }),
        el('span', { class: 'unit', text: m.unit || '' }),
      );
    });
    const place = Object.entries(i.location || {}).map(([k, v]) => `${k} ${v}`).join(' · ');
    tile.replaceChildren(
      el('header', {}, el('span', { class: 'id', text: i.id }), el('span', { class: 'health-badge', text: health, title: i.health_reason || null })),
      el('div', { class: 'where muted', text: `${titleCase(i.kind)} · ${i.site || ''}${place ? ` · ${place}` : ''}` }),
      el('ul', { class: 'values' }, ...values),
      el('footer', { class: 'age', text: footer(d) }),
    );
    tile.title = `${i.id}: ${health}${i.health_reason ? ` (${i.health_reason})` : ''}`;
  }

  // Ages tick: only the tiles in view, once a second.
  tick() {
    for (const [id, tile] of this.slots) {
      const d = this.devices.get(id);
      const age = tile.querySelector('.age');
      if (d && age) age.textContent = footer(d);
    }
  }
}
