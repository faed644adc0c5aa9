"""The virtual bench's radio: the BLE connection between the controller bridge (the rig's port) and
the simulated stimulator, with the path loss the emulated RF attenuator sets plus the cable loss.

A conducted bench (controller and device RF ports cabled through the attenuator, both shielded) has no
shadowing, no body in the path, no multipath bursts and no interference: the loss is what the
attenuator and the cabling make it, and the packet error rate follows from the link margin alone.
Connection events and supervision come from the device fixture (simulator.link, docs/link-model.md).
The environment profile only maps distance to path loss (rig.radio). Fleet simulations, which model
rooms rather than a cabled bench, use the profile's shadowing, body loss and bursts.

Every frame the rig sends travels as a PDU in the next connection events until acknowledged, and so
does the device's reply. When the link-layer supervision timeout expires the connection is lost: the
device is told at once (its link-loss cutoff), the bridge answers every request with NOT_CONNECTED
until the device is heard again (the central reconnects at the first advertisement it receives).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from rig.config.device import DeviceModel
from rig.config.link import BleConnectionParams, LinkProfiles
from simulator.link import BleConnection, LinkBudget, packet_error_rate

ADVERTISING_INTERVAL_S = 0.1  # ASSUMED: the device advertises every 100 ms while disconnected
ADVERTISING_PDU_BYTES = 31  # legacy advertising payload (BLE core spec, the largest)


class SimRadio:
    def __init__(
        self,
        env: simpy.Environment,
        device: DeviceModel,
        profiles: LinkProfiles,
        rng: np.random.Generator,
        *,
        path_loss_dB: float,
        supervision_timeout_s: float,
        on_link_lost: Callable[[], None],
    ) -> None:
        """``supervision_timeout_s``: what the device's firmware asks for when the connection is made
        (its link-supervision seam), so a defective timer shows on the link layer too."""
        self.env = env
        self.rng = rng
        self.path_loss_dB = float(path_loss_dB)
        self.on_link_lost = on_link_lost
        self.params = BleConnectionParams(
            interval_s=device.radio.connection_interval_ms / 1000.0,
            peripheral_latency=device.radio.peripheral_latency,
            supervision_timeout_s=supervision_timeout_s,
        )
        self.budget = LinkBudget(
            tx_power_dBm=device.radio.tx_power_dBm, sensitivity_dBm=profiles.phy(device.radio.phy).sensitivity_dBm
        )
        self.connection = BleConnection(self.params, rng, self.budget, start_s=env.now)
        self._waiting: dict[int, simpy.Event] = {}
        self.losses: list[float] = []  # bench times the connection was lost
        self.reconnections: list[float] = []
        # others told of each loss (after on_link_lost) and reconnection, e.g. the device's BLE radio
        self.loss_listeners: list[Callable[[], None]] = []
        self.reconnect_listeners: list[Callable[[], None]] = []
        self.events = 0
        env.process(self._run())

    def set_path_loss_dB(self, path_loss_dB: float) -> None:
        self.path_loss_dB = float(path_loss_dB)

    def overhears(self, payload_bytes: int) -> bool:
        """Whether a PDU the controller sent to another device reaches this device's receiver now:
        while connected, with the packet error rate of this device's own link margin."""
        if self.connection.lost:
            return False
        per = float(packet_error_rate(float(self.budget.margin_dB(self.path_loss_dB)), payload_bytes))
        return bool(self.rng.random() >= per)

    def carry(self) -> Generator[simpy.Event, Any, bool]:
        """One PDU across the link (simpy sub-process): True once acknowledged, False if the link is
        down or goes down first."""
        if self.connection.lost:
            return False
        command = self.connection.submit(self.env.now)
        delivered = self.env.event()
        self._waiting[command] = delivered
        ok = yield delivered
        return bool(ok)

    def _run(self) -> Generator[simpy.Event, Any, None]:
        while True:
            conn = self.connection
            if conn.lost:
                yield self.env.timeout(ADVERTISING_INTERVAL_S)
                per = float(packet_error_rate(float(self.budget.margin_dB(self.path_loss_dB)), ADVERTISING_PDU_BYTES))
                if self.rng.random() >= per:
                    conn.reconnect(self.env.now)
                    self.reconnections.append(self.env.now)
                    for listener in self.reconnect_listeners:
                        listener()
                continue
            yield self.env.timeout(max(0.0, conn.next_event_s - self.env.now))
            outcome = conn.event(self.path_loss_dB)
            self.events += 1
            for delivery in outcome.delivered:
                self._waiting.pop(delivery.command_id).succeed(True)
            for command in outcome.dropped:
                self._waiting.pop(command).succeed(False)
            if outcome.lost:
                self.losses.append(conn.lost_at_s if conn.lost_at_s is not None else self.env.now)
                self.on_link_lost()
                for listener in self.loss_listeners:
                    listener()
