"""Benchmark: reading a 10 M-point BYTE capture (an IEEE 488.2 definite-length block) through pyvisa-py.

A real TCP server thread (simulator.instruments.socket_server, the emulators' raw SCPI socket)
answers ``:WAVeform:DATA?`` with a 10,000,000-byte block of seeded random bytes, about 4 % of them
0x0A, as ``#8`` (Keysight InfiniiVision) and ``#9`` (Rigol DS1000Z). In the same run, interleaved,
best of N (the machine is shared and noisy; the best time is the one least disturbed), it times:

* rig   -- ``read_definite_block`` over a resource from ``rig.instruments.open_resource`` (pyvisa-py,
  TCPIP SOCKET), the path the scope drivers use;
* plain -- pyvisa-py's own ``query_binary_values(..., datatype='B', container=numpy.array)`` on a
  plain resource with read_termination '\\n' (what a SOCKET resource needs); numpy rather than
  ``bytes`` so that decoding (``container=bytes`` unpacks 10 M Python ints first) does not count;
* bare  -- a bare Python socket: ``sendall`` the query, ``recv_into`` a preallocated buffer;
* vxi11 -- for information (not gated): the rig's path over VXI-11 (TCPIP INSTR, the same session
  served by simulator.instruments.vxi11), as LXI scopes are usually addressed.

It prints each rate in MB/s (10^6 bytes/s, data bytes only), the ratios rig/plain and rig/bare, and
the peak memory traced (tracemalloc, in a separate untimed read) while the rig path reads one
capture, in copies of the capture (the returned buffer counts as one). Every path's data is
checked byte-identical to what was served.

Exits 1 if the rig's best rate is below 117 MB/s or its peak above 2 copies, for either format.

Run: /work/venv/bin/python benchmarks/bench_transfer.py [--repeats N] [--points N]
"""

from __future__ import annotations

import argparse
import gc
import socket
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyvisa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rig.instruments import open_resource, read_definite_block
from rig.instruments.vxi11_port import portmapper_port_set_to
from simulator.instruments.scpi import definite_block
from simulator.instruments.socket_server import ScpiSocketServer
from simulator.instruments.vxi11 import Vxi11Server

N_POINTS = 10_000_000
NEWLINE_FRACTION = 0.04
SEED = 20240611
MIN_RATE_MB_S = 117.0
MAX_COPIES = 2.0
COMMAND = ":WAVeform:DATA?"
TIMEOUT_S = 10.0


