"""rig.output_spec (the FDA 510(k) output specification table) on synthetic captures with known answers.

Records are rig.analysis.synthetic pulse trains (ideal edges through a first-order response, 8-bit codes,
1 code rms noise) standing for the voltage across a resistive load, in volts. With phase 1 at 100 codes
the plateau level is good to ~0.5 % and integrals to ~0.2 % (tests/unit/test_analysis.py); the tolerances
below are a few times that.

Device: the CS-4 fixture (compliance 120 V, amplitude tolerance 10 % / 1 mA, smallest electrode 16 cm^2).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from rig.analysis.synthetic import RISE_PER_TAU, TrainSpec, quantise, render, synth_capture
from rig.config import DeviceModel, Program, load_device
from rig.config.loader import FIXTURES_DIR
from rig.output_spec import (
    LoadRecord,
    OutputSpecification,
    flat_top_fraction,
    max_on_fraction,
    output_specification,
    peak_excursion_V,
    pulse_groups,
    rms_current,
    rms_limit_mA,
    shape,
)

TAU = 2e-6 / RISE_PER_TAU  # 2 us 10-90 % rise, as the CS-4 output stage
F = 100.0
T1 = 200e-6
GAP = 50e-6
AREA = 16.0  # cm^2, cs4.yaml electrode.min_area_cm2
REL = 0.01


@pytest.fixture(scope="module")
def cs4() -> DeviceModel:
    return load_device(FIXTURES_DIR / "devices" / "cs4.yaml")


def program(**kw: Any) -> Program:
    base: dict[str, Any] = dict(schema="stimrig.program/1", id="synthetic", name="synthetic", category="tens",
                                waveform="symmetric", frequency_Hz=F, phase_duration_us=T1 * 1e6,
                                interphase_gap_us=GAP * 1e6, amplitude_mA=20, ramp_up_s=0, ramp_down_s=0,
                                duration_s=60, source="unit test")
    base.update(kw)
    return Program.model_validate(base)


def record(load_ohm: float, amplitude_V: float, *, single: bool, seed: int = 1, **spec_kw: Any) -> LoadRecord:
    """A single pulse (10 ns sampling, 1 pulse) or a train (1 us sampling, 0.1 s) across ``load_ohm``;
    ``amplitude_V`` is phase 1's plateau, 100 codes."""
    spec = TrainSpec(frequency_Hz=spec_kw.pop("frequency_Hz", F), phase1_s=spec_kw.pop("phase1_s", T1),
                     amplitude=amplitude_V, gap_s=spec_kw.pop("gap_s", GAP), first_edge_s=0.1e-3 + 1.234e-9,
                     tau_s=spec_kw.pop("tau_s", TAU), n_pulses=1 if single else None, **spec_kw)
    width = spec.phase1_s + spec.gap_s + spec.t2_s
    duration, dt = (width + 0.3e-3, 10e-9) if single else (0.1, 1e-6)
    cap = synth_capture(spec, duration_s=duration, dt_s=dt, gain=amplitude_V / 100.0, noise_codes=1.0, seed=seed)
    return LoadRecord.of_samples(cap.codes, cap.dt_s, load_ohm, t0_s=cap.t0_s, gain=cap.gain, offset=cap.offset)


def table(device: DeviceModel, prog: Program, *, set_mA: float, compliance_V: float = 120.0,
          phase2_ratio: float | None = None, **spec_kw: Any) -> OutputSpecification:
    """The row from the three single pulses and the train that a constant-current stage set to ``set_mA``
    drives into each load: each phase's voltage is I x R, clipped at the compliance voltage. Phase 2's
    current is ``phase2_ratio`` x phase 1's (default: charge-balanced, t1 / t2)."""
    t1 = spec_kw.get("phase1_s", T1)
    t2 = spec_kw.get("phase2_s", t1)
    ratio = (t1 / t2 if t2 else 0.0) if phase2_ratio is None else phase2_ratio

    def rec(load_ohm: float, single: bool, seed: int) -> LoadRecord:
        v1 = min(set_mA * load_ohm / 1000.0, compliance_V)
        v2 = min(ratio * set_mA * load_ohm / 1000.0, compliance_V)
        return record(load_ohm, v1, single=single, seed=seed, phase2_amplitude=v2 if t2 else None, **spec_kw)

    pulses = [rec(r, True, i) for i, r in enumerate((500.0, 2000.0, 10000.0))]
    return output_specification(program=prog, device=device, set_amplitude_mA=set_mA, pulses=pulses,
                                train=rec(500.0, False, 9))


