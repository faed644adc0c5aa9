"""Per-channel pulse schedule: a list of segments, rendered with numpy over any time window.

A segment is a run of identical biphasic pulses at a fixed period whose amplitude follows a linear
envelope (ramp) and then holds. The firmware appends a segment only when something changes (start,
ramp, ON/OFF, amplitude change, stop), so there is never one simpy event per pulse or per sample.

Rendering is exact in time: each pulse edge is placed at its true instant (not snapped to the sample
grid) and shaped by the output stage's first-order rise, i(t) = A * (1 - exp(-(t - t_edge) / tau)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    t_start_s: float
    t_end_s: float  # math.inf while the segment is open
    period_s: float
    phase1_s: float
    gap_s: float
    phase2_s: float
    phase2_ratio: float  # phase-2 amplitude / phase-1 amplitude (charge balance: phase1_s / phase2_s)
    a0_mA: float  # envelope at t_start_s
    a1_mA: float  # envelope after the ramp
    ramp_s: float  # duration of the linear ramp from a0 to a1 (0: step)
    resolution_mA: float = 0.0  # DAC step: pulse amplitudes are quantised to it (0: none)

    @property
    def pulse_width_s(self) -> float:
        return self.phase1_s + self.gap_s + self.phase2_s

    def envelope_mA(self, t_s: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t_s, dtype=np.float64)
        if self.ramp_s <= 0:
            a = np.full_like(t, self.a1_mA)
        else:
            frac = np.clip((t - self.t_start_s) / self.ramp_s, 0.0, 1.0)
            a = self.a0_mA + (self.a1_mA - self.a0_mA) * frac
        if self.resolution_mA > 0:
            a = np.round(a / self.resolution_mA) * self.resolution_mA
        return a

    def pulse_start_s(self, k: int) -> float:
        return self.t_start_s + k * self.period_s

    def next_pulse_at_or_after(self, t_s: float) -> float:
        """Start time of the first pulse at or after ``t_s`` (the firmware's update boundary)."""
        k = max(0, math.ceil((t_s - self.t_start_s) / self.period_s - 1e-9))
        return self.pulse_start_s(k)

    def pulse_in_progress(self, t_s: float) -> bool:
        if t_s < self.t_start_s or t_s >= self.t_end_s:
            return False
        k = max(0, math.floor((t_s - self.t_start_s) / self.period_s + 1e-9))  # as next_pulse_at_or_after
        return t_s - self.pulse_start_s(k) < self.pulse_width_s


SETTLE_TAUS = 20.0  # an edge has settled after this many time constants (exp(-20) = 2e-9)


def _add_step(out: np.ndarray, u: np.ndarray, edge_s: float, weight: float, tau_s: float) -> None:
    """Add ``weight`` x the first-order step response to an edge at ``edge_s`` (0 before it) to
    ``out`` at the ascending times ``u``: 1 - exp(-x/tau) while settling, then exactly 1."""
    start = int(np.searchsorted(u, edge_s, side="right"))
    settled = int(np.searchsorted(u, edge_s + SETTLE_TAUS * tau_s, side="right")) if tau_s > 0 else start
    if settled > start:
        out[start:settled] -= weight * np.expm1(-(u[start:settled] - edge_s) / tau_s)
    if settled < u.size:
        out[settled:] += weight


class PulseSchedule:
    """Segments of one channel, in time order; the past is kept (for scope pre-trigger) up to a horizon."""

    def __init__(self, rise_time_s: float, history_s: float = 120.0) -> None:
        # 10-90 % rise of a first-order system is ln(9) * tau.
        self.tau_s = rise_time_s / math.log(9.0)
        self.history_s = history_s
        self.segments: list[Segment] = []

    @property
    def current(self) -> Segment | None:
        if self.segments and math.isinf(self.segments[-1].t_end_s):
            return self.segments[-1]
        return None

    def open(self, seg: Segment, now_s: float) -> None:
        self.close(seg.t_start_s)
        self.segments.append(seg)
        self._prune(now_s)

    def close(self, t_s: float) -> None:
        """No output from ``t_s`` on: truncate every segment there, drop any that would start later
        (e.g. an amplitude change already scheduled for the next pulse boundary)."""
        self.segments = [s for s in self.segments if s.t_start_s < t_s or s.t_end_s <= t_s]
        for seg in self.segments:
            if seg.t_end_s > t_s:
                seg.t_end_s = t_s

    def end_of_pulse_s(self, t_s: float) -> float:
        """``t_s``, or the end of the pulse in progress at ``t_s`` (so no phase is left uncompensated)."""
        for seg in reversed(self.segments):
            if seg.pulse_in_progress(t_s):
                k = math.floor((t_s - seg.t_start_s) / seg.period_s)
                return seg.pulse_start_s(k) + seg.pulse_width_s
        return t_s

    def envelope_mA(self, t_s: float) -> float:
        """Present output amplitude (0 when no segment covers t)."""
        for seg in reversed(self.segments):
            if seg.t_start_s <= t_s < seg.t_end_s:
                return float(seg.envelope_mA(t_s))
        return 0.0

    def _prune(self, now_s: float) -> None:
        horizon = now_s - self.history_s
        self.segments = [s for s in self.segments if s.t_end_s >= horizon]

    def render_mA(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        """Commanded output current at t0 + k*dt (k < n), before the load and compliance."""
        out = np.zeros(n, dtype=np.float64)
        if n <= 0:
            return out
        t_last = t0_s + (n - 1) * dt_s
        for seg in self.segments:
            if seg.t_end_s <= t0_s or seg.t_start_s > t_last:
                continue
            i0 = max(0, math.ceil((seg.t_start_s - t0_s) / dt_s - 1e-12))
            i1 = n if math.isinf(seg.t_end_s) else min(n, math.ceil((seg.t_end_s - t0_s) / dt_s - 1e-12))
            if i1 > i0:
                self._render_segment(seg, out, t0_s, dt_s, i0, i1)
        return out

    def _render_segment(self, seg: Segment, out: np.ndarray, t0_s: float, dt_s: float, i0: int, i1: int) -> None:
        """Add the segment's pulses to ``out[i0:i1]`` (samples at t0 + i*dt), pulse by pulse: only the
        samples within a pulse or its settling tail carry current, so only those are computed."""
        settle_s = seg.pulse_width_s + SETTLE_TAUS * self.tau_s
        t_a, t_b = t0_s + i0 * dt_s, t0_s + (i1 - 1) * dt_s
        k_first = max(0, math.floor((t_a - settle_s - seg.t_start_s) / seg.period_s))
        k_last = math.floor((t_b - seg.t_start_s) / seg.period_s)
        for k in range(k_first, k_last + 1):
            t_pulse = seg.t_start_s + k * seg.period_s
            j0 = max(i0, math.ceil((t_pulse - t0_s) / dt_s - 1e-12))
            j1 = min(i1, math.ceil((t_pulse + settle_s - t0_s) / dt_s - 1e-12))
            if j1 <= j0:
                continue
            u = (t0_s - t_pulse) + np.arange(j0, j1, dtype=np.float64) * dt_s  # ascending
            amp = float(seg.envelope_mA(t_pulse))
            out[j0:j1] += self._pulse_shape(seg, u, amp)

    def _pulse_shape(self, seg: Segment, u: np.ndarray, amp: float) -> np.ndarray:
        """Current of one pulse of amplitude ``amp`` at ``u`` (ascending) seconds after its start: four
        first-order edges; each is evaluated only where it is still settling (elsewhere it is 0 or 1)."""
        p1, g, p2 = seg.phase1_s, seg.gap_s, seg.phase2_s
        i = np.zeros_like(u)
        for edge_s, weight in ((0.0, amp), (p1, -amp), (p1 + g, -amp * seg.phase2_ratio),
                               (p1 + g + p2, amp * seg.phase2_ratio)):
            if weight != 0.0:
                _add_step(i, u, edge_s, weight, self.tau_s)
        return i
