// SPDX-License-Identifier: Apache-2.0
// fieldhub's first page: devices grouped by site with their latest values, updated live from the
// WebSocket feed (/api/v1/live); polls the REST API while the feed is down and says so.
'use strict';

(() => {
  const POLL_MS = 5000;
  const WATCHDOG_MS = 3000; // no frame for this long (heartbeat is 1 s): the feed is down
  const MAX_EVENTS = 50;
  const RECONNECT_MAX_MS = 10000;

  const devices = new Map(); // id → {info, metrics: {name → latest}, lastSeen: ms|null, row}
  const events = []; // newest first
  let serverOffsetMs = 0; // server clock − local clock, from heartbeats
  let socket = null;
  let feedUp = false;
  let lastFrameAt = 0;
  let reconnectDelay = 1000;
  let pollTimer = null;

  const $ = (id) => document.getElementById(id);
  const now = () => Date.now() + serverOffsetMs;
  const parseTs = (ts) => (ts ? Date.parse(ts) : null);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  // "12 s ago", "5 min ago", "3 h ago", "2 d ago".
  function formatAge(ms) {
    if (ms === null) return 'never';
    const s = Math.max(0, Math.round((now() - ms) / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }

  function formatValue(value) {
    if (value === null || value === undefined) return null;
    if (typeof value === 'number') {
      return value.toLocaleString(undefined, { maximumFractionDigits: 3 });
    }
    if (typeof value === 'boolean') return value ? 'on' : 'off';
    return String(value);
  }

  function formatPlace(location) {
    return Object.entries(location || {}).map(([k, v]) => `${k} ${v}`).join(' · ');
  }

  function titleCase(text) {
    const t = String(text || '').replace(/_/g, ' ');
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  async function getJson(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json();
  }

  // ---- devices ------------------------------------------------------------------------------

  function siteSection(site) {
    const id = `site-${site}`;
    let section = document.querySelector(`[data-site="${CSS.escape(site)}"]`);
    if (section) return section.querySelector('tbody');
    const frag = $('site-template').content.cloneNode(true);
    section = frag.querySelector('section');
    section.dataset.site = site;
    const heading = section.querySelector('.site-name');
    heading.id = id;
    heading.textContent = site || 'No site';
    section.setAttribute('aria-labelledby', id);
    section.querySelector('table').setAttribute('aria-labelledby', id);
    $('sites').append(section);
    return section.querySelector('tbody');
  }

  function addDevice(info) {
    let d = devices.get(info.id);
    if (!d) {
      d = { info, metrics: {}, lastSeen: null, row: null };
      devices.set(info.id, d);
      const row = el('tr', { 'data-device': info.id });
      row.append(
        el('th', { scope: 'row', class: 'device-id', text: info.id }),
        el('td', { class: 'kind', text: titleCase(info.kind) }),
        el('td', { class: 'place', text: formatPlace(info.location) }),
        el('td', { class: 'latest' }),
        el('td', { class: 'quality-cell' }),
        el('td', { class: 'age' }),
      );
      siteSection(info.site).append(row);
      d.row = row;
    }
    d.info = info;
    seen(d, parseTs(info.last_seen));
    return d;
  }

  function seen(d, ms) {
    if (ms !== null && (d.lastSeen === null || ms > d.lastSeen)) d.lastSeen = ms;
  }

  // Keeps the newest value per metric: an older update arriving late never replaces it.
  function updateMetric(d, name, latest) {
    const held = d.metrics[name];
    if (held && held.ts && latest.ts && Date.parse(latest.ts) < Date.parse(held.ts)) return;
    d.metrics[name] = latest;
    seen(d, parseTs(latest.received_ts));
  }

  function worstQuality(metrics) {
    const order = { bad: 3, uncertain: 2, good: 1 };
    let worst = null;
    for (const m of Object.values(metrics)) {
      if (m.quality && (!worst || order[m.quality] > order[worst.quality])) worst = m;
    }
    return worst;
  }

  function renderDevice(d) {
    const cells = d.row.children;
    const list = el('ul', { class: 'values' });
    // The profile's order (from the device's detail) keeps each row's layout stable.
    const rank = (name) => {
      const i = d.order ? d.order.indexOf(name) : -1;
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    const entries = Object.entries(d.metrics).sort(
      ([a], [b]) => rank(a) - rank(b) || a.localeCompare(b),
    );
    for (const [name, m] of entries) {
      const value = formatValue(m.value);
      const item = el('li', {}, el('span', { class: 'metric', text: `${name}: ` }));
      if (value === null) {
        item.append(el('span', { class: 'none', text: 'no value' }));
      } else {
        item.append(el('span', { class: typeof m.value === 'number' ? 'number' : 'text', text: value }));
        if (m.unit) item.append(` ${m.unit}`);
      }
      if (m.quality && m.quality !== 'good') {
        item.append(' ', el('span', { class: `quality ${m.quality}`, text: `(${m.quality})` }));
      }
      list.append(item);
    }
    cells[3].replaceChildren(Object.keys(d.metrics).length ? list : el('span', { class: 'muted', text: '—' }));

    const worst = worstQuality(d.metrics);
    if (worst) {
      const label = worst.quality_reason ? `${worst.quality}: ${worst.quality_reason}` : worst.quality;
      cells[4].replaceChildren(el('span', { class: `quality ${worst.quality}`, text: label }));
    } else {
      cells[4].replaceChildren(el('span', { class: 'quality unknown', text: 'no data' }));
    }
    renderAge(d);
  }

  function renderAge(d) {
    const cell = d.row.children[5];
    cell.textContent = formatAge(d.lastSeen);
    cell.title = d.lastSeen === null ? 'never seen' : `last seen ${new Date(d.lastSeen).toISOString()}`;
  }

  const dirty = new Set();
  let renderQueued = false;
  function markDirty(d) {
    dirty.add(d);
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      for (const x of dirty) renderDevice(x);
      dirty.clear();
    });
  }

  async function loadDetail(id) {
    const detail = await getJson(`/api/v1/devices/${encodeURIComponent(id)}`);
    const d = addDevice(detail);
    d.order = Object.keys(detail.metrics || {});
    for (const [name, m] of Object.entries(detail.metrics || {})) {
      if (m.value === null && m.ts === null) {
        if (!d.metrics[name]) d.metrics[name] = m; // declared, never received
      } else {
        updateMetric(d, name, m);
      }
    }
    markDirty(d);
  }

  // A few requests at a time, so a large site does not flood the server.
  async function loadDetails(ids) {
    const queue = [...ids];
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          await loadDetail(id);
        } catch (e) {
          // The server is unreachable or failing: stop this round, the next poll retries.
          if (queue.length) console.warn(e.message);
          queue.length = 0;
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  // The device list first (frames name devices the page must know), then the live feed at
  // once, and the per-device details alongside it.
  async function loadDevices() {
    try {
      const list = await getJson('/api/v1/devices');
      for (const info of list) markDirty(addDevice(info));
      $('devices-status').textContent = list.length ? '' : 'No devices configured.';
      $('devices-status').hidden = list.length > 0;
      if (!socket && !feedUp) connect();
      await Promise.all([loadDetails(list.map((d) => d.id)), loadEvents()]);
    } catch (e) {
      $('devices-status').textContent = `Could not load devices (${e.message}); retrying.`;
      setTimeout(loadDevices, POLL_MS);
    }
  }

  // ---- events -------------------------------------------------------------------------------

  function eventKey(e) {
    return `${e.device}|${e.event_type}|${e.ts}`;
  }

  function addEvents(list) {
    const known = new Set(events.map(eventKey));
    for (const e of list) {
      if (!known.has(eventKey(e))) events.push(e);
    }
    events.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts));
    events.length = Math.min(events.length, MAX_EVENTS);
    renderEvents();
  }

  function renderEvents() {
    const items = events.map((e) => {
      const d = devices.get(e.device);
      const place = d ? formatPlace(d.info.location) : '';
      const ts = new Date(Date.parse(e.ts));
      const priority = e.priority || 'none';
      return el(
        'li',
        { class: 'event', 'data-priority': priority },
        el('time', { datetime: e.ts, text: ts.toLocaleTimeString() }),
        el('span', { class: `badge ${priority}`, text: priority === 'none' ? 'info' : priority }),
        el(
          'span',
          {},
          el('span', { class: 'what', text: titleCase(e.event_type) }),
          ' ',
          el('span', { class: 'where', text: `${e.device}${place ? ` — ${place}` : ''}${e.site ? ` (${e.site})` : ''}` }),
        ),
      );
    });
    $('events').replaceChildren(...items);
    $('events-empty').hidden = events.length > 0;
  }

  async function loadEvents() {
    try {
      addEvents(await getJson(`/api/v1/events?limit=${MAX_EVENTS}`));
    } catch (e) {
      console.warn(e.message);
    }
  }

  // ---- live feed ----------------------------------------------------------------------------

  function setFeed(up, text) {
    feedUp = up;
    $('feed-state').dataset.state = up ? 'live' : 'down';
    $('feed-state-text').textContent = text;
    $('feed-banner').hidden = up;
    if (up) stopPolling();
    else startPolling();
  }

  function onFrame(msg) {
    lastFrameAt = Date.now();
    switch (msg.type) {
      case 'hello':
        reconnectDelay = 1000;
        setFeed(true, 'Live');
        if (msg.ts) serverOffsetMs = Date.parse(msg.ts) - Date.now();
        break;
      case 'heartbeat':
        if (msg.ts) serverOffsetMs = Date.parse(msg.ts) - Date.now();
        break;
      case 'snapshot':
        for (const s of msg.devices || []) {
          const d = devices.get(s.device);
          if (!d) continue;
          seen(d, parseTs(s.last_seen));
          for (const [name, m] of Object.entries(s.metrics || {})) updateMetric(d, name, m);
          markDirty(d);
        }
        loadEvents(); // events missed while disconnected
        break;
      case 'readings':
        for (const item of msg.items || []) {
          const d = devices.get(item.device);
          if (!d) continue;
          updateMetric(d, item.metric, item);
          markDirty(d);
        }
        break;
      case 'event': {
        const d = devices.get(msg.device);
        if (d) {
          seen(d, parseTs(msg.received_ts));
          markDirty(d);
        }
        addEvents([msg]);
        break;
      }
      default:
        break;
    }
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
    socket = ws;
    lastFrameAt = Date.now();
    ws.onmessage = (ev) => {
      if (ws !== socket) return;
      try {
        onFrame(JSON.parse(ev.data));
      } catch (e) {
        console.warn('bad frame', e);
      }
    };
    ws.onclose = () => {
      if (ws !== socket) return;
      socket = null;
      setFeed(false, 'Disconnected — reconnecting');
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    };
  }

  // A socket can stay "open" while nothing arrives (a dead network path): the server sends a
  // heartbeat every second, so silence for WATCHDOG_MS means the feed is down.
  function watchdog() {
    if (socket && Date.now() - lastFrameAt > WATCHDOG_MS) {
      const ws = socket;
      socket = null;
      ws.close();
      setFeed(false, 'No heartbeat — reconnecting');
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
    }
  }

  function startPolling() {
    if (pollTimer) return;
    const poll = async () => {
      await Promise.all([loadDetails([...devices.keys()]), loadEvents()]);
    };
    pollTimer = setInterval(poll, POLL_MS);
    poll();
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function tick() {
    watchdog();
    for (const d of devices.values()) renderAge(d);
  }

  function main() {
    setInterval(tick, 1000);
    loadDevices();
  }

  main();
})();
