"""A pseudo-terminal served by a thread: the rig opens its slave side with pyserial exactly as it
opens a USB-serial port on a real bench. Subclasses turn received bytes into replies."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Iterable
from typing import Self


class PtyServer:
    thread_name = "pty"

    def __init__(self) -> None:
        self._master = -1
        self._slave = -1
        self.port = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name=f"{self.thread_name} {self.port}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def on_bytes(self, data: bytes) -> Iterable[bytes]:
        """The replies to ``data`` (whatever arrived), in order."""
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not data:
                continue
            for reply in self.on_bytes(data):
                try:
                    os.write(self._master, reply)
                except OSError:
                    return
