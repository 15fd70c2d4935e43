// SPDX-License-Identifier: Apache-2.0
// Real parts for the browser tests, on loopback with random ports and temp folders: Mosquitto,
// the fieldhub binary, fieldhub-sim, mosquitto_pub, and Debian's Chromium through playwright-core.
// Every process started here is stopped by pid (stopAll), also when the test fails.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.FIELDHUB_CHROMIUM || '/usr/bin/chromium';
const started = new Set();

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// Polls `probe` (sync or async) until it returns a truthy value; throws with `what` at the deadline.
export async function waitUntil(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value;
    try {
      value = await probe();
    } catch {
      value = undefined;
    }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A child process whose output goes to a log file in `dir`.
export class Child {
  constructor(name, argv, dir, options = {}) {
    this.name = name;
    this.logPath = path.join(dir, `${name}.log`);
    const out = fs.openSync(this.logPath, 'a');
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out], ...options });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.running = true;
    this.exited.then(() => {
      this.running = false;
      started.delete(this);
    });
    started.add(this);
  }

  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  async stop(sig = 'SIGTERM', timeoutMs = 10000) {
    if (!this.running) return;
    this.proc.kill(sig);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }
}

export async function stopAll() {
  await Promise.all([...started].map((c) => c.stop('SIGKILL', 2000)));
}
process.on('exit', () => {
  for (const c of started) c.proc.kill('SIGKILL');
});
// ctest's timeout or Ctrl-C: leave no broker, server or simulator behind.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.once(sig, () => process.exit(128 + (sig === 'SIGTERM' ? 15 : 2)));
}

// `extra`: more mosquitto.conf lines (the benchmark sets TCP_NODELAY as bench/run-e2e.sh does).
// `port`: listen there (a restart of a stopped broker); default a free one.
export async function startMosquitto(dir, extra = '', port = null) {
  port = port ?? (await freePort());
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nuser ${os.userInfo().username}\n${extra}`);
  const child = new Child('mosquitto', ['/usr/sbin/mosquitto', '-c', conf], dir);
  await waitUntil(() => portOpen(port), 10000, 'mosquitto to listen');
  child.port = port;
  return child;
}

export function publish(port, topic, payload) {
  const r = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', payload], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`mosquitto_pub failed: ${r.stderr}`);
}

// The fieldhub binary with `config` (TOML text) written to `dir`/fieldhub.toml.
export class Fieldhub {
  constructor(binDir, dir, httpPort, config) {
    this.binDir = binDir;
    this.dir = dir;
    this.port = httpPort;
    this.base = `http://127.0.0.1:${httpPort}`;
    this.config = path.join(dir, 'fieldhub.toml');
    fs.writeFileSync(this.config, config);
    this.starts = 0;
  }

  async start() {
    this.starts += 1;
    this.child = new Child(`fieldhub-${this.starts}`, [path.join(this.binDir, 'fieldhub'), '--config', this.config], this.dir, { cwd: this.dir });
    await waitUntil(async () => {
      if (!this.child.running) throw new Error(`fieldhub exited:\n${this.child.log()}`);
      const res = await fetch(`${this.base}/api/v1/health`);
      if (!res.ok) return false;
      const health = await res.json();
      return (health.links || []).some((l) => l.name === 'broker' && l.state === 'up');
    }, 15000, 'fieldhub to serve and reach the broker');
  }

  async get(route) {
    const res = await fetch(`${this.base}${route}`);
    if (!res.ok) throw new Error(`${route}: HTTP ${res.status}`);
    return res.json();
  }
}

// Chromium with the flags headless Chromium needs here and a fresh profile folder.
export async function launchBrowser(chromium) {
  const profile = tempDir('fieldhub-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return { context, profile };
}
