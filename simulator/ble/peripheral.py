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
from collections.abc import Awaitable, Callable, Iterator

from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
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
    ) -> None:
        self.info = info
        self.name = name if name is not None else info.advertised_name()
        self.address = Address(address, Address.RANDOM_DEVICE_ADDRESS)
        self.handle = handle
        self.advertising_interval_ms = advertising_interval_ms
        self.controller = Controller(f"peripheral {self.name}", link=link)
        self.device = Device(name=self.name, address=self.address, host=Host(self.controller,
                                                                             AsyncPipeSink(self.controller)))
        self.gatt = StimulatorGattService(info, self._on_control_point_write)
        self.device.add_service(self.gatt.service)
        self.device.on("connection", self._on_connection)
        self.connections: list[Connection] = []
        self.frames_handled = 0
        self._splitters: dict[int, FrameSplitter] = {}
        self._queue: asyncio.Queue[tuple[Connection, bytes]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    @property
    def address_string(self) -> str:
        """The address as bleak reports it (``AA:BB:CC:DD:EE:FF``)."""
        return self.address.to_string(with_type_qualifier=False)

    async def start(self) -> None:
        await self.device.power_on()
        self._worker = asyncio.get_running_loop().create_task(self._serve(), name=f"ble-peripheral {self.name}")
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
            auto_restart=True,
            advertising_data=bytes(advertising_data),
            scan_response_data=bytes(scan_response),
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )

    async def stop(self) -> None:
        """Stop advertising, drop every connection, power off."""
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

        connection.on("disconnection", gone)

    def _on_control_point_write(self, connection: Connection, value: bytes) -> None:
        splitter = self._splitters.get(connection.handle)
        if splitter is None:
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
                if reply and connection in self.connections:
                    await self._notify(connection, bytes(reply))
            except Exception:  # a model defect must not stop the device serving later frames
                log.exception("simulated BLE peripheral failed to handle a frame")

    async def _notify(self, connection: Connection, data: bytes) -> None:
        size = max(connection.att_mtu - 3, 1)
        for i in range(0, len(data), size):
            await self.device.notify_subscriber(connection, self.gatt.status, data[i : i + size])

