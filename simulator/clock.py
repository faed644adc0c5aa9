"""The virtual bench's clock: a simpy Environment that advances only while the rig waits.

Virtual mode (default): nothing runs between requests; time moves when the rig waits explicitly
(``advance_to``), waits for a reply (``run_process``) or waits for a scope trigger. Runs are
therefore deterministic and much faster than real time.

Real-time mode: a ``simpy.rt.RealtimeEnvironment`` is driven by a background thread in step with
the wall clock, for external tools that expect time to flow by itself (``stimrig serve --realtime``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy
import simpy.rt

RT_STEP_S = 0.005
log = logging.getLogger(__name__)


class ProcessTimeout(RuntimeError):
    pass


@dataclass
class VirtualPeriodic:
    """A periodic callback in bench time (the rig's keep-alive heartbeat on a virtual bench).

    It is called by whichever rig-side thread is advancing bench time at that moment (a bench wait,
    or the scope waiting for its trigger), outside the simulation lock, so the callback may itself
    talk to the simulated device.
    """

    clock: SimClock
    interval_s: float
    callback: Callable[[], None]
    next_s: float
    active: bool = True
    cancelled: bool = False

    def pause(self) -> None:
        self.active = False

    def resume(self) -> None:
        if not self.active:
            self.next_s = self.clock.now()  # the first call comes at once
            self.active = True

    def cancel(self) -> None:
        self.cancelled = True
        self.clock._periodics = [p for p in self.clock._periodics if p is not self]


class SimClock:
    def __init__(self, *, realtime: bool = False, factor: float = 1.0) -> None:
        self.realtime = realtime
        self.env: simpy.Environment = (
            simpy.rt.RealtimeEnvironment(factor=factor, strict=False) if realtime else simpy.Environment()
        )
        self.lock = threading.RLock()
        self._periodics: list[VirtualPeriodic] = []
        self._in_callback = threading.local()
        self._stop = threading.Event()
        self._driver: threading.Thread | None = None
        if realtime:
            self._driver = threading.Thread(target=self._drive, name="simclock-rt", daemon=True)
            self._driver.start()

    def _drive(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                self.env.run(until=self.env.now + RT_STEP_S)

    def close(self) -> None:
        self._stop.set()
        if self._driver is not None:
            self._driver.join(timeout=1.0)

    def now(self) -> float:
        return float(self.env.now)

    def advance_to(self, t_s: float) -> None:
        if self.realtime:
            while self.env.now < t_s and not self._stop.is_set():
                time.sleep(min(RT_STEP_S, max(0.0, t_s - self.env.now)))
            return
        if getattr(self._in_callback, "active", False):
            # a periodic callback advancing time itself: no nested callbacks
            with self.lock:
                if t_s > self.env.now:
                    self.env.run(until=t_s)
            return
        while True:
            with self.lock:
                live = [p for p in self._periodics if p.active and not p.cancelled]
                next_due = min((p.next_s for p in live), default=float("inf"))
                stop_at = min(t_s, next_due)
                if stop_at > self.env.now:
                    self.env.run(until=stop_at)
                now = self.env.now
                due = [p for p in live if p.next_s <= now]
                for p in due:
                    while p.next_s <= now:
                        p.next_s += p.interval_s
            if not due:
                if now >= t_s:
                    return
                continue
            for p in due:
                self._in_callback.active = True
                try:
                    p.callback()
                except Exception as exc:  # the callback reports its own failures
                    log.warning("periodic bench callback failed: %s", exc)
                finally:
                    self._in_callback.active = False
            if self.now() >= t_s:  # a callback that takes bench time (a radio round trip) may reach it
                return

    def every(self, interval_s: float, callback: Callable[[], None]) -> Any:
        """Call ``callback`` every ``interval_s`` of bench time (first call one interval from now)."""
        if not interval_s > 0:
            raise ValueError(f"interval must be positive, got {interval_s}")
        if self.realtime:
            from rig.bench.clock import ThreadPeriodic

            return ThreadPeriodic(interval_s, callback)
        periodic = VirtualPeriodic(self, interval_s, callback, self.now() + interval_s)
        self._periodics.append(periodic)
        return periodic

    def wait(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot wait a negative time ({seconds} s)")
        self.advance_to(self.now() + seconds)

    def run_process(self, generator: Generator[simpy.Event, Any, Any], limit_s: float = 60.0) -> Any:
        """Start a simpy process and let time run until it finishes (at most ``limit_s`` of bench time)."""
        with self.lock:
            proc = self.env.process(generator)
            deadline = self.env.now + limit_s
        if self.realtime:
            while not proc.processed:
                if self.env.now > deadline or self._stop.is_set():
                    raise ProcessTimeout(f"process did not finish within {limit_s} s of bench time")
                time.sleep(0.0005)
            return proc.value
        with self.lock:
            guard = self.env.timeout(limit_s)
            self.env.run(until=self.env.any_of([proc, guard]))
            if not proc.processed:
                raise ProcessTimeout(f"process did not finish within {limit_s} s of bench time")
            return proc.value
