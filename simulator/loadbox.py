"""Simulated load box: routes one DUT channel onto a named measurement load that scope CH1 probes.

Every other channel drives its own 500 ohm dummy load (so it is never open-circuit). A marker output
(scope CH2) pulses high when a relay switches (the box's relay-sense line) or on MARK, so latencies can
be measured from its edge. This is the bench-side state; the rig reaches it through the LoadBox
protocol, in-process or over a pseudo-terminal (simulator.loadbox_server, docs/loadbox.md).

Every route change and marker pulse is recorded with its bench time (``clock.now()``), so the bench can
render the marker and which load each channel drove at any instant of a capture.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rig.errors import StimrigError
from rig.interfaces import Clock
from simulator.loads import Load, Resistive, as_load

DUMMY_LOAD = "DUMMY500"  # what a channel drives while it is not routed to the measurement load
DUMMY_OHM = 500.0
MARKER_HIGH_V = 5.0
MARKER_WIDTH_S = 0.010  # the marker one-shot's pulse width (retriggerable)

EventKind = Literal["route", "clear", "mark"]


@dataclass(frozen=True)
class LoadBoxEvent:
    """One relay switch or marker pulse. ``route`` is the routing from ``t_s`` on (None: nothing routed)."""

    t_s: float
    kind: EventKind
    route: tuple[int, str] | None


class SimLoadBox:
    """The bench-side model (state only). The rig reaches it through the LoadBox protocol.

    ``loads`` maps names to load models, or to a resistance in ohm (inf: open, 0: short).
    ``on_change(dut_channel, load)`` is called, after the state changed, for every channel whose load
    changed: the newly routed channel gets the load's name, a channel routed away gets DUMMY_LOAD.
    """

    def __init__(
        self,
        loads: Mapping[str, float | Load],
        channels: int,
        *,
        clock: Clock | None = None,
        on_change: Callable[[int, str], None] | None = None,
        marker_width_s: float = MARKER_WIDTH_S,
    ) -> None:
        if DUMMY_LOAD in loads:
            raise StimrigError(f"simulated load box: {DUMMY_LOAD!r} is reserved for the per-channel dummies")
        self._models: dict[str, Load] = {name: as_load(value) for name, value in loads.items()}
        self._channels = channels
        self.clock = clock
        self.on_change = on_change
        self.marker_width_s = marker_width_s
        self.dummy: Load = Resistive(DUMMY_OHM)
        self._route: tuple[int, str] | None = None
        self._lock = threading.RLock()
        self.events: list[LoadBoxEvent] = []

    # ---- the LoadBox protocol -----------------------------------------------------------------
    def loads(self) -> dict[str, float]:
        """Name -> impedance in ohm a DUT would sense on it (inf: open, 0: short; RC model: Rs + Rp)."""
        return {name: model.sensed_impedance_ohm for name, model in self._models.items()}

    def connect(self, dut_channel: int, load: str) -> None:
        self.check(dut_channel, load)
        self._switch((dut_channel, load))

    @property
    def connected(self) -> tuple[int, str] | None:
        return self._route

    def close(self) -> None:
        """Release the measurement relay: every channel back on its dummy."""
        self.clear()

    # ---- more of the box ----------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self._channels

    @property
    def route(self) -> tuple[int, str] | None:
        return self._route

    @route.setter
    def route(self, value: tuple[int, str] | None) -> None:
        if value is None:
            self.clear()
        else:
            self.connect(*value)

    def check(self, dut_channel: int, load: str) -> None:
        """Raise StimrigError unless ``load`` on ``dut_channel`` is a routing this box can make."""
        if load not in self._models:
            raise StimrigError(
                f"simulated load box: no load {load!r}; this bench has {sorted(self._models)}"
            )
        if isinstance(dut_channel, bool) or not isinstance(dut_channel, int) or not 1 <= dut_channel <= self._channels:
            raise StimrigError(
                f"simulated load box: no DUT channel {dut_channel!r}; expected 1..{self._channels}"
            )

    def clear(self) -> None:
        self._switch(None)

    def mark(self) -> float:
        """Pulse the marker output; return the bench time of its rising edge."""
        with self._lock:
            t = self._now()
            self.events.append(LoadBoxEvent(t, "mark", self._route))
            return t

    @property
    def sense(self) -> bool:
        """The relay-sense line: a measurement relay is closed (some channel is routed)."""
        return self._route is not None

    def models(self) -> dict[str, Load]:
        return dict(self._models)

    def model(self, load: str) -> Load:
        if load == DUMMY_LOAD:
            return self.dummy
        try:
            return self._models[load]
        except KeyError:
            raise StimrigError(
                f"simulated load box: no load {load!r}; this bench has {sorted(self._models)}"
            ) from None

    def load_ohm(self) -> float | None:
        return None if self._route is None else self._models[self._route[1]].sensed_impedance_ohm

    def load_model(self) -> Load | None:
        """Model of the routed measurement load (None when nothing is routed)."""
        return None if self._route is None else self._models[self._route[1]]

    def load_of(self, dut_channel: int, t_s: float | None = None) -> str:
        """Name of the load ``dut_channel`` drives now (or at bench time ``t_s``): a measurement load or DUMMY_LOAD."""
        route = self._route if t_s is None else self.route_at(t_s)
        return route[1] if route is not None and route[0] == dut_channel else DUMMY_LOAD

    # ---- history for rendering ----------------------------------------------------------------
    def route_at(self, t_s: float) -> tuple[int, str] | None:
        """Routing in force at bench time ``t_s`` (a switch at exactly ``t_s`` is already in force)."""
        with self._lock:
            switches = [e for e in self.events if e.kind != "mark"]
            times = [e.t_s for e in switches]
            i = bisect.bisect_right(times, t_s)
            return switches[i - 1].route if i else None

    def route_changes(self, t0_s: float, t1_s: float) -> list[tuple[float, tuple[int, str] | None]]:
        """The routing at ``t0_s`` and every change up to ``t1_s``: [(t, route), ...], first t == t0_s."""
        with self._lock:
            out: list[tuple[float, tuple[int, str] | None]] = [(t0_s, self.route_at(t0_s))]
            out += [(e.t_s, e.route) for e in self.events if e.kind != "mark" and t0_s < e.t_s <= t1_s]
            return out

    def marker_times(self) -> list[float]:
        """Bench times of every marker rising edge (each relay switch and each MARK)."""
        with self._lock:
            return [e.t_s for e in self.events]

    def marker_V(self, t0_s: float, dt_s: float, n: int, *, high_V: float = MARKER_HIGH_V) -> np.ndarray:
        """The marker output at t0 + k*dt: high_V within ``marker_width_s`` after an event, else 0 V."""
        out = np.zeros(n)
        if n <= 0:
            return out
        t = t0_s + np.arange(n, dtype=np.float64) * dt_s
        t_last = t0_s + (n - 1) * dt_s
        for te in self.marker_times():
            if te > t_last or te + self.marker_width_s <= t0_s:
                continue
            out[(t >= te) & (t < te + self.marker_width_s)] = high_V
        return out

    # ---- internals ----------------------------------------------------------------------------
    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else math.nan

    def _switch(self, new: tuple[int, str] | None) -> None:
        with self._lock:
            old = self._route
            if new == old:
                return  # nothing switches: no relay-sense edge, no marker
            self._route = new
            self.events.append(LoadBoxEvent(self._now(), "route" if new is not None else "clear", new))
            changes: list[tuple[int, str]] = []
            if old is not None and (new is None or new[0] != old[0]):
                changes.append((old[0], DUMMY_LOAD))
            if new is not None:
                changes.append(new)
            callback = self.on_change
        if callback is not None:
            for channel, load in changes:
                callback(channel, load)
