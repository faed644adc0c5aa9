"""Watchdog: when the firmware's main loop hangs, the output is disabled within the device's limit and
the reset is reported (IEC 60601-1 4.7: hung firmware is a single fault; FDA guidance: automatic
shut-off).

On the simulated bench the main loop locks up right after the marker, for several watchdog periods
(the pulse hardware keeps running what it had). Hanging a real unit's firmware needs a debug build, so
this runs on the simulated bench only. The rig stays silent while it measures: frames sent to a hung
device would only be lost.
"""

from __future__ import annotations

import pytest

from rig.measurements import Measurement
from tests.certification.cutoff import timed_cutoff

HANG_PERIODS = 5  # the lock-up lasts this many watchdog periods: ample time to see it reset


@pytest.mark.requirement("SAFE-WATCHDOG")
@pytest.mark.sim_only("hangs the firmware main loop: on hardware this needs a debug build")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_watchdog_cutoff(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    hang_s = HANG_PERIODS * safety.watchdog_period_ms / 1000.0

    def marker_then_hang() -> None:
        bench.load.mark()
        bench.virtual.hang_firmware(hang_s)

    window_s = 2.0 * safety.watchdog_cutoff_max_ms / 1000.0
    result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, window_s, marker_then_hang,
                          during=bench.silenced)
    measure(
        Measurement("watchdog_cutoff_latency", "ms", high=safety.watchdog_cutoff_max_ms,
                    source=device_model.source_of("safety.watchdog_cutoff_max_ms")),
        1000.0 * result.latency_s, amplitude_mA=amplitude, channel=channel, hang_s=hang_s,
        output_stopped_within_capture=result.stopped,
    )
    status = {s.channel: s for s in dut.status()}[channel]
    measure(Measurement("reports_watchdog_reset", "bool", low=1, high=1, description="STATUS names the condition"),
            float(status.fault == "watchdog"), state=status.state, fault=status.fault)
