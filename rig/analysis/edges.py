"""Transition instants of every run, by linear interpolation between samples (IEEE Std 181-2011).

All runs are measured at once on small windows (matrix rows) around their coarse boundaries. The
values are first *normalised*: ``y = polarity * (x - baseline)``, so every run is an upward pulse
of amplitude ``a > 0`` and one code path serves both phases.

* 50 % instant: the *area-balanced* crossing within the window, i.e. the instant ``T`` at which an
  ideal step would spend as long above the 50 % level inside the window as the linearly
  interpolated waveform does. For a clean edge it is exactly the interpolated crossing; when noise
  makes the edge cross the level several times it is their signed mean (first - second + third),
  so it neither picks an arbitrary one nor drifts with the window width.
* 10 % / 90 % instants of the leading edge (transition duration): the last upward 10 % crossing at
  or before the 50 % instant and the first upward 90 % crossing at or after it.
* Overshoot: ``(max(y) - a) / a`` over the post-transition aberration region, which IEEE 181
  leaves to the user; here it is three transition durations after the 50 % instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.analysis.runs import Runs
from rig.analysis.windows import rows

_USUAL_HALF_WIDTH = 32  # fits transitions of up to 16 samples (1.6 us at 100 ns)
_DIRECT_ELEMENTS = 1 << 16  # up to this many window samples the usual width is tried first
_PILOT_HALF_WIDTH = 64  # samples either side of a coarse edge in the first look
_MIN_HALF_WIDTH = 4
_GIVE_UP_HALF_WIDTH = 1024
_PILOT_RUNS = 8
_MAX_WINDOW_ELEMENTS = 1 << 21  # bound on (edges x window samples) per gather
ABERRATION_REGION_TRANSITIONS = 3.0


@dataclass(frozen=True)
class EdgeTimes:
    """Per run, in (fractional) sample indices of the record."""

    lead: np.ndarray  # 50 % instant of the leading edge
    trail: np.ndarray  # 50 % instant of the trailing edge
    rise: np.ndarray  # 10-90 % transition duration of the leading edge, samples (NaN if not found)
    overshoot: np.ndarray  # leading-edge overshoot, fraction of the run's amplitude


def time_above(y: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per row, the time (in samples) the linearly interpolated waveform spends at or above
    ``level``: whole intervals with both ends at or above it, plus the interpolated share of
    each interval that crosses it (those are few, so they are done sparsely)."""
    at = y >= level[:, None]
    whole = (at[:, :-1] & at[:, 1:]).sum(axis=1).astype(np.float64)
    row, k = np.nonzero(at[:, :-1] != at[:, 1:])
    a = y[row, k] - level[row]
    b = y[row, k + 1] - level[row]
    share = np.maximum(a, b) / np.abs(a - b)  # the crossing's share of its interval above the level
    return whole + np.bincount(row, weights=share, minlength=y.shape[0])


def area_crossing(y: np.ndarray, level: np.ndarray, rising: bool) -> np.ndarray:
    """Area-balanced ``level`` crossing in each row of ``y``, in samples from column 0."""
    above = time_above(y, level)
    return (y.shape[1] - 1) - above if rising else above


def nearest_upward_crossing(y: np.ndarray, level: np.ndarray, ref: np.ndarray, before: bool) -> np.ndarray:
    """Interpolated upward ``level`` crossing per row: the last one in an interval at or before
    ``ref`` (``before``), else the first at or after it. In samples from column 0; NaN if none."""
    at = y >= level[:, None]
    up = ~at[:, :-1] & at[:, 1:]  # interval k goes from below to at-or-above
    n_int = up.shape[1]
    k_ref = np.floor(ref).astype(np.int64)
    cols = np.arange(n_int)
    if before:
        up &= cols <= k_ref[:, None]
        k = n_int - 1 - np.argmax(up[:, ::-1], axis=1)
    else:
        up &= cols >= k_ref[:, None]
        k = np.argmax(up, axis=1)
    r = np.arange(y.shape[0])
    found = up[r, k]
    uk, vk = y[r, k], y[r, k + 1]
    t = k + (level - uk) / np.where(vk > uk, vk - uk, 1.0)
    return np.where(found, t, np.nan)


def _normalised_rows(
    x: np.ndarray, first: np.ndarray, width: int, polarity: np.ndarray, baseline: float
) -> tuple[np.ndarray, np.ndarray]:
    m, first_used = rows(x, first, width)
    y = m.astype(np.float64)
    y -= baseline
    y *= polarity[:, None]
    return y, first_used


@dataclass(frozen=True)
class _Look:
    """Both edges of every run seen through windows of ``2 * half`` samples."""

    half: int
    lead_rows: np.ndarray  # normalised samples around each leading edge
    lead_first: np.ndarray  # record index of column 0 of each lead row
    lead_rel: np.ndarray  # leading 50 % instant, samples from column 0
    trail: np.ndarray  # trailing 50 % instant, absolute
    rise: np.ndarray  # 10-90 % duration of the leading edge, samples


