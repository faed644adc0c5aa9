"""analyse_pulse_train on the awkward captures: ringing, missing phases, slow or undersampled edges,
phase 2 outlasting the baseline, hundreds of pulses. Same synthetic captures as test_analysis
(first-order edges: 50 % instants tau*ln2 after the ideal edges, so 50 % durations are the ideal
ones; 8-bit codes, seeded noise)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.analysis import PulseTrain, analyse_pulse_train
from rig.analysis.synthetic import LN2, RISE_PER_TAU, SynthCapture, TrainSpec, render, synth_capture

GAIN = 0.05
A = 100 * GAIN


def analyse(cap: SynthCapture) -> PulseTrain:
    return analyse_pulse_train(cap.codes, cap.dt_s, t0_s=cap.t0_s, gain=cap.gain, offset=cap.offset)


def jitter_s(amplitude_codes: float, tau_s: float, noise_codes: float = 1.0) -> float:
    """1-sigma jitter of a 50 % instant: noise (with quantisation) over the edge's slope there."""
    return math.hypot(noise_codes, 1 / math.sqrt(12)) / (amplitude_codes / (2 * tau_s))


def test_ringing_undershoot_before_a_weak_phase_2_is_not_a_phase() -> None:
    # zeta 0.6 rings 9.5 % of the 125-code fall below the baseline: 12 codes, half of the 25-code
    # phase 2, so the phase-1 trailing edge makes a negative run of its own in the gap.
    tau = 1e-6
    s = TrainSpec(frequency_Hz=50.0, phase1_s=200e-6, amplitude=A, phase2_s=800e-6, gap_s=60e-6,
                  first_edge_s=1e-3, tau_s=tau, zeta=0.6)
    train = analyse(synth_capture(s, duration_s=0.1, dt_s=0.1e-6, gain=GAIN, noise_codes=0.5, seed=3))
    assert train.n_pulses == 5
    # A second-order edge crosses 50 % later than a first-order one; both phase-2 edges alike, so
    # the duration is still the ideal one. The phase-2 edges climb 25 codes: ~35 ns of jitter.
    np.testing.assert_allclose(train.phase2_duration_s, 800e-6, rtol=0, atol=0.2e-6)
    np.testing.assert_allclose(train.gap_s, 60e-6, rtol=0, atol=0.5e-6)
    np.testing.assert_allclose(train.net_integral, 0.0, atol=3e-3 * A * 200e-6)


def test_missing_phase_2_in_a_biphasic_train_reads_nan_and_net_charge() -> None:
    dt, n = 0.5e-6, 200_000
    both = TrainSpec(frequency_Hz=100.0, phase1_s=200e-6, amplitude=A, gap_s=50e-6, first_edge_s=1e-3,
                     n_pulses=5)
    lone = TrainSpec(frequency_Hz=100.0, phase1_s=200e-6, amplitude=A, phase2_s=0.0, first_edge_s=1e-3 + 5e-2,
                     n_pulses=1)  # the 6th pulse lost its phase 2
    rest = TrainSpec(frequency_Hz=100.0, phase1_s=200e-6, amplitude=A, gap_s=50e-6, first_edge_s=1e-3 + 6e-2,
                     n_pulses=3)
    values = render(both, n, dt) + render(lone, n, dt) + render(rest, n, dt)
    codes = np.clip(np.rint(values / GAIN + 127.3 + np.random.default_rng(9).normal(0, 1, n)), 0, 255)
    train = analyse_pulse_train(codes.astype(np.uint8), dt, gain=GAIN, offset=-127.3 * GAIN)
    assert train.n_pulses == 9
    lost = np.isnan(train.phase2_integral)
    np.testing.assert_array_equal(lost, np.arange(9) == 5)
    assert train.net_integral[5] == train.phase1_integral[5] == pytest.approx(A * 200e-6, rel=3e-3)
    assert np.all(np.abs(train.net_integral[~lost]) < 3e-3 * A * 200e-6)


