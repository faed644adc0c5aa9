"""The bench's bystander: a second stimulator of the DUT's model beside it (the next patient), on a
controller port of its own, with one output driving a fixed resistor that a scope channel watches.

It runs the same firmware build as the DUT (so a seeded fault is in both). Each device hears the
requests the controller addresses to the other, as its own link margin allows (simulator.device_server),
and its address filter must drop them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import simpy

from rig.config.bench import BystanderConfig
from rig.config.device import DeviceModel
from rig.config.link import LinkProfiles
from rig.config.program import Program
from simulator.bench_radio import SimRadio
from simulator.clock import SimClock
from simulator.device_server import PtyDeviceServer
from simulator.loads import Resistive
from simulator.stimulator.firmware import Firmware

OTHER_OUTPUTS_OHM = 500.0  # the bystander's other outputs each drive their own 500 ohm dummy


def next_serial(serial: str) -> str:
    """The serial number of the unit after ``serial`` (its trailing number + 1, same width)."""
    match = re.search(r"(\d+)$", serial)
    if match is None:
        return f"{serial}-B"
    digits = match.group(1)
    return f"{serial[: match.start()]}{int(digits) + 1:0{len(digits)}d}"


@dataclass
class SimBystander:
    config: BystanderConfig
    device: DeviceModel
    firmware: Firmware
    radio: SimRadio
    server: PtyDeviceServer

    @classmethod
    def build(
        cls, config: BystanderConfig, device: DeviceModel, programs: list[Program], firmware_class: type[Firmware], *,
        clock: SimClock, profiles: LinkProfiles, rng: np.random.Generator, path_loss_dB: float,
    ) -> SimBystander:
        if config.channel > device.channels:
            raise ValueError(f"bystander.channel {config.channel}: the {device.model} has {device.channels} outputs")
        unit = device.model_copy(
            update={"identity": device.identity.model_copy(update={"serial": next_serial(device.identity.serial)})}
        )
        env: simpy.Environment = clock.env
        firmware = firmware_class(env, unit, {p.id: p for p in programs})
        firmware.sense = lambda ch: config.load_ohm if ch == config.channel else OTHER_OUTPUTS_OHM
        radio = SimRadio(
            env, unit, profiles, rng, path_loss_dB=path_loss_dB,
            supervision_timeout_s=firmware.supervision_timeout_s(), on_link_lost=firmware.link_disconnected,
        )
        return cls(config, unit, firmware, radio, PtyDeviceServer(clock, firmware, radio))

    def render_load_V(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        """Volts across the bystander's resistor (the caller holds the clock's lock)."""
        current = self.firmware.channels[self.config.channel].schedule.render_mA(t0_s, dt_s, n)
        return Resistive(self.config.load_ohm).render_voltage_V(current, dt_s, self.device.output.compliance_voltage_V)
