"""DutLink over a serial port (USB-CDC on a real bench, a pseudo-terminal on the virtual one)."""

from __future__ import annotations

from typing import Any

import serial

from rig.dut.client import ProtocolClient
from rig.dut.commands import StimulatorCommands
from rig.errors import DutError
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


class SerialDutLink(StimulatorCommands):
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

    def _request(self, kind: MsgType, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self.client.request(kind, payload)
        except (serial.SerialException, OSError) as exc:
            raise DutError(f"{self._port}: serial I/O failed during {kind.name}: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {"transport": "serial", "baudrate": self._ser.baudrate}

    def close(self) -> None:
        if self._ser.is_open:
            self._ser.close()
