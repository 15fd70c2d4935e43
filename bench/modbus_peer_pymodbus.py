#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The peer poller for bench/run-modbus-scale.sh: Debian's pymodbus async client (the library
Home Assistant's Modbus integration is built on) doing fieldhub's job on the same simulated
devices: every device read once a second (FC04, REGISTERS input registers from address 0), one
request in flight per connection (a lock per client, as Home Assistant's hub holds one), each
reply decoded as big-endian float32 values. It does not store anything: collection and decoding
only, which favours the peer.

Scheduling mirrors fieldhub's DevicePoller: a device's next cycle is due one interval after the
previous due time, or half an interval from now if it fell that far behind (the cycles in
between are missed). Prints one line of key=value figures over the measured window (cycles due
in [warmup, warmup + seconds)), CPU and peak RSS from getrusage.

usage: modbus_peer_pymodbus.py PORTS UNITS_PER_PORT DEVICES REGISTERS WARMUP SECONDS
  PORTS: comma-separated TCP ports on 127.0.0.1 (one per simulator listener)
"""

import asyncio
import math
import resource
import struct
import sys
import time

from pymodbus.client import AsyncModbusTcpClient

LATE_S = 0.1  # a cycle that starts more than this after its due time is late
TIMEOUT_S = 0.5  # fieldhub's default response timeout


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Stats:
    def __init__(self):
        self.cycles = 0
        self.good = 0
        self.bad = 0
        self.late = 0
        self.missed = 0
        self.values = 0
        self.lags = []


async def poll_device(client, lock, unit, registers, t0, window, stats):
    loop = asyncio.get_running_loop()
    start, end = window
    due = t0  # every device due at once, as fieldhub's pollers start
    fmt = ">%df" % (registers // 2)
    while due < t0 + end:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = loop.time()
        measured = t0 + start <= due < t0 + end
        lag = now - due
        try:
            async with lock:
                rr = await asyncio.wait_for(
                    client.read_input_registers(0, registers, slave=unit), TIMEOUT_S)
            ok = not rr.isError() and len(rr.registers) == registers
            if ok:
                values = struct.unpack(fmt, struct.pack(">%dH" % registers, *rr.registers))
        except Exception:  # noqa: BLE001 - a timeout or lost connection is a bad cycle
            ok = False
        if measured:
            stats.cycles += 1
            stats.lags.append(lag)
            if lag > LATE_S:
                stats.late += 1
            if ok:
                stats.good += 1
                stats.values += len(values)
            else:
                stats.bad += 1
        # fieldhub's rule, from the cycle's start: next = max(due + interval, start + interval / 2)
        nxt = max(due + 1.0, now + 0.5)
        skipped = math.floor((nxt - due) / 1.0) - 1
        if skipped > 0 and measured:
            stats.missed += skipped
        due = nxt


async def main():
    ports = [int(p) for p in sys.argv[1].split(",")]
    per_port, devices, registers = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    warmup, seconds = float(sys.argv[5]), float(sys.argv[6])
    stats = Stats()
    clients = []
    for port in ports:
        c = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S)
        await c.connect()
        clients.append((c, asyncio.Lock()))
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    tasks = []
    for i in range(devices):
        client, lock = clients[i // per_port]
        unit = i % per_port + 1
        tasks.append(asyncio.create_task(
            poll_device(client, lock, unit, registers, t0, (warmup, warmup + seconds), stats)))

    async def sample_cpu():
        await asyncio.sleep(max(0.0, t0 + warmup - loop.time()))
        before = (cpu_seconds(), time.monotonic())
        await asyncio.sleep(max(0.0, t0 + warmup + seconds - loop.time()))
        return cpu_seconds() - before[0], time.monotonic() - before[1]

    cpu, wall = await sample_cpu()
    await asyncio.gather(*tasks)
    for c, _ in clients:
        await c.close()
    lags = sorted(stats.lags) or [0.0]
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("peer=pymodbus-%s devices=%d registers=%d seconds=%.0f cycles=%d good=%d bad=%d "
          "late=%d missed=%d values=%d cycles_per_s=%.0f lag_p50_ms=%.1f lag_p99_ms=%.1f "
          "cpu_pct=%.1f peak_rss_mib=%.0f" % (
              __import__("pymodbus").__version__, devices, registers, seconds, stats.cycles,
              stats.good, stats.bad, stats.late, stats.missed, stats.values,
              stats.good / seconds, 1000 * lags[len(lags) // 2],
              1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))], 100.0 * cpu / wall,
              rss_mib))


if __name__ == "__main__":
    asyncio.run(main())
