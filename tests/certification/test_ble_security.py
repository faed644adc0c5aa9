"""Only the bonded controller commands the device over BLE (IEC 60601-1 12.4: no accidental selection of
excessive output; docs/protocol.md section 2, BLE transport: security).

While the bonded controller runs a session, a second central that never bonded with the device (a
controller in the next cubicle, on the bench's rogue adapter) connects to it. It may read the identity
characteristic and nothing more: subscribing to the status, writing request frames to the control point
(raise the running channel's amplitude, start another channel, stop) and pairing must all be refused, the
writes before and after its pairing attempt. The session must carry on untouched: the output keeps its
amplitude on the scope, and STATUS shows every channel as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.dut.ble_rogue import UnbondedCentral
from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s
from rig.protocol.messages import MsgType
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named, start_running
from tests.certification.test_device_isolation import changes, snapshot

PROGRAM = "tens_hf"
CHANNEL = 1
SOURCE = ("IEC 60601-1 12.4 (accidental selection of excessive output); CS-4 firmware design, BLE security "
          "(reference device): the control point needs a bonded, encrypted link (docs/protocol.md s.2)")


@pytest.mark.requirement("LINK-BONDED-CONTROL")
def test_an_unbonded_central_cannot_command_the_device(bench, dut, scope, device_model, measure):
    program = bench.program(PROGRAM)
    low, high = device_model.safety.cutoff_test_amplitudes_mA
    ble = bench.config.dut.ble
    bench.load.connect(CHANNEL, load_named(bench, MEASUREMENT_LOAD_OHM))
    start_running(bench, dut, measure, program, CHANNEL, low, settle_time_s(program))
    before = snapshot(dut)

    rogue = UnbondedCentral(bench.ble_rogue_adapter, bench.ble_device_name,
                            scan_timeout_s=ble.scan_timeout_s if ble else 5.0)
    with rogue:
        identity = rogue.read_identity()
        subscription = rogue.subscribe_status()
        commands = [
            (MsgType.SET_AMPLITUDE, {"channel": CHANNEL, "amplitude_mA": high}),
            (MsgType.START, {"program": program.id, "channels": [CHANNEL + 1], "amplitude_mA": high}),
            (MsgType.STOP, {"channels": [CHANNEL]}),
        ]
        writes = [rogue.write_request(kind, payload, seq) for seq, (kind, payload) in enumerate(commands, 1)]
        pairing = rogue.pair()
        writes += [rogue.write_request(kind, payload, seq) for seq, (kind, payload) in enumerate(commands, 11)]
    bench.wait(1.0)  # anything a write had got through would show by now

    measure(Measurement("rogue_identity_readable", "bool", low=1, high=1, source=SOURCE),
            float(identity.accepted), detail=identity.detail)
    measure(Measurement("rogue_status_subscription_accepted", "bool", high=0, source=SOURCE),
            float(subscription.accepted), detail=subscription.detail)
    accepted = [w.action for w in writes if w.accepted]
    measure(Measurement("rogue_control_point_writes_accepted", "writes", high=0, source=SOURCE),
            float(len(accepted)), accepted=str(accepted) if accepted else "none",
            refusals=str(sorted({w.detail for w in writes if not w.accepted})))
    measure(Measurement("rogue_pairing_accepted", "bool", high=0, source=SOURCE), float(pairing.accepted),
            detail=pairing.detail)

    after = snapshot(dut)
    changed = changes(before, after)
    measure(Measurement("dut_channels_changed", "channels", high=0, source=SOURCE), float(len(changed)),
            changes=str(changed) if changed else "none")
    highest_mA = 0.0  # a channel a rogue STOP reached has no pulses to trigger on
    if after[CHANNEL][0]:
        cfg = bench.config.scope
        plan = plan_for(device_model, 2 * low, MEASUREMENT_LOAD_OHM, cfg.measure_channel, cfg.probe_attenuation)
        train = analyse(capture(scope, acquisition(program, plan, "train"), cfg.timeout_s))
        highest_mA = float(np.max(train.phase1_amplitude)) * 1000.0 / MEASUREMENT_LOAD_OHM
    measure(Measurement.around("output_amplitude_after_rogue", "mA", low,
                               device_model.tolerances.amplitude_band_mA(low), source=SOURCE),
            highest_mA, rogue_asked_for_mA=high, channel=CHANNEL)
