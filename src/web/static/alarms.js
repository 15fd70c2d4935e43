// SPDX-License-Identifier: Apache-2.0
// The alarm console: the open alarms from the live feed ("alarms" on every (re)connection, then
// one "alarm" frame per change, never coalesced), a full-screen takeover for unacknowledged high
// alarms naming the place, flashing and sounding by priority, and the operator's actions (ack,
// shelve, unshelve, comment, reset of a latched alarm) through the REST API. Another console's ack reaches this one as an
// "alarm" frame, so every console clears within the feed's latency.
import { $, el, formatAge, formatTime, parseTs, postJson, titleCase } from './util.js';

const RANK = { high: 0, medium: 1, low: 2 };
const OPERATOR_KEY = 'fieldhub.operator';
const MAX_ROWS = 200;

const isUnacked = (a) => a.state === 'active_unacked' || a.state === 'cleared_unacked';
const isOpen = (a) => a.state !== 'cleared';

// Priority high first, then unacknowledged first, then newest (the server's order too).
function compare(a, b) {
  return (
    (RANK[a.priority] ?? 3) - (RANK[b.priority] ?? 3) ||
    Number(isUnacked(b)) - Number(isUnacked(a)) ||
    (parseTs(b.raised_at) ?? 0) - (parseTs(a.raised_at) ?? 0)
  );
}

export function alarmPlace(a) {
  if (a.place) return a.place;
  const loc = a.location || {};
  return Object.entries(loc)
    .map(([k, v]) => (k === 'site' ? String(v) : `${k} ${v}`))
    .join(' / ');
}

// The source: a device, a link for a link alarm ("device": null), or fieldhub itself.
const source = (a) => a.device || (a.link ? `link ${a.link}` : a.kind === 'system' ? 'fieldhub' : '');

function alarmTitle(a) {
  return a.message || titleCase(a.type);
}

const STATE_TEXT = {
  active_unacked: 'active, unacknowledged',
  active_acked: 'active, acknowledged',
  cleared_unacked: 'cleared, unacknowledged',
  cleared: 'cleared',
};

export class AlarmConsole {
  constructor({ sound }) {
    this.sound = sound;
    this.alarms = new Map(); // id → alarm (open ones only)
    this.received = false; // an "alarms" list arrived on this connection
    this.frameQueued = false;
    this.urgentQueued = false;
    this.rows = new Map(); // id → {sig, tr}: the drawn rows
    this.moreRow = el('tr', {}, el('td', { colspan: '6', class: 'muted' }));
    this.feedUp = false;
    $('operator-change').addEventListener('click', () => this.askOperator(true));
    $('overlay-ack').addEventListener('click', () => {
      const id = $('alarm-overlay').dataset.alarm;
      if (id) this.ack(id);
    });
    // Another tab of this browser may set the name.
    window.addEventListener('storage', () => this.showOperator());
    this.showOperator();
  }

  // ---- frames --------------------------------------------------------------------------------

  onHello() {
    this.received = false;
  }

  onList(list) {
    this.alarms.clear();
    for (const a of list || []) if (isOpen(a)) this.alarms.set(String(a.id), a);
    this.received = true;
    this.render();
  }

  onChange(change, alarm) {
    if (!alarm || alarm.id === undefined) return;
    const id = String(alarm.id);
    if (isOpen(alarm)) this.alarms.set(id, alarm);
    else this.alarms.delete(id);
    // Sound at once for what is new or must sound again; the repeat rhythm follows in render().
    if (isUnacked(alarm) && !alarm.shelved && (change === 'raised' || change === 'renotify' || change === 'escalated')) {
      this.sound.burst(alarm.priority);
    }
    this.render();
  }

  setFeed(up) {
    this.feedUp = up;
    this.render();
  }

  // ---- actions -------------------------------------------------------------------------------

  operator() {
    return localStorage.getItem(OPERATOR_KEY);
  }

  showOperator() {
    const name = this.operator();
    $('operator-name').textContent = name || 'not set';
  }

  // Asks once (kept in localStorage); resolves to the name, or null if the operator cancels.
  askOperator(force = false) {
    const known = this.operator();
    if (known && !force) return Promise.resolve(known);
    const dialog = $('operator-dialog');
    const input = $('operator-input');
    input.value = known || '';
    return new Promise((resolve) => {
      dialog.onclose = () => {
        const name = dialog.returnValue === 'ok' ? input.value.trim() : '';
        if (name) {
          localStorage.setItem(OPERATOR_KEY, name);
          this.showOperator();
        }
        resolve(name || (force ? known : null));
      };
      dialog.showModal();
      input.focus();
    });
  }

