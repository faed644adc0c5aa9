"""Low battery: when the battery falls below the device's threshold, stimulation stops in an orderly
way (a ramp, no step larger than the slew limit) within the device's limit, the condition is reported,
and no new START is accepted (FDA guidance: automatic shut-off; IEC 60601-1 12.4 incorrect output).

On the simulated bench the battery drops right after the marker. A real bench would feed the unit
from a programmable supply, which stimrig does not drive yet, so this runs on the simulated bench only.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from rig.analysis.cutoff import cutoff_latency, pulse_peaks
from rig.errors import DeviceRefused
from rig.measurements import Measurement
from tests.certification.conftest import MEASUREMENT_LOAD_OHM
from tests.certification.cutoff import CUTOFF_PROGRAM, marker_timed_capture

BELOW_THRESHOLD_V = 0.2  # the battery drops this far below the low-battery threshold


@pytest.mark.requirement("SAFE-LOW-BATTERY")
@pytest.mark.sim_only("lowers the battery voltage: stimrig drives no programmable supply yet")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_low_battery_shutdown(channel, level, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    limit_s = safety.low_battery_cutoff_max_s

    with contextlib.ExitStack() as battery:

        def marker_then_battery_low() -> None:
            bench.load.mark()
            battery.enter_context(bench.virtual.battery_at(safety.low_battery_V - BELOW_THRESHOLD_V))

        output, marker = marker_timed_capture(bench, dut, scope, measure, channel, amplitude, 1.5 * limit_s,
                                              marker_then_battery_low)
        status = {s.channel: s for s in dut.status()}[channel]
        refused = None
        try:
            dut.start(CUTOFF_PROGRAM, [channel], amplitude)
        except DeviceRefused as exc:
            refused = exc.name
    result = cutoff_latency(output, marker)
    measure(
        Measurement("low_battery_cutoff_latency", "s", high=limit_s,
                    source=device_model.source_of("safety.low_battery_cutoff_max_s")),
        result.latency_s, amplitude_mA=amplitude, channel=channel, output_stopped_within_capture=result.stopped,
    )
    period_s = 1.0 / bench.program(CUTOFF_PROGRAM).frequency_Hz
    starts, peaks_V = pulse_peaks(output, threshold=0.05 * result.amplitude_before)
    shutdown_mA = peaks_V[starts >= result.event_s - period_s] * 1000.0 / MEASUREMENT_LOAD_OHM
    if result.stopped:
        shutdown_mA = np.append(shutdown_mA, 0.0)  # the step from the last pulse to nothing counts too
    steps = np.abs(np.diff(shutdown_mA))
    resolution_mA = output.y_increment_V * 1000.0 / MEASUREMENT_LOAD_OHM
    measure(
        Measurement("largest_step_during_shutdown", "mA", high=safety.max_amplitude_step_mA + resolution_mA,
                    source=device_model.source_of("safety.low_battery_ramp_down_s")
                    + "; " + device_model.source_of("safety.max_amplitude_step_mA")),
        float(steps.max()) if steps.size else float("nan"),
        pulses=int(shutdown_mA.size),
    )
    measure(Measurement("reports_low_battery", "bool", low=1, high=1, description="STATUS names the condition"),
            float(status.fault == "low_battery"), state=status.state, fault=status.fault)
    measure(Measurement("start_refused_on_low_battery", "bool", low=1, high=1,
                        description="START refused with FAULT_ACTIVE while the battery is low"),
            float(refused == "FAULT_ACTIVE"), refused=refused)
