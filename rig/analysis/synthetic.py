"""Analytic stimulator waveforms with exactly known parameters, for tests and benchmarks.

A pulse train is a sum of ideal steps (sub-sample edge timing) passed through a known step
response: first order ``1 - exp(-t/tau)`` (10-90 % rise 2.197 tau, 50 % instant tau*ln 2 after the
ideal edge, no overshoot) or an underdamped second order (overshoot exp(-pi*zeta/sqrt(1-zeta^2))).
Because the response is linear, every phase keeps its ideal charge ``amplitude * duration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LN2 = math.log(2.0)
RISE_PER_TAU = math.log(9.0)  # 10-90 % transition duration of a first-order edge, in tau


@dataclass(frozen=True)
class TrainSpec:
    """Ideal pulse train: phase 1 positive, then (optionally) a negative phase 2."""

    frequency_Hz: float
    phase1_s: float
    amplitude: float  # phase-1 amplitude above the baseline, unit
    phase2_s: float | None = None  # None: same as phase 1; 0: monophasic
    gap_s: float = 0.0
    phase2_amplitude: float | None = None  # None: charge-balanced, amplitude * phase1_s / phase2_s
    first_edge_s: float = 0.0  # ideal phase-1 leading edge of the first pulse
    n_pulses: int | None = None  # None: as many as the record holds
    tau_s: float = 0.5e-6  # first-order time constant (with zeta: 1 / natural angular frequency)
    zeta: float | None = None  # damping ratio < 1 for a second-order response with overshoot
    baseline: float = 0.0

    @property
    def t2_s(self) -> float:
        return self.phase1_s if self.phase2_s is None else self.phase2_s

    @property
    def a2(self) -> float:
        if self.t2_s == 0:
            return 0.0
        if self.phase2_amplitude is not None:
            return self.phase2_amplitude
        return self.amplitude * self.phase1_s / self.t2_s

    @property
    def overshoot(self) -> float:
        if self.zeta is None:
            return 0.0
        return math.exp(-math.pi * self.zeta / math.sqrt(1.0 - self.zeta**2))

    def pulse_starts(self, t_end_s: float) -> np.ndarray:
        """Ideal phase-1 leading edges of the pulses that start before ``t_end_s``."""
        count = max(0, math.ceil((t_end_s - self.first_edge_s) * self.frequency_Hz))
        if self.n_pulses is not None:
            count = min(count, self.n_pulses)
        return self.first_edge_s + np.arange(count) / self.frequency_Hz

    def edges(self, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Ideal edge instants and step heights of every pulse that starts before ``t_end_s``."""
        t1 = self.pulse_starts(t_end_s)
        t2 = t1 + self.phase1_s + self.gap_s
        times = [t1, t1 + self.phase1_s]
        steps = [np.full_like(t1, self.amplitude), np.full_like(t1, -self.amplitude)]
        if self.t2_s > 0:
            times += [t2, t2 + self.t2_s]
            steps += [np.full_like(t1, -self.a2), np.full_like(t1, self.a2)]
        t = np.concatenate(times)
        order = np.argsort(t, kind="stable")
        return t[order], np.concatenate(steps)[order]

    def transient(self, s: np.ndarray) -> np.ndarray:
        """Step response minus the ideal step, for ``s >= 0``."""
        if self.zeta is None:
            return -np.exp(-s / self.tau_s)
        z = self.zeta
        wn = 1.0 / self.tau_s
        wd = wn * math.sqrt(1.0 - z * z)
        return -np.exp(-z * wn * s) * (np.cos(wd * s) + z / math.sqrt(1.0 - z * z) * np.sin(wd * s))


def render(spec: TrainSpec, n_samples: int, dt_s: float, *, t0_s: float = 0.0) -> np.ndarray:
    """The waveform of ``spec`` sampled at ``t0_s + k * dt_s`` (float64, unit)."""
    t_edges, steps = spec.edges(t0_s + n_samples * dt_s)
    out = np.full(n_samples, spec.baseline, dtype=np.float64)
    settle = 40.0 * spec.tau_s / (spec.zeta or 1.0)
    first = np.ceil((t_edges - t0_s) / dt_s - 1e-9).astype(np.int64)
    ideal = np.zeros(n_samples + 1)
    np.add.at(ideal, np.clip(first, 0, n_samples), steps)
    out += np.cumsum(ideal[:-1])
    width = math.ceil(settle / dt_s) + 1
    for k0, te, h in zip(first.tolist(), t_edges.tolist(), steps.tolist(), strict=True):
        lo, hi = max(k0, 0), min(k0 + width, n_samples)
        if lo >= hi:
            continue
        s = t0_s + np.arange(lo, hi) * dt_s - te
        out[lo:hi] += h * spec.transient(s)
    return out


def quantise(
    values: np.ndarray, *, gain: float, offset: float, noise_codes: float, seed: int, dtype: type = np.uint8
) -> np.ndarray:
    """Codes ``round((values - offset) / gain + noise)`` clipped to ``dtype``; noise is gaussian."""
    rng = np.random.default_rng(seed)
    codes = (values - offset) / gain
    if noise_codes > 0:
        codes = codes + rng.normal(0.0, noise_codes, values.size)
    if np.dtype(dtype).kind == "f":
        return codes.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(codes), info.min, info.max).astype(dtype)


@dataclass(frozen=True)
class SynthCapture:
    """Codes as a scope would deliver them, with the scaling and the spec they came from."""

    codes: np.ndarray
    dt_s: float
    gain: float
    offset: float
    t0_s: float
    spec: TrainSpec

    @property
    def n(self) -> int:
        return int(self.codes.size)

    def values(self) -> np.ndarray:
        return self.codes.astype(np.float64) * self.gain + self.offset


def synth_capture(
    spec: TrainSpec,
    *,
    duration_s: float,
    dt_s: float,
    gain: float = 0.05,
    baseline_code: float = 127.3,
    noise_codes: float = 1.0,
    seed: int = 0,
    dtype: type = np.uint8,
    t0_s: float = 0.0,
) -> SynthCapture:
    """Render ``spec`` over ``duration_s`` and digitise it: the baseline sits at ``baseline_code``
    (deliberately between codes), one code is ``gain`` unit, gaussian noise of ``noise_codes`` rms."""
    n = round(duration_s / dt_s)
    offset = spec.baseline - baseline_code * gain
    codes = quantise(render(spec, n, dt_s, t0_s=t0_s), gain=gain, offset=offset, noise_codes=noise_codes,
                     seed=seed, dtype=dtype)
    return SynthCapture(codes, dt_s, gain, offset, t0_s, spec)
