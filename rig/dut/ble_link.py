"""DutLink over BLE: the stimulator's GATT service (docs/protocol.md, section 2, BLE transport), with bleak.

The same frames as over serial: each request frame is written to the control point in one ATT write with
response (so the write response acknowledges the whole request, and a dropped link never leaves half a
frame at the device); replies arrive as notifications on the status characteristic, in pieces the
protocol's stream decoder reassembles. The commands themselves are rig.dut.commands', shared with serial.

Link loss is a link event, not a crash: when bleak reports the disconnection, the link reports it
(``on_link_event``) and every request fails at once with LinkDown until a reconnection succeeds. The
reconnection policy (bench config ``dut.ble``): at the first request after a loss, and then at most every
``reconnect_interval_s`` of bench time, scan (``scan_timeout_s``) and connect (``connect_timeout_s``); give
up after ``max_reconnect_attempts`` failed attempts (if set).

Nothing here knows whether the bench is simulated: the adapter (rig.dut.ble_central) decides which bleak
backend runs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakGATTProtocolError

from rig.config.bench import BleConfig
from rig.dut.ble_central import CALL_MARGIN_S, BleCentral
from rig.dut.ble_uuids import CONTROL_POINT_UUID, IDENTITY_UUID, SERVICE_UUID, STATUS_UUID
from rig.dut.client import ProtocolClient
from rig.dut.commands import StimulatorCommands
from rig.errors import DutError, LinkDown
from rig.interfaces import Clock
from rig.protocol.messages import MsgType

#: (characteristic, UUID, property it must have, what it is for)
REQUIRED_CHARACTERISTICS = (
    ("control point", CONTROL_POINT_UUID, "write", "request frames"),
    ("status", STATUS_UUID, "notify", "reply frames"),
    ("identity", IDENTITY_UUID, "read", "identity"),
)


#: how long a failed write waits for bleak's disconnected callback before calling the failure something
#: else: the stack may fail the write a moment before it reports the disconnection
DISCONNECT_GRACE_S = 0.5


class _Dropped(Exception):
    """The connection went down during an exchange (mapped to LinkDown with the command's name)."""


class _NotificationStream:
    """ProtocolClient's byte stream: writes go to the control point, notifications come from a queue."""

    def __init__(self, link: BleDutLink) -> None:
        self.link = link
        self.received: queue.Queue[bytes] = queue.Queue()

    def write(self, data: bytes) -> None:
        self.link._write_frame(data)

    def read_available(self, timeout_s: float) -> bytes:
        try:
            data = self.received.get(timeout=timeout_s)
        except queue.Empty:
            if not self.link.connected:
                raise _Dropped("disconnected while waiting for the reply") from None
            return b""
        chunks = [data]
        while not self.received.empty():
            chunks.append(self.received.get_nowait())
        return b"".join(chunks)


class BleDutLink(StimulatorCommands):
    """The stimulator over BLE. Opening it scans, connects, pairs (bonds) if configured and subscribes;
    DutError, naming the device and the step, if any of that fails."""

    def __init__(
        self,
        config: BleConfig,
        *,
        adapter: str,
        device_name: str,
        reply_timeout_s: float,
        ceiling_mA: float,
        clock: Clock,
        on_link_event: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.device_name = device_name
        self._port = f"ble:{config.address or device_name}"
        self.ceiling_mA = ceiling_mA
        self.reply_timeout_s = reply_timeout_s
        self.clock = clock
        self.on_link_event = on_link_event
        self.central = BleCentral(adapter, keystore_file=None if config.keystore is None else str(config.keystore))
        self._lock = threading.RLock()
        self._client: BleakClient | None = None
        self._control_point: BleakGATTCharacteristic | None = None
        self._stream = _NotificationStream(self)
        self.client = ProtocolClient(self._stream, self._port, reply_timeout_s)
        self._operation = "connect"
        self.connected = False
        self._disconnected = threading.Event()  # set by bleak's disconnected callback
        self.mtu = 0
        self.address: str | None = None
        self.down_since_s: float | None = None
        self._next_attempt_s: float | None = None
        self._failed_attempts = 0
        self.disconnections = 0
        self.reconnections = 0
        try:
            self._connect()
        except BaseException:
            self.central.close()
            raise

    # ---- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        cfg = self.config
        device = self.central.scan_for(name=None if cfg.address else self.device_name, address=cfg.address,
                                       timeout_s=cfg.scan_timeout_s, who=self._port)
        client = self.central.client(device, disconnected_callback=self._on_disconnected,
                                     timeout=cfg.connect_timeout_s, pair=cfg.pair)
        try:
            self.central.run(client.connect(), cfg.connect_timeout_s + CALL_MARGIN_S)
        except Exception as exc:  # bleak's, the OS's or the stack's own errors: one line naming the device
            hint = " (is the device in pairing mode? Bonding needs its pairing button for the first connection)" \
                if "pair" in str(exc).lower() else ""
            raise DutError(f"{self._port}: connect to {device.address} failed: {exc or type(exc).__name__}"
                           f"{hint}") from None
        try:
            self._control_point = self._check_service(client)
            self.mtu = int(client.mtu_size)
            self._stream.received = queue.Queue()
            self.client = ProtocolClient(self._stream, self._port, self.reply_timeout_s)
            self.central.run(client.start_notify(STATUS_UUID, self._on_notification), self.reply_timeout_s)
        except BaseException as exc:
            self._abandon(client)
            if isinstance(exc, DutError):
                raise
            hint = "" if self.config.pair else " (the device needs a bonded, encrypted link: set dut.ble.pair)"
            raise DutError(f"{self._port}: subscribe to the status characteristic failed: {exc}{hint}") from None
        self._client = client
        self.address = device.address
        self._disconnected.clear()
        self.connected = True

    def _check_service(self, client: BleakClient) -> BleakGATTCharacteristic:
        """The stimulator service with its three characteristics, each with the property it needs."""
        service = client.services.get_service(SERVICE_UUID)
        if service is None:
            raise DutError(f"{self._port}: GATT service {SERVICE_UUID} not found on the device (expected the "
                           "stimulator service of docs/protocol.md, section 2)")
        found: dict[str, BleakGATTCharacteristic] = {}
        for what, uuid, prop, purpose in REQUIRED_CHARACTERISTICS:
            characteristic = service.get_characteristic(uuid)
            if characteristic is None or prop not in characteristic.properties:
                has = "missing" if characteristic is None else f"has {characteristic.properties}"
                raise DutError(f"{self._port}: GATT service {SERVICE_UUID} lacks the {what} characteristic {uuid} "
                               f"with '{prop}' ({has}; expected it for the {purpose}, docs/protocol.md section 2)")
            found[what] = characteristic
        return found["control point"]

    def _abandon(self, client: BleakClient) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.central.run(client.disconnect(), self.config.connect_timeout_s)

    def _on_disconnected(self, client: BleakClient) -> None:
        """bleak's disconnected callback (on the adapter's loop): a link event, never an exception."""
        if client is not self._client or not self.connected:
            return
        self.connected = False
        self._disconnected.set()
        self.disconnections += 1
        self.down_since_s = self.clock.now()
        self._event(f"BLE connection to {self._port} ({self.address}) lost at {self.down_since_s:.3f} s bench time")

    def _on_notification(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self._stream.received.put(bytes(data))

    def _event(self, text: str) -> None:
        if self.on_link_event is not None:
            self.on_link_event(text)

    def _ensure_connected(self) -> None:
        """Connected, or reconnect now if the policy allows; LinkDown (at once) otherwise."""
        if self.connected:
            return
        what = self._operation
        now = self.clock.now()
        since = f"down since {self.down_since_s:.3f} s bench time" if self.down_since_s is not None else "down"
        limit = self.config.max_reconnect_attempts
        if limit is not None and self._failed_attempts >= limit:
            raise LinkDown(self._port, what, f"BLE connection {since}; gave up after {limit} reconnection attempts")
        if self._next_attempt_s is not None and now < self._next_attempt_s:
            raise LinkDown(self._port, what, f"BLE connection {since}; next reconnection attempt at "
                                             f"{self._next_attempt_s:.3f} s")
        old = self._client
        self._client = None
        if old is not None:
            self._abandon(old)
        try:
            self._connect()
        except DutError as exc:
            self._failed_attempts += 1
            self._next_attempt_s = now + self.config.reconnect_interval_s
            raise LinkDown(self._port, what, f"BLE connection {since}; reconnection failed: {exc}") from None
        self._failed_attempts = 0
        self._next_attempt_s = None
        self.reconnections += 1
        self._event(f"BLE connection to {self._port} ({self.address}) re-established at {now:.3f} s bench time")

    # ---- I/O ------------------------------------------------------------------------------------
    def _write_frame(self, data: bytes) -> None:
        client, control_point = self._client, self._control_point
        if client is None or control_point is None or not self.connected:
            raise _Dropped("not connected")
        room = self.mtu - 3
        if len(data) > room:
            raise DutError(
                f"{self._port}: {self._operation}: the {len(data)}-byte request frame does not fit one ATT write "
                f"({room} bytes at ATT MTU {self.mtu}; expected an MTU of at least {len(data) + 3}: "
                "docs/protocol.md, one frame per write)"
            )
        try:
            self.central.run(client.write_gatt_char(control_point, data, response=True), self.reply_timeout_s)
        except BleakGATTProtocolError as exc:
            raise DutError(
                f"{self._port}: {self._operation}: the device refused the control-point write: {exc} (expected a "
                "bonded, encrypted link: set dut.ble.pair and bond the controller with the device)"
            ) from None
        except Exception as exc:  # a dropped connection shows as whatever the stack raises: named, one line
            if self._disconnected.wait(DISCONNECT_GRACE_S):
                raise _Dropped(f"disconnected during the write ({exc or type(exc).__name__})") from None
            raise DutError(f"{self._port}: {self._operation}: control-point write failed: {exc}") from None

    def _request(self, kind: MsgType, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            self._operation = kind.name
            self._ensure_connected()
            try:
                return self.client.request(kind, payload)
            except _Dropped as exc:
                raise LinkDown(self._port, kind.name, f"BLE {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "transport": "ble",
            "adapter": self.adapter,
            "device_name": self.device_name,
            "address": self.address,
            "att_mtu": self.mtu,
            "paired": self.config.pair,
            "disconnections": self.disconnections,
            "reconnections": self.reconnections,
        }

    def close(self) -> None:
        client, self._client = self._client, None
        self.connected = False
        if client is not None:
            self._abandon(client)
        self.central.close()
