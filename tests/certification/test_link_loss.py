"""Link-loss cutoff: when the controller falls silent, stimulation ramps to zero within the device's
limit (IEC 60601-1 12.4 and 4.7: a lost radio link is a single fault the output must survive safely).

Measured on the scope: the rig sends one last keep-alive, pulses the load box marker (scope CH2) and
then says nothing; the latency runs from the marker edge to the last pulse above 10 % of the output's
amplitude before the event. Every channel, at the minimum and maximum test amplitude.
"""

from __future__ import annotations

import pytest

from rig.measurements import Measurement
from tests.certification.cutoff import timed_cutoff


@pytest.mark.requirement("LINK-LOSS")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_link_loss_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]

    def last_frame_then_marker() -> None:
        dut.keepalive()  # the last frame; the marker follows it at once
        bench.load.mark()

    window_s = 2.0 * safety.link_loss_cutoff_max_s  # a late cutoff is still seen, a missing one shown as such
    result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, window_s, last_frame_then_marker,
                          during=bench.silenced)
    measure(
        Measurement(
            "link_loss_cutoff_latency", "s", high=safety.link_loss_cutoff_max_s,
            source=device_model.source_of("safety.link_loss_cutoff_max_s"),
        ),
        result.latency_s,
        amplitude_mA=amplitude, channel=channel, output_stopped_within_capture=result.stopped,
    )
    states = {s.channel: s.state for s in dut.status()}
    measure(Measurement("state_reports_link_lost", "bool", low=1, high=1,
                        description="STATUS reports the cutoff once the link is back"),
            float(states[channel] == "link_lost"), state=states[channel])
