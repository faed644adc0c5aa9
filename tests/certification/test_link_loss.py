"""Link-loss cutoff: when the controller falls silent, stimulation ramps to zero within the device's
limit (IEC 60601-1 12.4 and 4.7: a lost radio link is a single fault the output must survive safely).

Measured on the scope: the rig sends one last keep-alive, pulses the load box marker (scope CH2) and
then says nothing; the latency runs from the marker edge to the last pulse above 10 % of the output's
amplitude before the event. Every channel, at the minimum and maximum test amplitude.
"""

from __future__ import annotations

import pytest

from rig.analysis.cutoff import cutoff_latency
from rig.interfaces import AcquisitionSetup, ChannelSetup, TriggerSetup
from rig.measurements import Measurement
from rig.procedures import plan_for, settle_time_s, step_125_at_least
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named

CUTOFF_PROGRAM = "tens_hf"  # highest pulse rate: the finest resolution of "last pulse"
MARKER_LEVEL_V = 2.5


def event_capture_setup(bench, peak_V: float, window_s: float) -> AcquisitionSetup:
    """CH1 output and CH2 marker, triggered by the marker; one division before it, the rest after."""
    cfg = bench.config.scope
    s_per_div = step_125_at_least(window_s / 9.0)
    return AcquisitionSetup(
        channels=(
            ChannelSetup(cfg.measure_channel, step_125_at_least(peak_V / 3.2), 0.0, cfg.probe_attenuation),
            ChannelSetup(cfg.marker_channel, 2.0, 0.0, 1.0),
        ),
        time_scale_s_per_div=s_per_div,
        trigger=TriggerSetup(cfg.marker_channel, MARKER_LEVEL_V, "positive", "normal"),
        points=500_000,
        time_reference="left",
    )


@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_link_loss_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    program = bench.program(CUTOFF_PROGRAM)
    cfg = bench.config.scope
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    dut.start(program.id, [channel], amplitude)
    bench.wait(settle_time_s(program))

    window_s = 2.0 * safety.link_loss_cutoff_max_s  # a late cutoff is still seen, a missing one shown as such
    peak_V = plan_for(device_model, amplitude, MEASUREMENT_LOAD_OHM, 1, 1).peak_V
    setup = event_capture_setup(bench, peak_V, window_s)
    scope.configure(setup)
    scope.arm()
    bench.wait(1.1 * setup.time_scale_s_per_div)  # the pre-trigger division fills (link still alive)
    with bench.silenced():
        dut.keepalive()  # the last frame; the marker follows it at once
        bench.load.mark()
        bench.clock.wait(window_s)
        scope.wait_acquired(cfg.timeout_s, bench.clock)
    result = cutoff_latency(scope.read_waveform(cfg.measure_channel), scope.read_waveform(cfg.marker_channel))
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
