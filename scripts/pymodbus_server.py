# SPDX-License-Identifier: Apache-2.0
"""A reference Modbus server (Debian's pymodbus 3.0.0) with a known datastore, for tests.

Run with /usr/bin/python3 only: the python3 first on PATH does not see Debian's packages.

    /usr/bin/python3 scripts/pymodbus_server.py --tcp [--port 0] --ready-file FILE
    /usr/bin/python3 scripts/pymodbus_server.py --rtu /dev/pts/N [--baud 9600] --ready-file FILE

TCP binds 127.0.0.1 (port 0: the kernel picks one). Once serving, FILE is written atomically with
one line, "tcp <port>" or "rtu <device>".

The datastore answers unit id 1 only; requests to other ids get no reply. zero_mode=True: wire address 0 is the first value of each block (pymodbus
otherwise adds 1 to every address).

Unit 1, input registers (FC04):
  0x0000  float32 ABCD 230.2         43 66 33 34 (the SDM630 L1 voltage test vector, exact bytes)
  0x0002  float32 ABCD 50.0          (frequency)
Holding registers (FC03, writable with FC06/FC16):
  0x0000  float32 ABCD 123456.0      47 F1 20 00
  0x0002  float32 CDAB 123456.0      20 00 47 F1
  0x0004  float32 BADC 123456.0      F1 47 00 20
  0x0006  float32 DCBA 123456.0      00 20 F1 47
  0x0008  int16  -1234               FB 2E
  0x0009  int32  ABCD -123456789     F8 A4 32 EB
  0x000B  uint32 ABCD 3000000000     B2 D0 5E 00
  0x000D  int64  ABCD -1234567890123 FF FF FE E0 8E 04 FB 35
  0x0011  uint16 65535
Coils (FC01, writable with FC05/FC15): 0..7 = 1 0 1 1 0 0 0 1 (first byte on the wire 0x8D)
Discrete inputs (FC02): 0..7 = 0 1 0 1 0 1 0 1 (first byte on the wire 0xAA)
"""

import argparse
import asyncio
import logging
import os
import struct
import sys


def _install_serial_asyncio_fallback():
    """pymodbus.server imports serial_asyncio, which Debian ships separately (python3-serial-asyncio).

    Without it, provide the one function pymodbus uses, create_serial_connection, on pyserial and
    the event loop's reader callbacks. Serial writes are small and the device is a pty or a local
    UART, so a blocking write is acceptable here.
    """
    try:
        import serial_asyncio  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        return
    except ImportError:
        pass
    import types  # pylint: disable=import-outside-toplevel

    import serial  # pylint: disable=import-outside-toplevel

    class SerialTransport(asyncio.Transport):
        def __init__(self, loop, protocol, port):
            super().__init__()
            self._loop = loop
            self._protocol = protocol
            self.serial = port
            self._closing = False
            loop.add_reader(port.fileno(), self._on_readable)

        def _on_readable(self):
            try:
                data = self.serial.read(self.serial.in_waiting or 1)
            except serial.SerialException as exc:
                self._close(exc)
                return
            if data:
                self._protocol.data_received(data)

        def write(self, data):
            self.serial.write(data)
            self.serial.flush()

        def get_extra_info(self, name, default=None):
            return self.serial if name == "serial" else default

        def is_closing(self):
            return self._closing

        def close(self):
            self._close(None)

        def _close(self, exc):
            if self._closing:
                return
            self._closing = True
            self._loop.remove_reader(self.serial.fileno())
            self.serial.close()
            self._loop.call_soon(self._protocol.connection_lost, exc)

    async def create_serial_connection(loop, protocol_factory, *args, **kwargs):
        port = serial.serial_for_url(*args, **kwargs)
        port.timeout = 0
        protocol = protocol_factory()
        transport = SerialTransport(loop, protocol, port)
        loop.call_soon(protocol.connection_made, transport)
        return transport, protocol

    module = types.ModuleType("serial_asyncio")
    module.create_serial_connection = create_serial_connection
    sys.modules["serial_asyncio"] = module


_install_serial_asyncio_fallback()

# pylint: disable=wrong-import-position
from pymodbus.datastore import (  # noqa: E402
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer  # noqa: E402
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer  # noqa: E402


def words(fmt, value):
    """Big-endian registers of a packed value (ABCD)."""
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def reorder(regs, order):
    """Apply a byte/word order to ABCD registers (CDAB swaps words, BADC bytes, DCBA both)."""
    if order in ("CDAB", "DCBA"):
        regs = list(reversed(regs))
    if order in ("BADC", "DCBA"):
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return regs


def datastore():
    """The slave context of unit 1 (see the module docstring for the map)."""
    holding = []
    for order in ("ABCD", "CDAB", "BADC", "DCBA"):
        holding += reorder(words("f", 123456.0), order)
    holding += words("h", -1234)
    holding += words("i", -123456789)
    holding += words("I", 3000000000)
    holding += words("q", -1234567890123)
    holding += [65535]
    holding += [0] * (100 - len(holding))
    # The published SDM630 reply carries 43 66 33 34, one ulp above the float nearest 230.2
    # (43 66 33 33): keep the device's bytes so the test compares against the vector itself.
    inputs = [0x4366, 0x3334] + words("f", 50.0)
    inputs += [0] * (100 - len(inputs))
    coils = [1, 0, 1, 1, 0, 0, 0, 1] + [0] * 92
    discrete = [0, 1, 0, 1, 0, 1, 0, 1] + [0] * 92
    return ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, discrete),
        co=ModbusSequentialDataBlock(0, coils),
        hr=ModbusSequentialDataBlock(0, holding),
        ir=ModbusSequentialDataBlock(0, inputs),
        zero_mode=True,
    )


def write_ready(path, line):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as out:
        out.write(line + "\n")
    os.replace(tmp, path)


async def run(args):
    context = ModbusServerContext(slaves={1: datastore()}, single=False)
    if args.tcp:
        server = ModbusTcpServer(
            context, ModbusSocketFramer, None, ("127.0.0.1", args.port), allow_reuse_address=True
        )
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
        write_ready(args.ready_file, f"tcp {port}")
        await task
    else:
        server = ModbusSerialServer(
            context, ModbusRtuFramer, port=args.rtu, baudrate=args.baud, timeout=0
        )
        await server.start()
        if server.transport is None:
            raise SystemExit(f"cannot open {args.rtu}")
        write_ready(args.ready_file, f"rtu {args.rtu}")
        while True:
            await asyncio.sleep(3600)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tcp", action="store_true", help="Modbus TCP on 127.0.0.1")
    mode.add_argument("--rtu", metavar="DEVICE", help="Modbus RTU on a serial device (a pty)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
