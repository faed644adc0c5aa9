"""Three-level state levels of a biphasic record by the IEEE 181 histogram method.

A biphasic pulse train has three states: the baseline, the positive (phase-1) state and the
negative (phase-2) state. Following IEEE Std 181-2011 each phase is treated as a bilevel pulse
against the baseline: the histogram is split at mid-amplitude between the baseline and the
record's extreme, and the mode of each part is its state level (refined, see ``histogram``).

:func:`state_levels` is the reference method over the whole record. ``analyse_pulse_train`` uses
the same estimators on a systematic subsample (baseline, noise) and on the pulse plateaus (the
phase levels), which is what makes it fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.analysis.histogram import Histogram, biweight_rows
from rig.errors import AnalysisError

#: A state must stand this many noise rms clear of the baseline to count as a pulse state.
MIN_AMPLITUDE_NOISE_RATIO = 10.0
#: ... and, for integer codes, this many codes.
MIN_AMPLITUDE_CODES = 8.0
#: A second histogram peak this large (relative to the mode's) between the mode and an extreme is
#: the baseline, the mode being a phase state.
MIDDLE_STATE_SHARE = 0.2
#: Below this many samples in a part of the histogram its mode is not trusted (the extreme is used).
MIN_PART_COUNT = 32


@dataclass(frozen=True)
class StateLevels:
    """State levels in the units of the values they were computed from.

    ``high`` / ``low`` are NaN when the record holds no positive / negative state clearly above
    the noise. ``noise_rms`` is the rms of the baseline noise (quantisation included).
    """

    baseline: float
    high: float
    low: float
    noise_rms: float

    def scaled(self, gain: float, offset: float) -> StateLevels:
        """The same levels after ``value * gain + offset``."""
        return StateLevels(
            self.baseline * gain + offset, self.high * gain + offset, self.low * gain + offset,
            self.noise_rms * abs(gain),
        )


def min_amplitude(noise_rms: float, quantum: float) -> float:
    """Smallest state amplitude (raw units) that counts as clearly above the noise."""
    return max(MIN_AMPLITUDE_NOISE_RATIO * noise_rms, MIN_AMPLITUDE_CODES * quantum)


def levels_from_histogram(
    hist: Histogram, x_min: float, x_max: float, quantum: float, values: np.ndarray | None = None
) -> StateLevels:
    """Baseline, noise and the two phase levels from a histogram of (a subsample of) the record.

    ``x_min`` / ``x_max`` are the extremes of the whole record: when the histogram holds too few
    samples of a phase (short pulses in a subsample) the extreme stands in for that phase's level.
    With the histogrammed ``values`` at hand, floats get the baseline's last refinement from them
    rather than from the bin centres.
    """
    b0 = hist.mode()
    sigma = hist.noise_sigma(b0)
    baseline = hist.refine(b0, sigma)
    need = min_amplitude(sigma, quantum)

    def phase_level(extreme: float) -> float:
        if abs(extreme - baseline) < need:
            return math.nan
        mid = 0.5 * (baseline + extreme)
        lo, hi = (mid, math.inf) if extreme > baseline else (-math.inf, mid)
        if hist.count_between(lo, hi) < MIN_PART_COUNT:
            return extreme
        return hist.refine(hist.mode(lo, hi), sigma)

    high = phase_level(x_max)
    low = phase_level(x_min)
    for phase in (high, low):
        middle = _state_between(hist, baseline, phase, sigma, need)
        if math.isfinite(middle):  # the mode was a phase that outlasts the baseline: start again
            b0 = baseline = middle
            high = phase_level(x_max)
            low = phase_level(x_min)
            break
    sigma = hist.noise_sigma(baseline)
    # Three-level: the baseline state is the mode of the part between the two mid-amplitudes.
    lo_mid = 0.5 * (baseline + low) if math.isfinite(low) else -math.inf
    hi_mid = 0.5 * (baseline + high) if math.isfinite(high) else math.inf
    b1 = hist.mode(lo_mid, hi_mid)
    if math.isfinite(b1) and b1 != b0:
        baseline = hist.refine(b1, sigma)
    if values is not None and values.dtype.kind == "f":  # (integer codes sit on the bin centres)
        v = values.astype(np.float64).reshape(1, -1)
        baseline = float(biweight_rows(v, np.ones(v.shape, dtype=bool), np.array([baseline]), sigma)[0])
    return StateLevels(baseline, high, low, sigma)


def _state_between(hist: Histogram, level: float, other: float, sigma: float, need: float) -> float:
    """A well-populated state between the states at ``level`` and ``other`` (NaN if none).

    The histogram's mode is the baseline unless a phase holds more samples than the baseline (a
    long, weak phase 2 at a high rate): then the baseline shows up as a second large peak between
    that phase and the other one. Transition samples spread thinly and never make such a peak.
    """
    if not abs(other - level) >= 2 * need:  # also NaN
        return math.nan
    step = math.copysign(0.5 * need, other - level)
    lo, hi = sorted((level + step, other - step))
    peak = hist.mode(lo, hi)
    if not math.isfinite(peak):
        return math.nan
    near = 2 * sigma + hist.width
    mode_count = hist.count_between(level - near, level + near)
    if hist.count_between(peak - near, peak + near) < MIDDLE_STATE_SHARE * mode_count:
        return math.nan
    return hist.refine(peak, sigma)


def state_levels(samples: np.ndarray, *, gain: float = 1.0, offset: float = 0.0) -> StateLevels:
    """IEEE 181 histogram-method state levels of a whole record, in physical units.

    Reference implementation: it histograms every sample (a bincount of 10 M codes takes ~20 ms),
    so it is meant for checks and short records; ``analyse_pulse_train`` reports the same levels
    faster. Physical value = samples * gain + offset; with gain < 0 the physical high state is the
    raw low one.
    """
    x = np.asarray(samples)
    if x.ndim != 1 or x.size == 0 or x.dtype.kind not in "uif":
        raise AnalysisError(f"state_levels: expected a non-empty 1-D numeric array, got shape {x.shape} "
                            f"dtype {x.dtype}")
    if not (math.isfinite(gain) and gain != 0):
        raise AnalysisError(f"state_levels: gain must be finite and non-zero, got {gain}")
    x_min, x_max = float(x.min()), float(x.max())
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        raise AnalysisError("state_levels: samples contain NaN or infinity; expected finite values")
    hist = Histogram.of(x)
    quantum = hist.width if x.dtype.kind in "ui" else 0.0
    raw = levels_from_histogram(hist, x_min, x_max, quantum)
    if gain < 0:
        raw = StateLevels(raw.baseline, raw.low, raw.high, raw.noise_rms)
    return raw.scaled(gain, offset)
