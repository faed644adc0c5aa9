"""What an emulated instrument needs from the virtual bench it is plugged into."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ProbedSignal(Protocol):
    """An analog signal wired to a scope input."""

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        """Ideal voltage at the probe tip at times ``t0_s + k * dt_s`` (k < n), float64.

        Only the past can be rendered: callers first advance the bench to the last instant they need.
        """
        ...


class ScopeHost(Protocol):
    """The bench as seen from an emulated scope: its clock, its wiring, its seeded randomness."""

    def now(self) -> float:
        """Bench time in seconds."""
        ...

    def advance_to(self, t_s: float) -> None:
        """Let bench time reach ``t_s`` (no-op if already past). Virtual benches run the simulation;
        a real-time bench waits on the wall clock."""
        ...

    def signal(self, channel: int) -> ProbedSignal | None:
        """What is wired to scope input ``channel`` (1-based), or None if nothing is."""
        ...

    def probe_attenuation(self, channel: int) -> float:
        """Attenuation of the probe physically wired to ``channel`` (10.0 for a 10:1 probe)."""
        ...

    def rng(self, stream: str) -> np.random.Generator:
        """A seeded generator for one named stream of random draws (e.g. 'scope.noise')."""
        ...