@pytest.fixture(scope="module")
def symmetric(cs4: DeviceModel) -> OutputSpecification:
    return table(cs4, program(), set_mA=100.0)


# ---- symmetric biphasic, 100 mA: every field against its closed form ----------------------------------
def test_symmetric_waveform_shape_and_timing(symmetric: OutputSpecification) -> None:
    s = symmetric
    assert s.waveform == "pulsed biphasic"
    assert s.shape == "rectangular" and s.flat_top_fraction > 0.95
    assert s.symmetrical_phases
    assert s.phase1_duration_us == pytest.approx(200.0, abs=0.2)
    assert s.interphase_gap_us == pytest.approx(50.0, abs=0.2)
    assert s.phase2_duration_us == pytest.approx(200.0, abs=0.2)
    assert s.pulse_width_us == pytest.approx(450.0, abs=0.5)
    assert s.frequency_Hz == pytest.approx(F, rel=1e-5)


def test_symmetric_charge_energy_rms_and_densities(symmetric: OutputSpecification) -> None:
    s = symmetric
    # 100 mA x 200 us = 20 uC per phase, balanced.
    assert s.max_phase_charge_uC_500ohm == pytest.approx(20.0, rel=REL)
    assert abs(s.net_charge_uC_500ohm) < 0.1
    assert "charge-balanced" in s.net_charge_zero_by
    # (100 mA)^2 x 500 ohm x 400 us = 2 mJ; I_rms = 100 mA x sqrt(400 us x 100 Hz) = 20 mA.
    assert s.energy_per_pulse_mJ_500ohm == pytest.approx(2.0, rel=REL)
    assert s.rms.samples_mA == pytest.approx(20.0, rel=REL)
    assert s.rms.phases_mA == pytest.approx(20.0, rel=REL)
    assert s.rms.peak_formula_mA == pytest.approx(20.0, rel=REL)
    assert abs(s.rms.crosscheck_pct) < 1.0
    assert s.rms.periods == 9
    assert s.rms_limit_mA == 50.0
    # 2 mJ x 100 Hz = 0.2 W, continuous: over 16 cm^2 0.0125 W/cm^2; 20 mA / 16 cm^2 = 1.25 mA/cm^2.
    assert s.max_on_fraction_1s == 1.0
    assert s.average_power_W_500ohm == pytest.approx(0.2, rel=REL)
    assert s.power_density_W_per_cm2 == pytest.approx(0.2 / AREA, rel=REL)
    assert s.current_density_mA_per_cm2 == pytest.approx(20.0 / AREA, rel=REL)
    assert not s.current_density_above_warning and not s.power_density_above_guidance


def test_symmetric_burst_and_on_off(symmetric: OutputSpecification) -> None:
    assert symmetric.burst is None and "evenly spaced" in symmetric.burst_source
    assert symmetric.on_time_s is None and symmetric.off_time_s is None
    assert "no ON/OFF" in symmetric.on_off_source


# ---- loads: the constant-current stage saturates at its compliance voltage -----------------------------
def test_saturating_2k_and_10k(symmetric: OutputSpecification) -> None:
    """100 mA set, 120 V compliance: 50 V / 100 mA into 500 ohm; 120 V / 60 mA into 2 k; 120 V / 12 mA into 10 k."""
    expected = {500.0: (100.0, 50.0, False), 2000.0: (60.0, 120.0, True), 10000.0: (12.0, 120.0, True)}
    for load, (i_mA, v_V, limited) in expected.items():
        out = symmetric.output_at(load)
        assert out.expected_current_mA == pytest.approx(i_mA)
        assert out.expected_voltage_V == pytest.approx(v_V)
        assert out.compliance_limited is limited
        assert out.current_mA == pytest.approx(i_mA, rel=REL)
        assert out.voltage_V == pytest.approx(v_V, rel=REL)
        assert out.tolerance_pct == pytest.approx(10.0)  # 10 % beats the 1 mA floor even at 12 mA
        assert out.peak_voltage_V >= out.voltage_V


