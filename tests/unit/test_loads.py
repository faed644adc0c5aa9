"""Load models against circuit theory: resistors, open, short and the electrode-skin R + R||C model.

The R||C model is checked against closed-form solutions (charging, discharging, both compliance
regimes with the switching instant inside a sample interval), against itself (continuation,
resampling, block vs scalar solver) and for charge balance. The compliance is the CS-4's 120 V.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

import simulator.loads as loads_mod
from rig.errors import FixtureError
from simulator.loads import (
    OPEN,
    SHORT,
    ElectrodeSkin,
    Load,
    Resistive,
    as_load,
    load_catalogue,
    render,
)

VC = 120.0  # CS-4 output.compliance_voltage_V
RS, RP, C = 400.0, 5000.0, 100e-9  # the catalogue's SKIN model
TAU = RP * C  # 0.5 ms while regulating
TAU_RAIL = RS * RP / (RS + RP) * C  # 37 us on a rail
SKIN = ElectrodeSkin(RS, RP, C)


def step_mA(n: int, amplitude_mA: float, k_on: int = 0, k_off: int | None = None) -> np.ndarray:
    i = np.zeros(n)
    i[k_on : n if k_off is None else k_off] = amplitude_mA
    return i


# ---- resistive -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ohm", "expected_mA", "expected_V"),
    [(500.0, 100.0, 50.0), (2000.0, 60.0, 120.0), (10_000.0, 12.0, 120.0)],
    ids=["500R", "2k", "10k"],
)
def test_resistor_saturates_at_the_compliance_voltage(ohm: float, expected_mA: float, expected_V: float) -> None:
    i = np.array([0.0, 100.0, 100.0, -100.0, 0.0])
    r = Resistive(ohm).render(i, 1e-6, VC)
    np.testing.assert_allclose(r.current_mA, [0, expected_mA, expected_mA, -expected_mA, 0], rtol=1e-12)
    np.testing.assert_allclose(r.voltage_V, [0, expected_V, expected_V, -expected_V, 0], rtol=1e-12)
    assert r.clipped.tolist() == [False] + [ohm > 1200] * 3 + [False]
    assert Resistive(ohm).sensed_impedance_ohm == ohm
    np.testing.assert_array_equal(Resistive(ohm).render_voltage_V(i, 1e-6, VC), r.voltage_V)


def test_open_circuit_sits_on_the_rail_while_current_is_commanded() -> None:
    i = np.array([0.0, 0.5, 25.0, -25.0, -0.5, 0.0])
    r = OPEN.render(i, 1e-6, VC)
    np.testing.assert_array_equal(r.voltage_V, [0, VC, VC, -VC, -VC, 0])
    np.testing.assert_array_equal(r.current_mA, 0.0)
    assert OPEN.sensed_impedance_ohm == math.inf
    assert OPEN.memory_s == 0.0


def test_short_circuit_has_no_voltage_and_takes_the_set_point() -> None:
    i = np.array([0.0, 100.0, -100.0])
    r = SHORT.render(i, 1e-6, VC)
    np.testing.assert_array_equal(r.voltage_V, 0.0)
    np.testing.assert_array_equal(r.current_mA, i)
    assert SHORT.sensed_impedance_ohm == 0.0


def test_a_bare_number_is_a_resistor_and_models_satisfy_the_protocol() -> None:
    assert as_load(500) == Resistive(500.0)
    assert as_load(math.inf) == OPEN
    assert as_load(SKIN) is SKIN
    for model in (Resistive(500.0), OPEN, SHORT, SKIN):
        assert isinstance(model, Load)
    with pytest.raises(ValueError, match="0 <= ohm"):
        Resistive(-1.0)
    with pytest.raises(ValueError, match="parallel_F"):
        ElectrodeSkin(400, 5000, 0)


# ---- electrode-skin: linear regime -----------------------------------------------------------------


def test_charging_follows_the_analytic_step_response() -> None:
    dt, n, i_mA = 1e-6, 3000, 15.0  # 15 mA * 5.4 kohm = 81 V: never reaches the rail
    r = SKIN.render(step_mA(n, i_mA), dt, VC)
    t = np.arange(n) * dt
    i = i_mA / 1000.0
    np.testing.assert_allclose(r.voltage_V, i * RS + i * RP * -np.expm1(-t / TAU), rtol=1e-12, atol=1e-12)
    assert not r.clipped.any()
    # the 63.2 % point of the capacitor's rise is one time constant
    k = np.searchsorted(r.capacitor_V, i * RP * (1 - math.exp(-1)))
    assert abs(k * dt - TAU) <= dt


def test_discharging_follows_the_analytic_decay() -> None:
    dt, n, i_mA, k_off = 2e-6, 4000, 15.0, 1500
    r = SKIN.render(step_mA(n, i_mA, 0, k_off), dt, VC)
    v_off = r.capacitor_V[k_off]
    np.testing.assert_allclose(v_off, i_mA / 1000 * RP * -math.expm1(-k_off * dt / TAU), rtol=1e-12)
    t = (np.arange(k_off, n) - k_off) * dt
    np.testing.assert_allclose(r.voltage_V[k_off:], v_off * np.exp(-t / TAU), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(r.current_mA[k_off:], 0.0)


def test_plateau_impedance_is_what_v_over_i_shows_at_the_end_of_a_phase() -> None:
    dt, phase = 1e-6, 250e-6
    k = round(phase / dt)
    r = SKIN.render(step_mA(k + 1, 10.0), dt, VC)
    assert r.voltage_V[k] / 0.010 == pytest.approx(SKIN.plateau_impedance_ohm(phase), rel=1e-12)
    assert SKIN.sensed_impedance_ohm == RS + RP
    assert SKIN.plateau_impedance_ohm(100 * TAU) == pytest.approx(RS + RP)


def test_balanced_biphasic_pulse_brings_the_capacitor_back() -> None:
    dt, phase, i_mA = 1e-6, 200e-6, 20.0
    k = round(phase / dt)
    n = 2 * k + round(20 * TAU / dt)
    bi = np.zeros(n)
    bi[:k], bi[k : 2 * k] = i_mA, -i_mA
    mono = step_mA(n, i_mA, 0, k)
    rb, rm = SKIN.render(bi, dt, VC), SKIN.render(mono, dt, VC)
    assert bi.sum() == 0  # no net charge delivered
    x = math.exp(-phase / TAU)
    i = i_mA / 1000
    assert rm.capacitor_V[k] == pytest.approx(i * RP * (1 - x), rel=1e-12)
    assert rm.capacitor_V[2 * k] == pytest.approx(i * RP * (1 - x) * x, rel=1e-12)
    # phase 2 takes the capacitor back through zero to a small residual: -I*Rp*(1-x)^2
    assert rb.capacitor_V[2 * k] == pytest.approx(-i * RP * (1 - x) ** 2, rel=1e-12)
    assert abs(rb.capacitor_V[2 * k]) < 0.5 * rm.capacitor_V[2 * k]
    assert abs(rb.final_capacitor_V) < 1e-6 * i * RP  # and it is gone within the load's memory


def test_charge_balance_prevents_dc_build_up_in_a_fast_train() -> None:
    dt, period, phase, i_mA = 1e-6, 1e-3, 100e-6, 20.0  # 1 kHz: period = 2 tau
    n_per, k = round(period / dt), round(phase / dt)
    pulses = 40
    one_bi, one_mono = np.zeros(n_per), np.zeros(n_per)
    one_bi[:k], one_bi[k : 2 * k] = i_mA, -i_mA
    one_mono[:k] = i_mA
    vb = SKIN.render(np.tile(one_bi, pulses), dt, VC).capacitor_V[-10 * n_per :]
    vm = SKIN.render(np.tile(one_mono, pulses), dt, VC).capacitor_V[-10 * n_per :]
    i_mean = i_mA / 1000 * phase / period
    assert vm.mean() == pytest.approx(i_mean * RP, rel=0.01)  # monophasic: DC offset = mean current * Rp
    assert abs(vb.mean()) < 1e-3 * i_mA / 1000 * RP  # balanced: none


# ---- electrode-skin: compliance ---------------------------------------------------------------------


def test_clipping_switches_to_the_rail_at_the_analytic_instant_inside_a_sample() -> None:
    dt, i_mA = 7e-6, 50.0  # needs 20 V + up to 250 V: reaches the 120 V rail when vC = 100 V
    n = 400
    k_off = 100  # 700 us on, then off
    r = SKIN.render(step_mA(n, i_mA, 0, k_off), dt, VC)
    i = i_mA / 1000
    t1 = -TAU * math.log(1 - (VC - i * RS) / (i * RP))  # 255.4 us, between samples 36 and 37
    assert 36 * dt < t1 < 37 * dt
    vinf = VC * RP / (RS + RP)
    v_switch = VC - i * RS
    t = np.arange(n) * dt
    vc = np.where(t <= t1, i * RP * -np.expm1(-t / TAU), vinf + (v_switch - vinf) * np.exp(-(t - t1) / TAU_RAIL))
    on = t < k_off * dt
    np.testing.assert_allclose(r.capacitor_V[on], vc[on], rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(r.voltage_V[on & (t > t1)], VC)
    np.testing.assert_allclose(r.current_mA[on & (t > t1)], 1000 * (VC - vc[on & (t > t1)]) / RS, rtol=1e-10)
    assert r.clipped.tolist() == (on & (t > t1)).tolist()
    # the delivered current falls towards what the rail can push through Rs + Rp
    assert r.current_mA[k_off - 1] == pytest.approx(1000 * VC / (RS + RP), rel=1e-4)
    # off: the capacitor discharges through Rp from where the rail left it
    t_off = t[k_off:] - t[k_off]
    np.testing.assert_allclose(r.voltage_V[k_off:], r.capacitor_V[k_off] * np.exp(-t_off / TAU), rtol=1e-10)


def test_a_set_point_beyond_the_rail_through_rs_alone_is_clipped_from_the_first_sample() -> None:
    dt, n, i_mA = 1e-6, 300, 400.0  # 400 mA * 400 ohm = 160 V > 120 V
    r = SKIN.render(step_mA(n, i_mA), dt, VC)
    t = np.arange(n) * dt
    vc = VC * RP / (RS + RP) * -np.expm1(-t / TAU_RAIL)
    assert r.clipped.all()
    np.testing.assert_array_equal(r.voltage_V, VC)
    np.testing.assert_allclose(r.capacitor_V, vc, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(r.current_mA, 1000 * (VC - vc) / RS, rtol=1e-11)


def test_leaving_the_rail_inside_a_sample_matches_the_analytic_instant() -> None:
    """From a capacitor charged beyond the rail's equilibrium, the stage starts on the rail and regains
    regulation once vC has relaxed enough: (120 V - vC)/Rs reaches the set-point."""
    dt, n, i_mA, vc0 = 4e-6, 300, 15.0, 115.0
    i = i_mA / 1000
    vinf = VC * RP / (RS + RP)  # 111.1 V
    v_exit = VC - i * RS  # 114 V
    t_exit = TAU_RAIL * math.log((vc0 - vinf) / (v_exit - vinf))  # 11.0 us, between samples 2 and 3
    assert 2 * dt < t_exit < 3 * dt
    r = SKIN.render(step_mA(n, i_mA), dt, VC, capacitor_V=vc0)
    t = np.arange(n) * dt
    vc = np.where(t <= t_exit, vinf + (vc0 - vinf) * np.exp(-t / TAU_RAIL),
                  i * RP + (v_exit - i * RP) * np.exp(-(t - t_exit) / TAU))
    np.testing.assert_allclose(r.capacitor_V, vc, rtol=1e-11, atol=1e-10)
    assert r.clipped.tolist() == (t < t_exit).tolist()
    np.testing.assert_allclose(r.current_mA[t > t_exit], i_mA, rtol=1e-12)


def clipping_train(n_pulses: int, dt: float, amplitude_mA: float = 100.0, period: float = 10e-3) -> np.ndarray:
    n_per = round(period / dt)
    one = np.zeros(n_per)
    k, gap = round(250e-6 / dt), round(50e-6 / dt)
    one[:k] = amplitude_mA
    one[k + gap : 2 * k + gap] = -amplitude_mA
    return np.tile(one, n_pulses)


def test_negative_rail_mirrors_the_positive_one() -> None:
    i = clipping_train(3, 2e-6)
    rp, rn = SKIN.render(i, 2e-6, VC), SKIN.render(-i, 2e-6, VC)
    assert rp.clipped.any() and (rp.voltage_V == -VC).any()
    np.testing.assert_allclose(rn.voltage_V, -rp.voltage_V, atol=1e-12)
    np.testing.assert_array_equal(rn.clipped, rp.clipped)


def test_exact_solution_does_not_depend_on_the_sample_interval() -> None:
    """The same piecewise-constant current sampled 10x finer gives the same states at the coarse
    instants: the switching instants are solved inside the intervals, not snapped to samples."""
    coarse_dt = 10e-6
    i = clipping_train(2, coarse_dt, 60.0)
    coarse = SKIN.render(i, coarse_dt, VC)
    fine = SKIN.render(np.repeat(i, 10), coarse_dt / 10, VC)
    assert coarse.clipped.sum() > 5
    np.testing.assert_allclose(fine.capacitor_V[::10], coarse.capacitor_V, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fine.voltage_V[::10], coarse.voltage_V, rtol=1e-9, atol=1e-9)


def test_block_solver_and_scalar_stepper_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    i = clipping_train(4, 1e-6) * np.linspace(0.3, 1.2, 40_000)
    default = SKIN.render(i, 1e-6, VC)
    monkeypatch.setattr(loads_mod, "_SCALAR_RUN", 10**9)  # everything after the first change stepped
    scalar = SKIN.render(i, 1e-6, VC)
    monkeypatch.setattr(loads_mod, "_SCALAR_RUN", 1)  # blocks wherever possible
    blocks = SKIN.render(i, 1e-6, VC)
    assert default.clipped.any() and not default.clipped.all()
    for other in (scalar, blocks):
        np.testing.assert_allclose(other.voltage_V, default.voltage_V, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(other.clipped, default.clipped)


def test_render_continues_from_a_saved_state_and_forgets_it_within_memory_s() -> None:
    dt = 2e-6
    i = clipping_train(3, dt)
    whole = SKIN.render(i, dt, VC)
    cut = len(i) // 2 + 77
    first = SKIN.render(i[:cut], dt, VC)
    second = SKIN.render(i[cut:], dt, VC, capacitor_V=first.final_capacitor_V)
    np.testing.assert_allclose(np.concatenate([first.voltage_V, second.voltage_V]), whole.voltage_V,
                               rtol=1e-12, atol=1e-9)
    # a window rendered from rest, starting memory_s before it, matches the long render
    pre = math.ceil(SKIN.memory_s / dt)
    start = len(i) - 3000
    late = SKIN.render(i[start - pre :], dt, VC)
    np.testing.assert_allclose(late.voltage_V[pre:], whole.voltage_V[start:], atol=1e-9)
    assert SKIN.memory_s == pytest.approx(TAU * math.log(1e12))


def test_one_million_samples_render_in_well_under_a_second_or_two() -> None:
    """Pulse train clipping on every phase (realistic), and a mode change every other sample (worst)."""
    dt = 1e-6
    train = clipping_train(100, dt)  # 1 M samples, 200 clipped phases
    dense = np.where(np.arange(1_000_000) % 4 < 2, 100.0, 0.0)  # rail on/off every 2 samples at 50 us
    timings = {}
    for name, i, step in (("train", train, dt), ("dense", dense, 50e-6)):
        assert i.size == 1_000_000
        t0 = time.perf_counter()
        r = SKIN.render(i, step, VC)
        timings[name] = time.perf_counter() - t0
        assert r.clipped.any()
    assert timings["train"] < 1.5, timings  # about 0.07 s on the 2-core CI machine
    assert timings["dense"] < 5.0, timings  # about 0.5 s


def test_generic_render_falls_back_to_the_protocol() -> None:
    class Custom:
        sensed_impedance_ohm = 1000.0
        memory_s = 0.0

        def render_voltage_V(self, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> np.ndarray:
            return np.clip(current_mA, -compliance_V, compliance_V)

    r = render(Custom(), np.array([0.0, 200.0]), 1e-6, VC)
    np.testing.assert_array_equal(r.voltage_V, [0.0, VC])
    assert r.clipped.tolist() == [False, True]


# ---- the catalogue ------------------------------------------------------------------------------------


def test_standard_catalogue_has_the_issue_loads_each_with_a_source() -> None:
    cat = load_catalogue()
    models = cat.models()
    assert {n: m.sensed_impedance_ohm for n, m in models.items()} == {
        "R500": 500.0, "R2k": 2000.0, "R10k": 10_000.0, "OPEN": math.inf, "SHORT": 0.0, "SKIN": RS + RP,
        "SHUNT10": 10.0,
    }
    assert models["SKIN"] == SKIN
    assert all(len(src) > 20 for src in cat.sources().values())
    assert "ASSUMED" in cat.sources()["SKIN"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("loads: {R1: {kind: resistor, ohm: -5, source: x}}", "field 'loads.R1.resistor.ohm'"),
        ("loads: {R1: {kind: coil, source: x}}", "'loads.R1'"),
        ("loads: {SKIN: {kind: electrode_skin, series_ohm: 1, parallel_ohm: 1, source: x}}", "parallel_nF"),
        ("loads: {'bad name': {kind: open, source: x}}", "bad name"),
    ],
    ids=["negative", "unknown-kind", "missing-C", "bad-name"],
)
def test_a_bad_catalogue_names_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "loads.yaml"
    path.write_text(f"schema: stimrig.loads/1\nname: broken\n{body}\n")
    with pytest.raises(FixtureError, match=str(path)) as err:
        load_catalogue(path)
    assert message in str(err.value)
