"""Serves the simulated stimulator's protocol on a pseudo-terminal, like a USB-CDC port.

The rig opens the slave side with pyserial exactly as it opens /dev/ttyACM0 on a real bench.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from rig.protocol.framing import Frame, FrameDecoder, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, error_payload
from simulator.clock import SimClock
from simulator.pty_server import PtyServer
from simulator.stimulator.firmware import Firmware

log = logging.getLogger(__name__)


class PtyDeviceServer(PtyServer):
    thread_name = "dut-pty"

    def __init__(self, clock: SimClock, firmware: Firmware) -> None:
        super().__init__()
        self.clock = clock
        self.firmware = firmware
        self._decoder = FrameDecoder()
        self.frames_handled = 0

    def on_bytes(self, data: bytes) -> Iterator[bytes]:
        for item in self._decoder.feed(data):
            try:
                reply = encode_frame(self.clock.run_process(self.firmware.handle(item)))
            except Exception as exc:  # a model defect must not silence the device
                log.exception("simulated device failed to handle a frame")
                seq = getattr(item, "seq", 0) or 0
                detail = f"internal error: {type(exc).__name__}"
                reply = encode_frame(Frame(MsgType.ERROR, seq, error_payload(ErrorCode.BAD_PAYLOAD, detail)))
            self.frames_handled += 1
            yield reply
