"""Serves the simulated stimulator's protocol on a pseudo-terminal, like a USB-CDC port.

The rig opens the slave side with pyserial exactly as it opens /dev/ttyACM0 on a real bench. With a
radio (simulator.bench_radio), the pty is the controller bridge's port: each request and its reply
cross the simulated BLE link, and while the link is down the bridge itself answers NOT_CONNECTED
(docs/protocol.md).

Every request goes over the air with its target's address (the device's serial number). Other devices
within reach of the controller (``neighbours``, e.g. the bench's bystander) hear it too, as their own
link margin allows; their address filter must drop it.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from typing import Any

import simpy

from rig.protocol.framing import Frame, FrameDecoder, FrameError, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, error_payload
from simulator.bench_radio import SimRadio
from simulator.clock import SimClock
from simulator.pty_server import PtyServer
from simulator.stimulator.firmware import Firmware

log = logging.getLogger(__name__)


class PtyDeviceServer(PtyServer):
    thread_name = "dut-pty"

    def __init__(self, clock: SimClock, firmware: Firmware, radio: SimRadio | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.radio = radio
        self.firmware = firmware
        self.neighbours: list[tuple[Firmware, SimRadio]] = []  # other devices that hear this port's requests
        self._decoder = FrameDecoder()
        self.frames_handled = 0

    def on_bytes(self, data: bytes) -> Iterator[bytes]:
        for item in self._decoder.feed(data):
            try:
                reply = encode_frame(self.clock.run_process(self._exchange(item)))
            except Exception as exc:  # a model defect must not silence the device
                log.exception("simulated device failed to handle a frame")
                seq = getattr(item, "seq", 0) or 0
                detail = f"internal error: {type(exc).__name__}"
                reply = encode_frame(Frame(MsgType.ERROR, seq, error_payload(ErrorCode.BAD_PAYLOAD, detail)))
            self.frames_handled += 1
            yield reply

    def _exchange(self, item: Frame | FrameError) -> Generator[simpy.Event, Any, Frame]:
        """The request across the radio, the device's handling, the reply back across the radio."""
        if self.radio is not None and not (yield from self.radio.carry()):
            return self._not_connected(item, "the request was not delivered")
        if isinstance(item, Frame):
            self._overheard(item)
        reply = yield self.clock.env.process(self.firmware.handle(item))
        if self.radio is not None and not (yield from self.radio.carry()):
            return self._not_connected(item, "the link was lost before the reply arrived")
        return reply

    def _overheard(self, request: Frame) -> None:
        payload_bytes = len(encode_frame(request))
        for firmware, radio in self.neighbours:
            if radio.overhears(payload_bytes):
                self.clock.env.process(firmware.overhear(request, self.firmware.address))

    def _not_connected(self, item: Frame | FrameError, detail: str) -> Frame:
        seq = item.seq if item.seq is not None else 0
        down = self.radio.losses[-1] if self.radio is not None and self.radio.losses else None
        since = f" (connection lost at {down:.3f} s bench time)" if down is not None else ""
        return Frame(MsgType.ERROR, seq, error_payload(ErrorCode.NOT_CONNECTED, f"{detail}{since}"))
