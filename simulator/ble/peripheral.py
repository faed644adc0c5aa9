"""The simulated stimulator as a BLE peripheral: a bumble device on an in-process ``LocalLink``.

It advertises its name (``<model> <serial>``, e.g. ``CS-4 SIM-CS4-000042``; the service UUID is in
its scan response, which bumble's LocalLink does not carry), accepts connections (and advertises again
after each disconnection), and serves ``gatt_service.StimulatorGattService``. Bytes written to the control
point are split into frames at each 0x00 delimiter (docs/protocol.md, section 3.5: a frame may come in
any number of writes, a write may hold several frames); each complete frame goes to ``handle`` and
the reply bytes it returns are notified on the status characteristic, in pieces of at most
``ATT_MTU - 3`` bytes, to that connection if it has subscribed (otherwise they are lost, as on a real
device). Frames are handled one at a time, in arrival order, by one worker task: the write
response does not wait for the handler.

Security (docs/protocol.md, BLE transport): the control point needs an encrypted link
(``control_point_requires_bonding``), and so does subscribing to the status characteristic; the identity
characteristic is open. An LE link can only be encrypted with keys from pairing, and the device accepts
pairing (LE Secure Connections, bonding) only while its pairing window is open: from power-up until the
first bond, and again after ``open_pairing_window()`` (the device's pairing button). Any other central
may connect and read the identity, and nothing more: its writes get ATT error 0x0F (insufficient
encryption) and its pairing requests SMP "pairing not supported".

Reach (the link model's say, ``go_out_of_reach`` / ``come_into_reach``): out of reach, the device stops
advertising, every connection is dropped with reason 0x08 (connection timeout, what a link-layer
supervision timeout reports), and frames still arriving are dropped; back in reach, it advertises again.
While in reach it keeps advertising (connectable) up to ``max_connections`` connections. On each connection
it asks for ``connection_parameters`` (the device fixture's interval, latency and supervision timeout).

``handle(frame_bytes) -> reply_bytes`` receives one frame including its 0x00 delimiter; it may be a
coroutine function; returning ``b""`` sends nothing. Empty runs (idle 0x00 bytes) are not passed on.
A run longer than ``MAX_ENCODED_BYTES`` is passed on once, cut to ``MAX_ENCODED_BYTES + 1`` bytes
(so the handler's decoder reports it as BAD_FRAME, once) and the rest up to the next 0x00 is dropped:
the receive buffer stays bounded whatever arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from bumble.att import Attribute
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
from bumble.hci import HCI_CONNECTION_TIMEOUT_ERROR, Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from rig.dut.ble_uuids import SERVICE_UUID
from rig.protocol.framing import DELIMITER, MAX_ENCODED_BYTES
from simulator.ble.gatt_service import DeviceInfo, StimulatorGattService

log = logging.getLogger(__name__)

FrameHandler = Callable[[bytes], bytes | Awaitable[bytes]]

#: a static random address (two top bits set), the kind a peripheral without a public address uses
DEFAULT_PERIPHERAL_ADDRESS = "F0:5C:54:00:00:42"
#: fast advertising, so a scan finds the device within a few tens of milliseconds of loop time
DEFAULT_ADVERTISING_INTERVAL_MS = 20
#: connections the device accepts at once (its controller and one more central)
DEFAULT_MAX_CONNECTIONS = 2


@dataclass(frozen=True)
class ConnectionParameters:
    """What the device asks of each connection (from its device fixture): the link layer's timing."""

    interval_ms: float
    peripheral_latency: int
    supervision_timeout_ms: float


class _PairingWindow(PairingDelegate):
    """The device's side of pairing: accepted only while its pairing window is open (no display, no
    keyboard: LE Secure Connections "just works", so the window is what keeps strangers out)."""

    def __init__(self, peripheral: SimPeripheral) -> None:
        super().__init__()
        self.peripheral = peripheral

    async def accept(self) -> bool:
        accepted = self.peripheral.pairing_open
        if not accepted:
            self.peripheral.pairings_refused += 1
        return accepted


