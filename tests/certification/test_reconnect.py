"""After a dropout: when the controller reaches the device again, it behaves as its fixture says
(safety.on_reconnect; IEC 60601-1 12.4: no unintended output).

- ``resume_at_zero``: the output stays off and STATUS reports ``link_lost`` until the operator starts
  the program again;
- ``resume_ramp``: the output ramps back from zero to the set amplitude (never a jump).

The patient walks out of range long enough for the link-loss cutoff, then back to the default
distance; once a keep-alive gets through, the output is captured for one ramp-up time and more.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.config.link import load_link_profiles
from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s
from rig.radio.channel import link_budget_dB
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, RUNNING_STATES, load_named, start_running
from tests.certification.cutoff import CUTOFF_PROGRAM
from tests.certification.test_walk_away import OUT_OF_RANGE_MARGIN_DB


@pytest.mark.requirement("LINK-RECONNECT")
def test_behaviour_after_a_dropout(channel, bench, dut, scope, radio, device_model, measure):
    safety = device_model.safety
    program = bench.program(CUTOFF_PROGRAM)
    amplitude = safety.cutoff_test_amplitudes_mA[1]
    cfg = bench.config.scope
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    start_running(bench, dut, measure, program, channel, amplitude, settle_time_s(program))
    out_m = radio.distance_at_margin_m(link_budget_dB(device_model, load_link_profiles()), OUT_OF_RANGE_MARGIN_DB)
    with bench.link_may_drop():
        radio.set_distance_m(out_m)
        bench.wait(safety.supervision_timeout_s + safety.link_loss_ramp_down_s + 0.5)
        radio.set_distance_m(bench.config.radio.default_distance_m)
        back_after_s = bench.await_link()
    bench.wait(program.ramp_up_s + 0.5)  # long enough for a resumed ramp to reach the set amplitude
    status = {s.channel: s for s in dut.status()}[channel]
    source = device_model.source_of("safety.on_reconnect")
    if safety.on_reconnect == "resume_at_zero":
        floor = device_model.tolerances.amplitude_floor_mA
        # a sensitive range: any pulse above a few times the floor clips and reads as full scale
        plan = plan_for(device_model, 4 * floor, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
        cap = capture(scope, acquisition(program, plan, "train", sweep="auto"), cfg.timeout_s)
        peak_mA = float(np.max(np.abs(cap.volts()))) * 1000.0 / MEASUREMENT_LOAD_OHM
        measure(Measurement("output_after_reconnection", "mA", high=floor, source=source),
                peak_mA, policy=safety.on_reconnect, reconnected_after_s=back_after_s)
        measure(Measurement("reports_link_lost_until_restarted", "bool", low=1, high=1, source=source),
                float(status.state == "link_lost"), state=status.state)
    else:
        plan = plan_for(device_model, amplitude, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
        train = analyse(capture(scope, acquisition(program, plan, "train"), cfg.timeout_s))
        highest = max(1000.0 * a / MEASUREMENT_LOAD_OHM for a in train.phase1_amplitude)
        measure(Measurement.around("amplitude_after_resumed_ramp", "mA", amplitude,
                                   device_model.tolerances.amplitude_band_mA(amplitude), source=source),
                highest, policy=safety.on_reconnect, reconnected_after_s=back_after_s)
        measure(Measurement("running_after_reconnection", "bool", low=1, high=1, source=source),
                float(status.state in RUNNING_STATES), state=status.state)
