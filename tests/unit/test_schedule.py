"""The pulse schedule (timing, edges, ramps, DAC steps, segments, history) and the constant-current output stage."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from rig.config import DeviceModel
from simulator.stimulator.output_stage import delivered_current_mA, load_voltage_V
from simulator.stimulator.schedule import PulseSchedule, Segment

RISE_S = 2e-6
F_HZ = 90.0
P1, GAP, P2 = 150e-6, 50e-6, 150e-6


def seg(
    t_start: float = 0.0123456789,
    *,
    period: float = 1 / F_HZ,
    p1: float = P1,
    gap: float = GAP,
    p2: float = P2,
    ratio: float | None = None,
    a0: float = 25.0,
    a1: float = 25.0,
    ramp: float = 0.0,
    res: float = 0.0,
    t_end: float = math.inf,
) -> Segment:
    return Segment(
        t_start_s=t_start,
        t_end_s=t_end,
        period_s=period,
        phase1_s=p1,
        gap_s=gap,
        phase2_s=p2,
        phase2_ratio=p1 / p2 if ratio is None else ratio,
        a0_mA=a0,
        a1_mA=a1,
        ramp_s=ramp,
        resolution_mA=res,
    )


def schedule(*segments: Segment, rise_s: float = RISE_S, history_s: float = 120.0) -> PulseSchedule:
    s = PulseSchedule(rise_s, history_s=history_s)
    for sg in segments:
        s.open(sg, sg.t_start_s)
    return s


def sample(s: PulseSchedule, t: float) -> float:
    return float(s.render_mA(t, 1.0, 1)[0])


def plateau(s: PulseSchedule, sg: Segment, k: int) -> float:
    """Phase-1 current of pulse k, sampled mid-phase (the rise has long settled)."""
    return sample(s, sg.pulse_start_s(k) + sg.phase1_s / 2)


def pulse_charge_uC(s: PulseSchedule, t_pulse: float, width_s: float, dt: float = 10e-9) -> float:
    """∫ i dt over one pulse and its settling tail, in µC."""
    x = s.render_mA(t_pulse - 1e-6, dt, round((width_s + 30e-6) / dt))
    return float(x.sum() * dt * 1e3)


# ---- timing --------------------------------------------------------------------------------------------


def test_pulse_count_and_frequency_are_exact(wave: SimpleNamespace) -> None:
    sg = seg()
    s = schedule(sg)
    dt = 1e-6
    x = s.render_mA(sg.t_start_s, dt, round(1.0 / dt))  # exactly one second from the first edge
    rises = wave.crossings(x, 12.5, sg.t_start_s, dt)
    assert rises.size == 90
    assert np.max(np.abs(np.diff(rises) - 1 / F_HZ)) < dt / 10


def test_period_does_not_drift_over_many_pulses() -> None:
    """Stroboscope: sampling once per nominal period on the rising edge sees the same value for 90 s.

    A rate error of 0.01 ppm would slide the last sample 0.9 us (one time constant) along the edge.
    """
    sg = seg()
    s = schedule(sg)
    tau = RISE_S / math.log(9)
    x = s.render_mA(sg.t_start_s + tau * math.log(2), 1 / F_HZ, 90 * 90)
    assert x == pytest.approx(np.full(x.size, 12.5), abs=1e-6)


def test_phase_durations_and_gap_at_50pct_crossings(wave: SimpleNamespace) -> None:
    sg = seg()
    s = schedule(sg)
    dt = 10e-9
    t0 = sg.pulse_start_s(3) - 5e-6
    x = s.render_mA(t0, dt, round(400e-6 / dt))
    up = wave.crossings(x, 12.5, t0, dt)
    down = wave.crossings(x, 12.5, t0, dt, rising=False)
    neg_start = wave.crossings(-x, 12.5, t0, dt)
    neg_end = wave.crossings(-x, 12.5, t0, dt, rising=False)
    assert [a.size for a in (up, down, neg_start, neg_end)] == [1, 1, 1, 1]
    tol = dt / 4
    assert down[0] - up[0] == pytest.approx(P1, abs=tol)
    assert neg_start[0] - down[0] == pytest.approx(GAP, abs=tol)
    assert neg_end[0] - neg_start[0] == pytest.approx(P2, abs=tol)
    # each edge sits at its exact instant, delayed by the first-order stage's tau*ln2 to 50 %
    tau = RISE_S / math.log(9)
    assert up[0] - sg.pulse_start_s(3) == pytest.approx(tau * math.log(2), abs=tol)


def test_edges_are_placed_between_samples_not_snapped(wave: SimpleNamespace) -> None:
    dt = 1e-6  # coarse next to the 2 us rise: a snapped edge would show
    base = 0.01
    ref = schedule(seg(base)).render_mA(0.0, dt, round(0.02 / dt))
    for frac in (0.25, 0.5, 0.75):
        delta = frac * dt
        shifted = schedule(seg(base + delta)).render_mA(0.0, dt, round(0.02 / dt))
        assert np.max(np.abs(shifted - ref)) > 1.0  # moving the pulse by a fraction of a sample changes the samples
        # ... exactly as sampling the unshifted pulse a fraction of a sample earlier does
        assert shifted == pytest.approx(schedule(seg(base)).render_mA(-delta, dt, ref.size), abs=1e-9)
    fine = 100e-9
    found = [
        wave.crossings(schedule(seg(base + f * dt)).render_mA(0.0099, fine, 2000), 12.5, 0.0099, fine)[0]
        for f in (0.0, 0.25, 0.5, 0.75)
    ]
    assert np.diff(found) == pytest.approx([0.25 * dt] * 3, abs=0.05 * fine)


def test_rise_time_10_90_matches_the_device(device: DeviceModel, wave: SimpleNamespace) -> None:
    rise_s = device.output.rise_time_us * 1e-6
    sg = seg(a0=40.0, a1=40.0)
    s = schedule(sg, rise_s=rise_s)
    dt = 5e-9
    t0 = sg.pulse_start_s(1) - 1e-6
    x = s.render_mA(t0, dt, round((P1 + 10e-6) / dt))
    t10 = wave.crossings(x, 4.0, t0, dt)[0]
    t90 = wave.crossings(x, 36.0, t0, dt)[0]
    assert t90 - t10 == pytest.approx(rise_s, rel=0.01)
    # the fall of phase 1 has the same first-order shape
    f90 = wave.crossings(x, 36.0, t0, dt, rising=False)[0]
    f10 = wave.crossings(x, 4.0, t0, dt, rising=False)[0]
    assert f10 - f90 == pytest.approx(rise_s, rel=0.01)


# ---- charge balance ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("p1", "p2"), [(150e-6, 150e-6), (250e-6, 1000e-6)], ids=["symmetric", "asymmetric"])
def test_each_pulse_is_charge_balanced(p1: float, p2: float) -> None:
    sg = seg(period=0.5, p1=p1, gap=100e-6, p2=p2, a0=30.0, a1=30.0)
    s = schedule(sg)
    phase1_uC = 30.0 * p1 * 1e3
    for k in range(3):
        q = pulse_charge_uC(s, sg.pulse_start_s(k), sg.pulse_width_s)
        assert abs(q) < 1e-3 * phase1_uC, f"pulse {k}: net {q} uC"
    # the balancing phase of the asymmetric pulse is longer and lower
    mid2 = sg.pulse_start_s(0) + p1 + 100e-6 + p2 / 2
    assert sample(s, mid2) == pytest.approx(-30.0 * p1 / p2)


def test_an_unbalanced_segment_shows_net_charge() -> None:
    """The measurement above can fail: a wrong phase-2 ratio leaves charge."""
    sg = seg(period=0.5, ratio=0.8)
    q = pulse_charge_uC(schedule(sg), sg.pulse_start_s(0), sg.pulse_width_s)
    assert q == pytest.approx(25.0 * P1 * 1e3 * 0.2, rel=0.02)


# ---- envelope and DAC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("a0", "a1"), [(0.0, 40.0), (40.0, 10.0)], ids=["up", "down"])
def test_ramp_is_linear_then_holds(a0: float, a1: float) -> None:
    period, ramp = 0.025, 1.0
    sg = seg(0.0, period=period, a0=a0, a1=a1, ramp=ramp)
    s = schedule(sg)
    ks = np.arange(0, 80)
    got = np.array([plateau(s, sg, int(k)) for k in ks])
    frac = np.clip(ks * period / ramp, 0.0, 1.0)
    assert got == pytest.approx(a0 + (a1 - a0) * frac, abs=1e-9)
    assert np.all(got[ks * period >= ramp] == a1)
    assert s.envelope_mA(0.5) == pytest.approx((a0 + a1) / 2)
    assert s.envelope_mA(5.0) == a1


def test_amplitudes_are_quantised_to_the_dac_step() -> None:
    res = 0.5
    sg = seg(0.0, period=0.01, a0=0.0, a1=25.3, ramp=1.0, res=res)
    s = schedule(sg)
    got = np.array([plateau(s, sg, k) for k in range(0, 120)])
    ideal = np.clip(np.arange(120) * 0.01, 0, 1) * 25.3
    assert np.all(np.abs(got / res - np.round(got / res)) < 1e-9), "an amplitude is not a whole number of DAC steps"
    assert np.max(np.abs(got - ideal)) <= res / 2 + 1e-9
    assert got[-1] == 25.5  # 25.3 mA is not a DAC step: the nearest one is delivered
    assert len(np.unique(got)) > 40  # and it really ramps in steps, not in one jump


# ---- segments ------------------------------------------------------------------------------------------


def _two_segments() -> tuple[Segment, Segment]:
    a = seg(0.001, period=0.005, a0=10.0, a1=10.0)
    b = seg(0.0301234, period=0.004, p1=200e-6, gap=20e-6, p2=200e-6, a0=30.0, a1=30.0)
    return a, b


def test_render_across_a_segment_boundary() -> None:
    a, b = _two_segments()
    s = schedule(a, b)
    assert a.t_end_s == b.t_start_s
    dt = 1e-6
    t0, n = 0.0105, 40_000  # 10.5 ms .. 50.5 ms: straddles the switch at 30.12 ms
    x = s.render_mA(t0, dt, n)
    t = t0 + np.arange(n) * dt
    only_a = schedule(seg(0.001, period=0.005, a0=10.0, a1=10.0)).render_mA(t0, dt, n)
    only_b = schedule(b.__class__(**{**vars(b), "t_end_s": math.inf})).render_mA(t0, dt, n)
    before, after = t < b.t_start_s, t >= b.t_start_s
    assert np.array_equal(x[before], only_a[before])
    assert np.array_equal(x[after], only_b[after])
    assert x[before].max() == pytest.approx(10.0) and x[after].max() == pytest.approx(30.0)
    # rendering in two pieces gives the same samples as one window
    k = 19_123
    split = np.concatenate([s.render_mA(t0, dt, k), s.render_mA(t0 + k * dt, dt, n - k)])
    assert split == pytest.approx(x, abs=1e-9)


def test_close_truncates_the_output() -> None:
    sg = seg(0.0)
    s = schedule(sg)
    dt = 100e-9
    t_close = sg.pulse_start_s(2) + 60e-6  # inside phase 1
    before = s.render_mA(0.0, dt, round(0.05 / dt))
    s.close(t_close)
    assert s.current is None
    x = s.render_mA(0.0, dt, round(0.05 / dt))
    t = np.arange(x.size) * dt
    assert np.all(x[t >= t_close] == 0.0)
    assert np.array_equal(x[t < t_close], before[t < t_close])
    assert s.envelope_mA(t_close + 1e-3) == 0.0
    assert np.any(before[t >= t_close] != 0.0)


def test_render_is_deterministic() -> None:
    def build() -> np.ndarray:
        a, b = _two_segments()
        b.ramp_s, b.a0_mA, b.resolution_mA = 0.01, 5.0, 0.5
        return schedule(a, b).render_mA(0.0003, 3.3e-7, 200_000)

    first, second = build(), build()
    assert np.array_equal(first, second)
    assert np.any(first != 0)


def test_history_is_pruned_but_the_recent_past_stays_renderable() -> None:
    pruned = PulseSchedule(RISE_S, history_s=2.0)
    full = PulseSchedule(RISE_S, history_s=1e9)
    now = 0.0
    for i in range(20):  # a new segment every 0.5 s for 10 s
        now = 0.5 * i
        for s in (pruned, full):
            s.open(seg(now, period=0.01, a0=float(5 + i), a1=float(5 + i)), now)
    assert len(full.segments) == 20
    assert len(pruned.segments) < 10
    assert all(sg.t_end_s >= now - 2.0 for sg in pruned.segments)
    dt = 1e-6
    recent = pruned.render_mA(now - 1.9, dt, round(2.0 / dt))
    assert np.array_equal(recent, full.render_mA(now - 1.9, dt, round(2.0 / dt)))
    assert recent.max() == pytest.approx(24.0)
    assert pruned.render_mA(0.0, dt, 1000).max() == 0.0  # the distant past is gone


def test_empty_and_zero_length_renders() -> None:
    s = PulseSchedule(RISE_S)
    assert s.current is None
    assert s.render_mA(0.0, 1e-6, 0).size == 0
    assert np.array_equal(s.render_mA(0.0, 1e-6, 100), np.zeros(100))
    s.open(seg(1.0), 1.0)
    assert np.array_equal(s.render_mA(0.0, 1e-6, 1000), np.zeros(1000))  # before the segment starts


def test_segment_pulse_helpers() -> None:
    sg = seg(1.0, period=0.01)
    assert sg.pulse_start_s(3) == pytest.approx(1.03)
    assert sg.next_pulse_at_or_after(1.0) == 1.0
    assert sg.next_pulse_at_or_after(1.025) == pytest.approx(1.03)
    assert sg.next_pulse_at_or_after(0.5) == 1.0
    assert sg.pulse_in_progress(1.02 + 100e-6)
    assert not sg.pulse_in_progress(1.02 + 400e-6)
    assert not sg.pulse_in_progress(0.99)


# ---- output stage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load_ohm", "expected_mA"), [(500.0, 100.0), (2000.0, 60.0), (10_000.0, 12.0)], ids=["500R", "2k", "10k"]
)
def test_output_stage_saturates_at_the_compliance_voltage(load_ohm: float, expected_mA: float) -> None:
    commanded = np.array([0.0, 100.0, -100.0, 5.0, -5.0])
    i = delivered_current_mA(commanded, load_ohm, 120.0)
    assert i == pytest.approx([0.0, expected_mA, -expected_mA, 5.0, -5.0])
    v = load_voltage_V(commanded, load_ohm, 120.0)
    assert v == pytest.approx(i * load_ohm / 1000.0)
    assert np.max(np.abs(v)) <= 120.0 + 1e-9
    assert np.array_equal(commanded, [0.0, 100.0, -100.0, 5.0, -5.0])  # input not modified


def test_output_stage_on_a_rendered_pulse(device: DeviceModel) -> None:
    sg = seg(0.0, a0=100.0, a1=100.0)
    x = schedule(sg).render_mA(0.0, 1e-6, 1000)
    i = delivered_current_mA(x, 2000.0, device.output.compliance_voltage_V)
    assert i.max() == pytest.approx(60.0) and i.min() == pytest.approx(-60.0)
    assert load_voltage_V(x, 2000.0, device.output.compliance_voltage_V).max() == pytest.approx(120.0)
