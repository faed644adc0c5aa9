"""VXI-11 (``TCPIP0::host::inst0::INSTR``) for the emulated instruments: portmapper, core and abort channels.

``Vxi11Server(session_factory, host="127.0.0.1", port=0, portmapper_port=111, lock=None)`` serves the
same session objects as :class:`~simulator.instruments.socket_server.ScpiSocketServer` (an object with
``handle(line: bytes) -> bytes`` and optionally ``close()``), one session per VXI-11 link, over ONC RPC
(RFC 5531, record marking over TCP):

* a portmapper (program 100000 version 2: NULL, GETPORT, DUMP) that tells where the core channel
  (program 0x0607AF version 1, TCP) and the abort channel (program 0x0607B0 version 1, TCP) listen.
  ``portmapper_port=0`` binds a free port; a client must then be told that port (pyvisa-py: see
  :mod:`rig.instruments.vxi11_port`). Binding 111 needs root and a free port 111: a
  :class:`Vxi11BindError` says so;
* the core channel: create_link, device_write, device_read, device_readstb, device_trigger,
  device_clear, device_remote, device_local, device_lock, device_unlock, device_enable_srq,
  device_docmd, destroy_link, create_intr_chan, destroy_intr_chan;
* the abort channel: device_abort.

Semantics (VXI-11 1.0, B.6), with the instrument side as in the raw socket server:

* device_write accumulates the data of a link until a write carries the END flag; that ends the
  program message. Like IEEE 488.2, a newline also terminates a program message: the message is split
  at newlines and every line goes to ``session.handle`` (``\\r`` stripped), as the raw socket server
  does; a message over ``MAX_LINE_BYTES`` is discarded (input buffer overrun). The whole END-terminated
  message runs under the server-wide ``lock`` (shared with a raw socket server when given, so that a
  program message is atomic across both transports); waiting longer than ``io_timeout`` for it
  answers error 15 and drops the message.
* Every non-empty reply is one response message in the link's output queue. device_read returns at
  most ``requestSize`` bytes of the first one, with the reason bits REQCNT (1: ``requestSize`` bytes),
  CHR (2: stopped after ``termChar``, only when the TERMCHRSET flag asks for it) and END (4: the last
  byte of the response message). With nothing queued it waits up to ``io_timeout`` ms, then answers
  error 15 (I/O timeout); device_abort on the abort channel ends the wait with error 23.
* device_lock / device_unlock take and release the device lock (errors 11: locked by another link,
  12: no lock held by this link); every device operation of another link then waits for it
  ``lock_timeout`` ms if its WAITLOCK flag is set, else fails at once with error 11. Taking the lock
  again on the link that holds it succeeds. destroy_link and a closed connection release it.
* device_clear drops the link's pending input and output and calls the session's ``device_clear()``
  or ``clear()`` if it has one.
* device_readstb: the session's ``status_byte()`` if it has one (the emulated scopes' sessions give
  their instrument's *STB? value), else 0; plus MAV
  (0x10) while this link has unread output, as on an IEEE 488.2 instrument.
* device_trigger calls the session's ``trigger()`` if it has one, else error 8 (not supported).
* No interrupt channel: create_intr_chan and device_enable_srq(enable) answer error 8, destroy_intr_chan
  error 6 (channel not established); device_docmd error 8. device_remote / device_local succeed.
* An unknown (or another connection's) link id answers error 4; an unknown procedure PROC_UNAVAIL,
  undecodable arguments GARBAGE_ARGS, another program PROG_UNAVAIL, another version PROG_MISMATCH.

Replies stream: a device_read reply references the response bytes (no slicing copies), is framed into
record-marking fragments of at most ``fragment_size`` bytes in one buffer, and goes out with one
``sendall``. The XDR coding is done with :mod:`struct` (no ``xdrlib``: deprecated, gone in 3.13).

A VXI-11 device lock concerns VXI-11 links only: raw socket connections to the same instrument are not
held off by it (as on most LXI instruments, whose socket server ignores VXI-11 locks).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator.instruments.socket_server import MAX_LINE_BYTES, ScpiSession

log = logging.getLogger(__name__)

# ONC RPC (RFC 5531)
RPC_VERSION = 2
_CALL, _REPLY = 0, 1
_MSG_ACCEPTED, _MSG_DENIED = 0, 1
_SUCCESS, _PROG_UNAVAIL, _PROG_MISMATCH, _PROC_UNAVAIL, _GARBAGE_ARGS, _SYSTEM_ERR = 0, 1, 2, 3, 4, 5
_RPC_MISMATCH = 0
_LAST_FRAGMENT = 0x80000000
_MAX_AUTH_BYTES = 400

# Portmapper (RFC 1833, version 2)
PMAP_PROG, PMAP_VERS, PMAP_PORT = 100000, 2, 111
IPPROTO_TCP = 6
_PMAPPROC_NULL, _PMAPPROC_GETPORT, _PMAPPROC_DUMP = 0, 3, 4

# VXI-11
DEVICE_CORE_PROG, DEVICE_CORE_VERS = 0x0607AF, 1
DEVICE_ASYNC_PROG, DEVICE_ASYNC_VERS = 0x0607B0, 1
(CREATE_LINK, DEVICE_WRITE, DEVICE_READ, DEVICE_READSTB, DEVICE_TRIGGER, DEVICE_CLEAR, DEVICE_REMOTE,
 DEVICE_LOCAL, DEVICE_LOCK, DEVICE_UNLOCK, DEVICE_ENABLE_SRQ) = range(10, 21)  # fmt: skip
DEVICE_DOCMD, DESTROY_LINK, CREATE_INTR_CHAN, DESTROY_INTR_CHAN = 22, 23, 25, 26
DEVICE_ABORT = 1

OP_FLAG_WAITLOCK, OP_FLAG_END, OP_FLAG_TERMCHRSET = 0x01, 0x08, 0x80
RX_REQCNT, RX_CHR, RX_END = 0x01, 0x02, 0x04
MAV = 0x10  # IEEE 488.2 status byte: message available

# Device_ErrorCode
ERR_NONE = 0
ERR_DEVICE_NOT_ACCESSIBLE = 3
ERR_INVALID_LINK = 4
ERR_CHANNEL_NOT_ESTABLISHED = 6
ERR_NOT_SUPPORTED = 8
ERR_OUT_OF_RESOURCES = 9
ERR_LOCKED_BY_ANOTHER_LINK = 11
ERR_NO_LOCK_HELD = 12
ERR_IO_TIMEOUT = 15
ERR_IO = 17
ERR_ABORT = 23

DEFAULT_MAX_RECV_SIZE = 1 << 20  # announced in create_link: the largest device_write a client should send
DEFAULT_FRAGMENT_SIZE = 1 << 20  # record-marking fragment size of the replies
_SMALL_RECORD_LIMIT = 4096  # calls to the portmapper and the abort channel
_DEVICE_NAME = re.compile(r"inst\d+", re.IGNORECASE)

Buffer = bytes | bytearray | memoryview
_U32 = struct.Struct(">I")


class Vxi11BindError(OSError):
    """A VXI-11 listener (portmapper, core or abort channel) could not bind its port."""


class LockLike(Protocol):
    """``threading.Lock`` / ``RLock``: what the server-wide program-message lock must offer."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