def test_phase_2_outlasting_the_baseline_does_not_become_the_baseline() -> None:
    # 150 Hz, 1 ms + 4 ms at a quarter of the amplitude: phase 2 fills 60 % of the record, the
    # baseline only 25 %. The histogram's mode is phase 2; the baseline is the peak between.
    tau = 0.5e-6
    s = TrainSpec(frequency_Hz=150.0, phase1_s=1e-3, amplitude=A, phase2_s=4e-3, gap_s=20e-6,
                  first_edge_s=0.5e-3, tau_s=tau)
    train = analyse(synth_capture(s, duration_s=0.05, dt_s=1e-6, gain=GAIN, noise_codes=1.0, seed=4))
    assert train.baseline == pytest.approx(0.0, abs=0.05 * GAIN)
    assert train.low_level == pytest.approx(-A / 4, abs=0.2 * GAIN)
    assert train.n_pulses == 7
    np.testing.assert_allclose(train.phase2_duration_s, 4e-3, rtol=0, atol=6 * jitter_s(25, tau) + 0.1e-6)
    assert train.frequency_Hz == pytest.approx(150.0, rel=1e-4)


def test_hundreds_of_pulses() -> None:
    # 150 Hz for 2 s: 300 pulses, 600 runs (the windows' width is then set on a few pilot runs).
    tau = 2e-6 / RISE_PER_TAU
    s = TrainSpec(frequency_Hz=150.0, phase1_s=100e-6, amplitude=A, gap_s=30e-6, first_edge_s=0.2e-3,
                  tau_s=tau)
    cap = synth_capture(s, duration_s=2.0, dt_s=1e-6, gain=GAIN, noise_codes=1.0, seed=5)
    train = analyse(cap)
    assert train.n_pulses == 300
    # dt = 1.1 tau: linear interpolation on the exponential is off by up to ~0.05 dt.
    tol = 6 * jitter_s(100, tau) + 0.05 * cap.dt_s
    np.testing.assert_allclose(train.start_s, s.pulse_starts(2.0) + tau * LN2, rtol=0, atol=tol)
    np.testing.assert_allclose(train.phase1_duration_s, 100e-6, rtol=0, atol=tol)
    assert train.frequency_Hz == pytest.approx(150.0, rel=1e-6)


def test_slow_oversampled_edges() -> None:
    # 10 ns sampling of a 4 us rise: 400 samples per transition. The windows must grow to hold it.
    tau = 4e-6 / RISE_PER_TAU
    s = TrainSpec(frequency_Hz=100.0, phase1_s=300e-6, amplitude=A, gap_s=50e-6, first_edge_s=1e-3,
                  tau_s=tau)
    train = analyse(synth_capture(s, duration_s=0.025, dt_s=10e-9, gain=GAIN, noise_codes=0.5, seed=6))
    assert train.n_pulses == 3
    # 400 noisy samples on the edge: the 10/90 % instants jitter by ~0.5 code / slope, a few ns.
    np.testing.assert_allclose(train.rise_time_s, RISE_PER_TAU * tau, rtol=0.03)
    np.testing.assert_allclose(train.phase1_duration_s, 300e-6, rtol=0, atol=6 * jitter_s(100, tau, 0.5))
    np.testing.assert_allclose(train.overshoot, 0.0, atol=0.02)


def test_zero_gap_at_coarse_sampling_jumps_straight_between_phases() -> None:
    # dt = 5 us and a 0.2 us time constant: phase 1 and phase 2 meet within one sample, so one
    # run of out-of-band samples holds both phases and has to be split.
    tau = 0.2e-6
    s = TrainSpec(frequency_Hz=100.0, phase1_s=200e-6, amplitude=A, gap_s=0.0, first_edge_s=1.2345e-3,
                  tau_s=tau)
    cap = synth_capture(s, duration_s=0.1, dt_s=5e-6, gain=GAIN, noise_codes=1.0, seed=7)
    train = analyse(cap)
    assert train.n_pulses == 10
    # Edges far shorter than a sample: each instant is interpolated between two samples on either
    # side of a near-step, so it is good to half a sample. The +A to -A jump inside one interval
    # puts the +A/2 and -A/2 crossings at 1/4 and 3/4 of it: the gap reads half a sample.
    np.testing.assert_allclose(train.phase1_duration_s, 200e-6, rtol=0, atol=0.5 * cap.dt_s)
    np.testing.assert_allclose(train.phase2_duration_s, 200e-6, rtol=0, atol=0.5 * cap.dt_s)
    np.testing.assert_allclose(train.gap_s, 0.5 * cap.dt_s, rtol=0, atol=0.15 * cap.dt_s)
    # Sampled charge: each edge can add or lose up to half a sample of full amplitude.
    np.testing.assert_allclose(train.phase1_integral, A * 200e-6, rtol=0, atol=A * cap.dt_s)