def _look(x: np.ndarray, runs: Runs, amplitude: np.ndarray, baseline: float, half: int) -> _Look:
    n = runs.size
    pol = runs.polarity.astype(np.float64)
    y, first = _normalised_rows(x, np.concatenate((runs.start, runs.end)) - half, 2 * half,
                                np.concatenate((pol, pol)), baseline)
    above = time_above(y, 0.5 * np.concatenate((amplitude, amplitude)))
    lead_rel = (y.shape[1] - 1) - above[:n]
    lead_rows = y[:n]
    t10 = nearest_upward_crossing(lead_rows, 0.1 * amplitude, lead_rel, before=True)
    t90 = nearest_upward_crossing(lead_rows, 0.9 * amplitude, lead_rel, before=False)
    return _Look(half, lead_rows, first[:n], lead_rel, first[n:] + above[n:], t90 - t10)


def _cap(runs: Runs) -> int:
    """Largest half-width: half the shortest complete run, and a bound on the gathered samples."""
    complete = runs.complete
    lengths = runs.length[complete] if complete.any() else runs.length
    return max(1, min(int(lengths.min()) // 2, _MAX_WINDOW_ELEMENTS // max(1, 4 * runs.size)))


def _half_width(x: np.ndarray, runs: Runs, amplitude: np.ndarray, baseline: float) -> int:
    """Half-width of windows that hold a whole transition (10 % to 90 %) twice over.

    Found on a few pilot runs (phase 1 first), looked at through wide windows (64 samples either
    side, growing x4 until the 10 % and 90 % crossings are found and the typical transition fills
    at most half the window); the result is 2 transitions + 4 samples, at least 4.
    """
    complete = runs.complete
    cap = _cap(runs)
    order = np.lexsort((-runs.polarity, ~complete))  # complete positive runs first
    pilot = order[:_PILOT_RUNS]
    sample = Runs(runs.start[pilot], runs.end[pilot], runs.polarity[pilot], runs.n_samples)
    half = min(_PILOT_HALF_WIDTH, cap)
    while True:
        rise = _look(x, sample, amplitude[pilot], baseline, half).rise
        found = rise[np.isfinite(rise)]
        typical = float(np.median(found)) if found.size else math.inf
        if (found.size >= 0.5 * rise.size and typical <= 0.5 * half) or half >= cap:
            break
        if found.size == 0 and half >= _GIVE_UP_HALF_WIDTH:  # no transition to fit: not an edge problem
            break
        half = min(cap, 4 * half)
    if math.isfinite(typical):
        half = min(cap, max(_MIN_HALF_WIDTH, math.ceil(2 * typical) + 4))
    return half


def measure_edges(x: np.ndarray, runs: Runs, level: np.ndarray, baseline: float) -> EdgeTimes:
    """50 % instants of both edges, 10-90 % duration and overshoot of the leading edge, per run.

    ``level`` is each run's plateau level (raw units); its distance from ``baseline`` is the
    amplitude that the reference levels 10/50/90 % refer to. A train of a few hundred runs is
    first looked at with a usual window width straight away; if its transitions do not fit, or
    there are many runs, a few pilot runs set the width first.
    """
    amplitude = runs.polarity * (level - baseline)
    look = None
    half = min(_USUAL_HALF_WIDTH, _cap(runs))
    if runs.size * 4 * half <= _DIRECT_ELEMENTS:
        look = _look(x, runs, amplitude, baseline, half)
        found = look.rise[np.isfinite(look.rise) & runs.complete]
        if not (found.size and np.median(found) <= 0.5 * half):
            look = None
    if look is None:
        look = _look(x, runs, amplitude, baseline, _half_width(x, runs, amplitude, baseline))
    rise = look.rise
    finite = np.isfinite(rise)
    typical = float(np.median(rise[finite])) if finite.any() else 1.0
    span = np.where(finite, rise, typical) * ABERRATION_REGION_TRANSITIONS
    region = np.minimum(np.ceil(span), runs.length // 2).astype(np.int64) + 1
    begin = np.floor(look.lead_rel).astype(np.int64) + 1  # first sample after the 50 % instant
    y = look.lead_rows
    if int((begin + region).max()) > y.shape[1]:  # slow edges: the region leaves the window
        y, first = _normalised_rows(x, look.lead_first + begin, int(region.max()), runs.polarity.astype(np.float64),
                                    baseline)
        begin = look.lead_first + begin - first
    cols = np.arange(y.shape[1])
    inside = (cols >= begin[:, None]) & (cols < (begin + region)[:, None])
    peak = np.where(inside, y, -np.inf).max(axis=1)
    return EdgeTimes(look.lead_first + look.lead_rel, look.trail, rise, (peak - amplitude) / amplitude)


def crossing_times(
    samples: np.ndarray, level: float, dt_s: float, *, t0_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Every crossing of ``level`` in ``samples``, linearly interpolated between samples.

    Returns ``(times_s, rising)``: crossing instants ``t0_s + (k + frac) * dt_s`` and whether each
    is upward. No hysteresis and no noise handling: meant for clean or short records and for
    checking; ``samples`` and ``level`` are in the same units.
    """
    x = np.asarray(samples, dtype=np.float64)
    above = x > level
    k = np.flatnonzero(above[1:] != above[:-1])
    u, v = x[k], x[k + 1]
    frac = (level - u) / (v - u)
    return t0_s + (k + frac) * dt_s, v > u
