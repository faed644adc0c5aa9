"""Short circuit: when the load falls below the device's short-circuit threshold, output stops within
the device's limit and the condition is reported (FDA guidance: automatic overload trip; IEC 60601-1
12.4 incorrect output).

The load box switches the channel from 500 ohm to its current-viewing shunt: a resistor below the
threshold, so a short as the stimulator sees it, across which the scope still sees the current. The
relay-sense line drives the marker. The vertical range is sized for the current through the shunt
(the 500 ohm pulses before the event clip), so the latency runs to the last pulse above 10 % of the
set amplitude through the shunt.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from rig.analysis.cutoff import cutoff_latency
from rig.errors import StimrigError
from rig.measurements import Measurement
from tests.certification.cutoff import marker_timed_capture


def shunt_load(bench: Any, threshold_ohm: float) -> tuple[str, float]:
    """The bench's lowest resistor that is still above 0 ohm and below the short-circuit threshold."""
    shunts = {n: r for n, r in bench.load.loads().items() if 0 < r < threshold_ohm and math.isfinite(r)}
    if not shunts:
        raise StimrigError(
            f"{bench.config.path}: the load box has no current-viewing resistor below the device's "
            f"{threshold_ohm:g} ohm short-circuit threshold (have {bench.load.loads()}); expected e.g. "
            "SHUNT10 (10 ohm) in its load catalogue"
        )
    name = min(shunts, key=lambda n: shunts[n])
    return name, shunts[name]


@pytest.mark.requirement("SAFE-SHORT-CIRCUIT")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_short_circuit_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    shunt, shunt_ohm = shunt_load(bench, safety.short_circuit_threshold_ohm)

    def short_the_output() -> None:
        bench.load.connect(channel, shunt)  # the relay switch is the marker edge

    limit_ms = safety.overcurrent_cutoff_max_ms
    through_shunt_V = amplitude * shunt_ohm / 1000.0
    output, marker = marker_timed_capture(bench, dut, scope, measure, channel, amplitude, 2.0 * limit_ms / 1000.0,
                                          short_the_output, peak_V=through_shunt_V)
    result = cutoff_latency(output, marker, amplitude=through_shunt_V)
    measure(
        Measurement("short_circuit_cutoff_latency", "ms", high=limit_ms,
                    source=device_model.source_of("safety.overcurrent_cutoff_max_ms")),
        1000.0 * result.latency_s, amplitude_mA=amplitude, channel=channel, shunt_ohm=shunt_ohm,
        output_stopped_within_capture=result.stopped,
    )
    status = {s.channel: s for s in dut.status()}[channel]
    measure(Measurement("reports_short_circuit", "bool", low=1, high=1, description="STATUS names the condition"),
            float(status.fault == "short_circuit"), state=status.state, fault=status.fault)
