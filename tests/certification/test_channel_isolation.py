"""A command addressed to one channel never changes another (IEC 60601-1 12.4: no incorrect output).

Channel N runs a program, its amplitude is raised, and every other channel's output is captured
into the measurement load: nothing may appear there.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.measurements import Measurement
from rig.procedures import acquisition, capture, plan_for, settle_time_s
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named

PROGRAM = "tens_hf"


@pytest.mark.requirement("ISO-CHANNEL")
def test_commands_to_one_channel_leave_the_others_off(channel, bench, dut, scope, device_model, measure):
    program = bench.program(PROGRAM)
    cfg = bench.config.scope
    r500 = load_named(bench, MEASUREMENT_LOAD_OHM)
    low, high = device_model.safety.cutoff_test_amplitudes_mA
    dut.start(program.id, [channel], low)
    bench.wait(settle_time_s(program))
    dut.set_amplitude(channel, high)
    bench.wait(1.0)
    floor = device_model.tolerances.amplitude_floor_mA
    # a sensitive range: any pulse above a few times the floor clips and reads as full scale
    plan = plan_for(device_model, 4 * floor, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
    for other in range(1, device_model.channels + 1):
        if other == channel:
            continue
        bench.load.connect(other, r500)
        cap = capture(scope, acquisition(program, plan, "train", sweep="auto"), cfg.timeout_s)
        peak_mA = float(np.max(np.abs(cap.volts()))) * 1000.0 / MEASUREMENT_LOAD_OHM
        measure(Measurement("output_on_other_channel", "mA", high=floor,
                            source="IEC 60601-1 12.4: a command to one channel must not change another"),
                peak_mA, commanded_channel=channel, measured_channel=other)
    states = {s.channel: s.state for s in dut.status() if s.channel != channel}
    running = sum(st not in ("idle", "stopped") for st in states.values())
    measure(Measurement("other_channels_running", "channels", high=0), float(running), states=str(states))
