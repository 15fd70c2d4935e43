// SPDX-License-Identifier: Apache-2.0
// Alarm sounds after IEC 60601-1-8, made with WebAudio (no audio files):
//  - high:   a burst of 10 pulses (3 + 2, pause, 3 + 2), repeated every 5 s
//  - medium: a burst of 3 pulses, repeated every 10 s
//  - low:    2 pulses, once per new alarm, no repeat
// Pulses carry the fundamental and four harmonics (the standard asks for at least four within
// 15 dB), so they stay locatable and audible over ward noise.
// Browsers start an AudioContext "suspended" until the user interacts with the page; while it
// cannot play, `onState(false)` tells the page to demand a click (and show SOUND OFF).

const FUNDAMENTAL_HZ = { high: 660, medium: 520, low: 440 };
const PULSE_S = { high: 0.15, medium: 0.2, low: 0.2 };
const GAP_S = { high: 0.1, medium: 0.15, low: 0.2 };
const REPEAT_MS = { high: 5000, medium: 10000 };
// Pulse start offsets in units of (pulse + gap); the extra step is the pause inside the burst.
const PATTERN = {
  high: [0, 1, 2, 3.5, 4.5, 7, 8, 9, 10.5, 11.5],
  medium: [0, 1, 2],
  low: [0, 1],
};

export class AlarmSound {
  constructor(onState) {
    this.onState = onState;
    this.ctx = null;
    this.wave = null;
    this.wanted = null; // 'high' | 'medium' | null: what should repeat now
    this.timer = null;
    try {
      this.ctx = new AudioContext();
      this.ctx.onstatechange = () => this.report();
    } catch (e) {
      console.warn('fieldhub: no WebAudio', e);
    }
    // Any interaction may unlock audio; the page also offers an explicit button. On "click",
    // not "pointerdown": the SOUND OFF notices vanish when audio starts, and a layout that moved
    // between press and release would swallow the click the operator meant (say, Acknowledge).
    for (const type of ['click', 'keydown']) {
      document.addEventListener(type, () => this.enable(), { capture: true });
    }
    this.report();
  }

  get playing() {
    return this.ctx !== null && this.ctx.state === 'running';
  }

  async enable() {
    if (!this.ctx || this.ctx.state === 'running') return;
    try {
      await this.ctx.resume();
    } catch (e) {
      console.warn('fieldhub: audio refused', e);
    }
    this.report();
  }

  report() {
    this.onState(this.playing);
  }

  // Sets the priority that should keep sounding (the highest unacknowledged alarm). A rise in
  // priority sounds at once; the same priority keeps its rhythm.
  want(priority) {
    const repeating = priority === 'high' || priority === 'medium' ? priority : null;
    if (repeating === this.wanted) return;
    this.wanted = repeating;
    clearInterval(this.timer);
    this.timer = null;
    if (!repeating) return;
    this.burst(repeating);
    this.timer = setInterval(() => this.burst(repeating), REPEAT_MS[repeating]);
  }

  // One burst now: a new alarm, or the server's "renotify".
  burst(priority) {
    if (!this.playing || !PATTERN[priority]) return;
    const ctx = this.ctx;
    if (!this.wave) {
      const real = new Float32Array([0, 1, 0.7, 0.5, 0.4, 0.3]);
      this.wave = ctx.createPeriodicWave(real, new Float32Array(real.length));
    }
    const step = PULSE_S[priority] + GAP_S[priority];
    const start = ctx.currentTime + 0.02;
    for (const offset of PATTERN[priority]) {
      const t = start + offset * step;
      const osc = ctx.createOscillator();
      osc.setPeriodicWave(this.wave);
      osc.frequency.value = FUNDAMENTAL_HZ[priority];
      const gain = ctx.createGain();
      // Soft edges (20 ms) avoid clicks; the level is the page's, the room sets the volume.
      gain.gain.setValueAtTime(0, t);
      gain.gain.linearRampToValueAtTime(0.25, t + 0.02);
      gain.gain.setValueAtTime(0.25, t + PULSE_S[priority] - 0.02);
      gain.gain.linearRampToValueAtTime(0, t + PULSE_S[priority]);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + PULSE_S[priority]);
    }
  }
}
