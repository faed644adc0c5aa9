"""Output accuracy of every program on every channel into 500 ohm, against the device's tolerances.

Each value is measured from scope captures (IEEE Std 181 pulse analysis) and judged against the
device fixture's tolerance, whose source the measurement names.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.measurements import Measurement


@pytest.mark.requirement("OUT-FREQUENCY")
def test_pulse_frequency(program, channel, steady_state, device_model, measure):
    tol = device_model.tolerances
    nominal = program.frequency_Hz
    m = Measurement.around(
        "pulse_frequency", "Hz", nominal, tol.frequency_band_Hz(nominal),
        source=device_model.source_of("tolerances.frequency_pct"),
    )
    train = steady_state.train_analysis
    measure(m, train.frequency_Hz, pulses=train.n_pulses, program=program.id, channel=channel)


@pytest.mark.requirement("OUT-PHASE-DURATION")
def test_phase_durations(program, channel, steady_state, device_model, measure):
    tol = device_model.tolerances
    src = device_model.source_of("tolerances.phase_duration_pct")
    pulse = steady_state.pulse_analysis
    for name, nominal_us, measured_s in (
        ("phase1_duration", program.phase_duration_us, pulse.phase1_duration_s),
        ("interphase_gap", program.interphase_gap_us, pulse.gap_s),
        ("phase2_duration", program.phase2_us, pulse.phase2_duration_s),
    ):
        m = Measurement.around(name, "us", nominal_us, tol.phase_band_us(nominal_us), source=src)
        measure(m, float(measured_s[0]) * 1e6, program=program.id, channel=channel)


@pytest.mark.requirement("OUT-AMPLITUDE")
def test_amplitude_accuracy(program, channel, steady_state, device_model, measure):
    """Every pulse of the steady-state train, both phases, within the amplitude tolerance."""
    tol = device_model.tolerances
    src = device_model.source_of("tolerances.amplitude_pct")
    train = steady_state.train_analysis
    nominal1 = steady_state.amplitude_mA
    nominal2 = nominal1 * program.phase2_amplitude_ratio
    for name, nominal, per_pulse in (
        ("phase1_amplitude", nominal1, train.phase1_amplitude),
        ("phase2_amplitude", nominal2, train.phase2_amplitude),
    ):
        m = Measurement.around(name, "mA", nominal, tol.amplitude_band_mA(nominal), source=src)
        amps_mA = [steady_state.to_mA(v) for v in per_pulse]
        worst = max(amps_mA, key=lambda a: abs(a - nominal)) if amps_mA else float("nan")
        measure(m, worst, pulses=len(amps_mA), mean_mA=float(np.mean(amps_mA)) if amps_mA else None)


@pytest.mark.requirement("OUT-NET-CHARGE")
def test_net_charge_per_pulse(program, channel, steady_state, device_model, measure):
    limit = device_model.tolerances.max_net_charge_uC
    m = Measurement(
        "net_charge_per_pulse", "uC", low=-limit, high=limit, nominal=0.0,
        source=device_model.source_of("tolerances.max_net_charge_uC"),
    )
    charges = [steady_state.to_uC(q) for q in steady_state.train_analysis.net_integral]
    worst = max(charges, key=abs) if charges else float("nan")
    phase1 = float(np.mean([steady_state.to_uC(q) for q in steady_state.train_analysis.phase1_integral]))
    measure(m, worst, pulses=len(charges), phase1_charge_uC=phase1)