def test_tolerance_floor_applies_at_low_current(cs4: DeviceModel) -> None:
    """At 5 mA set the 1 mA floor is the larger term: +/-20 %."""
    s = table(cs4, program(), set_mA=5.0)
    assert s.output_at(500.0).tolerance_pct == pytest.approx(20.0)
    assert s.output_at(10000.0).compliance_limited is False  # 5 mA x 10 k = 50 V, under 120 V


# ---- monophasic and asymmetric ---------------------------------------------------------------------------
def test_monophasic(cs4: DeviceModel) -> None:
    """Phase 1 only: 60 mA x 200 us = 12 uC net charge; I_rms = 60 mA x sqrt(200 us x 100 Hz)."""
    s = table(cs4, program(), set_mA=60.0, phase2_s=0.0)
    assert s.waveform == "pulsed monophasic"
    assert not s.symmetrical_phases
    assert math.isnan(s.phase2_duration_us) and math.isnan(s.interphase_gap_us)
    assert s.pulse_width_us == pytest.approx(200.0, abs=0.2)
    assert s.net_charge_uC_500ohm == pytest.approx(12.0, rel=REL)
    assert s.max_phase_charge_uC_500ohm == pytest.approx(12.0, rel=REL)
    assert s.net_charge_zero_by.startswith("n/a")
    assert s.energy_per_pulse_mJ_500ohm == pytest.approx(0.06**2 * 500 * 200e-6 * 1e3, rel=REL)
    assert s.rms.samples_mA == pytest.approx(60.0 * math.sqrt(200e-6 * F), rel=REL)
    row = s.row()
    assert row["phase2_duration_us"] == "n/a" and row["symmetrical_phases"] == "no"


def test_asymmetric_balanced(cs4: DeviceModel) -> None:
    """Phase 2 four times longer at a quarter of the amplitude: balanced, not symmetrical. The r.m.s.
    current is sqrt(f (I1^2 t1 + I2^2 t2)) = 100 mA x sqrt(100 Hz x (200 us + 800 us / 16)) = 15.8 mA;
    I_peak x sqrt(total phase duration x f) = 31.6 mA overestimates it (an upper bound)."""
    s = table(cs4, program(), set_mA=100.0, phase2_s=800e-6)
    assert s.waveform == "pulsed biphasic" and not s.symmetrical_phases
    assert s.phase2_duration_us == pytest.approx(800.0, abs=0.5)
    assert abs(s.net_charge_uC_500ohm) < 0.1
    assert s.max_phase_charge_uC_500ohm == pytest.approx(20.0, rel=REL)
    exact = 100.0 * math.sqrt(F * (200e-6 + 800e-6 / 16.0))
    assert s.rms.samples_mA == pytest.approx(exact, rel=REL)
    assert s.rms.phases_mA == pytest.approx(exact, rel=REL)
    assert s.rms.peak_formula_mA == pytest.approx(100.0 * math.sqrt(F * 1000e-6), rel=REL)
    assert s.current_density_peak_formula_mA_per_cm2 > s.current_density_mA_per_cm2
    # 10 k: both phases hit the rail (120 V = 12 mA), so there the pulse is no longer balanced:
    # 12 mA x 200 us - 12 mA x 800 us = -7.2 uC.
    at_10k = s.output_at(10000.0)
    assert at_10k.current_mA == pytest.approx(12.0, rel=REL)
    assert at_10k.net_charge_uC == pytest.approx(-7.2, rel=0.02)
    assert s.row()["net_charge_uC_10000ohm"] == pytest.approx(-7.2, rel=0.02)


def test_unbalanced_net_charge(cs4: DeviceModel) -> None:
    """Phase 2 20 % short at the same amplitude (the charge_imbalance defect): 0.2 x 20 uC = 4 uC net."""
    s = table(cs4, program(), set_mA=100.0, phase2_s=160e-6, phase2_ratio=1.0)
    assert s.net_charge_uC_500ohm == pytest.approx(4.0, rel=0.02)
    assert s.net_charge_zero_by.startswith("n/a")


