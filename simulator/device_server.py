"""Serves the simulated stimulator's protocol on a pseudo-terminal, like a USB-CDC port.

The rig opens the slave side with pyserial exactly as it opens /dev/ttyACM0 on a real bench.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty

from rig.protocol.framing import Frame, FrameDecoder, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, error_payload
from simulator.clock import SimClock
from simulator.stimulator.firmware import Firmware

log = logging.getLogger(__name__)


class PtyDeviceServer:
    def __init__(self, clock: SimClock, firmware: Firmware) -> None:
        self.clock = clock
        self.firmware = firmware
        self._master = -1
        self._slave = -1
        self.port = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_handled = 0

    def start(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name=f"dut-pty {self.port}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    def _serve(self) -> None:
        decoder = FrameDecoder()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not data:
                continue
            for item in decoder.feed(data):
                try:
                    reply = encode_frame(self.clock.run_process(self.firmware.handle(item)))
                except Exception as exc:  # a model defect must not silence the device
                    log.exception("simulated device failed to handle a frame")
                    seq = getattr(item, "seq", 0) or 0
                    detail = f"internal error: {type(exc).__name__}"
                    reply = encode_frame(Frame(MsgType.ERROR, seq, error_payload(ErrorCode.BAD_PAYLOAD, detail)))
                self.frames_handled += 1
                try:
                    os.write(self._master, reply)
                except OSError:
                    return
