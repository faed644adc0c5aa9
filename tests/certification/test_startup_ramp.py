"""Every start begins from zero with the program's ramp (IEC 60601-1 12.4: no accidental excessive
output; the program fixture's ramp_up_s).

A quarter into the ramp the output must be about a quarter of the set amplitude, not all of it.
"""

from __future__ import annotations

import pytest

from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named, start_running

PROGRAM = "tens_hf"


@pytest.mark.requirement("SAFE-START-RAMP")
def test_start_ramps_up_from_zero(channel, bench, dut, scope, device_model, measure):
    program = bench.program(PROGRAM)
    cfg = bench.config.scope
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    target = device_model.safety.cutoff_test_amplitudes_mA[1]
    # the capture's first pulse comes ~a quarter into the ramp
    start_running(bench, dut, measure, program, channel, target, 0.25 * program.ramp_up_s - 0.01)
    plan = plan_for(device_model, target, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
    nominal_mA = 0.25 * target
    setup = acquisition(program, plan, "train", trigger_level_V=0.1 * plan.peak_V)
    train = analyse(capture(scope, setup, cfg.timeout_s))
    first_mA = 1000.0 * train.phase1_amplitude[0] / MEASUREMENT_LOAD_OHM
    # the ramp moves on before the first captured pulse: STATUS's round trip over the radio (a few connection
    # events, more with retransmissions) and the scope's arming come first, up to ~10 % of the ramp, which
    # the band allows for on top of the amplitude tolerance (a missing ramp starts at the full amplitude)
    band = device_model.tolerances.amplitude_band_mA(nominal_mA) + 0.10 * target
    measure(Measurement.around("amplitude_quarter_into_ramp", "mA", nominal_mA, band,
                               source=f"program {program.id}: ramp_up_s {program.ramp_up_s:g} s from zero"),
            first_mA, target_mA=target, channel=channel)
