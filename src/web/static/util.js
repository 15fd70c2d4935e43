// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the dashboard's views: DOM building, formatting, JSON over fetch.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// The server's clock minus ours, learned from the feed's heartbeats, so ages count from the
// server's notion of now even when this machine's clock is off.
let serverOffsetMs = 0;
export function learnServerTime(ts) {
  const t = Date.parse(ts);
  if (!Number.isNaN(t)) serverOffsetMs = t - Date.now();
}
export const now = () => Date.now() + serverOffsetMs;
export const parseTs = (ts) => (ts ? Date.parse(ts) : null);

// "12 s", "5 min", "3 h", "2 d".
export function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function formatAge(ms) {
  return ms === null ? 'never' : `${formatDuration(now() - ms)} ago`;
}

export function formatTime(ms) {
  if (ms === null) return '—';
  const d = new Date(ms);
  const today = new Date(now()).toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function formatValue(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return value.toLocaleString(undefined, { maximumFractionDigits: 3 });
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return String(value);
}

// "site st-marys · ward 3B · room 12 · bed 1" from a location object, in its own order.
export function formatPlace(location) {
  return Object.entries(location || {})
    .map(([k, v]) => (k === 'site' ? String(v) : `${k} ${v}`))
    .join(' / ');
}

export function titleCase(text) {
  const t = String(text || '').replace(/_/g, ' ');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

export class HttpError extends Error {
  constructor(url, status, message) {
    super(`${url}: HTTP ${status}${message ? ` — ${message}` : ''}`);
    this.status = status;
  }
}

async function answer(url, res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new HttpError(url, res.status, body && body.error);
  return body;
}

export async function getJson(url) {
  return answer(url, await fetch(url, { headers: { Accept: 'application/json' } }));
}

export async function postJson(url, payload) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return answer(url, res);
}
