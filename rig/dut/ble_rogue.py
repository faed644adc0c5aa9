"""A central the DUT never bonded with (a rogue controller in the next room), for the security test and
for ``stimrig bench check`` (which reads the identity and pairs with nothing).

It uses the same bleak calls as the rig's own transport, on a second adapter, and records what the device
let it do: read the identity, subscribe to the status, write request frames to the control point, pair.
Each attempt's outcome is kept (``Attempt``), never raised: the test decides what is acceptable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError

from rig.dut.ble_central import CALL_MARGIN_S, BleCentral
from rig.dut.ble_uuids import CONTROL_POINT_UUID, IDENTITY_UUID, STATUS_UUID
from rig.errors import DutError
from rig.protocol.framing import Frame, encode_frame
from rig.protocol.messages import MsgType

#: a static random address of its own (two top bits set), not the rig's controller
ROGUE_ADDRESS = "C0:0B:AD:00:00:66"
#: ATT errors that are the device refusing an unsecured link: insufficient authentication (0x05),
#: authorization (0x08), encryption (0x0F), encryption key size (0x0C)
SECURITY_REFUSALS = frozenset({0x05, 0x08, 0x0C, 0x0F})


@dataclass(frozen=True)
class Attempt:
    action: str
    accepted: bool
    detail: str


@dataclass
class UnbondedCentral:
    adapter: str
    device_name: str
    scan_timeout_s: float = 5.0
    timeout_s: float = 5.0
    attempts: list[Attempt] = field(default_factory=list)

    def __enter__(self) -> UnbondedCentral:
        self._central = BleCentral(self.adapter, address=ROGUE_ADDRESS)
        try:
            device = self._central.scan_for(name=self.device_name, address=None, timeout_s=self.scan_timeout_s,
                                            who=f"ble:{self.device_name}")
            self._client: BleakClient = self._central.client(device, timeout=self.timeout_s)
            try:
                self._central.run(self._client.connect(), self.timeout_s + CALL_MARGIN_S)
            except Exception as exc:
                raise DutError(f"ble:{self.device_name}: connect from a second central on {self.adapter!r} failed: "
                               f"{exc or type(exc).__name__} (expected the device to accept a second connection)"
                               ) from None
        except BaseException:
            self._central.close()
            raise
        self.notifications: list[bytes] = []
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # already gone
            self._central.run(self._client.disconnect(), self.timeout_s)
        self._central.close()

    def _try(self, action: str, coroutine: Any) -> Attempt:
        """Accepted, or refused by the device's security (an ATT insufficient encryption / authentication /
        authorization error, or a refused pairing). Anything else (a timeout, a dropped connection) proves
        nothing about the device's security: DutError, so the test ends ERROR, never PASS."""
        try:
            result = self._central.run(coroutine, self.timeout_s)
            attempt = Attempt(action, True, "" if result is None else repr(bytes(result))[:120])
        except BleakGATTProtocolError as exc:
            if exc.code not in SECURITY_REFUSALS:
                raise DutError(f"ble:{self.device_name}: rogue central's {action}: ATT error {exc} (expected it "
                               "accepted, or refused for lack of an encrypted link)") from None
            attempt = Attempt(action, False, str(exc))
        except (BleakError, TimeoutError, OSError) as exc:
            if "pairing refused" not in str(exc):
                raise DutError(f"ble:{self.device_name}: rogue central's {action} failed: "
                               f"{exc or type(exc).__name__} (expected it accepted, or refused by the device's "
                               "security)") from None
            attempt = Attempt(action, False, str(exc))
        self.attempts.append(attempt)
        return attempt

    def read_identity(self) -> Attempt:
        return self._try("read identity", self._client.read_gatt_char(IDENTITY_UUID))

    def identity_bytes(self) -> bytes:
        """The identity characteristic's value (DutError naming the device if it cannot be read)."""
        try:
            return bytes(self._central.run(self._client.read_gatt_char(IDENTITY_UUID), self.timeout_s))
        except (BleakError, TimeoutError, OSError) as exc:
            raise DutError(f"ble:{self.device_name}: read of the identity characteristic failed: {exc}") from None

    def subscribe_status(self) -> Attempt:
        def keep(_characteristic: Any, data: bytearray) -> None:
            self.notifications.append(bytes(data))

        return self._try("subscribe to status", self._client.start_notify(STATUS_UUID, keep))

    def write_request(self, kind: MsgType, payload: dict[str, Any], seq: int) -> Attempt:
        """One request frame to the control point (write with response)."""
        frame = encode_frame(Frame(int(kind), seq, payload))
        return self._try(f"write {kind.name} {payload}",
                         self._client.write_gatt_char(CONTROL_POINT_UUID, frame, response=True))

    def pair(self) -> Attempt:
        return self._try("pair", self._client.pair())
