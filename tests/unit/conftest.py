"""Small shared fixtures for the unit tests of the fixture loader, the pulse schedule and the firmware model.

Fixture names deliberately avoid the ones stimrig's pytest plugin owns (bench, dut, scope, load, measure,
program, channel, device_model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from rig.config import DeviceModel, Program, load_device, load_programs
from rig.config.loader import FIXTURES_DIR
from rig.protocol.framing import Frame
from rig.protocol.messages import MsgType
from simulator.clock import SimClock
from simulator.stimulator.firmware import Firmware

DEVICE_FILE = FIXTURES_DIR / "devices" / "cs4.yaml"


def crossings(x: np.ndarray, level: float, t0: float, dt: float, *, rising: bool = True) -> np.ndarray:
    """Instants where ``x`` crosses ``level`` upwards (or downwards), linearly interpolated between samples."""
    above = x > level
    idx = np.flatnonzero(~above[:-1] & above[1:]) if rising else np.flatnonzero(above[:-1] & ~above[1:])
    x0, x1 = x[idx], x[idx + 1]
    return t0 + (idx + (level - x0) / (x1 - x0)) * dt


def without_link_supervision(device: DeviceModel) -> DeviceModel:
    """The device with its link-loss supervision pushed out of reach (10^9 s).

    For tests of other behaviour that drive the firmware for minutes of bench time without a
    controller heartbeat; link loss itself is tested with the real fixture (test_link_loss.py).
    The copy bypasses validation on purpose: no real device may have such a timeout.
    """
    safety = device.safety.model_copy(update={"supervision_timeout_s": 1e9, "link_loss_cutoff_max_s": 1e9})
    return device.model_copy(update={"safety": safety})


@pytest.fixture(scope="session")
def device() -> DeviceModel:
    return without_link_supervision(load_device(DEVICE_FILE))


@pytest.fixture(scope="session")
def programs() -> dict[str, Program]:
    return {p.id: p for p in load_programs()}


@pytest.fixture
def make_program(programs: dict[str, Program]) -> Callable[..., Program]:
    """A validated variant of a shipped program: ``make_program("tens_hf", id="x", frequency_Hz=50)``."""

    def make(base: str, **changes: Any) -> Program:
        data = programs[base].model_dump(by_alias=True)
        data.update(changes)
        return Program.model_validate(data)

    return make


class FirmwareRig:
    """A virtual clock and one firmware model driven in-process (no pty)."""

    def __init__(self, fw_class: type[Firmware], device: DeviceModel, programs: dict[str, Program]) -> None:
        self.clock = SimClock()
        self.fw = fw_class(self.clock.env, device, programs)
        self.seq = 0

    def send(self, kind: MsgType, **payload: Any) -> Frame:
        self.seq = (self.seq + 1) % 256
        return self.clock.run_process(self.fw.handle(Frame(kind, self.seq, payload)))

    def start(self, program_id: str, channels: list[int], amplitude_mA: float) -> Frame:
        return self.send(MsgType.START, program=program_id, channels=channels, amplitude_mA=amplitude_mA)

    def render(self, ch: int, t0: float, dt: float, duration: float) -> np.ndarray:
        return self.fw.channels[ch].schedule.render_mA(t0, dt, round(duration / dt))

    def segment_start(self, ch: int) -> float:
        return self.fw.channels[ch].schedule.segments[0].t_start_s

    def snapshot(self) -> dict[int, list[tuple[Any, ...]]]:
        """Every channel's schedule, as plain values (segments are mutable dataclasses)."""
        return {n: [tuple(vars(s).values()) for s in ch.schedule.segments] for n, ch in self.fw.channels.items()}


@pytest.fixture
def make_rig(device: DeviceModel, programs: dict[str, Program]) -> Iterator[Callable[..., FirmwareRig]]:
    made: list[FirmwareRig] = []

    def make(
        fw_class: type[Firmware] = Firmware,
        *,
        dev: DeviceModel | None = None,
        extra_programs: list[Program] | None = None,
    ) -> FirmwareRig:
        progs = dict(programs)
        progs.update({p.id: p for p in extra_programs or []})
        rig = FirmwareRig(fw_class, dev or device, progs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.clock.close()


@pytest.fixture(scope="session")
def wave() -> SimpleNamespace:
    """Waveform helpers shared by the schedule and firmware tests."""
    return SimpleNamespace(crossings=crossings)
