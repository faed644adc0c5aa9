"""No amplitude step between consecutive pulses is larger than the device allows, however large the
requested change (IEC 60601-1 12.4: no accidental excessive output; device fixture
safety.max_amplitude_step_mA).

From the minimum to the maximum test amplitude in one SET_AMPLITUDE; every pulse is captured,
small ones included, and the largest change between neighbours is measured.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.analysis.cutoff import pulse_peaks
from rig.measurements import Measurement
from tests.certification.conftest import MEASUREMENT_LOAD_OHM
from tests.certification.cutoff import CUTOFF_PROGRAM, marker_timed_capture


@pytest.mark.requirement("SAFE-SLEW", "OUT-AMPLITUDE-CONTROL")
def test_amplitude_change_is_slew_limited(channel, bench, dut, scope, device_model, measure):
    safety = device_model.safety
    low, high = safety.cutoff_test_amplitudes_mA
    load_ohm = MEASUREMENT_LOAD_OHM

    def marker_then_raise() -> None:
        bench.load.mark()
        dut.set_amplitude(channel, high)

    n_steps = int(np.ceil((high - low) / safety.max_amplitude_step_mA))
    window_s = 2.0 * (n_steps + 2) / bench.program(CUTOFF_PROGRAM).frequency_Hz
    cap, _marker = marker_timed_capture(bench, dut, scope, measure, channel, low, window_s, marker_then_raise,
                                        scale_mA=high)
    _, peaks_V = pulse_peaks(cap, threshold=0.5 * low * load_ohm / 1000.0)
    amps_mA = peaks_V * 1000.0 / load_ohm
    steps = np.abs(np.diff(amps_mA))
    # one ADC code of the capture's range is the measurement's resolution
    resolution_mA = cap.y_increment_V * 1000.0 / load_ohm
    measure(
        Measurement("largest_amplitude_step", "mA", high=safety.max_amplitude_step_mA + resolution_mA,
                    source=device_model.source_of("safety.max_amplitude_step_mA")
                    + f" (+{resolution_mA:.2g} mA: one ADC code of the capture)"),
        float(steps.max()) if steps.size else float("nan"),
        pulses=int(amps_mA.size), first_mA=float(amps_mA[0]) if amps_mA.size else None,
        last_mA=float(amps_mA[-1]) if amps_mA.size else None,
    )
    measure(Measurement.around("final_amplitude", "mA", high, device_model.tolerances.amplitude_band_mA(high),
                               source=device_model.source_of("tolerances.amplitude_pct")),
            float(amps_mA[-1]) if amps_mA.size else float("nan"))