  async act(id, verb, body) {
    const by = await this.askOperator();
    if (!by) return;
    const status = $('alarms-action-status');
    try {
      const updated = await postJson(`/api/v1/alarms/${encodeURIComponent(id)}/${verb}`, { by, ...body });
      status.textContent = '';
      if (updated && updated.id !== undefined) this.onChange(verb, updated);
    } catch (e) {
      // 409: someone else acted first; the feed brings the current state.
      status.textContent = e.status === 409 ? `Already done on another console (${verb}).` : `Could not ${verb}: ${e.message}`;
    }
  }

  ack(id) {
    return this.act(id, 'ack', {});
  }

  async shelve(id) {
    const form = await this.askForm('Shelve alarm', true);
    if (form) this.act(id, 'shelve', { minutes: form.minutes, ...(form.text ? { comment: form.text } : {}) });
  }

  async comment(id) {
    const form = await this.askForm('Comment on alarm', false);
    if (form && form.text) this.act(id, 'comment', { text: form.text });
  }

  askForm(title, shelving) {
    const dialog = $('alarm-dialog');
    $('alarm-dialog-title').textContent = title;
    $('alarm-dialog-minutes-row').hidden = !shelving;
    $('alarm-dialog-text').value = '';
    $('alarm-dialog-text').required = !shelving;
    return new Promise((resolve) => {
      dialog.onclose = () => {
        if (dialog.returnValue !== 'ok') return resolve(null);
        resolve({ minutes: Number($('alarm-dialog-minutes').value), text: $('alarm-dialog-text').value.trim() });
      };
      dialog.showModal();
    });
  }

  // ---- rendering -----------------------------------------------------------------------------

  // What must follow every change at once — sound, overlay, summary, title — is drawn right
  // after the current frame of the feed (a microtask): a console in a background tab gets no
  // animation frames and throttled timers, and must still stop sounding within the second. The
  // table, the costly part, is drawn once per animation frame, so in a background tab it waits
  // until the tab is shown (the pending frame then fires).
  render() {
    if (!this.urgentQueued) {
      this.urgentQueued = true;
      queueMicrotask(() => {
        this.urgentQueued = false;
        this.drawUrgent();
      });
    }
    if (!this.frameQueued) {
      this.frameQueued = true;
      requestAnimationFrame(() => {
        this.frameQueued = false;
        this.drawTable(this.sorted());
      });
    }
  }

  sorted() {
    return [...this.alarms.values()].sort(compare);
  }

  drawUrgent() {
    const list = this.sorted();
    const waiting = list.filter((a) => isUnacked(a) && !a.shelved);
    const highs = waiting.filter((a) => a.priority === 'high');

    // What keeps sounding: the highest unacknowledged priority; a console that lost its feed is
    // itself a (medium) technical alarm.
    let wanted = waiting.length ? waiting[0].priority : null;
    if (!this.feedUp && wanted !== 'high') wanted = 'medium';
    this.sound.want(wanted);

    this.drawSummary(waiting);
    document.title = waiting.length ? `(${waiting.length}) ALARM — fieldhub` : 'fieldhub';
    this.drawOverlay(highs);
  }

  drawSummary(waiting) {
    const counts = { high: 0, medium: 0, low: 0 };
    for (const a of waiting) if (a.priority in counts) counts[a.priority] += 1;
    const bar = $('alarm-summary');
    bar.replaceChildren(
      ...Object.entries(counts)
        .filter(([, n]) => n > 0)
        .map(([p, n]) => el('a', { href: '#alarms', class: `summary-chip prio-${p} flash-${p}`, text: `${n} ${p}` })),
    );
    bar.hidden = waiting.length === 0;
    $('nav-alarms-count').textContent = waiting.length ? String(waiting.length) : '';
  }

  drawOverlay(highs) {
    const overlay = $('alarm-overlay');
    if (!highs.length) {
      overlay.hidden = true;
      delete overlay.dataset.alarm;
      document.body.classList.remove('taken-over');
      return;
    }
    const a = highs[0];
    overlay.hidden = false;
    overlay.dataset.alarm = String(a.id);
    document.body.classList.add('taken-over');
    $('overlay-title').textContent = alarmTitle(a);
    $('overlay-place').textContent = alarmPlace(a);
    $('overlay-device').textContent = `${source(a)}${a.count > 1 ? ` · ${a.count}×` : ''}`;
    const raised = parseTs(a.raised_at);
    $('overlay-time').textContent = `raised ${formatTime(raised)} (${formatAge(raised)})`;
    $('overlay-state').textContent = STATE_TEXT[a.state] || a.state;
    $('overlay-more').textContent =
      highs.length > 1 ? `+${highs.length - 1} more high alarm${highs.length > 2 ? 's' : ''} waiting` : '';
  }

