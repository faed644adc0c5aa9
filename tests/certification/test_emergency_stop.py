"""Emergency stop: every channel reaches zero within the device's limit, at steady output and while
ramping up (IEC 60601-1 12.4; IEC 60601-2-10 201.12.1.101 means to control the output).

The rig pulses the load box marker and sends EMERGENCY_STOP at once; the latency runs from the marker
edge to the last pulse above 10 % of the output's amplitude before the event.
"""

from __future__ import annotations

import pytest

from rig.measurements import Measurement
from tests.certification.cutoff import CUTOFF_PROGRAM, timed_cutoff


@pytest.mark.requirement("SAFE-ESTOP")
@pytest.mark.parametrize("when", ["steady", "ramping_up"])
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_emergency_stop(channel, level, when, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    ramp_s = bench.program(CUTOFF_PROGRAM).ramp_up_s
    limit_s = safety.emergency_stop_max_ms / 1000.0

    def marker_then_estop() -> None:
        bench.load.mark()
        dut.emergency_stop()

    window_s = max(10 * limit_s, 0.05)
    settle_s = 0.25 * ramp_s if when == "ramping_up" else None  # a quarter into the ramp
    result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, window_s, marker_then_estop,
                          settle_s=settle_s)
    measure(
        Measurement("emergency_stop_latency", "ms", high=safety.emergency_stop_max_ms,
                    source=device_model.source_of("safety.emergency_stop_max_ms")),
        1000.0 * result.latency_s, amplitude_mA=amplitude, channel=channel, when=when,
        output_stopped_within_capture=result.stopped,
    )
    running = [s.channel for s in dut.status() if s.amplitude_mA > 0 or s.state not in ("stopped", "idle")]
    measure(Measurement("channels_still_running", "channels", high=0), float(len(running)), running=running)
