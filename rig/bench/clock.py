"""The wall clock of a real bench (the virtual bench brings its own simpy clock)."""

from __future__ import annotations

import time


class WallClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot wait a negative time ({seconds} s)")
        time.sleep(seconds)
