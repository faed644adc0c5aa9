"""End of session: the output stops by itself at the end of the treatment time set with START, after
the program's ramp down, and the channel reports it stopped (FDA guidance: automatic shut-off; device
fixture safety.session_end_max_overrun_ms).

The rig pulses the marker and sends START with a short treatment time at once; the scope captures the
whole session. The session's output time runs from the marker to the last pulse above 10 % of the set
amplitude: at least the treatment time less the ramp down (the ramp may end it, nothing earlier),
at most the treatment time plus the allowed overrun.
"""

from __future__ import annotations

import pytest

from rig.analysis.cutoff import cutoff_latency
from rig.measurements import Measurement
from rig.procedures import plan_for
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named
from tests.certification.cutoff import CUTOFF_PROGRAM, capture_event

SEEN_AFTER_END_S = 0.5  # the capture runs on this long after the session's end: an output still on is seen


@pytest.mark.requirement("SAFE-SESSION-END")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_session_ends_on_time(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    program = bench.program(CUTOFF_PROGRAM)
    session_s = safety.session_test_duration_s
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))

    def marker_then_start() -> None:
        bench.load.mark()
        dut.start(program.id, [channel], amplitude, duration_s=session_s)

    peak_V = plan_for(device_model, amplitude, MEASUREMENT_LOAD_OHM, 1, 1).peak_V
    output, marker = capture_event(bench, scope, peak_V, session_s + SEEN_AFTER_END_S, marker_then_start)
    result = cutoff_latency(output, marker, amplitude=peak_V)
    overrun_s = safety.session_end_max_overrun_ms / 1000.0
    # the session starts when START reaches the device: up to one connection interval after the marker
    delivery_s = (device_model.radio.connection_interval_ms + device_model.output.command_latency_ms) / 1000.0
    measure(
        Measurement("session_output_time", "s", low=session_s - program.ramp_down_s,
                    high=session_s + delivery_s + overrun_s, nominal=session_s,
                    source=f"START duration_s {session_s:g} s (program {program.id} ramps down over "
                    f"{program.ramp_down_s:g} s before it), + {1000 * delivery_s:g} ms for START to reach the "
                    "device (one connection interval + command latency); "
                    + device_model.source_of("safety.session_end_max_overrun_ms")),
        result.latency_s, amplitude_mA=amplitude, channel=channel, output_stopped_within_capture=result.stopped,
    )
    status = {s.channel: s for s in dut.status()}[channel]
    measure(Measurement("reports_session_stopped", "bool", low=1, high=1,
                        description="STATUS shows the channel stopped, with no program, after the session"),
            float(status.state == "stopped" and status.program is None), state=status.state, program=status.program)
