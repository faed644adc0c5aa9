"""Wire framing: ``COBS(version | seq | type | payload | crc16) 0x00``.

- COBS (Consistent Overhead Byte Stuffing) removes every 0x00 from the body, so 0x00 marks frame ends
  and a receiver resynchronises at the next 0x00 after any corruption.
- ``crc16`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over version..payload, big-endian.
- ``payload`` is a UTF-8 JSON object (see ``messages``), at most MAX_PAYLOAD_BYTES.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cobs import cobs

PROTOCOL_VERSION = 1
MAX_PAYLOAD_BYTES = 2048
HEADER_BYTES = 3
CRC_BYTES = 2
MAX_BODY_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES + CRC_BYTES
# COBS adds at most one byte per 254, plus one.
MAX_ENCODED_BYTES = MAX_BODY_BYTES + MAX_BODY_BYTES // 254 + 2
DELIMITER = b"\x00"


class FrameError(ValueError):
    """A received frame is malformed. ``code`` is the ErrorCode the device answers with."""

    def __init__(self, code: int, detail: str, seq: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.seq = seq


@dataclass(frozen=True)
class Frame:
    msg_type: int
    seq: int
    payload: dict[str, Any] = field(default_factory=dict)
    version: int = PROTOCOL_VERSION


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(frame: Frame) -> bytes:
    """Frame -> bytes on the wire (including the trailing 0x00)."""
    if not 0 <= frame.seq <= 255 or not 0 <= frame.msg_type <= 255 or not 0 <= frame.version <= 255:
        raise ValueError("version, seq and msg_type must each fit in one byte")
    if not isinstance(frame.payload, dict) or not all(isinstance(k, str) for k in frame.payload):
        raise ValueError("payload must be a JSON object: a dict with string keys")
    try:
        text = json.dumps(frame.payload, separators=(",", ":"), sort_keys=True, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"payload cannot be encoded as JSON: {exc}") from None
    payload = text.encode("utf-8")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    body = bytes((frame.version, frame.seq, frame.msg_type)) + payload
    body += crc16(body).to_bytes(2, "big")
    return cobs.encode(body) + DELIMITER


# Error codes used by the framing layer (mirrors messages.ErrorCode; kept here to avoid a cycle).
_BAD_FRAME, _BAD_CRC, _BAD_VERSION, _BAD_PAYLOAD = 1, 2, 3, 5


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def decode_frame(encoded: bytes) -> Frame:
    """Bytes of one frame (without the 0x00 delimiter) -> Frame, or FrameError."""
    if len(encoded) > MAX_ENCODED_BYTES:
        raise FrameError(_BAD_FRAME, f"frame of {len(encoded)} bytes exceeds {MAX_ENCODED_BYTES}")
    try:
        body = cobs.decode(encoded)
    except cobs.DecodeError as exc:
        raise FrameError(_BAD_FRAME, f"COBS decoding failed: {exc}") from None
    if len(body) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(_BAD_FRAME, f"frame body of {len(body)} bytes is shorter than header + CRC")
    seq = body[1]
    received_crc = int.from_bytes(body[-2:], "big")
    computed = crc16(body[:-2])
    if received_crc != computed:
        raise FrameError(_BAD_CRC, f"CRC mismatch: frame says {received_crc:#06x}, computed {computed:#06x}", seq)
    version, seq, msg_type = body[0], body[1], body[2]
    if version != PROTOCOL_VERSION:
        raise FrameError(_BAD_VERSION, f"protocol version {version} (expected {PROTOCOL_VERSION})", seq)
    raw = body[HEADER_BYTES:-2]
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise FrameError(_BAD_PAYLOAD, f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}", seq)
    try:
        payload = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant) if raw else {}
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(_BAD_PAYLOAD, f"payload is not UTF-8 JSON: {exc}", seq) from None
    if not isinstance(payload, dict):
        raise FrameError(_BAD_PAYLOAD, f"payload must be a JSON object, got {type(payload).__name__}", seq)
    return Frame(msg_type=msg_type, seq=seq, payload=payload, version=version)


class FrameDecoder:
    """Incremental decoder for a byte stream: feed bytes, iterate decoded frames or errors.

    An over-long run without a delimiter is discarded up to the next 0x00 and reported once,
    so garbage on the line can never grow the buffer without bound.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflowed = False

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        self._buf += data
        while True:
            end = self._buf.find(DELIMITER)
            if end < 0:
                if len(self._buf) > MAX_ENCODED_BYTES:
                    self._buf.clear()
                    if not self._overflowed:
                        self._overflowed = True
                        yield FrameError(_BAD_FRAME, f"more than {MAX_ENCODED_BYTES} bytes without a delimiter")
                return
            chunk = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._overflowed:
                # tail of the over-long run: already reported
                self._overflowed = False
                continue
            if not chunk:
                continue  # empty frame: idle delimiter, allowed for line resynchronisation
            try:
                yield decode_frame(chunk)
            except FrameError as err:
                yield err
