"""Threaded TCP server for newline-terminated SCPI (the "raw socket", port 5025 on real instruments).

``ScpiSocketServer(handler_factory, host="127.0.0.1", port=5025)``: every accepted connection gets
its own session from ``handler_factory()`` (an object with ``handle(line: bytes) -> bytes`` and
optionally ``close()``), served on a daemon thread. One server-wide lock makes each program
message atomic with respect to the other connections. ``port=0`` binds a free port; ``.port``
tells which. ``stop()`` closes the listener and every connection at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # a program message longer than this is discarded (input buffer overrun)


class ScpiSession(Protocol):
    def handle(self, line: bytes) -> bytes:
        """Execute one program message (terminator stripped); return the reply bytes, or b''."""
        ...


class ScpiSocketServer:
    def __init__(self, handler_factory: Callable[[], ScpiSession], host: str = "127.0.0.1", port: int = 5025) -> None:
        self._factory = handler_factory
        self._host = host
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._guard = threading.Lock()  # protects _connections
        self.lock = threading.Lock()  # one program message at a time, across connections
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the server is not started")
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self.port

    def resource(self) -> str:
        """The VISA resource string of this server (raw socket)."""
        return f"TCPIP0::{self._host}::{self.port}::SOCKET"

    def start(self) -> ScpiSocketServer:
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._requested_port))
        listener.listen(8)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"scpi-accept:{self.port}", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop accepting, close every connection, wait (bounded) for the threads."""
        self._stopping.set()  # before the snapshot below: see _accept_loop
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._guard:
            conns = list(self._connections.items())
        for conn, _thread in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        threads = [t for _c, t in conns]
        if self._accept_thread is not None:
            threads.append(self._accept_thread)
        for t in threads:
            if t is not threading.current_thread():
                t.join(timeout_s)
        self._accept_thread = None

    def __enter__(self) -> ScpiSocketServer:
        return self.start() if self._listener is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopping.is_set() and listener is not None:
            try:
                conn, peer = listener.accept()
            except OSError:
                break  # listener closed by stop()
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(
                target=self._serve, args=(conn,), name=f"scpi-conn:{peer[0]}:{peer[1]}", daemon=True
            )
            with self._guard:  # atomic with stop()'s snapshot: a connection is either closed by stop() or here
                if self._stopping.is_set():
                    conn.close()
                    break
                self._connections[conn] = thread
                thread.start()  # inside the guard: stop() never sees a thread it cannot join

    def _serve(self, conn: socket.socket) -> None:
        session: ScpiSession | None = None
        try:
            session = self._factory()
            buffer = bytearray()
            while not self._stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buffer += chunk
                while True:
                    nl = buffer.find(b"\n")
                    if nl < 0:
                        break
                    line = bytes(buffer[:nl])
                    del buffer[: nl + 1]
                    if not self._reply(conn, session, line):
                        return
                if len(buffer) > MAX_LINE_BYTES:
                    log.warning("SCPI input line over %d bytes discarded", MAX_LINE_BYTES)
                    buffer.clear()
        except Exception:  # never let one connection take the server down
            log.exception("SCPI connection failed")
        finally:
            closer = getattr(session, "close", None)
            if callable(closer):
                with contextlib.suppress(Exception):
                    closer()
            with self._guard:
                self._connections.pop(conn, None)
            with contextlib.suppress(OSError):
                conn.close()

    def _reply(self, conn: socket.socket, session: ScpiSession, line: bytes) -> bool:
        """Execute one message and send its reply; False if the peer is gone."""
        with self.lock:
            if self._stopping.is_set():
                return False
            try:
                reply = session.handle(line.rstrip(b"\r"))
            except Exception:
                log.exception("SCPI session raised on %r", line[:200])
                reply = b""
        if not reply:
            return True
        try:
            conn.sendall(reply)
        except OSError:
            return False
        return True