  drawTable(list) {
    const status = $('alarms-status');
    if (!this.received) {
      status.textContent = this.feedUp ? 'Waiting for the alarm list from the server…' : 'Alarm list unknown while the live feed is down.';
    } else {
      status.textContent = list.length ? '' : 'No open alarms.';
    }
    // A flood shows its most important alarms first; the rest are counted, not drawn. A row is
    // rebuilt only when its alarm changed and moved only when its place changed, so a button the
    // operator is pressing stays the same element while other alarms come and go.
    const body = $('alarms-body');
    const wanted = [];
    const next = new Map();
    for (const a of list.slice(0, MAX_ROWS)) {
      const id = String(a.id);
      const sig = JSON.stringify(a);
      let held = this.rows.get(id);
      if (!held || held.sig !== sig) held = { sig, tr: this.row(a) };
      next.set(id, held);
      wanted.push(held.tr);
    }
    if (list.length > MAX_ROWS) {
      this.moreRow.firstChild.textContent = `${list.length - MAX_ROWS} more open alarms not shown`;
      wanted.push(this.moreRow);
    }
    wanted.forEach((tr, i) => {
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    while (body.children.length > wanted.length) body.lastElementChild.remove();
    this.rows = next;
    $('alarms-table').hidden = list.length === 0;
  }

  row(a) {
    const id = String(a.id);
    const unacked = isUnacked(a);
    const actions = el('td', { class: 'actions' });
    if (unacked) actions.append(el('button', { class: 'ack', text: 'Ack', onclick: () => this.ack(id) }));
    // A latched alarm (code blue) stays until the team resets it, once acknowledged.
    if (a.latched && a.state === 'active_acked') {
      actions.append(el('button', { text: 'Reset', onclick: () => this.act(id, 'reset', {}) }));
    }
    if (a.shelved) {
      actions.append(el('button', { text: 'Unshelve', onclick: () => this.act(id, 'unshelve', {}) }));
    } else {
      actions.append(el('button', { text: 'Shelve…', onclick: () => this.shelve(id) }));
    }
    actions.append(el('button', { text: 'Comment…', onclick: () => this.comment(id) }));

    const raised = parseTs(a.raised_at);
    const who = a.acked_by ? `acked by ${a.acked_by} ${formatTime(parseTs(a.acked_at))}` : '';
    const latched = a.latched ? (a.normal ? 'back to normal, needs reset' : 'latched: needs reset') : '';
    const shelved = a.shelved ? `shelved${a.shelved_until ? ` until ${formatTime(parseTs(a.shelved_until))}` : ''}` : '';
    const comments = (a.comments || []).slice(-3).map((c) =>
      el('li', {}, el('span', { class: 'muted', text: `${c.by} ${formatTime(parseTs(c.at))}: ` }), c.text),
    );
    return el(
      'tr',
      {
        'data-alarm': id,
        'data-priority': a.priority,
        'data-state': a.state,
        class: `alarm-row prio-${a.priority}${unacked && !a.shelved ? ` flash-${a.priority}` : ''}${a.shelved ? ' shelved' : ''}`,
      },
      el('td', {}, el('span', { class: `badge prio-${a.priority}`, text: a.priority })),
      el(
        'td',
        {},
        el('strong', { text: alarmTitle(a) }),
        a.count > 1 ? el('span', { class: 'count', text: ` ${a.count}×` }) : null,
        el('div', { class: 'muted', text: `${a.kind || ''} · ${source(a)}` }),
        comments.length ? el('ul', { class: 'comments' }, ...comments) : null,
      ),
      el('td', { class: 'place', text: alarmPlace(a) }),
      el('td', {}, el('time', { datetime: a.raised_at, text: formatTime(raised) })),
      el('td', { class: 'state' }, STATE_TEXT[a.state] || a.state, el('div', { class: 'muted', text: [who, shelved, latched].filter(Boolean).join(' · ') })),
      actions,
    );
  }

  // Ages in the overlay tick with the page's clock.
  tick() {
    if (!$('alarm-overlay').hidden) this.render();
  }
}
