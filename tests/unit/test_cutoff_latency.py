"""rig.analysis.cutoff.cutoff_latency on synthetic captures: the threshold, noise spikes, and an
amplitude given by the test when the event changes the load or starts the output."""

from __future__ import annotations

import numpy as np
import pytest

from rig.analysis.cutoff import cutoff_latency
from rig.capture import Capture
from rig.errors import AnalysisError

DT = 10e-6
N = 100_000  # 1 s
EVENT_S = 0.1


def capture(values: np.ndarray, channel: int = 1) -> Capture:
    return Capture(samples=values.astype(np.float64), x_increment_s=DT, x_origin_s=0.0, y_increment_V=1.0,
                   y_origin_V=0.0, y_reference=0.0, channel=channel, instrument="synthetic")


def marker() -> Capture:
    m = np.zeros(N)
    m[int(EVENT_S / DT):] = 5.0
    return capture(m, 2)


def pulses(amplitude: np.ndarray) -> np.ndarray:
    """A 100 us phase every 10 ms, with the per-sample envelope ``amplitude``."""
    out = np.zeros(N)
    for k in range(0, N, 1000):
        out[k:k + 10] = amplitude[k]
    return out


def test_latency_runs_to_the_last_pulse_above_ten_percent() -> None:
    env = np.where(np.arange(N) * DT < 0.3, 10.0, 0.5)  # 5 % pulses after 0.3 s do not count
    r = cutoff_latency(capture(pulses(env)), marker())
    assert r.stopped
    assert r.latency_s == pytest.approx(0.29 + 9 * DT - EVENT_S, abs=2 * DT)


def test_a_noise_spike_is_not_a_pulse() -> None:
    out = pulses(np.where(np.arange(N) * DT < 0.3, 10.0, 0.0))
    out[int(0.8 / DT)] = 9.0  # one sample: not a pulse
    out[int(0.9 / DT):int(0.9 / DT) + 2] = 9.0  # two samples: not a pulse either
    r = cutoff_latency(capture(out), marker())
    assert r.latency_s == pytest.approx(0.29 + 9 * DT - EVENT_S, abs=2 * DT)


def test_an_output_that_never_stops_is_reported_as_such() -> None:
    r = cutoff_latency(capture(pulses(np.full(N, 10.0))), marker())
    assert not r.stopped
    assert r.latency_s > 0.85


def test_the_amplitude_can_come_from_the_test() -> None:
    # the event switches to a load 50 x smaller: 10 V before, 0.2 V after; 10 % of 0.2 V is what counts
    env = np.where(np.arange(N) * DT < EVENT_S, 10.0, np.where(np.arange(N) * DT < 0.5, 0.2, 0.0))
    given = cutoff_latency(capture(pulses(env)), marker(), amplitude=0.2)
    assert given.latency_s == pytest.approx(0.49 + 9 * DT - EVENT_S, abs=2 * DT)
    by_default = cutoff_latency(capture(pulses(env)), marker())  # 10 % of 10 V: nothing after the event
    assert by_default.latency_s < 0.01


def test_an_output_starting_at_the_event_needs_the_amplitude() -> None:
    env = np.where((np.arange(N) * DT >= EVENT_S) & (np.arange(N) * DT < 0.6), 10.0, 0.0)
    with pytest.raises(AnalysisError, match="no output before the event"):
        cutoff_latency(capture(pulses(env)), marker())
    assert cutoff_latency(capture(pulses(env)), marker(), amplitude=10.0).latency_s == pytest.approx(
        0.59 + 9 * DT - EVENT_S, abs=2 * DT)
    with pytest.raises(AnalysisError, match="positive"):
        cutoff_latency(capture(pulses(env)), marker(), amplitude=0.0)