# ---- shape ------------------------------------------------------------------------------------------------
def test_slow_edges_are_not_rectangular() -> None:
    """A time constant of a third of the phase never lets the pulse settle onto a flat top (a long record,
    mostly baseline, so that the histogram still finds the baseline among the slow edges)."""
    spec = TrainSpec(frequency_Hz=F, phase1_s=T1, amplitude=50.0, gap_s=GAP, first_edge_s=1e-3, tau_s=T1 / 3.0,
                     n_pulses=1)
    cap = synth_capture(spec, duration_s=4e-3, dt_s=40e-9, gain=0.5, noise_codes=1.0, seed=2)
    rec = LoadRecord.of_samples(cap.codes, cap.dt_s, 500.0, gain=cap.gain, offset=cap.offset)
    flat = flat_top_fraction(rec)
    assert flat < 0.8
    assert shape(flat).startswith("not rectangular")
    assert shape(0.99) == "rectangular"


# ---- limits, duty, groups ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("f", "limit"), [(2.0, 50.0), (400.0, 50.0), (401.0, 80.0), (1500.0, 80.0), (1501.0, 100.0)])
def test_rms_limit_by_frequency(f: float, limit: float) -> None:
    assert rms_limit_mA(f) == limit


def test_max_on_fraction() -> None:
    cyc = program(cycle={"on_s": 10, "off_s": 20}).cycle
    assert max_on_fraction(None) == 1.0
    assert max_on_fraction(cyc) == 1.0  # a 1 s window fits in the 10 s ON period
    short = program(cycle={"on_s": 0.3, "off_s": 0.4}).cycle  # 0.3 ON + 0.4 OFF + 0.3 ON
    assert max_on_fraction(short) == pytest.approx(0.6)
    fast = program(cycle={"on_s": 0.2, "off_s": 0.3}).cycle  # two whole 0.5 s cycles
    assert max_on_fraction(fast) == pytest.approx(0.4)


def test_pulse_groups() -> None:
    assert pulse_groups(np.arange(10) / F, 450e-6) is None
    bursts = (np.arange(5)[None, :] / F + np.arange(4)[:, None] * 0.2).ravel()  # 5 pulses every 0.2 s
    g = pulse_groups(bursts, 450e-6)
    assert g is not None
    assert (g.groups, g.pulses_per_group) == (4, 5)
    assert g.group_period_s == pytest.approx(0.2) and g.groups_per_s == pytest.approx(5.0)
    assert g.group_duration_s == pytest.approx(0.04045)
    assert g.duty_cycle == pytest.approx(0.04045 / 0.2)
    assert g.off_s == pytest.approx(0.2 - 0.04045)


def bursting_train(program_: Program, amplitude_V: float) -> LoadRecord:
    """Bursts of 4 pulses at 100 Hz every 50 ms over 0.2 s, from the (linear) sum of four renders."""
    dt, n = 1e-6, 200_000
    x = np.zeros(n)
    for b in range(4):
        spec = TrainSpec(frequency_Hz=F, phase1_s=T1, amplitude=amplitude_V, gap_s=GAP, tau_s=TAU, n_pulses=4,
                         first_edge_s=1e-3 + 0.05 * b)
        x += render(spec, n, dt)
    gain = amplitude_V / 100.0
    offset = -127.3 * gain
    codes = quantise(x, gain=gain, offset=offset, noise_codes=1.0, seed=5)
    return LoadRecord.of_samples(codes, dt, 500.0, gain=gain, offset=offset)


def test_bursts_in_the_capture_are_reported(cs4: DeviceModel) -> None:
    """The program fixture declares a continuous train; a capture in bursts says so with what it measured."""
    prog = program()
    pulses = [record(r, min(0.1 * r, 120.0), single=True) for r in (500.0, 2000.0, 10000.0)]
    s = output_specification(program=prog, device=cs4, set_amplitude_mA=100.0, pulses=pulses,
                             train=bursting_train(prog, 50.0))
    assert s.burst is not None and s.burst.pulses_per_group == 4
    assert s.burst.groups_per_s == pytest.approx(20.0, rel=1e-3)
    assert "does not declare" in s.burst_source
    assert s.row()["burst_mode"] == "burst"


