"""Message types, error codes and request payload schemas.

A reply carries the request's ``seq``. Success: ``type = request type | 0x80``. Failure: type ERROR
with ``{"code": int, "name": str, "detail": str}``. Requests are validated against REQUEST_SCHEMAS;
anything else is refused with an error reply and never changes the output.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPLY_FLAG = 0x80


class MsgType(IntEnum):
    IDENTIFY = 0x01
    LIST_PROGRAMS = 0x02
    START = 0x03
    SET_AMPLITUDE = 0x04
    STOP = 0x05
    EMERGENCY_STOP = 0x06
    STATUS = 0x07
    KEEPALIVE = 0x08
    ERROR = 0x7F


class ErrorCode(IntEnum):
    BAD_FRAME = 1
    BAD_CRC = 2
    UNSUPPORTED_VERSION = 3
    UNKNOWN_COMMAND = 4
    BAD_PAYLOAD = 5
    OUT_OF_RANGE = 6
    UNKNOWN_PROGRAM = 7
    BAD_CHANNEL = 8
    INVALID_STATE = 9
    FAULT_ACTIVE = 10
    NOT_CONNECTED = 11  # from the controller bridge, not the device: no radio connection, nothing delivered


def reply_type(request: int) -> int:
    return request | REPLY_FLAG


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Empty(_Payload):
    pass


class StartRequest(_Payload):
    program: str = Field(min_length=1, max_length=32)
    channels: list[int] = Field(min_length=1, max_length=16)
    amplitude_mA: float = Field(allow_inf_nan=False)
    duration_s: float | None = Field(default=None, allow_inf_nan=False)  # treatment time; None: the program's


class SetAmplitudeRequest(_Payload):
    channel: int
    amplitude_mA: float = Field(allow_inf_nan=False)


class StopRequest(_Payload):
    channels: list[int] | None = Field(default=None, max_length=16)


REQUEST_SCHEMAS: dict[MsgType, type[_Payload]] = {
    MsgType.IDENTIFY: Empty,
    MsgType.LIST_PROGRAMS: Empty,
    MsgType.START: StartRequest,
    MsgType.SET_AMPLITUDE: SetAmplitudeRequest,
    MsgType.STOP: StopRequest,
    MsgType.EMERGENCY_STOP: Empty,
    MsgType.STATUS: Empty,
    MsgType.KEEPALIVE: Empty,
}


class PayloadError(ValueError):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_payload(msg_type: int, payload: dict[str, Any]) -> tuple[MsgType, _Payload]:
    """Validate a request; raise PayloadError(UNKNOWN_COMMAND | BAD_PAYLOAD) otherwise."""
    try:
        kind = MsgType(msg_type)
    except ValueError:
        raise PayloadError(ErrorCode.UNKNOWN_COMMAND, f"unknown message type {msg_type:#04x}") from None
    schema = REQUEST_SCHEMAS.get(kind)
    if schema is None:
        raise PayloadError(ErrorCode.UNKNOWN_COMMAND, f"{kind.name} is not a request")
    try:
        # JSON numbers: accept an int where a float is declared, as JSON does not tell them apart.
        return kind, schema.model_validate(_ints_to_floats(schema, payload))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "(payload)"
        raise PayloadError(ErrorCode.BAD_PAYLOAD, f"{kind.name}: field '{field}': {first['msg']}") from None


def _ints_to_floats(schema: type[_Payload], payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for name, info in schema.model_fields.items():
        value = out.get(name)
        if info.annotation is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                out[name] = float(value)
            except OverflowError:
                detail = f"field '{name}': integer beyond the range of a number"
                raise PayloadError(ErrorCode.BAD_PAYLOAD, detail) from None
    return out


def error_payload(code: ErrorCode, detail: str) -> dict[str, Any]:
    # UTF-8 is at most 4 bytes a character: 200 characters always fit in a reply frame.
    return {"code": int(code), "name": code.name, "detail": detail[:200]}
