"""``analyse_pulse_train``: IEEE Std 181-2011 measurements of a biphasic stimulator pulse train.

Pipeline (one pass over the record, everything else on small windows):

1. A histogram of a systematic subsample (~33 k samples in blocks spread over the record):
   baseline level, noise rms and first phase levels (``levels``); the record's extremes stand in
   for a phase the subsample does not show well.
2. One band pass over the record: runs of samples beyond thresholds set between the baseline and
   each phase level (``runs``), cleaned of noise chatter.
3. Per run: plateau level by the histogram method (``plateau``), 50 % instants of both edges,
   10-90 % rise and overshoot (``edges``), integral and square integral (``integrals``).
4. Runs become pulses (``pulses``): a positive run is phase 1, the negative run after it phase 2;
   a pulse counts only if both its phases lie wholly in the record.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rig.analysis.edges import measure_edges
from rig.analysis.histogram import Histogram
from rig.analysis.integrals import margin_samples, record_mean_square, run_sums
from rig.analysis.levels import MIN_PART_COUNT, StateLevels, levels_from_histogram, min_amplitude
from rig.analysis.plateau import plateau_levels
from rig.analysis.pulses import pair_phases
from rig.analysis.record import Record, prepare
from rig.analysis.result import PulseTrain
from rig.analysis.runs import Runs, clean, find_runs
from rig.analysis.windows import block_subsample
from rig.errors import AnalysisError

SUBSAMPLE_TARGET = 1 << 15
#: Coarse thresholds sit at this share of each phase amplitude (runt pulses down to it are found) ...
COARSE_THRESHOLD_FRACTION = 0.35
#: ... but at least this many noise rms from the baseline (or at mid-amplitude if that is nearer).
COARSE_THRESHOLD_NOISE = 5.0
#: A phase plateau within this many noise rms of the integer type's end code is clipped.
CLIP_MARGIN_NOISE = 2.0


def analyse_pulse_train(
    samples: np.ndarray, dt_s: float, *, t0_s: float = 0.0, gain: float = 1.0, offset: float = 0.0
) -> PulseTrain:
    """Measure every complete pulse of a captured (biphasic) stimulator pulse train.

    ``samples``: 1-D record of any numeric dtype (uint8 scope codes are the fast path); the value
    is ``samples * gain + offset`` in "unit" (volts usually), sample ``k`` is at ``t0_s + k * dt_s``.
    Phase 1 is the phase that is positive in physical units (a negative ``gain`` is fine).

    Raises :class:`~rig.errors.AnalysisError` for an empty record, ``dt_s <= 0``, a record whose
    pulses are not clearly above the noise (10 x noise rms and, for integer codes, 8 codes) and a
    record without a complete pulse.
    """
    rec = prepare(samples, dt_s, gain, offset)
    x = rec.x
    sub = block_subsample(x, SUBSAMPLE_TARGET)
    values = sub.values.ravel()
    hist = Histogram.of(values)
    if rec.quantum and float(hist.width).is_integer():  # codes: one code is the spacing in use (256
        rec = replace(rec, quantum=hist.width)  # for 8-bit codes delivered as 16-bit words)
    coarse, x_max = _coarse_levels(rec, hist, values)
    if not math.isfinite(coarse.high):
        _fail_no_pulse(rec, coarse, f"the record peaks {_phys(rec, x_max - coarse.baseline)} above the baseline")
    runs = _runs(x, coarse)
    if not (runs.polarity > 0).any():
        _fail_no_pulse(rec, coarse, "found no positive phase")

    plateaus = plateau_levels(x, runs, coarse.noise_rms, rec.quantum)
    baseline = coarse.baseline
    need = min_amplitude(coarse.noise_rms, rec.quantum)
    if not plateaus.positive - baseline >= need:
        _fail_no_pulse(rec, coarse, f"the positive state is {_phys(rec, plateaus.positive - baseline)} "
                       "above the baseline")
    _refuse_clipped(rec, plateaus.positive, plateaus.negative, coarse.noise_rms)
    edges = measure_edges(x, runs, plateaus.per_run, baseline)
    sums = run_sums(x, runs, baseline, margin_samples(edges.rise))
    mean_square = record_mean_square(sums, sub, rec.n, baseline, coarse.noise_rms)

    first, second = pair_phases(runs)
    if first.size == 0:
        raise AnalysisError(
            f"no complete pulse in the record ({rec.n} samples, {runs.size} phase(s) seen, none both "
            "started and ended inside it); expected at least one whole pulse, baseline on both sides"
        )
    has2 = second >= 0
    s2 = np.where(has2, second, 0)

    def phase2(per_run: np.ndarray) -> np.ndarray:
        return np.where(has2, per_run[s2], np.nan)

    g = rec.gain
    amplitude = np.abs(plateaus.per_run - baseline) * g
    integral = sums.linear * g * dt_s
    square = sums.square * g * g * dt_s
    start_s = t0_s + edges.lead[first] * dt_s
    p2_integral = phase2(integral)
    return PulseTrain(
        baseline=baseline * g + rec.offset,
        high_level=plateaus.positive * g + rec.offset,
        low_level=plateaus.negative * g + rec.offset,
        start_s=start_s,
        phase1_duration_s=(edges.trail[first] - edges.lead[first]) * dt_s,
        gap_s=phase2(edges.lead) * dt_s - edges.trail[first] * dt_s,
        phase2_duration_s=phase2(edges.trail - edges.lead) * dt_s,
        phase1_amplitude=amplitude[first],
        phase2_amplitude=phase2(amplitude),
        phase1_integral=integral[first],
        phase2_integral=p2_integral,
        net_integral=integral[first] + np.where(has2, p2_integral, 0.0),
        square_integral=square[first] + np.where(has2, square[s2], 0.0),
        rise_time_s=edges.rise[first] * dt_s,
        overshoot=edges.overshoot[first],
        periods_s=np.diff(start_s),
        rms=math.sqrt(mean_square) * g,
        dt_s=float(dt_s),
        n_samples=rec.n,
        noise_rms=coarse.noise_rms * g,
    )


def _phys(rec: Record, raw_difference: float) -> str:
    raw = "codes" if rec.quantum else "raw"
    return f"{raw_difference * rec.gain:.4g} unit ({raw_difference:.3g} {raw})"


def _fail_no_pulse(rec: Record, coarse: StateLevels, problem: str) -> None:
    need = min_amplitude(coarse.noise_rms, rec.quantum)
    codes = " and 8 codes" if rec.quantum else ""
    raise AnalysisError(
        f"no pulse clearly above the noise: {problem}; noise is {_phys(rec, coarse.noise_rms)} rms; "
        f"expected a positive phase at least {_phys(rec, need)} (10 x noise{codes}) above the baseline"
    )


def _coarse_levels(rec: Record, hist: Histogram, values: np.ndarray) -> tuple[StateLevels, float]:
    """Levels from the subsample histogram, and the record maximum used.

    Short or rare phases may leave too few samples in the subsample: then the record's own extremes
    stand in (see ``levels_from_histogram``). They cost a pass each over integer codes, so the
    subsample's extremes are tried first and kept when both phase states are well populated.
    """
    if rec.checked_extremes is None:
        x_min, x_max = hist.extremes()
        coarse = levels_from_histogram(hist, x_min, x_max, rec.quantum, values)
        if _populated(hist, coarse.baseline, coarse.high) and _populated(hist, coarse.baseline, coarse.low):
            return coarse, x_max
    x_min, x_max = rec.extremes()
    return levels_from_histogram(hist, x_min, x_max, rec.quantum, values), x_max


def _populated(hist: Histogram, baseline: float, level: float) -> bool:
    """The histogram holds a proper part for the state at ``level`` beyond mid-amplitude."""
    if not math.isfinite(level):
        return False
    mid = 0.5 * (baseline + level)
    part = hist.count_between(mid, math.inf) if level > baseline else hist.count_between(-math.inf, mid)
    return part >= MIN_PART_COUNT


def _refuse_clipped(rec: Record, positive: float, negative: float, noise_rms: float) -> None:
    """A phase whose plateau sits at the ADC's end code was clipped: its amplitude is unknown."""
    if rec.x.dtype.kind not in "ui":
        return
    info = np.iinfo(rec.x.dtype)
    margin = CLIP_MARGIN_NOISE * noise_rms
    for name, level, end in (("positive", positive, float(info.max)), ("negative", negative, float(info.min))):
        if math.isfinite(level) and abs(level - end) <= margin:
            raise AnalysisError(
                f"the {name} phase is clipped: its plateau ({level:.1f}) sits at the end code {end:.0f} of "
                f"the {rec.x.dtype} samples; expected the whole waveform inside the ADC range (change the "
                "scope's vertical scale or offset)"
            )


def _runs(x: np.ndarray, coarse: StateLevels) -> Runs:
    b, sigma = coarse.baseline, coarse.noise_rms

    def offset(amplitude: float) -> float:
        return max(COARSE_THRESHOLD_FRACTION * amplitude, min(COARSE_THRESHOLD_NOISE * sigma, 0.5 * amplitude))

    upper = b + offset(coarse.high - b)
    lower = b - offset(b - coarse.low) if math.isfinite(coarse.low) else -math.inf
    release_lower = 0.5 * (b + lower) if math.isfinite(lower) else -math.inf
    return clean(find_runs(x, upper, lower), x, 0.5 * (b + upper), release_lower)
