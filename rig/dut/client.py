"""Request/reply client of the stimulator protocol over any byte stream (serial now, BLE later)."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from rig.errors import DeviceRefused, DutError, LinkDown, ProtocolError
from rig.protocol.framing import Frame, FrameDecoder, FrameError, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, reply_type


class ByteStream(Protocol):
    def write(self, data: bytes) -> Any: ...

    def read_available(self, timeout_s: float) -> bytes:
        """Whatever arrived within ``timeout_s`` (possibly nothing)."""
        ...


class ProtocolClient:
    def __init__(self, stream: ByteStream, port: str, reply_timeout_s: float) -> None:
        self.stream = stream
        self.port = port
        self.reply_timeout_s = reply_timeout_s
        self._decoder = FrameDecoder()
        self._seq = 0
        # the heartbeat may send a KEEPALIVE from another thread: one exchange on the line at a time
        self._lock = threading.RLock()

    def _next_seq(self) -> int:
        # 1..255: seq 0 is what the device answers a frame whose seq it could not read (broken COBS).
        self._seq = self._seq % 255 + 1
        return self._seq

    def request(self, kind: MsgType, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return the reply payload; refuse, time out or fail loudly."""
        with self._lock:
            frame = Frame(int(kind), self._next_seq(), payload or {})
            reply = self.transact(encode_frame(frame), kind.name, frame.seq)
        if reply.msg_type == MsgType.ERROR:
            p = reply.payload
            if p.get("code") == ErrorCode.NOT_CONNECTED:
                raise LinkDown(self.port, kind.name, str(p.get("detail", "")))
            raise DeviceRefused(
                self.port, kind.name, int(p.get("code", -1)), str(p.get("name", "?")), str(p.get("detail", ""))
            )
        if reply.msg_type != reply_type(kind):
            raise ProtocolError(
                f"{self.port}: reply to {kind.name} has type {reply.msg_type:#04x} "
                f"(expected {reply_type(kind):#04x})"
            )
        return reply.payload

    def transact(self, raw: bytes, what: str, seq: int | None) -> Frame:
        """Write raw bytes and wait for the reply frame carrying ``seq`` (or any reply if None)."""
        with self._lock:
            return self._transact(raw, what, seq)

    def _transact(self, raw: bytes, what: str, seq: int | None) -> Frame:
        self.stream.write(raw)
        deadline = time.monotonic() + self.reply_timeout_s
        data = b""  # first look at frames already buffered, then read
        while True:
            for item in self._decoder.feed(data):
                if isinstance(item, FrameError):
                    raise ProtocolError(f"{self.port}: reply to {what} is corrupt: {item.detail}")
                if seq is None or item.seq == seq or (item.msg_type == MsgType.ERROR and item.seq == 0):
                    return item
                # a stale reply (or error) to an earlier, abandoned request: never the answer to this one
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DutError(
                    f"{self.port}: no reply to {what} within {self.reply_timeout_s:g} s "
                    "(expected a reply frame: is the stimulator powered, and on this port?)"
                )
            data = self.stream.read_available(min(remaining, 0.05))
