"""Plateau (state) level of every run, and of each phase over all runs, by the histogram method.

A run's samples are the upper part of its bilevel pulse (everything past the coarse threshold), so
the mode of their histogram is the run's top state (IEEE 181), here refined to its biweight centre
(see ``histogram``). A run is represented by 16-64 consecutive samples from its middle, which
bounds the work at 10 M samples and keeps the transitions and their aberrations out; a phase's
state level pools ~2,000 of those samples over all its runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig.analysis.histogram import Histogram, row_levels
from rig.analysis.runs import Runs
from rig.analysis.windows import rows

_MAX_PER_RUN = 64
_MIN_PER_RUN = 16
_POOLED = 2048  # plateau samples behind each phase's state level (1/45 of the noise rms)
_TOTAL = 1 << 14  # plateau samples over all runs, at most, unless that leaves fewer than 16 per run
_MAX_BINS = 1024  # over the span of the gathered samples


@dataclass(frozen=True)
class PlateauLevels:
    per_run: np.ndarray  # raw level of each run's plateau
    positive: float  # level of the positive state over all positive runs (NaN if none)
    negative: float  # level of the negative state over all negative runs (NaN if none)


def plateau_levels(x: np.ndarray, runs: Runs, noise_rms: float, quantum: float) -> PlateauLevels:
    """Per run: the histogram-method level of up to 64 samples from the middle of the run (away
    from the transitions and their aberrations; 16 or more when there are thousands of runs);
    per phase: the same over all its runs."""
    take = int(np.clip(_TOTAL // max(1, runs.size), _MIN_PER_RUN, _MAX_PER_RUN))
    length = runs.length
    count = np.minimum(length, take)
    block, _ = rows(x, runs.start + (length - count) // 2, take)
    values = block.astype(np.float64)
    valid = np.arange(values.shape[1])[None, :] < count[:, None]
    span = float(np.ptp(values[valid])) if valid.any() else 0.0
    width = max(quantum, 0.5 * noise_rms, span / _MAX_BINS)
    sigma = max(noise_rms, 0.5 * width)
    per_run = row_levels(values, valid, width, sigma)
    pooled = []
    for pol in (1, -1):
        part = values[(runs.polarity == pol)[:, None] & valid]
        part = part[:: max(1, part.size // _POOLED)]  # evenly spread over the runs
        if part.size == 0:
            pooled.append(float("nan"))
            continue
        hist = Histogram.of(part, width)
        pooled.append(hist.refine(hist.mode(), sigma))
    return PlateauLevels(per_run, pooled[0], pooled[1])
