"""Over-current: when the current the output delivers disagrees with the commanded current, output
stops within the device's limit and the condition is reported (FDA guidance: automatic overload trip;
IEC 60601-1 4.7: a failed current regulator is a single fault the device must survive safely).

A healthy device cannot be made to deliver more than it is told from outside, so this is a single-
fault-condition test: on the simulated bench the output stage's current regulator fails (it delivers
1.5 x the DAC current) right after the marker. On hardware it needs a modified unit; it is simulated
only here.
"""

from __future__ import annotations

import contextlib

import pytest

from rig.measurements import Measurement
from tests.certification.cutoff import timed_cutoff

REGULATOR_GAIN = 1.5  # delivered / commanded current after the failure: well past the trip margin


@pytest.mark.requirement("SAFE-OVERCURRENT")
@pytest.mark.sim_only("injects a failed current regulator: on hardware a single-fault test on a modified unit")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_overcurrent_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    limit_ms = safety.overcurrent_cutoff_max_ms

    with contextlib.ExitStack() as single_fault:

        def marker_then_regulator_fails() -> None:
            bench.load.mark()
            single_fault.enter_context(bench.virtual.current_regulator_failed(channel, REGULATOR_GAIN))

        result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, 2.0 * limit_ms / 1000.0,
                              marker_then_regulator_fails, scale_mA=REGULATOR_GAIN * amplitude)
        status = {s.channel: s for s in dut.status()}[channel]
    measure(
        Measurement("overcurrent_cutoff_latency", "ms", high=limit_ms,
                    source=device_model.source_of("safety.overcurrent_cutoff_max_ms")),
        1000.0 * result.latency_s, amplitude_mA=amplitude, channel=channel, regulator_gain=REGULATOR_GAIN,
        output_stopped_within_capture=result.stopped,
    )
    measure(Measurement("reports_over_current", "bool", low=1, high=1, description="STATUS names the condition"),
            float(status.fault == "over_current"), state=status.state, fault=status.fault)
