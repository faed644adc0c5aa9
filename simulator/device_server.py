"""Serves the simulated stimulator's protocol on a pseudo-terminal, like a USB-CDC port.

The rig opens the slave side with pyserial exactly as it opens /dev/ttyACM0 on a real bench. With a
radio (simulator.bench_radio), the pty is the controller bridge's port: each request and its reply
cross the simulated BLE link, and while the link is down the bridge itself answers NOT_CONNECTED
(docs/protocol.md).

The way across the radio (and what other devices overhear) is simulator.radio_path's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from rig.protocol.framing import Frame, FrameDecoder, FrameError, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, error_payload
from simulator.bench_radio import SimRadio
from simulator.clock import SimClock
from simulator.pty_server import PtyServer
from simulator.radio_path import LostInTheAir, RadioPath
from simulator.stimulator.firmware import Firmware

log = logging.getLogger(__name__)


class PtyDeviceServer(PtyServer):
    thread_name = "dut-pty"

    def __init__(self, clock: SimClock, firmware: Firmware, radio: SimRadio | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.radio = radio
        self.firmware = firmware
        self.path = RadioPath(clock, firmware, radio)
        self.neighbours = self.path.neighbours  # other devices that hear this port's requests
        self._decoder = FrameDecoder()
        self.frames_handled = 0

    def on_bytes(self, data: bytes) -> Iterator[bytes]:
        for item in self._decoder.feed(data):
            try:
                outcome = self.path.exchange(item)
                reply = encode_frame(self._not_connected(item, outcome) if isinstance(outcome, LostInTheAir)
                                     else outcome)
            except Exception as exc:  # a model defect must not silence the device
                log.exception("simulated device failed to handle a frame")
                seq = getattr(item, "seq", 0) or 0
                detail = f"internal error: {type(exc).__name__}"
                reply = encode_frame(Frame(MsgType.ERROR, seq, error_payload(ErrorCode.BAD_PAYLOAD, detail)))
            self.frames_handled += 1
            yield reply

    @staticmethod
    def _not_connected(item: Frame | FrameError, lost: LostInTheAir) -> Frame:
        """The bridge's own answer while it has no connection to the device."""
        seq = item.seq if item.seq is not None else 0
        since = f" (connection lost at {lost.since_s:.3f} s bench time)" if lost.since_s is not None else ""
        return Frame(MsgType.ERROR, seq, error_payload(ErrorCode.NOT_CONNECTED, f"{lost.detail}{since}"))
