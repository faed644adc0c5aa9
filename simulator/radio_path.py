"""A request's way from the controller to the simulated device and the reply's way back, over the radio.

Both device transports of the virtual bench use it: the controller bridge's pty (simulator.device_server)
and the device's own GATT service (simulator.ble.air). The request crosses the simulated BLE link
(simulator.bench_radio: connection events, retransmission, supervision timeout), the firmware handles it,
and the reply crosses back. Every request goes over the air with its target's address (the device's
serial number): other devices within reach of the controller (``neighbours``, e.g. the bench's
bystander) hear it too, as their own link margin allows, and their address filter must drop it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from rig.protocol.framing import Frame, FrameError, encode_frame
from simulator.bench_radio import SimRadio
from simulator.clock import SimClock
from simulator.stimulator.firmware import Firmware


@dataclass(frozen=True)
class LostInTheAir:
    """The exchange did not complete: the link was down, or went down before the reply arrived."""

    detail: str
    since_s: float | None  # bench time the connection was lost (None if not known)


class RadioPath:
    def __init__(self, clock: SimClock, firmware: Firmware, radio: SimRadio | None) -> None:
        self.clock = clock
        self.firmware = firmware
        self.radio = radio
        self.neighbours: list[tuple[Firmware, SimRadio]] = []  # other devices that hear these requests

    def exchange(self, item: Frame | FrameError) -> Frame | LostInTheAir:
        """Carry one request across and its reply back, letting bench time run meanwhile."""
        result: Frame | LostInTheAir = self.clock.run_process(self._exchange(item))
        return result

    def _exchange(self, item: Frame | FrameError) -> Generator[simpy.Event, Any, Frame | LostInTheAir]:
        if self.radio is not None and not (yield from self.radio.carry()):
            return self._lost("the request was not delivered")
        if isinstance(item, Frame):
            self._overheard(item)
        reply = yield self.clock.env.process(self.firmware.handle(item))
        if self.radio is not None and not (yield from self.radio.carry()):
            return self._lost("the link was lost before the reply arrived")
        return reply

    def _overheard(self, request: Frame) -> None:
        payload_bytes = len(encode_frame(request))
        for firmware, radio in self.neighbours:
            if radio.overhears(payload_bytes):
                self.clock.env.process(firmware.overhear(request, self.firmware.address))

    def _lost(self, detail: str) -> LostInTheAir:
        losses = self.radio.losses if self.radio is not None else []
        return LostInTheAir(detail, losses[-1] if losses else None)
