"""The wall clock of a real bench (the virtual bench brings its own simpy clock)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class ThreadPeriodic:
    """``callback`` every ``interval_s`` of wall time on a daemon thread; errors are logged, not raised."""

    def __init__(self, interval_s: float, callback: Callable[[], None]) -> None:
        self.interval_s = interval_s
        self.callback = callback
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-periodic", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while not self._cancelled.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval_s
            if self._running.is_set():
                try:
                    self.callback()
                except Exception as exc:  # the callback reports its own failures
                    log.warning("periodic bench callback failed: %s", exc)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)


class WallClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot wait a negative time ({seconds} s)")
        time.sleep(seconds)

    def every(self, interval_s: float, callback: Callable[[], None]) -> ThreadPeriodic:
        if not interval_s > 0:
            raise ValueError(f"interval must be positive, got {interval_s}")
        return ThreadPeriodic(interval_s, callback)
