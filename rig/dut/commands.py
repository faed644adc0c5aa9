"""The stimulator's commands (docs/protocol.md), the same over every transport.

A transport (serial_link, ble_link) provides ``_request(kind, payload) -> reply payload`` and ``port`` (how
messages name the device); the commands, their payloads, the parsing of replies and the rig's amplitude
interlock are here, once.
"""

from __future__ import annotations

import math
from typing import Any

from rig.errors import CeilingError, ProtocolError
from rig.interfaces import ChannelStatus, DeviceIdentity
from rig.protocol.messages import MsgType


class StimulatorCommands:
    """Refuses, before sending, any amplitude above the bench ceiling (``ceiling_mA``)."""

    _port: str
    ceiling_mA: float

    @property
    def port(self) -> str:
        return self._port

    def _request(self, kind: MsgType, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The transport and its particulars, for the run's records."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

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
