"""UUIDs of the stimulator's GATT service (docs/protocol.md, section 2, BLE transport).

The service carries the same byte stream of frames as the serial port: the rig writes request bytes to
the control point (write with response) and the device notifies reply bytes on the status
characteristic. Frames are self-delimiting, so they may be split across ATT packets of any size.

All four UUIDs are vendor-specific 128-bit UUIDs sharing one random base; they differ in the 16-bit
field of bytes 2-3 (``7cfbXXXX-...``), as is customary for a vendor service. Lower case, as bleak
reports them.
"""

from __future__ import annotations

from typing import Final

_BASE: Final = "7cfb{:04x}-6e6a-4ba0-a371-8022645c92fd"

#: The stimulator service (primary).
SERVICE_UUID: Final = _BASE.format(0x0001)
#: Control point: request bytes from the rig. Properties: write (with response).
CONTROL_POINT_UUID: Final = _BASE.format(0x0002)
#: Status: reply (and, later, telemetry) bytes from the device. Properties: notify.
STATUS_UUID: Final = _BASE.format(0x0003)
#: Device identity: UTF-8 JSON ``{"model", "serial", "firmware"}``. Properties: read, open without bonding.
IDENTITY_UUID: Final = _BASE.format(0x0004)

def advertised_name(model: str, serial: str) -> str:
    """The name the device advertises (complete local name): ``<model> <serial>``, e.g. ``CS-4 SN12345``."""
    return f"{model} {serial}"


#: The ATT MTU the rig asks for after connecting (247: 244 bytes of value per notification or write,
#: the common maximum of BLE 4.2+ stacks that fills one LL packet with data length extension).
PREFERRED_MTU: Final = 247