# ------------------------------------------------------------------------------------------ XDR


class _GarbageArgs(Exception):
    """The call's arguments do not decode (answered GARBAGE_ARGS)."""


class _Xdr:
    """Sequential XDR decoder over one received record (RFC 4506 subset)."""

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: memoryview, pos: int = 0) -> None:
        self._buf = buf
        self._pos = pos

    def u32(self) -> int:
        if self._pos + 4 > len(self._buf):
            raise _GarbageArgs("record too short")
        (value,) = _U32.unpack_from(self._buf, self._pos)
        self._pos += 4
        return int(value)

    def i32(self) -> int:
        value = self.u32()
        return value - (1 << 32) if value & 0x80000000 else value

    def boolean(self) -> bool:
        value = self.u32()
        if value > 1:
            raise _GarbageArgs(f"bool {value}")
        return value == 1

    def opaque(self, max_len: int | None = None) -> memoryview:
        n = self.u32()
        if max_len is not None and n > max_len:
            raise _GarbageArgs(f"opaque of {n} bytes, at most {max_len} allowed")
        end = self._pos + n
        if end > len(self._buf):
            raise _GarbageArgs("opaque runs past the record")
        data = self._buf[self._pos : end]
        self._pos = end + (-n % 4)
        return data

    def string(self, max_len: int | None = None) -> str:
        try:
            return bytes(self.opaque(max_len)).decode("ascii")
        except UnicodeDecodeError as exc:
            raise _GarbageArgs("non-ASCII string") from exc


