"""The stimulator's GATT service, as the simulated device serves it with bumble.

| Characteristic | UUID (rig.dut.ble_uuids) | Properties | Value |
|---|---|---|---|
| control point | CONTROL_POINT_UUID | write (with response); encrypted link | request frames (docs/protocol.md) |
| status | STATUS_UUID | notify; subscribing needs an encrypted link | reply frames, in pieces of <= ATT_MTU - 3 bytes |
| identity | IDENTITY_UUID | read; open to any central | UTF-8 JSON ``{"firmware","model","serial"}`` |

bumble adds the Client Characteristic Configuration descriptor (CCCD) of the status characteristic
itself when the service is added to a device.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bumble.gatt import Characteristic, CharacteristicValue, Service

from rig.dut.ble_uuids import CONTROL_POINT_UUID, IDENTITY_UUID, SERVICE_UUID, STATUS_UUID, advertised_name

#: called with (bumble connection, bytes written) for each write to the control point
ControlPointWriter = Callable[[Any, bytes], None]


@dataclass(frozen=True)
class DeviceInfo:
    """What the identity characteristic tells before any frame is exchanged (and what IDENTIFY says)."""

    model: str
    serial: str
    firmware: str

    def identity_json(self) -> bytes:
        text = json.dumps({"model": self.model, "serial": self.serial, "firmware": self.firmware},
                          separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return text.encode("utf-8")

    def advertised_name(self) -> str:
        """The GAP device name the device advertises, e.g. ``CS-4 SIM-CS4-000042``."""
        return advertised_name(self.model, self.serial)


class StimulatorGattService:
    """The bumble ``Service`` with its three characteristics (``service``, ``control_point``, ``status``,
    ``identity``). Writes to the control point go to ``on_control_point_write``."""

    def __init__(self, info: DeviceInfo, on_control_point_write: ControlPointWriter, *,
                 requires_encryption: bool = True) -> None:
        self.info = info
        self._on_write = on_control_point_write
        write_permission = Characteristic.Permissions.WRITEABLE
        if requires_encryption:  # an LE link is encrypted only with keys from pairing: a bonded controller
            write_permission |= Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        self.control_point: Characteristic[bytes] = Characteristic(
            CONTROL_POINT_UUID,
            Characteristic.Properties.WRITE,
            write_permission,
            CharacteristicValue[bytes](write=self._write),
        )
        self.status: Characteristic[bytes] = Characteristic(
            STATUS_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        self.identity: Characteristic[bytes] = Characteristic(
            IDENTITY_UUID,
            Characteristic.Properties.READ,
            Characteristic.Permissions.READABLE,
            info.identity_json(),
        )
        self.service = Service(SERVICE_UUID, [self.control_point, self.status, self.identity])

    def _write(self, connection: Any, value: bytes) -> None:
        self._on_write(connection, bytes(value))