def capture(n: int, seed: int = SEED) -> bytes:
    """``n`` random bytes, a ``NEWLINE_FRACTION`` of them (and only those) 0x0A."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 255, n, dtype=np.uint8)  # 0..254
    codes[codes >= 10] += 1  # 0..255 without 10
    codes[rng.random(n) < NEWLINE_FRACTION] = 10
    return codes.tobytes()


class BlockSession:
    """The served instrument: ':WAVeform:DATA?' -> the block (prebuilt: serving allocates nothing)."""

    def __init__(self, replies: dict[str, bytes]) -> None:
        self._replies = replies

    def handle(self, line: bytes) -> bytes:
        return self._replies.get(line.decode("latin-1").strip().upper(), b"")


def serve(data: bytes, digits: int) -> tuple[ScpiSocketServer, Vxi11Server]:
    """The block on a raw SCPI socket and over VXI-11 (portmapper on a free port), one lock for both."""
    reply = definite_block(data, digits) + b"\n"
    replies = {COMMAND.upper(): reply, "*IDN?": b"BENCH,TRANSFER,0,0\n"}
    raw = ScpiSocketServer(lambda: BlockSession(replies), port=0).start()
    return raw, Vxi11Server(lambda: BlockSession(replies), portmapper_port=0, lock=raw.lock).start()


def recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            raise ConnectionError(f"connection closed after {got} of {len(view)} bytes")
        got += n


def bare_read(sock: socket.socket) -> bytearray:
    """The same transfer with nothing but a socket: header, data by length into one buffer, '\\n'."""
    sock.sendall(COMMAND.encode() + b"\n")
    head = bytearray(2)
    recv_exactly(sock, memoryview(head))
    digits = bytearray(int(head[1:2]))
    recv_exactly(sock, memoryview(digits))
    data = bytearray(int(digits))
    recv_exactly(sock, memoryview(data))
    end = bytearray(1)
    recv_exactly(sock, memoryview(end))
    if end != b"\n":
        raise ValueError(f"no terminator: {bytes(end)!r}")
    return data


def best_times(funcs: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in funcs]
    for _ in range(repeats):
        for k, f in enumerate(funcs):
            gc.collect()
            t = time.perf_counter()
            result = f()
            times[k].append(time.perf_counter() - t)
            del result
    return times


def peak_copies(read: Callable[[], object], n: int) -> float:
    """Peak traced memory while ``read`` runs (its result alive at the end), in multiples of ``n``."""
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = read()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return (peak - base) / n


def run_format(data: bytes, digits: int, repeats: int) -> tuple[bool, str]:
    n = len(data)
    server, vxi11 = serve(data, digits)
    rig = open_resource(server.resource(), timeout_s=TIMEOUT_S)
    with portmapper_port_set_to(vxi11.portmapper_port):
        instr = open_resource(vxi11.resource(), timeout_s=TIMEOUT_S)
    plain = pyvisa.ResourceManager("@py").open_resource(
        server.resource(), read_termination="\n", write_termination="\n", timeout=TIMEOUT_S * 1000
    )
    bare = socket.create_connection(server.address)
    bare.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:

        def rig_read() -> bytes | memoryview:
            rig.write(COMMAND)
            return read_definite_block(rig, instrument=server.resource(), command=COMMAND)

        def plain_read() -> np.ndarray:
            return plain.query_binary_values(  # type: ignore[attr-defined,no-any-return]
                COMMAND, datatype="B", container=np.array, header_fmt="ieee", expect_termination=True
            )

        def bare_read_() -> bytearray:
            return bare_read(bare)

        def vxi11_read() -> bytes | memoryview:
            instr.write(COMMAND)
            return read_definite_block(instr, instrument=vxi11.resource(), command=COMMAND)

        paths: list[tuple[str, Callable[[], bytes | bytearray | memoryview | np.ndarray]]] = [
            ("rig", rig_read), ("plain", plain_read), ("bare", bare_read_), ("vxi11", vxi11_read)
        ]
        for name, f in paths:
            got = bytes(f())
            if got != data:
                return False, f"#{digits}: {name} path returned different data ({len(got)} bytes)"
            del got
        copies = peak_copies(rig_read, n)
        t_rig, t_plain, t_bare, t_vxi11 = best_times([rig_read, plain_read, bare_read_, vxi11_read], repeats)
    finally:
        bare.close()
        plain.close()
        rig.close()
        instr.close()
        vxi11.stop()
        server.stop()

    def rate(ts: list[float]) -> float:
        return n / min(ts) / 1e6

    def median_rate(ts: list[float]) -> float:
        return n / statistics.median(ts) / 1e6

    r_rig, r_plain, r_bare = rate(t_rig), rate(t_plain), rate(t_bare)
    print(f"#{digits} block, {n:,} bytes ({data.count(10) / n:.1%} 0x0A), best of {repeats} (median in brackets):")
    print(f"  rig   read_definite_block        {r_rig:8.1f} MB/s  ({median_rate(t_rig):.1f})")
    print(f"  plain query_binary_values        {r_plain:8.1f} MB/s  ({median_rate(t_plain):.1f})")
    print(f"  bare  socket recv_into           {r_bare:8.1f} MB/s  ({median_rate(t_bare):.1f})")
    r_vxi11 = rate(t_vxi11)
    print(f"  rig over VXI-11 (INSTR)          {r_vxi11:8.1f} MB/s  ({median_rate(t_vxi11):.1f})  for information")
    print(f"  ratio rig/plain {r_rig / r_plain:.2f}   rig/bare {r_rig / r_bare:.2f}   vxi11/rig {r_vxi11 / r_rig:.2f}")
    print(f"  rig peak memory: {copies:.2f} copies of the capture (returned buffer included)")
    failures = []
    if r_rig < MIN_RATE_MB_S:
        failures.append(f"#{digits}: rig rate {r_rig:.1f} MB/s below {MIN_RATE_MB_S:g} MB/s")
    if not copies <= MAX_COPIES:
        failures.append(f"#{digits}: rig peak {copies:.2f} copies above {MAX_COPIES:g}")
    return not failures, "; ".join(failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", type=int, default=N_POINTS)
    args = parser.parse_args()
    if args.repeats < 1 or args.points < 1 or args.points >= 10**8:
        parser.error("--repeats >= 1 and 1 <= --points < 10^8 (an 8-digit length)")
    data = capture(args.points)
    ok = True
    for digits in (8, 9):
        passed, why = run_format(data, digits, args.repeats)
        if not passed:
            print(f"FAIL: {why}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
