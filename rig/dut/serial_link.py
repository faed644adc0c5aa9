"""DutLink over a serial port (USB-CDC on a real bench, a pseudo-terminal on the virtual one)."""

from __future__ import annotations

import math
from typing import Any

import serial

from rig.dut.client import ProtocolClient
from rig.errors import CeilingError, DutError, ProtocolError
from rig.interfaces import ChannelStatus, DeviceIdentity
from rig.protocol.messages import MsgType
from rig.serial_port import OPEN_ERRORS, open_serial


class _SerialStream:
    def __init__(self, ser: serial.SerialBase) -> None:
        self.ser = ser

    def write(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def read_available(self, timeout_s: float) -> bytes:
        self.ser.timeout = timeout_s
        first = self.ser.read(1)
        if not first:
            return b""
        waiting = self.ser.in_waiting
        return first + (self.ser.read(waiting) if waiting else b"")


class SerialDutLink:
    """The stimulator over serial. Refuses, before sending, any amplitude above the bench ceiling."""

    def __init__(self, port: str, *, baudrate: int, reply_timeout_s: float, ceiling_mA: float) -> None:
        self._port = port
        self.ceiling_mA = ceiling_mA
        try:
            self._ser = open_serial(port, baudrate=baudrate)
        except OPEN_ERRORS as exc:
            raise DutError(
                f"{port}: cannot open serial port: {exc} "
                "(expected the stimulator's USB-serial port, e.g. /dev/ttyACM0, and permission to open it)"
            ) from None
        self.client = ProtocolClient(_SerialStream(self._ser), port, reply_timeout_s)

    @property
    def port(self) -> str:
        return self._port

    def _request(self, kind: MsgType, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self.client.request(kind, payload)
        except (serial.SerialException, OSError) as exc:
            raise DutError(f"{self._port}: serial I/O failed during {kind.name}: {exc}") from None

    def _guard(self, amplitude_mA: float, what: str) -> None:
        if not math.isfinite(amplitude_mA) or amplitude_mA > self.ceiling_mA:
            raise CeilingError(
                f"{self._port}: rig interlock refused {what} at {amplitude_mA:g} mA: above the bench's "
                f"amplitude_ceiling_mA of {self.ceiling_mA:g} mA (nothing was sent to the device)"
            )

    def identify(self) -> DeviceIdentity:
        p = self._request(MsgType.IDENTIFY)
        try:
            return DeviceIdentity(
                model=str(p["model"]),
                serial=str(p["serial"]),
                firmware_version=str(p["firmware"]),
                protocol_version=int(p["protocol"]),
                channels=int(p["channels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"{self._port}: IDENTIFY reply lacks {exc} (got {p})") from None

    def list_programs(self) -> list[str]:
        p = self._request(MsgType.LIST_PROGRAMS)
        programs = p.get("programs")
        if not isinstance(programs, list):
            raise ProtocolError(f"{self._port}: LIST_PROGRAMS reply has no program list (got {p})")
        return [str(x) for x in programs]

    def start(self, program: str, channels: list[int], amplitude_mA: float, duration_s: float | None = None) -> None:
        self._guard(amplitude_mA, f"START {program} on channels {channels}")
        request: dict[str, object] = {"program": program, "channels": channels, "amplitude_mA": amplitude_mA}
        if duration_s is not None:
            request["duration_s"] = duration_s
        self._request(MsgType.START, request)

    def set_amplitude(self, channel: int, amplitude_mA: float) -> None:
        self._guard(amplitude_mA, f"SET_AMPLITUDE on channel {channel}")
        self._request(MsgType.SET_AMPLITUDE, {"channel": channel, "amplitude_mA": amplitude_mA})

    def stop(self, channels: list[int] | None = None) -> None:
        self._request(MsgType.STOP, {} if channels is None else {"channels": channels})

    def emergency_stop(self) -> None:
        self._request(MsgType.EMERGENCY_STOP)

    def keepalive(self) -> None:
        self._request(MsgType.KEEPALIVE)

    def status(self) -> list[ChannelStatus]:
        p = self._request(MsgType.STATUS)
        try:
            return [
                ChannelStatus(
                    channel=int(c["channel"]),
                    state=str(c["state"]),
                    program=c.get("program"),
                    amplitude_mA=float(c["amplitude_mA"]),
                    target_mA=float(c["target_mA"]),
                    elapsed_s=float(c["elapsed_s"]),
                    fault=None if c.get("fault") is None else str(c["fault"]),
                )
                for c in p["channels"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"{self._port}: STATUS reply malformed: {exc} (got {p})") from None

    def close(self) -> None:
        if self._ser.is_open:
            self._ser.close()