def test_on_off_from_fixture_unless_the_record_covers_a_cycle(cs4: DeviceModel) -> None:
    long_cycle = table(cs4, program(cycle={"on_s": 10, "off_s": 20}), set_mA=100.0)
    assert (long_cycle.on_time_s, long_cycle.off_time_s) == (10.0, 20.0)
    assert long_cycle.on_off_source.startswith("from program fixture")
    assert long_cycle.max_on_fraction_1s == 1.0
    # ON 40 ms / OFF 10 ms: the 0.2 s record covers it; the capture's ON is 3 x 10 ms + one pulse (no ramps).
    prog = program(cycle={"on_s": 0.04, "off_s": 0.01})
    pulses = [record(r, min(0.1 * r, 120.0), single=True) for r in (500.0, 2000.0, 10000.0)]
    s = output_specification(program=prog, device=cs4, set_amplitude_mA=100.0, pulses=pulses,
                             train=bursting_train(prog, 50.0))
    assert (s.on_time_s, s.off_time_s) == (0.04, 0.01)
    assert "capture: ON 0.0305 s" in s.on_off_source
    # Every 1 s window holds 20 x 40 ms ON: 80 % duty, and the power density scales with it.
    assert s.max_on_fraction_1s == pytest.approx(0.8)
    assert s.average_power_W_500ohm == pytest.approx(1e-3 * s.energy_per_pulse_mJ_500ohm * s.frequency_Hz * 0.8)


# ---- the flat row --------------------------------------------------------------------------------------------
def test_row_is_flat_json_with_units_in_keys(symmetric: OutputSpecification) -> None:
    row = symmetric.row()
    json.dumps(row)  # plain types only
    assert all(isinstance(v, str | int | float | bool) for v in row.values())
    for key in ("max_current_mA_500ohm", "max_current_mA_2000ohm", "max_current_mA_10000ohm",
                "max_voltage_V_10000ohm", "max_current_tolerance_pct_500ohm", "net_charge_uC_500ohm",
                "max_phase_charge_uC_500ohm", "rms_current_mA_500ohm", "energy_per_pulse_mJ_500ohm",
                "max_current_density_mA_per_cm2", "max_power_density_W_per_cm2", "pulse_width_us", "frequency_Hz",
                "phase1_duration_us", "phase2_duration_us", "on_time_s", "off_time_s"):
        assert key in row, key
    assert row["max_current_mA_10000ohm"] == pytest.approx(12.0, rel=REL)
    assert row["current_density_above_2mA_per_cm2"] is False
    assert row["power_density_above_0p25W_per_cm2"] is False
    assert row["burst_mode"] == "none" and row["symmetrical_phases"] == "yes"
    assert "program" not in row and "mode" not in row


def test_current_density_flag_above_2mA_per_cm2(cs4: DeviceModel) -> None:
    """100 mA at 500 Hz, 400 us phases: I_rms = 100 x sqrt(800 us x 500 Hz) = 63 mA: 4 mA/cm^2 (flagged),
    and 80 mA is the r.m.s. limit above 400 Hz."""
    prog = program(frequency_Hz=500, phase_duration_us=400, interphase_gap_us=50)
    s = table(cs4, prog, set_mA=100.0, frequency_Hz=500.0, phase1_s=400e-6)
    assert s.current_density_mA_per_cm2 == pytest.approx(100.0 * math.sqrt(800e-6 * 500) / AREA, rel=REL)
    assert s.current_density_above_warning and s.row()["current_density_above_2mA_per_cm2"] is True
    assert s.rms_limit_mA == 80.0


def test_needs_the_500_ohm_records(cs4: DeviceModel) -> None:
    rec = record(2000.0, 120.0, single=True)
    with pytest.raises(ValueError, match="500 ohm"):
        output_specification(program=program(), device=cs4, set_amplitude_mA=100.0, pulses=[rec],
                             train=record(500.0, 50.0, single=False))
    with pytest.raises(ValueError, match="two complete pulses"):
        rms_current(record(500.0, 50.0, single=True))


def test_peak_excursion() -> None:
    v = np.array([1.0, 1.0, 1.0, 121.0, 1.0, -50.0, 1.0])
    assert peak_excursion_V(v) == pytest.approx(120.0)
    assert peak_excursion_V(v, baseline=0.0) == pytest.approx(121.0)
    assert math.isnan(peak_excursion_V(np.array([])))
