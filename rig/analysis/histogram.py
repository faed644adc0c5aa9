"""Histogram-method statistics (IEEE Std 181-2011 state levels) on small arrays.

A state level is the mode of its part of the histogram. On quantised, noisy scope data the bare
mode is only good to one bin, so every level here is the mode *refined* to the Tukey-biweight
centre of the samples around it (a smooth mean shift with scale 4.685 x noise rms). For a plateau
that is its mean with the edge and aberration samples weighted out, to a small fraction of a code;
it starts from the histogram's peak and stays there, and it does not depend on the bin layout.

The functions here work on a few hundred thousand values at most (a subsample of the record, the
samples of the pulse plateaus); nothing here touches a whole 10 M-sample record except
:func:`Histogram.of` when a caller deliberately hands it one (the reference ``state_levels``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

BIWEIGHT_C = 4.685  # Tukey's constant: 95 % efficiency for gaussian noise
BIWEIGHT_ITERATIONS = 4  # from the mode: converged to a few 1e-3 noise rms
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_MAX_INTEGER_BINS = 1 << 16  # integer data wider than this is binned like floats
_FLOAT_BINS = 4096


@dataclass(frozen=True)
class Histogram:
    """Counts of values in uniform bins; bin ``k`` is centred on ``origin + k * width``."""

    counts: np.ndarray  # float64
    origin: float
    width: float
    _centres: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_centres", self.origin + self.width * np.arange(self.counts.size, dtype=np.float64))

    @classmethod
    def of(cls, values: np.ndarray, width: float | None = None) -> Histogram:
        """Histogram of ``values`` in bins of ``width``.

        By default one bin per code actually used: integer data in steps of the codes' spacing (1,
        or e.g. 256 for 8-bit codes delivered as 16-bit words), floats in steps of their own
        resolution (a scope's ASCii volts are still quantised) or span/4096, whichever is coarser.
        """
        values = np.asarray(values)
        if values.size == 0:
            return cls(np.zeros(1), 0.0, 1.0)
        lo = values.min()
        span = float(values.max()) - float(lo)
        if width is None and values.dtype.kind in "ui" and span < _MAX_INTEGER_BINS:
            if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
                counts = np.bincount(values)[int(lo) :]  # bincount casts small unsigned codes itself
            else:
                counts = np.bincount((values.astype(np.int64) - int(lo)).astype(np.intp))
            step = _code_step(counts)
            return cls(counts[::step].astype(np.float64), float(lo), float(step))
        if width is None:
            width = max(span / _FLOAT_BINS, _resolution(values)) if span > 0 else 1.0
        bins = np.rint((values.astype(np.float64) - float(lo)) / width).astype(np.intp)
        return cls(np.bincount(bins).astype(np.float64), float(lo), float(width))

    def centres(self) -> np.ndarray:
        return self._centres

    def extremes(self) -> tuple[float, float]:
        """Centres of the lowest and the highest occupied bin."""
        occupied = np.flatnonzero(self.counts)
        c = self.centres()
        return float(c[occupied[0]]), float(c[occupied[-1]])

    def count_between(self, lo: float, hi: float) -> float:
        c = self.centres()
        return float(self.counts[(c >= lo) & (c <= hi)].sum())

    def mode(self, lo: float = -math.inf, hi: float = math.inf) -> float:
        """Centre of the fullest bin whose centre lies in [lo, hi]; NaN if that part is empty."""
        c = self.centres()
        part = np.where((c >= lo) & (c <= hi), self.counts, 0.0)
        k = int(np.argmax(part))
        return float(c[k]) if part[k] > 0 else math.nan

    def refine(self, start: float, sigma: float) -> float:
        """Biweight centre of the counts around ``start`` (scale ``BIWEIGHT_C * sigma``)."""
        c = self.centres()
        level = start
        scale = BIWEIGHT_C * sigma
        for _ in range(BIWEIGHT_ITERATIONS):
            d = (c - level) / scale
            w = np.maximum(1.0 - d * d, 0.0)
            w *= w
            w *= self.counts
            total = w.sum()
            if total <= 0:
                break
            level = float((w * c).sum() / total)
        return level

    def noise_sigma(self, centre: float) -> float:
        """Noise rms of the state whose peak is at ``centre``: from the peak's full width at half
        maximum first, then the rms of the samples within 3.5 sigma of ``centre`` (twice).

        Only the peak itself is looked at, so the other states do not inflate it however many
        samples they hold. Quantisation is part of the noise (a noise-free 8-bit record gives
        about 1/sqrt(12) code); the result is never below ``width / sqrt(12)``.
        """
        c = self.centres()
        k = int(np.clip(np.rint((centre - self.origin) / self.width), 0, c.size - 1))
        half = 0.5 * self.counts[k]
        below = self.counts < half
        left = np.flatnonzero(below[:k])
        right = np.flatnonzero(below[k + 1 :])
        lo = self._half_crossing(left[-1], left[-1] + 1, half) if left.size else 0.0
        hi = self._half_crossing(k + right[0], k + 1 + right[0], half) if right.size else float(c.size - 1)
        floor = self.width / math.sqrt(12.0)
        sigma = max((hi - lo) * self.width / FWHM_PER_SIGMA, floor)
        d = np.abs(c - centre)
        for _ in range(2):
            w = np.where(d <= max(3.5 * sigma, 1.5 * self.width), self.counts, 0.0)
            sigma = max(math.sqrt(float((w * d * d).sum() / w.sum())), floor)
        return sigma

    def _half_crossing(self, i: int, j: int, half: float) -> float:
        """Fractional bin index between bins i and j where the counts pass ``half``."""
        a, b = self.counts[i], self.counts[j]
        return i + (half - a) / (b - a) * (j - i) if b != a else float(i)


def _code_step(counts: np.ndarray) -> int:
    """Spacing of the occupied bins of integer codes: a power of two that divides every gap between
    them (256 for 8-bit codes delivered as 16-bit words, 16 for 12-bit ones), else 1."""
    occupied = np.flatnonzero(counts)
    if occupied.size < 8:
        return 1
    gcd = int(np.gcd.reduce(np.diff(occupied)))
    return gcd if gcd & (gcd - 1) == 0 else 1


def _resolution(values: np.ndarray) -> float:
    """Typical spacing of neighbouring distinct values among the first few thousand (their
    quantum if they are quantised, tiny if not)."""
    distinct = np.unique(values[:4096].astype(np.float64))
    if distinct.size < 8:
        return 0.0
    return float(np.median(np.diff(distinct))) * (1 - 1e-9)


def row_levels(values: np.ndarray, valid: np.ndarray, width: float, sigma: float) -> np.ndarray:
    """State level of each row of ``values`` (entries where ``valid``): the mode of the row's
    histogram (bins of ``width``) refined to the Tukey-biweight centre of the values around it
    (scale ``BIWEIGHT_C * sigma``). NaN for a row without valid entries.

    The biweight is a smooth mean shift: it converges to the same point from any start within the
    peak, so the level does not depend on where the histogram bins fell.
    """
    n_rows = values.shape[0]
    row_min = np.where(valid, values, np.inf).min(axis=1)
    empty = ~np.isfinite(row_min)
    row_min[empty] = 0.0
    bins = np.rint((values - row_min[:, None]) / width).astype(np.intp)
    bins[~valid] = 0
    n_bins = int(bins.max()) + 1
    bins += (np.arange(n_rows) * n_bins)[:, None]
    counts = np.bincount(bins.ravel(), weights=valid.ravel(), minlength=n_rows * n_bins)
    level = row_min + width * np.argmax(counts.reshape(n_rows, n_bins), axis=1)
    level = biweight_rows(values, valid, level, sigma)
    level[empty] = np.nan
    return level


def biweight_rows(values: np.ndarray, valid: np.ndarray, start: np.ndarray, sigma: float) -> np.ndarray:
    """Tukey-biweight centre of each row's valid values, iterated from ``start``."""
    scale = BIWEIGHT_C * sigma
    scaled = values / scale
    level = np.asarray(start, dtype=np.float64) / scale
    w = np.empty_like(scaled)
    partial = not valid.all()
    for _ in range(BIWEIGHT_ITERATIONS):
        np.subtract(scaled, level[:, None], out=w)
        np.square(w, out=w)
        np.subtract(1.0, w, out=w)
        np.maximum(w, 0.0, out=w)
        np.square(w, out=w)
        if partial:
            w *= valid
        total = w.sum(axis=1)
        level = np.where(total > 0, np.einsum("ij,ij->i", w, scaled) / np.where(total > 0, total, 1.0), level)
    return level * scale
