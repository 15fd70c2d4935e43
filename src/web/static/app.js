// SPDX-License-Identifier: Apache-2.0
// fieldhub's dashboard: wires the live feed to the views (alarm console, device board, trends),
// the connection watchdog's NOT RECEIVING ALARMS banner and the sound gate.
import { $, el, formatPlace, formatTime, getJson, parseTs, titleCase } from './util.js';
import { Feed } from './feed.js';
import { AlarmSound } from './sound.js';
import { AlarmConsole } from './alarms.js';
import { Board } from './board.js';
import { Trends } from './trends.js';

const MAX_EVENTS = 50;
const BOARD_INTERVAL_MS = 250;

const sound = new AlarmSound((playing) => {
  document.body.dataset.sound = playing ? 'on' : 'off';
  $('sound-state').textContent = playing ? 'SOUND ON' : 'SOUND OFF';
  $('sound-gate').hidden = playing;
});
$('sound-enable').addEventListener('click', () => sound.enable());

const alarms = new AlarmConsole({ sound });
const board = new Board();
const trends = new Trends({ devices: board.devices });

// ---- recent events ---------------------------------------------------------------------------

const events = []; // newest first
const eventKey = (e) => `${e.device}|${e.event_type}|${e.ts}`;

let eventsQueued = false;

// Merges new events; the list is redrawn at most once per animation frame, so a burst (a link
// down turns thousands of devices offline at once) costs one redraw.
function addEvents(list) {
  const known = new Set(events.map(eventKey));
  for (const e of list) if (!known.has(eventKey(e))) events.push(e);
  events.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts));
  events.length = Math.min(events.length, MAX_EVENTS);
  if (eventsQueued) return;
  eventsQueued = true;
  requestAnimationFrame(() => {
    eventsQueued = false;
    drawEvents();
  });
}

function drawEvents() {
  const items = events.map((e) => {
    const d = board.devices.get(e.device);
    const priority = e.priority || 'none';
    const what = e.event_type === 'health' && e.attributes ? `Health: ${e.attributes.from} → ${e.attributes.to}` : titleCase(e.event_type);
    return el(
      'li',
      { class: 'event', 'data-priority': priority },
      el('time', { datetime: e.ts, text: formatTime(parseTs(e.ts)) }),
      el('span', { class: `badge prio-${priority}`, text: priority === 'none' ? 'info' : priority }),
      el('span', {}, el('strong', { text: what }), ` ${e.device}${d ? ` — ${formatPlace(d.info.location)}` : ''}`),
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

// ---- live feed -------------------------------------------------------------------------------

let downSince = null;

function onFeedState(up, text) {
  $('feed-state').dataset.state = up ? 'live' : 'down';
  $('feed-state-text').textContent = text;
  if (up) {
    downSince = null;
  } else if (downSince === null) {
    downSince = Date.now();
  }
  $('feed-banner').hidden = up;
  if (!up && feed.silentMs !== null) $('feed-banner').dataset.silentMs = String(feed.silentMs);
  document.body.classList.toggle('feed-down', !up);
  if (!up) $('feed-banner-detail').textContent = `${text}. Since ${new Date(downSince).toLocaleTimeString()}; alarms raised meanwhile appear when it is back.`;
  alarms.setFeed(up);
}

// fieldhub's own state (history written, broker up, live state reaching Redis): whatever is not
// ok is named in a banner with since when, so a trend with a hole or a board that stopped moving
// is explained on screen, not discovered later.
const SYSTEM_NAMES = { history: 'HISTORY', live: 'LIVE STATE', broker: 'BROKER' };

function onSystem(msg) {
  const bad = Object.entries(msg.components || {}).filter(([, c]) => !c.ok);
  const banner = $('system-banner');
  banner.hidden = bad.length === 0;
  banner.dataset.components = bad.map(([name]) => name).join(' ');
  if (bad.length === 0) return;
  // "degraded: writes failing" → HISTORY DEGRADED; "down" → BROKER DOWN.
  $('system-banner-title').textContent = bad
    .map(([name, c]) => `${SYSTEM_NAMES[name] || name.toUpperCase()} ${c.state.split(':')[0].toUpperCase()}`)
    .join(' · ');
  $('system-banner-detail').textContent = bad
    .map(([name, c]) => `${name}: ${c.state} since ${new Date(c.since).toLocaleTimeString()}`)
    .join('; ');
}

function onFrame(msg) {
  switch (msg.type) {
    case 'hello':
      alarms.onHello();
      // Health changes missed while away: the list is authoritative, then frames keep it fresh.
      board.load();
      loadEvents();
      break;
    case 'snapshot':
      board.onSnapshot(msg.devices);
      break;
    case 'readings':
      board.onReadings(msg.items);
      break;
    case 'event':
      board.onEvent(msg);
      addEvents([msg]);
      break;
    case 'alarms':
      alarms.onList(msg.alarms);
      break;
    case 'alarm':
      alarms.onChange(msg.change, msg.alarm);
      break;
    case 'system':
      onSystem(msg);
      break;
    default:
      break;
  }
}

const feed = new Feed({ onFrame, onState: onFeedState });

// ---- views -----------------------------------------------------------------------------------

const VIEWS = ['alarms', 'board', 'trends'];

function route() {
  const [name, query] = location.hash.replace(/^#/, '').split('?');
  const view = VIEWS.includes(name) ? name : 'alarms';
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = v !== view;
    $(`nav-${v}`).setAttribute('aria-current', v === view ? 'page' : 'false');
  }
  document.body.dataset.view = view;
  // Only the board shows live values, four times a second (a person reads no faster; a site of
  // thousands of busy meters stays smooth): the other views take events and alarms only.
  feed.setTelemetry(view === 'board', BOARD_INTERVAL_MS);
  if (view === 'board') board.schedule();
  if (view === 'trends') trends.open(new URLSearchParams(query || ''));
}

window.addEventListener('hashchange', route);
setInterval(() => {
  board.tick();
  alarms.tick();
}, 1000);

async function main() {
  await board.load();
  route();
  feed.start();
}

main();