def _opaque(data: Buffer) -> list[Buffer]:
    """XDR variable-length opaque: length, data, zero padding to 4 bytes."""
    n = len(data)
    pad = -n % 4
    return [_U32.pack(n), data, b"\0" * pad] if pad else [_U32.pack(n), data]


def _accepted(xid: int, stat: int) -> bytes:
    """Reply header: accepted, AUTH_NULL verifier, accept_stat."""
    return struct.pack(">IIIIII", xid, _REPLY, _MSG_ACCEPTED, 0, 0, stat)


# ---------------------------------------------------------------------------- record marking


def _recv_into(sock: socket.socket, view: memoryview) -> bool:
    """Fill ``view`` from ``sock``; False if the peer closed first."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True


class _RecordTooLarge(Exception):
    pass


def _recv_record(sock: socket.socket, limit: int) -> bytearray | None:
    """One record-marked record (all its fragments), or None when the connection ends."""
    header = bytearray(4)
    record: bytearray | None = None
    while True:
        if not _recv_into(sock, memoryview(header)):
            return None
        (word,) = _U32.unpack(header)
        size = word & 0x7FFFFFFF
        total = size + (len(record) if record is not None else 0)
        if total > limit:
            raise _RecordTooLarge(f"record of more than {limit} bytes")
        fragment = bytearray(size)
        if not _recv_into(sock, memoryview(fragment)):
            return None
        if record is None:
            record = fragment  # the usual single-fragment record: no copy
        else:
            record += fragment
        if word & _LAST_FRAGMENT:
            return record


def frame_record(parts: Sequence[Buffer], fragment_size: int) -> bytearray:
    """The record made of ``parts`` in record-marking fragments of at most ``fragment_size`` bytes,
    in one buffer (each byte copied once), ready for one ``sendall``."""
    if not 0 < fragment_size <= 0x7FFFFFFF:
        raise ValueError(f"fragment size {fragment_size} out of range")
    total = sum(len(p) for p in parts)
    n_fragments = max(1, -(-total // fragment_size))
    out = bytearray(total + 4 * n_fragments)
    for i in range(n_fragments):
        size = min(fragment_size, total - i * fragment_size)
        last = _LAST_FRAGMENT if i == n_fragments - 1 else 0
        _U32.pack_into(out, i * (fragment_size + 4), last | size)
    position = 0  # in the record, without the fragment headers
    for part in parts:
        view = memoryview(part).cast("B")
        offset = 0
        while offset < len(view):
            fragment = position // fragment_size
            n = min((fragment + 1) * fragment_size - position, len(view) - offset)
            at = position + 4 * (fragment + 1)
            out[at : at + n] = view[offset : offset + n]
            offset += n
            position += n
    return out


# ------------------------------------------------------------------------------ RPC listener


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: str
    links: set[int] = field(default_factory=set)


Procedure = Callable[[_Connection, _Xdr, int], list[Buffer]]  # (connection, arguments, xid) -> results


class _RpcListener:
    """One TCP port serving one RPC program: an accept thread and one thread per connection."""

    def __init__(
        self,
        role: str,
        host: str,
        port: int,
        program: int,
        version: int,
        procedures: dict[int, Procedure],
        *,
        record_limit: int,
        fragment_size: int,
        on_close: Callable[[_Connection], None] | None = None,
    ) -> None:
        self.role = role
        self._host = host
        self._requested_port = port
        self.program = program
        self.version = version
        self._procedures = procedures
        self._record_limit = record_limit
        self._fragment_size = fragment_size
        self._on_close = on_close
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[_Connection, threading.Thread] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    def bind(self, advice: str = "") -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self._host, self._requested_port))
            listener.listen(16)
        except OSError as exc:
            listener.close()
            message = (
                f"cannot bind the VXI-11 {self.role} to {self._host}:{self._requested_port}: "
                f"{type(exc).__name__}: {exc.strerror or exc}"
            )
            raise Vxi11BindError(exc.errno, message + (f"; {advice}" if advice else "")) from exc
        self._listener = listener
        self._port = int(listener.getsockname()[1])

    def start(self) -> None:
        if self._listener is None:
            raise RuntimeError("bind() first")
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"vxi11-{self.role}-accept:{self._port}", daemon=True
        )
        self._accept_thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._guard:
            conns = list(self._connections.items())
        for conn, _thread in conns:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.sock.close()
        threads = [t for _c, t in conns]
        if self._accept_thread is not None:
            threads.append(self._accept_thread)
        deadline = time.monotonic() + timeout_s
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        self._accept_thread = None

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopping.is_set() and listener is not None:
            try:
                sock, peer = listener.accept()
            except OSError:
                break
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, f"{peer[0]}:{peer[1]}")
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"vxi11-{self.role}:{conn.peer}", daemon=True
            )
            with self._guard:  # atomic with stop()'s snapshot
                if self._stopping.is_set():
                    sock.close()
                    break
                self._connections[conn] = thread
                thread.start()

    def _serve(self, conn: _Connection) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    record = _recv_record(conn.sock, self._record_limit)
                except _RecordTooLarge as exc:
                    log.warning("VXI-11 %s: %s from %s: connection closed", self.role, exc, conn.peer)
                    break
                except OSError:
                    break
                if record is None:
                    break
                reply = self.dispatch(conn, memoryview(record))
                if reply is None:
                    continue
                try:
                    conn.sock.sendall(frame_record(reply, self._fragment_size))
                except OSError:
                    break
        except Exception:  # never let one connection take the server down
            log.exception("VXI-11 %s connection %s failed", self.role, conn.peer)
        finally:
            if self._on_close is not None:
                try:
                    self._on_close(conn)
                except Exception:
                    log.exception("VXI-11 %s: cleaning up connection %s failed", self.role, conn.peer)
            with self._guard:
                self._connections.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.sock.close()

    def dispatch(self, conn: _Connection, record: memoryview) -> list[Buffer] | None:
        """The reply to one call record (header and results), or None for what deserves no reply."""
        x = _Xdr(record)
        try:
            xid = x.u32()
            if x.u32() != _CALL:
                return None
        except _GarbageArgs:
            return None
        try:
            if x.u32() != RPC_VERSION:
                return [struct.pack(">IIIIII", xid, _REPLY, _MSG_DENIED, _RPC_MISMATCH, RPC_VERSION, RPC_VERSION)]
            program, version, proc = x.u32(), x.u32(), x.u32()
            for _ in range(2):  # credentials and verifier: any flavour, ignored
                x.u32()
                x.opaque(_MAX_AUTH_BYTES)
        except _GarbageArgs:
            return [_accepted(xid, _GARBAGE_ARGS)]
        if program != self.program:
            return [_accepted(xid, _PROG_UNAVAIL)]
        if version != self.version:
            return [_accepted(xid, _PROG_MISMATCH), struct.pack(">II", self.version, self.version)]
        handler = self._procedures.get(proc)
        if handler is None:
            return [_accepted(xid, _PROC_UNAVAIL)]
        try:
            results = handler(conn, x, xid)
        except _GarbageArgs:
            return [_accepted(xid, _GARBAGE_ARGS)]
        except Exception:
            log.exception("VXI-11 %s procedure %d failed", self.role, proc)
            return [_accepted(xid, _SYSTEM_ERR)]
        return [_accepted(xid, _SUCCESS), *results]


# ------------------------------------------------------------------------------------- links


@dataclass(eq=False)
class _Link:
    lid: int
    session: ScpiSession
    device: str
    conn: _Connection
    cond: threading.Condition = field(default_factory=threading.Condition)
    pending_input: bytearray = field(default_factory=bytearray)
    overrun: bool = False
    output: deque[tuple[bytes | bytearray, int]] = field(default_factory=deque)  # (response, offset)
    abort_count: int = 0
    closed: bool = False


def _lines(message: bytes) -> list[bytes]:
    """The program messages of one END-terminated write: newline-separated, ``\\r`` stripped."""
    lines = message.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def _seconds(ms: int) -> float:
    return min(ms / 1000.0, threading.TIMEOUT_MAX)


def status_byte_of(session: object) -> int:
    """The IEEE 488.2 status byte a session reports: ``status_byte()`` (or an int attribute), else 0."""
    value: Any = getattr(session, "status_byte", None)
    if callable(value):
        return int(value()) & 0xFF
    if isinstance(value, int):
        return value & 0xFF
    return 0


# ------------------------------------------------------------------------------------ server


class Vxi11Server:
    """The VXI-11 face of one emulated instrument (see the module docstring).

    ``session_factory()`` makes the session of a new link; ``host`` is the address every listener binds
    (and the one :meth:`resource` names); ``port`` the core channel's (0: a free port); the abort
    channel always takes a free port (``.abort_port``); ``portmapper_port`` the portmapper's (111 as on
    a real instrument, 0: a free port). ``lock`` is the server-wide program-message lock (pass a raw
    socket server's ``.lock`` to make messages atomic across both transports); ``.lock`` tells which.
    ``max_recv_size`` is announced to clients by create_link (the largest device_write they send, and
    pyvisa-py's device_read size); ``fragment_size`` the record-marking fragment size of the replies.
    """

    def __init__(
        self,
        session_factory: Callable[[], ScpiSession],
        host: str = "127.0.0.1",
        port: int = 0,
        portmapper_port: int = PMAP_PORT,
        lock: LockLike | None = None,
        *,
        max_recv_size: int = DEFAULT_MAX_RECV_SIZE,
        fragment_size: int = DEFAULT_FRAGMENT_SIZE,
    ) -> None:
        if not 0 < max_recv_size <= 0x7FFFFFFF:
            raise ValueError(f"max_recv_size {max_recv_size} out of range")
        if not 0 < fragment_size <= 0x7FFFFFFF:
            raise ValueError(f"fragment_size {fragment_size} out of range")
        self._factory = session_factory
        self._host = host
        self.lock: LockLike = lock if lock is not None else threading.Lock()
        self.max_recv_size = max_recv_size
        self._links: dict[int, _Link] = {}
        self._links_guard = threading.Lock()
        self._lids = itertools.count(1)
        self._device_cond = threading.Condition()  # guards _lock_owner
        self._lock_owner: int | None = None
        self._stopping = threading.Event()
        self._started = False
        core: dict[int, Procedure] = {
            0: self._null,
            CREATE_LINK: self._create_link,
            DEVICE_WRITE: self._device_write,
            DEVICE_READ: self._device_read,
            DEVICE_READSTB: self._device_readstb,
            DEVICE_TRIGGER: self._device_trigger,
            DEVICE_CLEAR: self._device_clear,
            DEVICE_REMOTE: self._device_remote_local,
            DEVICE_LOCAL: self._device_remote_local,
            DEVICE_LOCK: self._device_lock,
            DEVICE_UNLOCK: self._device_unlock,
            DEVICE_ENABLE_SRQ: self._device_enable_srq,
            DEVICE_DOCMD: self._device_docmd,
            DESTROY_LINK: self._destroy_link,
            CREATE_INTR_CHAN: self._create_intr_chan,
            DESTROY_INTR_CHAN: self._destroy_intr_chan,
        }
        self._core = _RpcListener(
            "core channel", host, port, DEVICE_CORE_PROG, DEVICE_CORE_VERS, core,
            record_limit=max_recv_size + _SMALL_RECORD_LIMIT, fragment_size=fragment_size,
            on_close=self._connection_closed,
        )  # fmt: skip
        self._abort = _RpcListener(
            "abort channel", host, 0, DEVICE_ASYNC_PROG, DEVICE_ASYNC_VERS,
            {0: self._null, DEVICE_ABORT: self._device_abort},
            record_limit=_SMALL_RECORD_LIMIT, fragment_size=fragment_size,
        )  # fmt: skip
        self._portmapper = _RpcListener(
            "portmapper", host, portmapper_port, PMAP_PROG, PMAP_VERS,
            {_PMAPPROC_NULL: self._null, _PMAPPROC_GETPORT: self._getport, _PMAPPROC_DUMP: self._dump},
            record_limit=_SMALL_RECORD_LIMIT, fragment_size=fragment_size,
        )  # fmt: skip

    # ---------------------------------------------------------------- lifecycle

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the VXI-11 server is not started")

    @property
    def port(self) -> int:
        """The core channel's TCP port."""
        self._require_started()
        return self._core.port

    @property
    def abort_port(self) -> int:
        self._require_started()
        return self._abort.port

    @property
    def portmapper_port(self) -> int:
        self._require_started()
        return self._portmapper.port

    @property
    def host(self) -> str:
        return self._host

    @property
    def link_count(self) -> int:
        """Links currently open."""
        with self._links_guard:
            return len(self._links)

    def resource(self, name: str = "inst0") -> str:
        """The VISA resource string of this server: ``TCPIP0::<host>::inst0::INSTR``."""
        return f"TCPIP0::{self._host}::{name}::INSTR"

    def start(self) -> Vxi11Server:
        if self._started:
            raise RuntimeError("the VXI-11 server is already started")
        self._stopping.clear()
        bound: list[_RpcListener] = []
        try:
            for listener, advice in (
                (self._core, ""),
                (self._abort, ""),
                (
                    self._portmapper,
                    "port 111 needs root (or CAP_NET_BIND_SERVICE) and no rpcbind already on it; pass another "
                    "portmapper_port (0 = a free port) and point the client at it "
                    "(pyvisa-py: rig.instruments.vxi11_port.use_portmapper_port)",
                ),
            ):
                listener.bind(advice)
                bound.append(listener)
        except BaseException:
            for listener in bound:
                listener.stop(0.0)
            raise
        for listener in bound:
            listener.start()
        self._started = True
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close every listener and connection (their links with them), wait (bounded) for the threads."""
        self._stopping.set()
        with self._links_guard:
            links = list(self._links.values())
        for link in links:
            with link.cond:
                link.cond.notify_all()
        with self._device_cond:
            self._device_cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for listener in (self._portmapper, self._abort, self._core):
            listener.stop(max(0.0, deadline - time.monotonic()))
        with self._links_guard:
            links = list(self._links.values())
        for link in links:  # connections whose thread did not finish in time
            self._destroy(link)
        self._started = False

    def __enter__(self) -> Vxi11Server:
        return self if self._started else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- portmapper

    def _null(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        return []

    def _mappings(self) -> list[tuple[int, int, int, int]]:
        return [
            (PMAP_PROG, PMAP_VERS, IPPROTO_TCP, self._portmapper.port),
            (DEVICE_CORE_PROG, DEVICE_CORE_VERS, IPPROTO_TCP, self._core.port),
            (DEVICE_ASYNC_PROG, DEVICE_ASYNC_VERS, IPPROTO_TCP, self._abort.port),
        ]

    def _getport(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        program, version, protocol = x.u32(), x.u32(), x.u32()
        x.u32()  # port: ignored
        for p, v, proto, port in self._mappings():
            if (p, v, proto) == (program, version, protocol):
                return [_U32.pack(port)]
        return [_U32.pack(0)]

    def _dump(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        out: list[Buffer] = [struct.pack(">IIIII", 1, *m) for m in self._mappings()]
        out.append(_U32.pack(0))
        return out

    # ---------------------------------------------------------------- link helpers

    def _link(self, conn: _Connection, lid: int) -> _Link | None:
        with self._links_guard:
            link = self._links.get(lid)
        if link is None or link.conn is not conn or link.closed:
            return None
        return link

    def _wait_device(self, link: _Link, flags: int, lock_timeout_ms: int, *, take: bool = False) -> int:
        """0 once no other link holds the device lock (waiting up to ``lock_timeout_ms`` for it if the
        WAITLOCK flag is set), taking it if ``take``; else error 11 (locked), 23 (aborted) or 4 (closed)."""
        abort_count = link.abort_count
        deadline = time.monotonic() + _seconds(lock_timeout_ms)
        with self._device_cond:
            while self._lock_owner not in (None, link.lid):
                if not flags & OP_FLAG_WAITLOCK:
                    return ERR_LOCKED_BY_ANOTHER_LINK
                if link.abort_count != abort_count or self._stopping.is_set():
                    return ERR_ABORT
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ERR_LOCKED_BY_ANOTHER_LINK
                self._device_cond.wait(remaining)
            if link.closed:
                return ERR_INVALID_LINK
            if take:
                self._lock_owner = link.lid
        return ERR_NONE

    def _acquire(self, io_timeout_ms: int) -> bool:
        if io_timeout_ms == 0:
            return self.lock.acquire(False)
        return self.lock.acquire(True, _seconds(io_timeout_ms))

    def _destroy(self, link: _Link) -> None:
        with self._links_guard:
            if self._links.pop(link.lid, None) is None:
                return
        link.conn.links.discard(link.lid)
        with link.cond:
            link.closed = True
            link.output.clear()
            link.pending_input.clear()
            link.cond.notify_all()
        with self._device_cond:
            if self._lock_owner == link.lid:
                self._lock_owner = None
                self._device_cond.notify_all()
        closer = getattr(link.session, "close", None)
        if callable(closer):
            try:
                closer()
            except Exception:
                log.exception("VXI-11: closing the session of link %d failed", link.lid)

    def _connection_closed(self, conn: _Connection) -> None:
        with self._links_guard:
            links = [self._links[lid] for lid in list(conn.links) if lid in self._links]
        for link in links:
            self._destroy(link)

    @staticmethod
    def _generic_args(x: _Xdr) -> tuple[int, int, int, int]:
        """Device_GenericParms: (lid, flags, lock_timeout, io_timeout)."""
        return x.i32(), x.i32(), x.u32(), x.u32()

    # ---------------------------------------------------------------- core channel

    def _create_link(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        x.i32()  # clientId: informational
        lock_device, lock_timeout_ms, device = x.boolean(), x.u32(), x.string(256)

        def refused(error: int) -> list[Buffer]:
            return [struct.pack(">iiII", error, 0, self._abort.port, self.max_recv_size)]

        if self._stopping.is_set():
            return refused(ERR_OUT_OF_RESOURCES)
        if not _DEVICE_NAME.fullmatch(device):
            return refused(ERR_DEVICE_NOT_ACCESSIBLE)
        try:
            session = self._factory()
        except Exception:
            log.exception("VXI-11: the session factory failed")
            return refused(ERR_OUT_OF_RESOURCES)
        link = _Link(next(self._lids), session, device, conn)
        with self._links_guard:
            self._links[link.lid] = link
        conn.links.add(link.lid)
        if lock_device:
            error = self._wait_device(link, OP_FLAG_WAITLOCK, lock_timeout_ms, take=True)
            if error:
                self._destroy(link)
                return refused(error)
        return [struct.pack(">iiII", ERR_NONE, link.lid, self._abort.port, self.max_recv_size)]

    def _device_write(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, io_timeout_ms, lock_timeout_ms, flags = x.i32(), x.u32(), x.u32(), x.i32()
        data = x.opaque()
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">iI", ERR_INVALID_LINK, 0)]
        error = self._wait_device(link, flags, lock_timeout_ms)
        if error:
            return [struct.pack(">iI", error, 0)]
        message: bytes | None = None
        with link.cond:
            if not link.overrun:
                link.pending_input += data
                if len(link.pending_input) > MAX_LINE_BYTES:
                    log.warning("VXI-11 program message over %d bytes discarded", MAX_LINE_BYTES)
                    link.pending_input.clear()
                    link.overrun = True
            if flags & OP_FLAG_END:
                if not link.overrun:
                    message = bytes(link.pending_input)
                link.pending_input.clear()
                link.overrun = False
        if message is not None:
            lines = _lines(message)
            if lines:
                if not self._acquire(io_timeout_ms):
                    return [struct.pack(">iI", ERR_IO_TIMEOUT, 0)]
                replies: list[bytes] = []
                try:
                    for line in lines:
                        if self._stopping.is_set() or link.closed:
                            break
                        try:
                            reply = link.session.handle(line)
                        except Exception:
                            log.exception("VXI-11 session raised on %r", line[:200])
                            reply = b""
                        if reply:
                            replies.append(reply if isinstance(reply, (bytes, bytearray)) else bytes(reply))
                finally:
                    self.lock.release()
                if replies:
                    with link.cond:
                        link.output.extend((r, 0) for r in replies)
                        link.cond.notify_all()
        return [struct.pack(">iI", ERR_NONE, len(data))]

    def _device_read(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, request_size, io_timeout_ms, lock_timeout_ms = x.i32(), x.u32(), x.u32(), x.u32()
        flags, term_char = x.i32(), x.i32()

        def failed(error: int) -> list[Buffer]:
            return [struct.pack(">iiI", error, 0, 0)]

        link = self._link(conn, lid)
        if link is None:
            return failed(ERR_INVALID_LINK)
        abort_count = link.abort_count
        error = self._wait_device(link, flags, lock_timeout_ms)
        if error:
            return failed(error)
        deadline = time.monotonic() + _seconds(io_timeout_ms)
        with link.cond:
            while not link.output:
                if link.closed:
                    return failed(ERR_INVALID_LINK)
                if link.abort_count != abort_count or self._stopping.is_set():
                    return failed(ERR_ABORT)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return failed(ERR_IO_TIMEOUT)
                link.cond.wait(remaining)
            response, start = link.output[0]
            end = min(len(response), start + request_size)
            reason = 0
            if flags & OP_FLAG_TERMCHRSET:
                found = response.find(bytes((term_char & 0xFF,)), start, end)
                if found >= 0:
                    end = found + 1
                    reason |= RX_CHR
            if end - start == request_size:
                reason |= RX_REQCNT
            if end == len(response):
                reason |= RX_END
                link.output.popleft()
            else:
                link.output[0] = (response, end)
        return [struct.pack(">ii", ERR_NONE, reason), *_opaque(memoryview(response)[start:end])]

    def _device_readstb(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, flags, lock_timeout_ms, io_timeout_ms = self._generic_args(x)
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">iI", ERR_INVALID_LINK, 0)]
        error = self._wait_device(link, flags, lock_timeout_ms)
        if error:
            return [struct.pack(">iI", error, 0)]
        if not self._acquire(io_timeout_ms):
            return [struct.pack(">iI", ERR_IO_TIMEOUT, 0)]
        try:
            stb = status_byte_of(link.session)
        except Exception:
            log.exception("VXI-11: reading the status byte failed")
            stb = 0
        finally:
            self.lock.release()
        with link.cond:
            if link.output:
                stb |= MAV
        return [struct.pack(">iI", ERR_NONE, stb)]

    def _call_session(self, method: Callable[[], object], io_timeout_ms: int) -> int:
        """Call a session method under the server-wide lock; the Device_ErrorCode."""
        if not self._acquire(io_timeout_ms):
            return ERR_IO_TIMEOUT
        try:
            method()
        except Exception:
            log.exception("VXI-11: session %s() failed", getattr(method, "__name__", "method"))
            return ERR_IO
        finally:
            self.lock.release()
        return ERR_NONE

    @staticmethod
    def _session_method(session: object, names: Iterable[str]) -> Callable[[], object] | None:
        for name in names:
            method = getattr(session, name, None)
            if callable(method):
                return method  # type: ignore[no-any-return]
        return None

    def _device_trigger(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, flags, lock_timeout_ms, io_timeout_ms = self._generic_args(x)
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        error = self._wait_device(link, flags, lock_timeout_ms)
        if error:
            return [struct.pack(">i", error)]
        method = self._session_method(link.session, ("trigger",))
        if method is None:
            return [struct.pack(">i", ERR_NOT_SUPPORTED)]
        return [struct.pack(">i", self._call_session(method, io_timeout_ms))]

    def _device_clear(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, flags, lock_timeout_ms, io_timeout_ms = self._generic_args(x)
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        error = self._wait_device(link, flags, lock_timeout_ms)
        if error:
            return [struct.pack(">i", error)]
        with link.cond:
            link.output.clear()
            link.pending_input.clear()
            link.overrun = False
        method = self._session_method(link.session, ("device_clear", "clear"))
        if method is None:  # the link's queues were all there was to clear
            return [struct.pack(">i", ERR_NONE)]
        return [struct.pack(">i", self._call_session(method, io_timeout_ms))]

    def _device_remote_local(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, flags, lock_timeout_ms, _io_timeout_ms = self._generic_args(x)
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        return [struct.pack(">i", self._wait_device(link, flags, lock_timeout_ms))]

    def _device_lock(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, flags, lock_timeout_ms = x.i32(), x.i32(), x.u32()
        link = self._link(conn, lid)
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        return [struct.pack(">i", self._wait_device(link, flags, lock_timeout_ms, take=True))]

    def _device_unlock(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        link = self._link(conn, x.i32())
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        with self._device_cond:
            if self._lock_owner != link.lid:
                return [struct.pack(">i", ERR_NO_LOCK_HELD)]
            self._lock_owner = None
            self._device_cond.notify_all()
        return [struct.pack(">i", ERR_NONE)]

    def _device_enable_srq(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid, enable = x.i32(), x.boolean()
        x.opaque(40)  # handle
        if self._link(conn, lid) is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        return [struct.pack(">i", ERR_NOT_SUPPORTED if enable else ERR_NONE)]  # no interrupt channel

    def _device_docmd(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        error = ERR_INVALID_LINK if self._link(conn, x.i32()) is None else ERR_NOT_SUPPORTED
        return [struct.pack(">i", error), *_opaque(b"")]

    def _destroy_link(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        link = self._link(conn, x.i32())
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        self._destroy(link)
        return [struct.pack(">i", ERR_NONE)]

    def _create_intr_chan(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        return [struct.pack(">i", ERR_NOT_SUPPORTED)]  # service requests are never sent

    def _destroy_intr_chan(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        return [struct.pack(">i", ERR_CHANNEL_NOT_ESTABLISHED)]

    # ---------------------------------------------------------------- abort channel

    def _device_abort(self, conn: _Connection, x: _Xdr, xid: int) -> list[Buffer]:
        lid = x.i32()
        with self._links_guard:
            link = self._links.get(lid)
        if link is None:
            return [struct.pack(">i", ERR_INVALID_LINK)]
        with link.cond:
            link.abort_count += 1
            link.cond.notify_all()
        with self._device_cond:
            self._device_cond.notify_all()
        return [struct.pack(">i", ERR_NONE)]


__all__ = ["Vxi11BindError", "Vxi11Server", "frame_record", "status_byte_of"]