class FrameSplitter:
    """Bytes in any chunking -> complete frames (each with its 0x00), bounded buffer."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buf += data
        while True:
            end = self._buf.find(DELIMITER)
            if end < 0:
                if len(self._buf) > MAX_ENCODED_BYTES:
                    if not self._discarding:
                        self._discarding = True
                        yield bytes(self._buf[: MAX_ENCODED_BYTES + 1]) + DELIMITER
                    self._buf.clear()
                return
            run = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._discarding:
                self._discarding = False  # the tail of an over-long run, already passed on
                continue
            if run:
                yield run[: MAX_ENCODED_BYTES + 1] + DELIMITER


class SimPeripheral:
    """One simulated stimulator on ``link``. ``await start()`` powers it on and starts advertising."""

    def __init__(
        self,
        link: LocalLink,
        info: DeviceInfo,
        handle: FrameHandler,
        *,
        address: str = DEFAULT_PERIPHERAL_ADDRESS,
        name: str | None = None,
        advertising_interval_ms: int = DEFAULT_ADVERTISING_INTERVAL_MS,
        control_point_requires_bonding: bool = True,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connection_parameters: ConnectionParameters | None = None,
    ) -> None:
        self.info = info
        self.name = name if name is not None else info.advertised_name()
        self.address = Address(address, Address.RANDOM_DEVICE_ADDRESS)
        self.handle = handle
        self.advertising_interval_ms = advertising_interval_ms
        self.controller = Controller(f"peripheral {self.name}", link=link)
        self.device = Device(name=self.name, address=self.address, host=Host(self.controller,
                                                                             AsyncPipeSink(self.controller)))
        self.gatt = StimulatorGattService(info, self._on_control_point_write,
                                          requires_encryption=control_point_requires_bonding)
        self.device.add_service(self.gatt.service)
        if control_point_requires_bonding:
            self._protect_status_subscription()
        self.device.pairing_config_factory = lambda connection: PairingConfig(
            sc=True, mitm=False, bonding=True, delegate=_PairingWindow(self))
        self.device.on("connection", self._on_connection)
        self.max_connections = max_connections
        self.connection_parameters = connection_parameters
        self.connections: list[Connection] = []
        self.pairing_open = True  # a device without a bond is in pairing mode from power-up
        self.bonds: list[str] = []  # addresses of the centrals it bonded with
        self.pairings_refused = 0
        self.reachable = True
        self.frames_handled = 0
        self.frames_dropped = 0  # arrived while out of reach
        self._splitters: dict[int, FrameSplitter] = {}
        self._queue: asyncio.Queue[tuple[Connection, bytes]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address_string(self) -> str:
        """The address as bleak reports it (``AA:BB:CC:DD:EE:FF``)."""
        return self.address.to_string(with_type_qualifier=False)

    async def start(self) -> None:
        await self.device.power_on()
        self._worker = asyncio.get_running_loop().create_task(self._serve(), name=f"ble-peripheral {self.name}")
        await self._advertise()

    async def _advertise(self) -> None:
        """Advertise (connectable) if in reach, not advertising yet and below ``max_connections``."""
        if not self.reachable or self.device.is_advertising or len(self.connections) >= self.max_connections:
            return
        # 31 bytes of legacy advertising data hold the flags and the name; the 128-bit service UUID goes
        # in the scan response, as on a real device (bumble's LocalLink does not carry scan responses).
        advertising_data = AdvertisingData([
            (AdvertisingData.FLAGS, bytes([AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                           | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG])),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode("utf-8")),
        ])
        scan_response = AdvertisingData([
            (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, UUID(SERVICE_UUID).to_bytes(force_128=True)),
        ])
        await self.device.start_advertising(
            auto_restart=False,
            advertising_data=bytes(advertising_data),
            scan_response_data=bytes(scan_response),
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )

    def _protect_status_subscription(self) -> None:
        """bumble adds the status characteristic's CCCD as read/write for anyone: subscribing needs an
        encrypted link too (the replies are the patient's therapy state)."""
        server = self.device.gatt_server
        for attribute in server.attributes:
            if (attribute.type == GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
                    and self.gatt.status.handle < attribute.handle <= self.gatt.status.end_group_handle):
                attribute.permissions = (Attribute.READABLE | Attribute.WRITEABLE
                                         | Attribute.WRITE_REQUIRES_ENCRYPTION)

    def open_pairing_window(self) -> None:
        """The pairing button: the next central to pair is accepted (and bonded)."""
        self.pairing_open = True

    async def go_out_of_reach(self) -> None:
        """The link model lost the connection: stop advertising, drop every connection (reason 0x08)."""
        self.reachable = False
        if self.device.is_advertising:
            await self.device.stop_advertising()
        for connection in list(self.connections):
            with contextlib.suppress(Exception):  # already gone
                await connection.disconnect(HCI_CONNECTION_TIMEOUT_ERROR)

    async def come_into_reach(self) -> None:
        """The link model hears the device again: advertise, so that a central can reconnect."""
        self.reachable = True
        await self._advertise()

    async def stop(self) -> None:
        """Stop advertising, drop every connection, power off."""
        self.reachable = False
        if self.device.is_advertising:
            await self.device.stop_advertising()
        await self.disconnect()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.device.power_off()

    async def disconnect(self) -> None:
        """Drop every connection from the peripheral's side (the central sees a remote disconnection)."""
        for connection in list(self.connections):
            await connection.disconnect()

    def _on_connection(self, connection: Connection) -> None:
        self.connections.append(connection)
        self._splitters[connection.handle] = FrameSplitter()

        def gone(reason: int) -> None:
            self._splitters.pop(connection.handle, None)
            if connection in self.connections:
                self.connections.remove(connection)
            self._spawn(self._advertise())

        def bonded() -> None:
            self.bonds.append(connection.peer_address.to_string(with_type_qualifier=False))
            self.pairing_open = False  # the window closes with the first bond

        connection.on("disconnection", gone)
        connection.on("pairing", lambda keys: bonded())
        self._spawn(self._advertise())  # stay connectable for a second central
        if self.connection_parameters is not None:
            self._spawn(self._request_parameters(connection, self.connection_parameters))

    @staticmethod
    async def _request_parameters(connection: Connection, wanted: ConnectionParameters) -> None:
        """Ask the central for the fixture's connection interval, latency and supervision timeout."""
        try:
            await connection.update_parameters(wanted.interval_ms, wanted.interval_ms, wanted.peripheral_latency,
                                               wanted.supervision_timeout_ms)
        except Exception as exc:  # a central may refuse; the link model keeps the fixture's timing anyway
            log.warning("connection parameter update refused: %s", exc)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_control_point_write(self, connection: Connection, value: bytes) -> None:
        splitter = self._splitters.get(connection.handle)
        if splitter is None:
            return
        if not self.reachable:  # the link model says this never reached the device
            self.frames_dropped += 1
            return
        for frame in splitter.feed(value):
            self._queue.put_nowait((connection, frame))

    async def _serve(self) -> None:
        while True:
            connection, frame = await self._queue.get()
            try:
                reply = self.handle(frame)
                if inspect.isawaitable(reply):
                    reply = await reply
                self.frames_handled += 1
                if reply and connection in self.connections and self.reachable:
                    await self._notify(connection, bytes(reply))
            except Exception:  # a model defect must not stop the device serving later frames
                log.exception("simulated BLE peripheral failed to handle a frame")

    async def _notify(self, connection: Connection, data: bytes) -> None:
        size = max(connection.att_mtu - 3, 1)
        for i in range(0, len(data), size):
            await self.device.notify_subscriber(connection, self.gatt.status, data[i : i + size])

