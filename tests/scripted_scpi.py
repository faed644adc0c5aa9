"""A scripted SCPI instrument on a TCP socket, for driver tests: each '\\n'-terminated command is answered
with the steps of a script (bytes sent as they are, pauses, a hang-up), so any misbehaviour a real
instrument could show on the wire can be played."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

CLOSE = None  # a script step: close the connection

# A script: the steps sent in answer to one command. bytes: sent as they are; a float: a pause
# (seconds); CLOSE: the server closes the connection (and stops serving it).
Step = bytes | float | None
Script = Sequence[Step]


class ScriptedInstrument:
    """A TCP server answering each '\\n'-terminated command with the script ``respond`` returns."""

    def __init__(self, respond: Callable[[str], Script]) -> None:
        self.respond = respond
        self.received: list[str] = []
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def resource(self) -> str:
        return f"TCPIP0::127.0.0.1::{self.port}::SOCKET"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        pending = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    command = line.decode("latin-1").strip()
                    self.received.append(command)
                    if not self._play(conn, self.respond(command)):
                        return

    def _play(self, conn: socket.socket, script: Script) -> bool:
        for step in script:
            try:
                if step is CLOSE:
                    conn.shutdown(socket.SHUT_RDWR)
                    return False
                if isinstance(step, float):
                    if self._stop.wait(step):
                        return False
                else:
                    conn.sendall(step)
            except OSError:
                return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)
