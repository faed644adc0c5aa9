"""rig.analysis.analyse_pulse_train against synthetic captures with exactly known parameters.

The captures (rig.analysis.synthetic) are analytic: ideal edges at sub-sample instants through a
first-order step response 1 - exp(-t/tau), digitised to 8-bit codes with seeded gaussian noise.
For a first-order edge the 50 % instant is tau*ln2 after the ideal edge on both the leading and
the trailing edge, so 50 % durations equal the ideal ones; the 10-90 % rise is tau*ln9 = 2.197 tau;
a phase's integral is exactly amplitude * duration (the filter keeps the area).

Default capture: dt = 100 ns, 1 M samples (0.1 s), 100 Hz, 200 us phases, 50 us gap, amplitude
100 codes = 5 unit (gain 0.05 unit/code), baseline at code 127.3, noise 1 code rms, rise 2 us
(tau = 0.91 us = 9.1 samples). Error budget used for the tolerances below:

* 50 % instant: the edge climbs A/(2 tau) = 5.5 codes per sample at 50 %; 1 code noise plus
  0.29 code quantisation moves it by ~0.19 sample = 19 ns (1 sigma). Linear interpolation on an
  exponential sampled 9 times per tau is off by < 0.01 sample. So +-0.1 us per instant is 5 sigma.
* Plateau level per pulse: biweight-refined mode of 64 plateau samples, 1 code / sqrt(64) ~ 0.13
  code (1 sigma); +-0.5 code.
* Integral over ~2,100 samples: noise sqrt(2100) * 1 code ~ 46 code-samples against 200,000
  (2.3e-4), baseline error < 0.02 code (1e-4); +-0.2 %.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.analysis import PulseTrain, analyse_pulse_train, crossing_times, state_levels
from rig.analysis.synthetic import LN2, RISE_PER_TAU, SynthCapture, TrainSpec, render, synth_capture

DT = 100e-9
GAIN = 0.05
A = 100 * GAIN  # 5 unit
T = 200e-6
GAP = 50e-6
F = 100.0
TAU = 2e-6 / RISE_PER_TAU
FIRST = 1.234567e-3  # deliberately between samples
DURATION = 0.1
INSTANT_TOL = 0.1e-6
MEAN_TOL = 0.03e-6  # a third of a sample: catches any systematic bias of the instants
LEVEL_TOL = 0.5 * GAIN
CHARGE_REL = 2e-3


def spec(**kw: object) -> TrainSpec:
    base: dict[str, object] = dict(frequency_Hz=F, phase1_s=T, amplitude=A, gap_s=GAP, first_edge_s=FIRST,
                                   tau_s=TAU)
    base.update(kw)
    return TrainSpec(**base)  # type: ignore[arg-type]


def capture(s: TrainSpec | None = None, **kw: object) -> SynthCapture:
    opts: dict[str, object] = dict(duration_s=DURATION, dt_s=DT, gain=GAIN, noise_codes=1.0, seed=7)
    opts.update(kw)
    return synth_capture(s or spec(), **opts)  # type: ignore[arg-type]


def analyse(cap: SynthCapture, **kw: object) -> PulseTrain:
    return analyse_pulse_train(cap.codes, cap.dt_s, t0_s=cap.t0_s, gain=cap.gain, offset=cap.offset, **kw)


@pytest.fixture(scope="module")
def symmetric() -> tuple[SynthCapture, PulseTrain]:
    cap = capture()
    return cap, analyse(cap)


def test_symmetric_pulse_count_and_start_instants(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    cap, train = symmetric
    ideal = cap.spec.pulse_starts(DURATION)
    assert train.n_pulses == ideal.size == 10
    np.testing.assert_allclose(train.start_s, ideal + TAU * LN2, rtol=0, atol=INSTANT_TOL)
    # No systematic bias: the mean of 10 instants is good to 19 ns / sqrt(10) = 6 ns (1 sigma).
    assert abs(float(np.mean(train.start_s - ideal)) - TAU * LN2) < MEAN_TOL
    assert train.dt_s == DT and train.n_samples == cap.n


def test_symmetric_durations_and_gap(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    # Each duration is the difference of two instants: +-0.1 us is still > 3.5 sigma.
    np.testing.assert_allclose(train.phase1_duration_s, T, rtol=0, atol=INSTANT_TOL)
    np.testing.assert_allclose(train.phase2_duration_s, T, rtol=0, atol=INSTANT_TOL)
    np.testing.assert_allclose(train.gap_s, GAP, rtol=0, atol=INSTANT_TOL)
    for name, ideal in (("phase1_duration_s", T), ("phase2_duration_s", T), ("gap_s", GAP)):
        # mean of 10 differences of two instants: 27 ns / sqrt(10) = 9 ns (1 sigma)
        assert abs(float(np.mean(getattr(train, name))) - ideal) < MEAN_TOL, name


def test_frequency_and_periods(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    # 9 periods of 10 ms from instants good to ~19 ns: the mean period is good to ~3e-6 relative.
    assert train.frequency_Hz == pytest.approx(F, rel=1e-5)
    np.testing.assert_allclose(train.periods_s, 1 / F, rtol=0, atol=INSTANT_TOL)
    assert train.periods_s.size == train.n_pulses - 1


def test_state_levels_and_amplitudes(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    # Baseline from ~6e4 samples: the biweight-refined mode is good to ~0.01 code even between codes.
    assert train.baseline == pytest.approx(0.0, abs=0.05 * GAIN)
    assert train.high_level == pytest.approx(A, abs=0.2 * GAIN)
    assert train.low_level == pytest.approx(-A, abs=0.2 * GAIN)
    np.testing.assert_allclose(train.phase1_amplitude, A, rtol=0, atol=LEVEL_TOL)
    np.testing.assert_allclose(train.phase2_amplitude, A, rtol=0, atol=LEVEL_TOL)
    # Noise: 1 code gaussian plus quantisation (1/12 code^2) -> ~1.04 code rms.
    assert train.noise_rms == pytest.approx(math.sqrt(1 + 1 / 12) * GAIN, rel=0.1)


def test_phase_charge_and_balance(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    charge = A * T  # unit*s; divide by the load resistance for coulombs
    np.testing.assert_allclose(train.phase1_integral, charge, rtol=CHARGE_REL)
    np.testing.assert_allclose(train.phase2_integral, -charge, rtol=CHARGE_REL)
    np.testing.assert_allclose(train.net_integral, train.phase1_integral + train.phase2_integral, rtol=1e-12)
    assert np.all(np.abs(train.net_integral) < CHARGE_REL * charge)


def test_square_integral(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    # A first-order phase holds A^2 (T - tau) of (x - baseline)^2 (the slow edges lose 1.5 tau, the
    # tail gives 0.5 tau back). Noise adds ~2100 samples * 1 code^2, 1e-4 of it.
    expected = 2 * A * A * (T - TAU)
    np.testing.assert_allclose(train.square_integral, expected, rtol=CHARGE_REL)


def test_rms_of_whole_record(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    cap, train = symmetric
    values = cap.values()
    exact = float(np.sqrt(np.mean((values - train.baseline) ** 2)))
    # Pulse windows are summed exactly; the baseline between them (noise only, 1/370 of the power)
    # is estimated from ~30 k subsample samples (0.8 % of that part), so the rms is good to ~1e-5.
    assert train.rms == pytest.approx(exact, rel=1e-4)
    # IEC 60601-2-10: I_rms = I_peak * sqrt(total phase duration * f) for rectangular pulses. The
    # finite edges take tau/(2T) = 0.23 % off, noise adds ~0.13 %: 0.5 % covers both.
    assert train.rms == pytest.approx(A * math.sqrt(2 * T * F), rel=5e-3)


def test_rise_time_matches_first_order_edge() -> None:
    # At the 90 % level a first-order edge climbs only 0.1*A/tau = 1.1 codes per sample, so 0.5 code
    # of noise moves that instant by ~0.5 sample (2.5 % of the 20-sample rise) per pulse.
    cap = capture(noise_codes=0.5)
    train = analyse(cap)
    expected = RISE_PER_TAU * TAU  # 2 us
    assert float(np.mean(train.rise_time_s)) == pytest.approx(expected, rel=0.03)
    np.testing.assert_allclose(train.rise_time_s, expected, rtol=0.1)


def test_overshoot_of_first_order_edge_is_only_noise(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    # No overshoot; the maximum of ~60 noisy plateau samples sits ~2.5 noise rms (2.5 % of A) above
    # the level. 5 % would be 5 sigma.
    assert np.all(train.overshoot > -0.01)
    assert np.all(train.overshoot < 0.05)


def test_overshoot_of_second_order_edge() -> None:
    zeta = 0.5  # overshoot exp(-pi*zeta/sqrt(1-zeta^2)) = 16.3 %
    s = spec(zeta=zeta, tau_s=0.5e-6)
    train = analyse(capture(s, noise_codes=0.5))
    # The peak sample may miss the continuous peak by up to dt/2 (flat there: < 0.1 %); noise adds
    # ~0.5-1 code at the maximum: +-1.5 points.
    assert float(np.mean(train.overshoot)) == pytest.approx(s.overshoot, abs=0.015)
    np.testing.assert_allclose(train.overshoot, s.overshoot, atol=0.02)


def test_five_percent_frequency_error_is_resolved() -> None:
    nominal = analyse(capture(spec(frequency_Hz=100.0)))
    off = analyse(capture(spec(frequency_Hz=105.0)))
    assert nominal.frequency_Hz == pytest.approx(100.0, rel=1e-5)
    assert off.frequency_Hz == pytest.approx(105.0, rel=1e-5)
    assert off.frequency_Hz / nominal.frequency_Hz == pytest.approx(1.05, rel=1e-4)


def test_imbalanced_phase2_gives_net_charge() -> None:
    # Phase 2 shortened by 10 % at the same amplitude: net = A * 0.1 T per pulse.
    s = spec(phase2_s=0.9 * T, phase2_amplitude=A)
    train = analyse(capture(s))
    np.testing.assert_allclose(train.phase2_duration_s, 0.9 * T, rtol=0, atol=INSTANT_TOL)
    net = A * 0.1 * T
    # Noise on the net is ~3e-4 of a phase charge = 3e-3 of this net value: 2 % is ample.
    np.testing.assert_allclose(train.net_integral, net, rtol=0.02)


def test_asymmetric_charge_balanced_pulse() -> None:
    # Phase 2 four times longer at a quarter of the amplitude (25 codes).
    s = spec(phase2_s=4 * T)
    train = analyse(capture(s))
    assert train.n_pulses == 10
    np.testing.assert_allclose(train.phase1_duration_s, T, rtol=0, atol=INSTANT_TOL)
    # The phase-2 edges climb 4x slower in codes: ~76 ns per instant, so +-0.4 us.
    np.testing.assert_allclose(train.phase2_duration_s, 4 * T, rtol=0, atol=0.4e-6)
    np.testing.assert_allclose(train.gap_s, GAP, rtol=0, atol=0.4e-6)
    np.testing.assert_allclose(train.phase2_amplitude, A / 4, rtol=0, atol=LEVEL_TOL)
    assert train.low_level == pytest.approx(-A / 4, abs=0.2 * GAIN)
    charge = A * T
    np.testing.assert_allclose(train.phase2_integral, -charge, rtol=CHARGE_REL)
    assert np.all(np.abs(train.net_integral) < 1.5 * CHARGE_REL * charge)


def test_zero_interphase_gap() -> None:
    train = analyse(capture(spec(gap_s=0.0)))
    # Superposed first-order edges, phase 1 settled at +A: x = -A + 2A exp(-s/tau) after the ideal
    # edge, crossing +A/2 at tau*ln(4/3) and -A/2 at tau*ln(4).
    s1, s2 = TAU * math.log(4 / 3), TAU * math.log(4)
    np.testing.assert_allclose(train.gap_s, s2 - s1, rtol=0, atol=INSTANT_TOL)
    np.testing.assert_allclose(train.phase1_duration_s, T + s1 - TAU * LN2, rtol=0, atol=INSTANT_TOL)
    np.testing.assert_allclose(train.phase2_duration_s, T + TAU * LN2 - s2, rtol=0, atol=INSTANT_TOL)
    # Split where the waveform passes the baseline (tau*ln2 after the edge), phase 1 keeps A(T - tau*ln2).
    np.testing.assert_allclose(train.phase1_integral, A * (T - TAU * LN2), rtol=CHARGE_REL)
    np.testing.assert_allclose(train.phase2_integral, -A * (T - TAU * LN2), rtol=CHARGE_REL)


def test_record_starting_and_ending_mid_pulse() -> None:
    period = 1 / F
    # First pulse starts 100 us before the record (inside phase 1); the record ends inside the
    # phase 2 of the pulse that starts at 0.09 s + first edge.
    s = spec(first_edge_s=-100e-6)
    end = 9 * period - 100e-6 + T + GAP + 0.5 * T
    cap = capture(s, duration_s=end)
    train = analyse(cap)
    ideal = s.pulse_starts(end)
    assert ideal.size == 10
    np.testing.assert_allclose(train.start_s, ideal[1:-1] + TAU * LN2, rtol=0, atol=INSTANT_TOL)


def test_record_ending_in_the_interphase_gap_drops_that_pulse() -> None:
    s = spec()
    end = FIRST + 4 * (1 / F) + T + 0.5 * GAP
    train = analyse(capture(s, duration_s=end))
    assert train.n_pulses == 4
    assert np.all(np.isfinite(train.phase2_duration_s))


def test_monophasic_pulses() -> None:
    train = analyse(capture(spec(phase2_s=0.0)))
    assert train.n_pulses == 10
    np.testing.assert_allclose(train.phase1_duration_s, T, rtol=0, atol=INSTANT_TOL)
    np.testing.assert_allclose(train.phase1_integral, A * T, rtol=CHARGE_REL)
    for name in ("gap_s", "phase2_duration_s", "phase2_amplitude", "phase2_integral"):
        assert np.all(np.isnan(getattr(train, name))), name
    assert math.isnan(train.low_level)
    np.testing.assert_array_equal(train.net_integral, train.phase1_integral)
    assert train.rms == pytest.approx(A * math.sqrt(T * F), rel=5e-3)


def test_amplitude_ramp_is_followed_pulse_by_pulse() -> None:
    # A ramp-up: 8 pulses from 45 % to 100 % amplitude (each rendered as a one-pulse train).
    scale = np.linspace(0.45, 1.0, 8)
    n = round(DURATION / DT)
    values = np.zeros(n)
    for k, a in enumerate(scale):
        one = spec(first_edge_s=FIRST + k / F, amplitude=a * A, n_pulses=1)
        values += render(one, n, DT)
    codes = np.clip(np.rint(values / GAIN + 127.3 + np.random.default_rng(3).normal(0, 1, n)), 0, 255)
    train = analyse_pulse_train(codes.astype(np.uint8), DT, gain=GAIN, offset=-127.3 * GAIN)
    assert train.n_pulses == 8
    np.testing.assert_allclose(train.phase1_amplitude, scale * A, rtol=0, atol=LEVEL_TOL)
    # Each pulse's 50 % level is its own, so the smaller pulses' timing is as good (their edges
    # climb less steeply: 2.5 codes/sample at 45 %, ~0.4 sample of jitter).
    np.testing.assert_allclose(train.phase1_duration_s, T, rtol=0, atol=2 * INSTANT_TOL)
    np.testing.assert_allclose(train.phase1_integral, scale * A * T, rtol=2 * CHARGE_REL)


@pytest.mark.parametrize("kind", ["uint16", "int8", "float32", "float64", "inverted"])
def test_sample_types_and_inverted_scaling_agree(kind: str, symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    cap, ref = symmetric
    codes, gain, offset = cap.codes, cap.gain, cap.offset
    if kind == "uint16":  # WORD format: 8-bit codes in the high byte
        codes, gain = codes.astype(np.uint16) << 8, gain / 256
    elif kind == "int8":  # signed codes
        codes, offset = (codes.astype(np.int16) - 128).astype(np.int8), offset + 128 * gain
    elif kind == "inverted":  # probe inverted: physical = (255 - codes') * g + o
        codes, gain, offset = 255 - codes, -gain, offset + 255 * gain
    else:
        codes = codes.astype(kind)
    train = analyse_pulse_train(codes, DT, gain=gain, offset=offset)
    # Integer codes give the same histograms whatever their width or sign. Floats have no code size,
    # so their histograms are binned differently; the levels still converge to the same biweight
    # centres, within ~0.002 code: ~1e-3 sample in an instant, a few 1e-5 in an amplitude or integral.
    exact = kind in ("uint16", "int8", "inverted")
    atol_s, rtol = (1e-12, 1e-9) if exact else (2e-10, 5e-5)
    assert train.n_pulses == ref.n_pulses
    for name in ("start_s", "phase1_duration_s", "gap_s", "phase2_duration_s"):
        np.testing.assert_allclose(getattr(train, name), getattr(ref, name), rtol=0, atol=atol_s, err_msg=name)
    # The edge is 10x flatter at 90 % than at 50 %: the same level shift moves that instant 10x more.
    np.testing.assert_allclose(train.rise_time_s, ref.rise_time_s, rtol=0, atol=10 * atol_s)
    for name in ("phase1_integral", "phase2_integral", "square_integral"):
        np.testing.assert_allclose(getattr(train, name), getattr(ref, name), rtol=rtol, err_msg=name)
    np.testing.assert_allclose(train.phase1_amplitude, ref.phase1_amplitude, rtol=rtol)
    np.testing.assert_allclose(train.overshoot, ref.overshoot, rtol=0, atol=10 * rtol)
    assert train.baseline == pytest.approx(ref.baseline, abs=rtol * A)
    assert train.rms == pytest.approx(ref.rms, rel=rtol)


def test_t0_shifts_every_instant(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    cap, ref = symmetric
    train = analyse_pulse_train(cap.codes, DT, t0_s=-0.05, gain=GAIN, offset=cap.offset)
    np.testing.assert_allclose(train.start_s, ref.start_s - 0.05, rtol=0, atol=1e-12)
    np.testing.assert_allclose(train.phase1_duration_s, ref.phase1_duration_s, rtol=0, atol=1e-15)


def test_reference_state_levels_agree(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    cap, train = symmetric
    levels = state_levels(cap.codes, gain=GAIN, offset=cap.offset)
    # Same estimator, full histogram vs subsample / plateau samples: within a few hundredths of a code.
    assert levels.baseline == pytest.approx(train.baseline, abs=0.05 * GAIN)
    assert levels.high == pytest.approx(train.high_level, abs=0.1 * GAIN)
    assert levels.low == pytest.approx(train.low_level, abs=0.1 * GAIN)
    assert levels.noise_rms == pytest.approx(train.noise_rms, rel=0.05)
    flipped = state_levels(255 - cap.codes, gain=-GAIN, offset=cap.offset + 255 * GAIN)
    assert flipped.high == pytest.approx(levels.high, abs=1e-9)


def test_crossing_times_interpolates_linearly() -> None:
    x = np.array([0.0, 0.0, 4.0, 8.0, 8.0, 2.0, 0.0])
    times, rising = crossing_times(x, 3.0, 0.5, t0_s=10.0)
    np.testing.assert_allclose(times, [10.0 + 0.5 * (1 + 3 / 4), 10.0 + 0.5 * (4 + 5 / 6)])
    np.testing.assert_array_equal(rising, [True, False])


def test_result_is_read_only_and_consistent(symmetric: tuple[SynthCapture, PulseTrain]) -> None:
    _, train = symmetric
    with pytest.raises(ValueError):
        train.start_s[0] = 0.0
    with pytest.raises(AttributeError):
        train.rms = 0.0  # type: ignore[misc]
    assert train.start_s.dtype == np.float64
