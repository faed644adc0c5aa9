"""An amplitude above the device maximum is refused, and never appears at the output."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import DeviceRefused
from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named, start_running

REFUSED = Measurement("request_refused", "bool", low=1, high=1, description="device answered with an error")


def over_maximum_mA(device_model, bench) -> float:
    over = device_model.limits.max_amplitude_mA + max(5.0, device_model.limits.amplitude_resolution_mA)
    if over > bench.config.amplitude_ceiling_mA:
        pytest.fail(
            f"{bench.config.path}: amplitude_ceiling_mA {bench.config.amplitude_ceiling_mA:g} mA is below the "
            f"over-maximum request of {over:g} mA this test must send; the test cannot be run on this bench"
        )
    return over


def peak_current_mA(cap, load_ohm: float) -> float:
    return float(np.max(np.abs(cap.volts()))) * 1000.0 / load_ohm


@pytest.mark.requirement("OUT-AMPLITUDE-MAX")
def test_start_above_maximum_refused(program, channel, bench, dut, scope, device_model, measure):
    over = over_maximum_mA(device_model, bench)
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    refused = True
    try:
        dut.start(program.id, [channel], over)
        refused = False
    except DeviceRefused as exc:
        assert exc.name == "OUT_OF_RANGE", f"refused for the wrong reason: {exc}"
    measure(REFUSED, float(refused), request_mA=over, program=program.id, channel=channel)
    bench.wait(settle_time_s(program))
    cfg = bench.config.scope
    floor = device_model.tolerances.amplitude_floor_mA
    # A sensitive range: any output above a few times the floor clips the capture, which reads as
    # (at least) full scale and fails; an idle output reads as noise, far below the floor.
    plan = plan_for(device_model, 4 * floor, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
    cap = capture(scope, acquisition(program, plan, "train", sweep="auto"), cfg.timeout_s)
    measure(
        Measurement("output_after_refused_start", "mA", high=floor, source="no output may follow a refused START"),
        peak_current_mA(cap, MEASUREMENT_LOAD_OHM), request_mA=over,
    )


@pytest.mark.requirement("OUT-AMPLITUDE-MAX")
def test_raise_above_maximum_refused(program, channel, bench, dut, scope, device_model, measure):
    over = over_maximum_mA(device_model, bench)
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    nominal = program.amplitude_mA
    start_running(bench, dut, measure, program, channel, nominal, settle_time_s(program))
    refused = True
    try:
        dut.set_amplitude(channel, over)
        refused = False
    except DeviceRefused as exc:
        assert exc.name == "OUT_OF_RANGE", f"refused for the wrong reason: {exc}"
    measure(REFUSED, float(refused), request_mA=over, program=program.id, channel=channel)
    bench.wait(0.5)
    cfg = bench.config.scope
    # On screen up to the refused amplitude; triggered by any pulse of at least half the nominal one.
    plan = plan_for(device_model, over, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
    nominal_peak_V = plan_for(device_model, nominal, MEASUREMENT_LOAD_OHM, cfg.measure_channel, 1).peak_V
    setup = acquisition(program, plan, "train", trigger_level_V=0.5 * nominal_peak_V)
    train = analyse(capture(scope, setup, cfg.timeout_s))
    band = device_model.tolerances.amplitude_band_mA(nominal)
    highest = max(1000.0 * a / MEASUREMENT_LOAD_OHM for a in train.phase1_amplitude)
    measure(
        Measurement.around("amplitude_after_refused_raise", "mA", nominal, band,
                           source=device_model.source_of("tolerances.amplitude_pct")),
        highest, request_mA=over,
    )
