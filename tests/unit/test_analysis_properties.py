"""Property tests: random plausible stimulator settings, analysed back within noise-derived bounds.

Tolerances come from the capture itself: a 50 % instant jitters by (noise rms) / (edge slope at
50 %) where the first-order edge climbs A / (2 tau); linear interpolation on the exponential sampled
at dt = tau / 4.5 adds < 0.01 sample. A phase integral has the noise of its window,
noise * sqrt(samples) * dt, plus baseline error. Bounds are 6 sigma, so a failure is a bug, not luck.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rig.analysis import analyse_pulse_train
from rig.analysis.synthetic import LN2, RISE_PER_TAU, TrainSpec, synth_capture

DT = 0.2e-6
TAU = 2e-6 / RISE_PER_TAU  # 2 us rise, 4.5 samples per tau
QUANTISATION = 1 / math.sqrt(12)  # codes rms


@st.composite
def trains(draw: st.DrawFn) -> tuple[TrainSpec, float, float, int]:
    f = draw(st.floats(20.0, 150.0))
    t1 = draw(st.floats(50e-6, 1000e-6))
    ratio = draw(st.sampled_from([1.0, 2.0, 4.0]))
    gap = draw(st.one_of(st.just(0.0), st.floats(10e-6, 100e-6)))
    assume(t1 * (1 + ratio) + gap < 0.4 / f)  # a plausible duty cycle
    amplitude = draw(st.floats(40.0, 110.0))
    noise = draw(st.floats(0.5, 2.0))
    assume(amplitude / ratio >= 12 * noise)  # phase 2 clearly above the noise too (else it reads NaN)
    first = draw(st.floats(-1.0, 1.0)) / f  # may start in the middle of a pulse
    seed = draw(st.integers(0, 2**32 - 1))
    spec = TrainSpec(frequency_Hz=f, phase1_s=t1, amplitude=amplitude, phase2_s=ratio * t1, gap_s=gap,
                     first_edge_s=first, tau_s=TAU, baseline=0.0)
    duration = draw(st.floats(3.2, 5.0)) / f
    return spec, noise, duration, seed


@settings(max_examples=60, deadline=None)
@given(trains())
def test_random_trains_are_measured_within_noise_bounds(case: tuple[TrainSpec, float, float, int]) -> None:
    spec, noise, duration, seed = case
    cap = synth_capture(spec, duration_s=duration, dt_s=DT, gain=1.0, noise_codes=noise, seed=seed,
                        baseline_code=127.3)
    train = analyse_pulse_train(cap.codes, DT, gain=cap.gain, offset=cap.offset)

    a1, a2, t1, t2 = spec.amplitude, spec.a2, spec.phase1_s, spec.t2_s
    sigma = math.hypot(noise, QUANTISATION)
    jitter1 = sigma / (a1 / (2 * TAU))  # seconds, one phase-1 instant
    jitter2 = sigma / (a2 / (2 * TAU))
    tol1 = 6 * math.sqrt(2) * jitter1 + 0.02 * DT
    tol2 = 6 * math.sqrt(2) * jitter2 + 0.02 * DT

    # Which pulses must be found (wholly inside with room for the edges) and which may be.
    starts = spec.pulse_starts(duration)
    ends = starts + t1 + spec.gap_s + t2
    sure = (starts > 3 * TAU + 2 * DT) & (ends + 5 * TAU + 2 * DT < duration)
    maybe = (starts > -TAU) & (ends < duration)
    assert int(sure.sum()) <= train.n_pulses <= int(maybe.sum())
    k = np.searchsorted(starts + TAU * LN2, train.start_s - 3 * tol1)
    np.testing.assert_allclose(train.start_s, starts[k] + TAU * LN2, rtol=0, atol=tol1)

    if spec.gap_s == 0:  # superposed edges, see test_analysis.test_zero_interphase_gap
        s1 = TAU * math.log((a1 + a2) / (a1 / 2 + a2))
        s2 = TAU * math.log((a1 + a2) / (a2 / 2))
        d1, gap, d2 = t1 + s1 - TAU * LN2, s2 - s1, t2 + TAU * LN2 - s2
    else:
        d1, gap, d2 = t1, spec.gap_s, t2
    np.testing.assert_allclose(train.phase1_duration_s, d1, rtol=0, atol=tol1)
    np.testing.assert_allclose(train.phase2_duration_s, d2, rtol=0, atol=tol2)
    np.testing.assert_allclose(train.gap_s, gap, rtol=0, atol=max(tol1, tol2))
    if train.n_pulses >= 2:
        span = starts[k[-1]] - starts[k[0]]
        assert abs(train.frequency_Hz - spec.frequency_Hz) <= spec.frequency_Hz * 2 * tol1 / span

    # Charge: window noise plus 0.05 code of baseline error over the window.
    window = (t1 + t2 + 40 * TAU) / DT
    charge_tol = (6 * sigma * math.sqrt(window) + 0.05 * window) * DT
    if spec.gap_s == 0:
        q1 = a1 * t1 - a1 * TAU * (a2 / (a1 + a2)) - a2 * TAU * (math.log((a1 + a2) / a2) - a1 / (a1 + a2))
    else:
        q1 = a1 * t1
    np.testing.assert_allclose(train.phase1_integral, q1, rtol=0, atol=charge_tol)
    np.testing.assert_allclose(train.net_integral, 0.0, rtol=0, atol=charge_tol)
    np.testing.assert_allclose(train.phase1_amplitude, a1, rtol=0, atol=6 * sigma / math.sqrt(16) + 0.1)
    np.testing.assert_allclose(train.phase2_amplitude, a2, rtol=0, atol=6 * sigma / math.sqrt(16) + 0.1)

    # The baseline part of the rms comes from ~30 k subsample samples: its mean square is good to
    # ~sqrt(2/30k) = 0.8 % (1 sigma). At the lowest duty cycle here noise is ~half of the power,
    # so the rms is good to ~0.2 %: 1 % is > 4 sigma.
    values = cap.values()
    exact = math.sqrt(float(np.mean((values - train.baseline) ** 2)))
    assert abs(train.rms / exact - 1) < 1e-2
