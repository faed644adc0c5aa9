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


def _step(x: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order step response (0 before the edge)."""
    out = np.zeros_like(x)
    pos = x > 0
    if tau_s > 0:
        out[pos] = -np.expm1(-x[pos] / tau_s)
    else:
        out[pos] = 1.0
    return out


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
            if i1 <= i0:
                continue
            t = t0_s + np.arange(i0, i1, dtype=np.float64) * dt_s
            out[i0:i1] += self._render_segment(seg, t)
        return out

    def _pulse_shape(self, seg: Segment, u: np.ndarray, amp: np.ndarray) -> np.ndarray:
        """Current of one pulse of amplitude ``amp`` at ``u`` seconds after its start."""
        p1, g, p2, tau = seg.phase1_s, seg.gap_s, seg.phase2_s, self.tau_s
        i = amp * (_step(u, tau) - _step(u - p1, tau))
        i -= amp * seg.phase2_ratio * (_step(u - p1 - g, tau) - _step(u - p1 - g - p2, tau))
        return i

    def _render_segment(self, seg: Segment, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        k = np.maximum(np.floor((t - seg.t_start_s) / seg.period_s), 0.0)
        t_pulse = seg.t_start_s + k * seg.period_s
        u = t - t_pulse
        # Only samples within a pulse (plus its settling tail) carry current: compute just those.
        settle_s = seg.pulse_width_s + 20 * self.tau_s
        active = np.flatnonzero(u < settle_s)
        if active.size:
            out[active] = self._pulse_shape(seg, u[active], seg.envelope_mA(t_pulse[active]))
        # Tail of the previous pulse, only when a period is barely longer than a pulse.
        if seg.period_s < settle_s:
            prev = np.flatnonzero(k >= 1)
            if prev.size:
                tp = t_pulse[prev] - seg.period_s
                out[prev] += self._pulse_shape(seg, u[prev] + seg.period_s, seg.envelope_mA(tp))
        return out
