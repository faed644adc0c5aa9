"""Every way analyse_pulse_train refuses a record: an AnalysisError saying what was wrong and what
was expected, never a silently empty or made-up measurement."""

from __future__ import annotations

import numpy as np
import pytest

from rig.analysis import analyse_pulse_train, state_levels
from rig.analysis.synthetic import TrainSpec, synth_capture
from rig.errors import AnalysisError, StimrigError

DT = 1e-6


def codes(amplitude_codes: float, noise_codes: float, **kw: object) -> np.ndarray:
    opts: dict[str, object] = dict(frequency_Hz=100.0, phase1_s=200e-6, amplitude=amplitude_codes, gap_s=50e-6,
                                   first_edge_s=1e-3, tau_s=0.5e-6)
    opts.update(kw)
    cap = synth_capture(TrainSpec(**opts), duration_s=0.05, dt_s=DT, gain=1.0,  # type: ignore[arg-type]
                        noise_codes=noise_codes, seed=11)
    return cap.codes


def test_analysis_error_is_a_stimrig_error() -> None:
    assert issubclass(AnalysisError, StimrigError)


@pytest.mark.parametrize(
    ("samples", "dt_s", "match"),
    [
        (np.array([], dtype=np.uint8), DT, "empty"),
        (np.zeros(1000, dtype=np.uint8), 0.0, "dt_s"),
        (np.zeros(1000, dtype=np.uint8), -1e-6, "dt_s"),
        (np.zeros(1000, dtype=np.uint8), float("nan"), "dt_s"),
        (np.zeros((10, 100), dtype=np.uint8), DT, "1-D"),
        (np.array(["a", "b"] * 10), DT, "dtype"),
        (np.zeros(4, dtype=np.uint8), DT, "at least"),
    ],
)
def test_bad_input_is_refused(samples: np.ndarray, dt_s: float, match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        analyse_pulse_train(samples, dt_s)


def test_non_finite_samples_are_refused() -> None:
    x = codes(100, 1.0).astype(np.float64)
    x[1234] = np.nan
    with pytest.raises(AnalysisError, match="NaN"):
        analyse_pulse_train(x, DT)


def test_zero_gain_is_refused() -> None:
    with pytest.raises(AnalysisError, match="gain"):
        analyse_pulse_train(codes(100, 1.0), DT, gain=0.0)


def test_noise_only_record_has_no_pulse() -> None:
    noise = np.clip(np.rint(128 + np.random.default_rng(1).normal(0, 1.5, 200_000)), 0, 255).astype(np.uint8)
    with pytest.raises(AnalysisError, match=r"no pulse clearly above the noise.*expected a positive phase"):
        analyse_pulse_train(noise, DT)


def test_amplitude_below_eight_codes_is_refused() -> None:
    # 6 codes with 0.5 code noise is 12x the noise but fewer than 8 codes.
    with pytest.raises(AnalysisError, match="8 codes"):
        analyse_pulse_train(codes(6, 0.5), DT)


def test_amplitude_below_ten_times_noise_is_refused() -> None:
    # 15 codes with 2 codes rms noise: 7.5x the noise.
    with pytest.raises(AnalysisError, match="10 x noise"):
        analyse_pulse_train(codes(15, 2.0), DT)


def test_small_but_clear_pulses_are_accepted() -> None:
    # 30 codes with 1 code noise: 30x the noise; 5 pulses in 50 ms.
    train = analyse_pulse_train(codes(30, 1.0), DT)
    assert train.n_pulses == 5
    np.testing.assert_allclose(train.phase1_duration_s, 200e-6, atol=0.1e-6 * 5)


def test_record_without_a_complete_pulse() -> None:
    # The record starts inside phase 1 of the only pulse it shows.
    x = codes(100, 1.0, first_edge_s=-100e-6, n_pulses=1)
    with pytest.raises(AnalysisError, match=r"no complete pulse.*expected at least one whole pulse"):
        analyse_pulse_train(x, DT)


def test_record_ending_inside_phase_2_of_the_only_pulse() -> None:
    x = codes(100, 1.0, n_pulses=1)[: round((1e-3 + 200e-6 + 50e-6 + 100e-6) / DT)]
    with pytest.raises(AnalysisError, match="no complete pulse"):
        analyse_pulse_train(x, DT)


@pytest.mark.parametrize(("phase1", "phase2", "phase"), [(140.0, 100.0, "positive"), (100.0, 140.0, "negative")])
def test_clipped_phase_is_refused(phase1: float, phase2: float, phase: str) -> None:
    # Baseline at code 127.3: 140 codes up runs into code 255, 140 codes down into code 0.
    with pytest.raises(AnalysisError, match=f"the {phase} phase is clipped.*expected the whole waveform"):
        analyse_pulse_train(codes(phase1, 1.0, phase2_amplitude=phase2), DT)


def test_state_levels_refuses_bad_input() -> None:
    with pytest.raises(AnalysisError):
        state_levels(np.array([], dtype=np.uint8))
    with pytest.raises(AnalysisError):
        state_levels(np.arange(10), gain=0.0)
