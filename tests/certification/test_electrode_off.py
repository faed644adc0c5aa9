"""Electrode off: when the load opens (an electrode comes off), output stops within the device's limit
and the condition is reported (FDA guidance: automatic no-load trip; IEC 60601-1 12.4).

The load box switches the channel from 500 ohm to the open circuit; its relay-sense line drives the
marker, so the latency runs from the moment the relay opened to the last pulse above 10 % of the
output's amplitude before the event.
"""

from __future__ import annotations

import math

import pytest

from rig.measurements import Measurement
from tests.certification.conftest import load_named
from tests.certification.cutoff import timed_cutoff


@pytest.mark.requirement("SAFE-ELECTRODE-OFF")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_electrode_off_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    open_circuit = load_named(bench, math.inf)

    def open_the_load() -> None:
        bench.load.connect(channel, open_circuit)  # the relay switch is the marker edge

    limit_s = safety.electrode_off_cutoff_max_ms / 1000.0
    result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, 2.0 * limit_s, open_the_load)
    measure(
        Measurement("electrode_off_cutoff_latency", "ms", high=safety.electrode_off_cutoff_max_ms,
                    source=device_model.source_of("safety.electrode_off_cutoff_max_ms")),
        1000.0 * result.latency_s, amplitude_mA=amplitude, channel=channel,
        output_stopped_within_capture=result.stopped,
    )
    status = {s.channel: s for s in dut.status()}[channel]
    measure(Measurement("reports_electrode_off", "bool", low=1, high=1,
                        description="STATUS names the condition"),
            float(status.fault == "electrode_off"), state=status.state, fault=status.fault)
