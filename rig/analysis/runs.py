"""Coarse segmentation: the runs of samples outside the baseline band.

The one pass over the whole record. Samples above ``upper`` belong to a positive (phase-1) run,
samples below ``lower`` to a negative (phase-2) run, everything in between is baseline. For integer
codes the band test is a single wrapped subtraction and compare (``(x - lower) mod 2^k > width``),
which costs about the same as the bare ``x > t`` it replaces; the neighbour comparison and
``flatnonzero`` are then those of a bare threshold-crossing pass, done block by block so that the
intermediate masks stay in cache (see :func:`band_changes`).

Noise makes an edge cross a threshold several times and can punch one-sample holes into a plateau:
runs of one polarity separated by a hole that does not reach back towards the baseline are merged
(hysteresis), and runs too short to be a phase are dropped (see :func:`clean`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.analysis.windows import ragged_indices

#: Holes between same-polarity runs up to this share of the longest run (or 4 samples) may be merged.
MERGE_GAP_FRACTION = 0.1
#: Samples per block of the band pass (128 kB of uint8 codes: the block's masks stay in L2 cache).
BLOCK_SAMPLES = 1 << 17
#: Runs shorter than this share of the longest run of their polarity (and < 2 samples) are dropped.
MIN_LENGTH_FRACTION = 0.05


@dataclass(frozen=True)
class Runs:
    """Maximal runs ``[start, end)`` of out-of-band samples, sorted by ``start``."""

    start: np.ndarray  # int64, first sample of the run
    end: np.ndarray  # int64, one past the last sample
    polarity: np.ndarray  # int8, +1 above the band, -1 below
    n_samples: int  # length of the record

    @property
    def size(self) -> int:
        return int(self.start.size)

    @property
    def length(self) -> np.ndarray:
        return self.end - self.start

    @property
    def complete(self) -> np.ndarray:
        """The run has a baseline sample on both sides inside the record."""
        return (self.start > 0) & (self.end < self.n_samples)

    def select(self, mask: np.ndarray) -> Runs:
        return Runs(self.start[mask], self.end[mask], self.polarity[mask], self.n_samples)


class _Band:
    """The test ``(x > upper) | (x < lower)`` applied block by block into reusable buffers.

    Integer codes take a single wrapped subtraction and compare: ``(x - lo) mod 2^k > hi - lo``
    holds exactly outside ``[lo, hi]``. Floats take two compares.
    """

    def __init__(self, x: np.ndarray, upper: float, lower: float, block: int) -> None:
        self.x = x
        self.upper, self.lower = upper, lower
        if x.dtype.kind in "ui":
            info = np.iinfo(x.dtype)
            hi = min(math.floor(upper), int(info.max))
            lo = max(math.ceil(lower), int(info.min)) if math.isfinite(lower) else int(info.min)
            self.unsigned: np.ndarray | None = x.view(np.dtype(f"u{x.dtype.itemsize}"))
            utype = self.unsigned.dtype.type
            self.shift = utype(lo % (1 << (8 * x.dtype.itemsize)))
            self.width = utype(hi - lo)
            self.work = np.empty(block, dtype=self.unsigned.dtype)
            # 8-bit codes: the compare writes its result over the difference it reads
            one_byte = x.dtype.itemsize == 1
            self.mask = self.work.view(np.bool_) if one_byte else np.empty(block, dtype=np.bool_)
        else:
            self.unsigned = None
            self.work = np.empty(block, dtype=np.bool_)
            self.mask = np.empty(block, dtype=np.bool_)

    def __call__(self, a: int, b: int) -> np.ndarray:
        """Out-of-band mask of samples a..b-1 (a view into the buffer)."""
        m = b - a
        mask = self.mask[:m]
        if self.unsigned is not None:
            np.subtract(self.unsigned[a:b], self.shift, out=self.work[:m])  # wraps modulo 2^k
            return np.greater(self.work[:m], self.width, out=mask)
        np.greater(self.x[a:b], self.upper, out=mask)
        if math.isfinite(self.lower):
            mask |= np.less(self.x[a:b], self.lower, out=self.work[:m])
        return mask


def band_changes(x: np.ndarray, upper: float, lower: float) -> np.ndarray:
    """Indices ``i`` where the out-of-band state of ``x[i]`` differs from that of ``x[i - 1]``.

    Done in blocks of ``BLOCK_SAMPLES`` whose masks stay in cache and whose buffers are reused: the
    same work as ``flatnonzero(out[1:] != out[:-1])`` on the whole record, without writing and
    re-reading two record-sized temporaries (and paying their page faults).
    """
    n = x.size
    block = min(n, BLOCK_SAMPLES)
    band = _Band(x, upper, lower, block + 1)
    differs = np.empty(block, dtype=np.bool_)
    found = []
    for a in range(0, n - 1, block):
        b = min(a + block + 1, n)  # one sample of overlap: the pair (b - 1, b) is the next block's
        mask = band(a, b)
        pairs = differs[: b - a - 1]
        np.not_equal(mask[1:], mask[:-1], out=pairs)
        hits = np.flatnonzero(pairs)
        if hits.size:
            found.append(hits + (a + 1))
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def find_runs(x: np.ndarray, upper: float, lower: float) -> Runs:
    """All runs outside ``[lower, upper]``; a run holding both polarities is split where it turns."""
    n = x.size
    change = band_changes(x, upper, lower)
    outside = _Band(x, upper, lower, 1)
    first_out = bool(outside(0, 1)[0])
    # States alternate at each change: a change enters a run if an even number preceded it from
    # an in-band start (or an odd number from an out-of-band start).
    entering = (np.arange(change.size) % 2 == 0) != first_out
    start = change[entering].astype(np.int64)
    end = change[~entering].astype(np.int64)
    if first_out:
        start = np.concatenate(([0], start))
    if start.size > end.size:  # the last run reaches the end of the record
        end = np.concatenate((end, [n]))
    first_positive = x[start] > upper
    last_positive = x[end - 1] > upper
    polarity = np.where(first_positive, 1, -1).astype(np.int8)
    runs = Runs(start, end, polarity, n)
    mixed = first_positive != last_positive
    if mixed.any():
        runs = _split_mixed(x, upper, runs, mixed)
    return runs


def _split_mixed(x: np.ndarray, upper: float, runs: Runs, mixed: np.ndarray) -> Runs:
    """Split runs that jump straight from one polarity to the other (zero gap, coarse sampling)."""
    start, end = runs.start[mixed], runs.end[mixed]
    idx, offsets = ragged_indices(start, end - start)
    positive = x[idx] > upper
    turned = positive != positive[offsets].repeat(end - start)
    pos = np.where(turned, np.arange(idx.size), idx.size)
    split = idx[np.minimum.reduceat(pos, offsets)]
    first_end = runs.end.copy()
    first_end[mixed] = split
    all_start = np.concatenate((runs.start, split))
    all_end = np.concatenate((first_end, end))
    all_pol = np.concatenate((runs.polarity, -runs.polarity[mixed]))
    order = np.argsort(all_start, kind="stable")
    return Runs(all_start[order], all_end[order], all_pol[order], runs.n_samples)


def _per_polarity(runs: Runs, fraction: float, floor: int) -> np.ndarray:
    """``max(floor, ceil(fraction * longest run of that polarity))`` for each run."""
    length = runs.length
    out = np.full(runs.size, floor, dtype=np.int64)
    for pol in (1, -1):
        sel = runs.polarity == pol
        if sel.any():
            out[sel] = max(floor, math.ceil(fraction * int(length[sel].max())))
    return out


def clean(runs: Runs, x: np.ndarray, release_upper: float, release_lower: float) -> Runs:
    """Merge same-polarity runs split by noise, then drop runs too short to be a phase.

    Merging is a Schmitt trigger applied afterwards: a positive run only ends where the waveform
    falls to ``release_upper`` (a negative one where it rises to ``release_lower``), both set
    between the run threshold and the baseline. A hole that never gets there (noise chatter on an
    edge, a noise dip in a plateau) is closed; a hole that returns to the baseline (the gap between
    a ringing undershoot and the real phase) is kept. Only holes up to a tenth of the longest run
    are examined: longer ones are always real.
    """
    if runs.size == 0:
        return runs
    hole = runs.start[1:] - runs.end[:-1]
    same = runs.polarity[1:] == runs.polarity[:-1]
    candidate = np.flatnonzero(same & (hole <= _per_polarity(runs, MERGE_GAP_FRACTION, 4)[1:]))
    join = np.zeros(hole.size, dtype=bool)
    if candidate.size:
        idx, offsets = ragged_indices(runs.end[candidate], hole[candidate])
        values = x[idx]
        positive = runs.polarity[candidate] > 0
        lowest = np.minimum.reduceat(values, offsets)
        highest = np.maximum.reduceat(values, offsets)
        join[candidate] = np.where(positive, lowest > release_upper, highest < release_lower)
    first = np.concatenate(([True], ~join))
    last = np.concatenate((~join, [True]))
    merged = Runs(runs.start[first], runs.end[last], runs.polarity[first], runs.n_samples)
    keep = merged.length >= _per_polarity(merged, MIN_LENGTH_FRACTION, 2)
    return merged.select(keep)
