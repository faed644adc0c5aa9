"""A command addressed to one device never changes another (IEC 60601-1 12.4: no incorrect output).

Two stimulators share the controller, as patients side by side do in a clinic. The bystander treats
its patient at the low test amplitude on one output, watched on its own scope channel. The DUT is
checked idle first (what was sent to the bystander must not have reached it), then gets every kind of
command the controller sends: start on every channel, amplitude up to the high test amplitude on each,
stop, emergency stop. The bystander's pulses must keep their amplitude, and its STATUS must show every
channel exactly as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, OUTPUT_RUNNING, RUNNING_STATES, load_named

PROGRAM = "tens_hf"
SOURCE = "IEC 60601-1 12.4: a command to one device must not change another device's output"

Snapshot = dict[int, tuple[bool, str | None, float]]


def snapshot(link: Any) -> Snapshot:
    """Per channel: running or not, its program, its set amplitude (what a foreign command would change)."""
    return {s.channel: (s.state in RUNNING_STATES, s.program, s.target_mA) for s in link.status()}


def changes(before: Snapshot, after: Snapshot) -> dict[int, str]:
    return {ch: f"{before[ch]} -> {after.get(ch)}" for ch in before if after.get(ch) != before[ch]}


@pytest.mark.requirement("ISO-DEVICE")
def test_commands_to_one_device_leave_another_unchanged(bench, dut, bystander, scope, device_model, measure):
    program = bench.program(PROGRAM)
    cfg = bench.config.bystander
    low, high = device_model.safety.cutoff_test_amplitudes_mA
    every_channel = list(range(1, device_model.channels + 1))
    # every DUT output into 500 ohm (the routed one too), so nothing trips while it is commanded
    bench.load.connect(every_channel[0], load_named(bench, MEASUREMENT_LOAD_OHM))

    dut_before = snapshot(dut)
    bystander.start(program.id, [cfg.channel], low)
    bench.wait(settle_time_s(program))
    before = snapshot(bystander)
    measure.require(OUTPUT_RUNNING, float(before[cfg.channel][0]), device="bystander",
                    channel=cfg.channel)

    # and the other way round: the commands the bystander got must not have reached the DUT
    dut_changed = changes(dut_before, snapshot(dut))
    measure.require(Measurement("dut_channels_changed", "channels", high=0, source=SOURCE), float(len(dut_changed)),
                    by="commands addressed to the bystander", changes=str(dut_changed) if dut_changed else "none")

    dut.start(program.id, every_channel, low)
    bench.wait(0.5)
    for channel in every_channel:
        dut.set_amplitude(channel, high)
    bench.wait(1.0)
    # sized for the bystander's own amplitude: anything raised towards the DUT's clips at full scale
    plan = plan_for(device_model, 2 * low, cfg.load_ohm, cfg.scope_channel, cfg.probe_attenuation)
    train = analyse(capture(scope, acquisition(program, plan, "train"), bench.config.scope.timeout_s))
    highest_mA = max(1000.0 * a / cfg.load_ohm for a in train.phase1_amplitude)
    measure(Measurement.around("bystander_amplitude", "mA", low, device_model.tolerances.amplitude_band_mA(low),
                               source=SOURCE), highest_mA, dut_amplitude_mA=high, bystander_channel=cfg.channel)

    dut.stop([every_channel[0]])
    dut.emergency_stop()
    bench.wait(0.5)
    after = snapshot(bystander)
    changed = changes(before, after)
    measure(Measurement("bystander_channels_changed", "channels", high=0, source=SOURCE), float(len(changed)),
            changes=str(changed) if changed else "none")
