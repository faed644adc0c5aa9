"""Link-loss supervision of the firmware model, with the real CS-4 fixture (supervision 1 s)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.config import load_device, load_programs
from rig.config.loader import FIXTURES_DIR
from rig.protocol.framing import Frame
from rig.protocol.messages import MsgType
from simulator.clock import SimClock
from simulator.faults import FAULTS, firmware_class
from simulator.stimulator.firmware import Firmware

DEVICE = load_device(FIXTURES_DIR / "devices" / "cs4.yaml")
PROGRAMS = {p.id: p for p in load_programs()}
SAFETY = DEVICE.safety


class Rig:
    def __init__(self, fw_class: type[Firmware] = Firmware) -> None:
        self.clock = SimClock()
        self.fw = fw_class(self.clock.env, DEVICE, PROGRAMS)
        self.seq = 0

    def send(self, kind: MsgType, **payload: object) -> Frame:
        self.seq = self.seq % 255 + 1
        return self.clock.run_process(self.fw.handle(Frame(kind, self.seq, dict(payload))))

    def last_output_s(self, channel: int, t0: float, t1: float) -> float:
        """Bench time of the last sample above 10 % of 25 mA in [t0, t1) (1 us resolution)."""
        dt = 1e-6
        x = self.fw.channels[channel].schedule.render_mA(t0, dt, round((t1 - t0) / dt))
        idx = np.flatnonzero(np.abs(x) > 2.5)
        return t0 + idx[-1] * dt if idx.size else -math.inf


def start_and_keep_alive(rig: Rig, seconds: float) -> float:
    """Start tens_hf on channel 1 and keep the link alive for ``seconds``; returns the last frame time."""
    rig.send(MsgType.START, program="tens_hf", channels=[1], amplitude_mA=25.0)
    heartbeat = rig.clock.every(0.05, lambda: rig.send(MsgType.KEEPALIVE))
    rig.clock.wait(seconds)
    heartbeat.cancel()
    return rig.fw.last_frame_s


def test_heartbeat_keeps_the_output_on() -> None:
    rig = Rig()
    start_and_keep_alive(rig, 10.0)
    assert rig.fw.link_losses == []
    assert rig.fw.channels[1].state == "on"
    assert rig.fw.channels[1].schedule.envelope_mA(rig.clock.now()) == 25.0


def test_silence_ramps_the_output_to_zero_within_the_fixture_limit() -> None:
    rig = Rig()
    last_frame = start_and_keep_alive(rig, 3.0)
    rig.clock.wait(5.0)  # the controller is silent
    assert rig.fw.link_losses == [pytest.approx(last_frame + SAFETY.supervision_timeout_s)]
    ch = rig.fw.channels[1]
    assert ch.state == "link_lost" and ch.program is None
    stop = rig.last_output_s(1, last_frame, last_frame + 5.0)
    # it ramps (output continues during the ramp), and ends within the limit
    assert stop > last_frame + SAFETY.supervision_timeout_s
    assert stop - last_frame <= SAFETY.link_loss_cutoff_max_s
    # and restarts only on a new START
    assert rig.send(MsgType.START, program="tens_hf", channels=[1], amplitude_mA=25.0).msg_type == 0x83


def test_any_valid_frame_counts_but_a_corrupt_one_does_not() -> None:
    rig = Rig()
    start_and_keep_alive(rig, 1.0)
    for _ in range(4):
        rig.clock.wait(0.6)
        rig.send(MsgType.STATUS)  # a valid frame of any kind restarts supervision
    assert rig.fw.link_losses == []
    from rig.protocol.framing import FrameError

    for _ in range(3):
        rig.clock.wait(0.5)
        rig.clock.run_process(rig.fw.handle(FrameError(2, "bad crc", 7)))
    assert len(rig.fw.link_losses) == 1


@pytest.mark.parametrize(
    ("fault", "expect_cut_after_s"), [("link_loss_cutoff_late", 3.0), ("link_loss_cutoff_missing", None)]
)
def test_link_loss_faults(fault: str, expect_cut_after_s: float | None) -> None:
    assert fault in FAULTS
    rig = Rig(firmware_class(fault))
    last_frame = start_and_keep_alive(rig, 2.0)
    rig.clock.wait(6.0)
    stop = rig.last_output_s(1, last_frame, last_frame + 6.0)
    if expect_cut_after_s is None:
        assert stop > last_frame + 5.9  # still stimulating with no controller
    else:
        assert stop - last_frame > SAFETY.link_loss_cutoff_max_s
        assert stop - last_frame == pytest.approx(expect_cut_after_s + SAFETY.link_loss_ramp_down_s, abs=0.05)
