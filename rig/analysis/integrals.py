"""Phase integrals, square integrals and the record rms.

Each run's integral is taken over its *window*: the run widened by a margin of a few transition
durations on both sides, so that the edges' slopes and tails are inside (an integral between the
50 % instants would miss about 0.7 time constants' worth of charge per phase). Neighbouring windows
never overlap: they are cut halfway between the runs, which for a zero interphase gap is where the
waveform passes the baseline. Sums are the rectangle rule on samples, exact for a record that
starts and ends at the baseline.

The rms of the whole record: the windows hold every out-of-band sample and are summed exactly; the
rest of the record is baseline noise, whose mean square comes from the systematic subsample that
already gave the baseline level: its blocks that lie outside every window (the error is a small
fraction of the noise power, well under 1e-4 of the rms of a pulse train clearly above the noise).
That keeps the whole-record rms out of the hot path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.analysis.runs import Runs
from rig.analysis.windows import Subsample, window_sums

MARGIN_TRANSITIONS = 3.0  # window margin beyond each coarse edge, in 10-90 % transition durations
MIN_MARGIN_SAMPLES = 2


@dataclass(frozen=True)
class RunSums:
    first: np.ndarray  # first sample of each run's window
    stop: np.ndarray  # one past its last
    linear: np.ndarray  # sum of (x - baseline) over the window, raw units * samples
    square: np.ndarray  # sum of (x - baseline)^2, raw units^2 * samples


def margin_samples(rise_samples: np.ndarray) -> int:
    finite = rise_samples[np.isfinite(rise_samples)]
    typical = float(np.median(finite)) if finite.size else 1.0
    return max(MIN_MARGIN_SAMPLES, math.ceil(MARGIN_TRANSITIONS * typical) + MIN_MARGIN_SAMPLES)


def run_sums(x: np.ndarray, runs: Runs, baseline: float, margin: int) -> RunSums:
    first = runs.start - margin
    stop = runs.end + margin
    if runs.size > 1:
        cut = (runs.end[:-1] + runs.start[1:] + 1) // 2
        first[1:] = np.maximum(first[1:], cut)
        stop[:-1] = np.minimum(stop[:-1], cut)
    first = np.maximum(first, 0)
    stop = np.minimum(stop, runs.n_samples)
    linear, square = window_sums(x, first, stop - first, baseline)
    return RunSums(first, stop, linear, square)


def record_mean_square(sums: RunSums, sub: Subsample, n: int, baseline: float, noise_rms: float) -> float:
    """Mean of (x - baseline)^2 over the record: the run windows exactly, the rest from the
    subsample blocks that lie wholly outside every window (the noise power if there is none)."""
    # Windows are sorted and disjoint, so the last one starting before a block's end reaches
    # furthest: the block is clear if that one stops at or before the block's start.
    k = np.searchsorted(sums.first, sub.start + sub.values.shape[1], side="left") - 1
    clear = (k < 0) | (sub.start >= sums.stop[np.maximum(k, 0)])
    rest = n - int((sums.stop - sums.first).sum())
    if rest > 0 and clear.any():
        d = sub.values[clear].astype(np.float64).ravel() - baseline
        rest_mean_square = float(np.einsum("i,i->", d, d)) / d.size  # not np.dot: BLAS threads stall
    else:
        rest_mean_square = noise_rms * noise_rms
    return (float(sums.square.sum()) + rest * rest_mean_square) / n
