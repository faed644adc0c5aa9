"""Cutoff latency: from an event marked on one channel to the last output pulse above a fraction of
the output's amplitude before the event."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rig.capture import Capture
from rig.errors import AnalysisError

MIN_MARKER_SWING_V = 1.0
MIN_PULSE_SAMPLES = 3  # consecutive samples above the threshold that make a pulse (the setups give >= 10 per phase)


@dataclass(frozen=True)
class CutoffResult:
    event_s: float  # marker rising edge (50 % crossing), capture time
    amplitude_before: float  # output peak magnitude before the event (capture units)
    last_above_s: float  # last sample above the threshold
    latency_s: float  # last_above_s - event_s (the record end if the output never stopped)
    stopped: bool  # False: still above the threshold at the end of the record


def marker_edge_s(marker: Capture) -> float:
    """Time of the marker's first rising 50 % crossing, linearly interpolated."""
    v = marker.volts()
    lo, hi = float(np.min(v)), float(np.max(v))
    if hi - lo < MIN_MARKER_SWING_V:
        raise AnalysisError(
            f"{marker.instrument} CH{marker.channel}: the marker edge never appears in the capture "
            f"(swing {hi - lo:.3g} V; expected a logic edge of at least {MIN_MARKER_SWING_V:g} V)"
        )
    mid = 0.5 * (lo + hi)
    above = v > mid
    idx = np.flatnonzero(~above[:-1] & above[1:])
    if idx.size == 0:
        raise AnalysisError(f"{marker.instrument} CH{marker.channel}: no rising marker edge in the capture")
    i = int(idx[0])
    frac = (mid - v[i]) / (v[i + 1] - v[i])
    return float(marker.x_origin_s + (i + frac) * marker.x_increment_s)


def cutoff_latency(
    output: Capture, marker: Capture, fraction: float = 0.10, amplitude: float | None = None
) -> CutoffResult:
    """Latency from the marked event to the last sample of the output above ``fraction`` of its
    amplitude (both polarities: biphasic pulses).

    ``amplitude`` (capture units) is the output's amplitude when the event does not leave it on
    screen before the event (e.g. the load changes at the event, or the output starts there); by
    default it is the peak of the record before the event.
    """
    event_s = marker_edge_s(marker)
    t = output.times()
    v = np.abs(output.volts())
    if amplitude is None:
        before = v[t < event_s]
        if before.size == 0:
            raise AnalysisError(
                f"{output.instrument} CH{output.channel}: no pre-event record to take the amplitude from"
            )
        amplitude = float(np.max(before))
        quiet = before[before < 0.5 * amplitude]
        noise = float(np.median(before)) + (6 * float(np.std(quiet)) if quiet.size else 0.0)
        if amplitude <= 0 or amplitude * fraction <= noise:
            raise AnalysisError(
                f"{output.instrument} CH{output.channel}: no output before the event (peak {amplitude:.3g} V); "
                "expected pulses to cut off"
            )
    elif not amplitude > 0:
        raise AnalysisError(f"cutoff amplitude must be positive, got {amplitude!r}")
    threshold = fraction * amplitude
    # a pulse is at least MIN_PULSE_SAMPLES consecutive samples above the threshold: a noise spike is not
    hot = (v > threshold) & (t >= event_s)
    runs = np.convolve(hot.astype(np.int32), np.ones(MIN_PULSE_SAMPLES, dtype=np.int32), mode="valid")
    above = np.flatnonzero(runs == MIN_PULSE_SAMPLES) + MIN_PULSE_SAMPLES - 1
    if above.size == 0:
        return CutoffResult(event_s, amplitude, event_s, 0.0, True)
    last = int(above[-1])
    stopped = last < v.size - 1 - int(0.01 * v.size)
    return CutoffResult(event_s, amplitude, float(t[last]), float(t[last] - event_s), stopped)


def pulse_peaks(capture: Capture, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(start time, peak magnitude) of every pulse whose |value| exceeds ``threshold``, runts included.

    Unlike the IEEE 181 train analysis, nothing is discarded for being small: a slew check needs the
    pulse before a jump as much as the one after it.
    """
    v = np.abs(capture.volts())
    above = v > threshold
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts = edges[~above[edges]] + 1  # rising: below at i, above at i + 1
    if above[0]:
        starts = np.concatenate(([0], starts))
    if starts.size == 0:
        return np.empty(0), np.empty(0)
    # a biphasic pulse is one pulse: merge runs closer than a few hundred microseconds
    gap = max(1, int(0.5e-3 / capture.x_increment_s))
    keep = np.concatenate(([True], np.diff(starts) > gap))
    starts = starts[keep]
    peaks = np.maximum.reduceat(v, starts)  # each pulse's maximum (up to the next pulse's start)
    return capture.x_origin_s + starts * capture.x_increment_s, peaks
