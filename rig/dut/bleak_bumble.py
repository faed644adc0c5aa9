"""A bleak backend over bumble: the rig's bleak code talks to simulated devices on a bumble ``LocalLink``.

Usage (everything in one asyncio event loop)::

    central = await BumbleCentral.open("tcp-client:127.0.0.1:9001")   # an HCI controller (bumble transport)
    # or, in one process: central = BumbleCentral.on_link(LocalLink()); await central.power_on()
    device = await BleakScanner.find_device_by_name(name, timeout=1.0, backend=BumbleScanner,
                                                    bumble_central=central)
    async with BleakClient(device, backend=BumbleClient, bumble_central=central) as client:
        ...

``bumble_central`` is the only backend-specific argument: bleak passes keyword arguments it does not
know from ``BleakScanner`` / ``BleakClient`` (and from ``find_device_by_name`` / ``find_device_by_address``,
through the ``BleakScanner`` they create) on to the backend's constructor.

bleak APIs relied on (bleak 3.1.0):

- ``BaseBleakScanner``: ``__init__(detection_callback, service_uuids)``, ``seen_devices`` (cleared on
  start), ``create_or_update_device(key, address, name, details, adv)``, ``call_detection_callbacks``,
  ``is_allowed_uuid``; abstract ``start`` / ``stop``. ``AdvertisementData`` (a NamedTuple, ``rssi``
  required). ``BLEDevice.details`` carries the bumble ``Address`` (with its public/random type).
- ``BaseBleakClient``: ``__init__(address_or_ble_device, *, disconnected_callback, timeout, **kwargs)``
  (bleak hands it ``services``, ``bluez``, ``winrt`` too), ``self.services`` (must be set by
  ``connect``: ``BleakClient.services`` raises while it is None), ``_timeout``,
  ``_disconnected_callback`` (no argument: bleak binds the client); abstract ``connect(pair)``,
  ``disconnect``, ``pair``, ``unpair``, ``is_connected``, ``mtu_size``, ``read_gatt_char``,
  ``read_gatt_descriptor``, ``write_gatt_char``, ``write_gatt_descriptor``, ``start_notify`` (its
  callback takes the value only: bleak binds the characteristic), ``stop_notify``. ``BleakClient``
  resolves UUIDs and handles to characteristic objects before calling the backend.
- ``BleakGATTServiceCollection`` with the concrete ``BleakGATTService(obj, handle, uuid)``,
  ``BleakGATTCharacteristic(obj, handle, uuid, properties, max_write_without_response_size, service)``
  and ``BleakGATTDescriptor(obj, handle, uuid, characteristic)``; the bumble proxies are the ``obj``.
- ``BleakGATTProtocolError(code)`` for ATT error responses, as bleak 3 backends raise.

bumble APIs relied on (bumble 0.0.236): ``Controller(name, link=LocalLink)``, ``Host(controller,
AsyncPipeSink(controller))``, ``Device(name, address, host=...)``, ``power_on`` / ``power_off``,
``start_scanning(active, filter_duplicates)`` / ``stop_scanning`` and the ``"advertisement"`` event
(``Advertisement.address`` / ``.data`` / ``.rssi``), ``Device.connect(address, transport=LE, timeout)``,
``Connection`` (``att_mtu``, ``disconnect()``, which returns once disconnected, and the
``"disconnection"`` event), ``Peer`` (``request_mtu``, ``discover_services``), ``ServiceProxy.
discover_characteristics``, ``CharacteristicProxy`` (``properties``, ``discover_descriptors``,
``read_value``, ``write_value``, which does an ATT long write above ``ATT_MTU - 3`` bytes,
``subscribe`` / ``unsubscribe``), ``DescriptorProxy`` (``read_value`` / ``write_value``), ``att.ATT_Error``,
``Device.with_hci`` and ``bumble.transport.open_transport`` (any HCI transport: ``tcp-client:host:port``,
``usb:0``, ``serial:/dev/ttyUSB0``...), ``Connection.pair`` / ``Connection.encrypt`` /
``Connection.is_encrypted``, ``Device.keystore`` (``get`` / ``delete``) and ``core.ProtocolError`` (SMP and HCI
failures).

Pairing and bonding (bumble's SMP): ``pair()`` (and ``connect(pair=True)``) pairs with LE Secure
Connections and bonding, or, when the central already holds the peer's keys, only encrypts the link with
them, as BlueZ does for a bonded device. A connection to a bonded peer is encrypted as it is made. The
keys live in the central's bumble key store: in memory (a bond lasts as long as the ``BumbleCentral``), or
in a JSON file (``keystore_file``), so that they outlive the process as BlueZ's do.
A refused pairing raises ``BleakError`` naming the SMP reason. ``unpair()`` forgets the peer's keys.

Limits:

- The central uses its static random address; no address resolution (RPA) on either side.
- Scanning: only bleak's ``service_uuids`` filter. bumble's ``LocalLink`` does not carry scan responses
  (its controller repeats the advertising data as the scan response), so data that a device puts in
  its scan response only (the simulated stimulator's service UUID) is not seen in simulation.
- Writes without response carry at most ``mtu_size - 3`` bytes (``BleakError`` otherwise, as bleak
  documents); writes with response up to 512 bytes (ATT long write above ``mtu_size - 3``), beyond
  which the server answers INVALID_ATTRIBUTE_VALUE_LENGTH (``BleakGATTProtocolError``).
- Notifications only, no indications; ``use_cached`` reads are not cached (always read from the device).
- Connection parameters and PHY are bumble's defaults; the LocalLink delivers every packet (the loss
  and timing model is the simulator's job, above this layer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as std_uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble.att import ATT_Error
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, PhysicalTransport
from bumble.core import ProtocolError as BumbleProtocolError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy
from bumble.hci import Address
from bumble.host import Host
from bumble.keys import JsonKeyStore
from bumble.link import LocalLink
from bumble.transport import Transport, open_transport
from bumble.transport.common import AsyncPipeSink

from rig.dut.ble_uuids import PREFERRED_MTU

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: a static random address (two top bits set) for the rig's adapter on the link
DEFAULT_CENTRAL_ADDRESS = "C0:51:60:00:00:01"
#: ATT's default MTU, what a connection has before the MTU exchange
ATT_DEFAULT_MTU = 23

_SERVICE_UUID_LISTS = (
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.SERVICE_DATA_128_BIT_UUID,
)


def uuid_str(uuid: UUID) -> str:
    """A bumble UUID (16, 32 or 128 bits) as bleak writes it: the full 128-bit form, lower case."""
    return str(std_uuid.UUID(bytes=bytes(reversed(uuid.uuid_128_bytes))))


def address_str(address: Address) -> str:
    """A bumble address as bleak writes it (``AA:BB:CC:DD:EE:FF``, no type qualifier)."""
    return str(address.to_string(with_type_qualifier=False))


class BumbleCentral:
    """The rig's BLE adapter in simulation: a bumble device on ``link``, shared by scanners and clients.

    It remembers the address (with its type, public or random) of every device it has heard
    advertising, so a client can connect by the address string alone, as bleak allows. Several
    clients may hold connections at once; overlapping scans share one scan.
    """

    def __init__(self, device: Device, transport: Transport | None = None) -> None:
        self.device = device
        self.transport = transport
        self.seen: dict[str, Address] = {}
        self.device.on("advertisement", self._remember)
        self._scans = 0

    @classmethod
    async def open(cls, transport_spec: str, address: str = DEFAULT_CENTRAL_ADDRESS,
                   name: str = "stimrig", keystore_file: str | None = None) -> BumbleCentral:
        """A central on the HCI controller at ``transport_spec`` (a bumble transport name), powered on.
        ``keystore_file``: a JSON key store, so that bonds outlive the process (else they are in memory)."""
        transport = await open_transport(transport_spec)
        try:
            device = Device.with_hci(name, Address(address, Address.RANDOM_DEVICE_ADDRESS),
                                     transport.source, transport.sink)
            if keystore_file is not None:
                device.keystore = JsonKeyStore(namespace=address, filename=keystore_file)
            central = cls(device, transport)
            await central.power_on()
        except BaseException:
            await transport.close()
            raise
        return central

    @classmethod
    def on_link(cls, link: LocalLink, address: str = DEFAULT_CENTRAL_ADDRESS, name: str = "stimrig") -> BumbleCentral:
        """A central with an emulated controller on ``link`` in this process (``await power_on()`` next)."""
        controller = Controller(f"central {name}", link=link)
        return cls(Device(name=name, address=Address(address, Address.RANDOM_DEVICE_ADDRESS),
                          host=Host(controller, AsyncPipeSink(controller))))

    async def power_on(self) -> None:
        await self.device.power_on()

    async def close(self) -> None:
        """Drop every connection, power off and close the HCI transport."""
        try:
            for connection in list(self.device.connections.values()):
                await connection.disconnect()
            if self._scans:
                self._scans = 0
                await self.device.stop_scanning()
            await self.device.power_off()
        finally:
            if self.transport is not None:
                await self.transport.close()

    async def bonded(self, address: Address) -> bool:
        """Whether the key store holds keys for ``address`` (a bond made earlier)."""
        keystore = self.device.keystore
        return keystore is not None and await keystore.get(str(address)) is not None

    def _remember(self, advertisement: Advertisement) -> None:
        self.seen[address_str(advertisement.address)] = advertisement.address

    def resolve(self, address: str) -> Address:
        """The bumble address for a bleak address string (static random unless heard as public)."""
        known = self.seen.get(address.upper())
        return known if known is not None else Address(address, Address.RANDOM_DEVICE_ADDRESS)

    async def start_scanning(self, active: bool) -> None:
        self._scans += 1
        if self._scans == 1:
            await self.device.start_scanning(active=active, filter_duplicates=False)

    async def stop_scanning(self) -> None:
        if self._scans == 0:
            return
        self._scans -= 1
        if self._scans == 0:
            await self.device.stop_scanning()


def _central(kwargs: dict[str, Any]) -> BumbleCentral:
    central = kwargs.get("bumble_central")
    if not isinstance(central, BumbleCentral):
        raise BleakError("the bumble backend needs bumble_central=<BumbleCentral> (the rig's adapter on the link)")
    return central


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """bumble's parsed advertisement (advertising data + scan response) as bleak's AdvertisementData."""
    data = advertisement.data
    names = data.get_all(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get_all(AdvertisingData.SHORTENED_LOCAL_NAME)
    manufacturer: dict[int, bytes] = {}
    for item in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA):
        if isinstance(item, tuple) and isinstance(item[0], int) and isinstance(item[1], bytes):
            manufacturer[item[0]] = item[1]
    service_data: dict[str, bytes] = {}
    for kind in _SERVICE_DATA:
        for entry in data.get_all(kind):
            if isinstance(entry, tuple) and isinstance(entry[0], UUID) and isinstance(entry[1], bytes):
                service_data[uuid_str(entry[0])] = entry[1]
    service_uuids: list[str] = []
    for kind in _SERVICE_UUID_LISTS:
        for uuids in data.get_all(kind):
            if isinstance(uuids, list):
                service_uuids += [s for s in (uuid_str(u) for u in uuids) if s not in service_uuids]
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=str(names[0]) if names else None,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=int(advertisement.rssi),
        platform_data=(advertisement,),
    )


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend: the advertisements the ``BumbleCentral`` hears while scanning."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = _central(kwargs)
        self._active = scanning_mode != "passive"
        self._scanning = False

    async def start(self) -> None:
        self.seen_devices = {}
        self._central.device.on("advertisement", self._on_advertisement)
        self._scanning = True
        await self._central.start_scanning(self._active)

    async def stop(self) -> None:
        if not self._scanning:
            return
        self._scanning = False
        self._central.device.remove_listener("advertisement", self._on_advertisement)
        await self._central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = address_str(advertisement.address)
        device = self.create_or_update_device(address, address, adv.local_name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


async def _att(operation: Awaitable[_T]) -> _T:
    """Await a bumble GATT operation; an ATT error response becomes bleak's BleakGATTProtocolError."""
    try:
        return await operation
    except ATT_Error as exc:
        raise BleakGATTProtocolError(int(exc.error_code)) from exc


class BumbleClient(BaseBleakClient):
    """bleak client backend: one LE connection of the ``BumbleCentral`` and the GATT client on it."""

    def __init__(self, address_or_ble_device: BLEDevice | str, *, services: set[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, **kwargs)
        self._central = _central(kwargs)
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(address_or_ble_device.details, Address):
            self._peer_address: Address = address_or_ble_device.details
            self._name = address_or_ble_device.name or self.address
        else:
            self._peer_address = self._central.resolve(self.address)
            self._name = self.address
        self._wanted_services = services
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- connectivity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        async with asyncio.timeout(self._timeout):  # like bleak's own backends: connection and discovery
            connection = await self._central.device.connect(self._peer_address, transport=PhysicalTransport.LE,
                                                            timeout=None)
            self._connection = connection
            connection.on("disconnection", self._on_disconnection)
            try:
                if pair or await self._central.bonded(connection.peer_address):
                    await self._secure(connection)
                peer = Peer(connection)
                await _att(peer.request_mtu(PREFERRED_MTU))
                self.services = await self._discover(peer)
            except BaseException:
                await self.disconnect()
                raise

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        await _att(peer.discover_services())
        for service_proxy in peer.services:
            service_uuid = uuid_str(service_proxy.uuid)
            if self._wanted_services is not None and service_uuid not in self._wanted_services:
                continue
            service = BleakGATTService(service_proxy, service_proxy.handle, service_uuid)
            collection.add_service(service)
            await _att(service_proxy.discover_characteristics())
            for char_proxy in service_proxy.characteristics:
                characteristic = BleakGATTCharacteristic(
                    char_proxy, char_proxy.handle, uuid_str(char_proxy.uuid),
                    sorted(gatt_char_props_to_strs(int(char_proxy.properties))),
                    self._max_write_without_response, service,
                )
                collection.add_characteristic(characteristic)
                await _att(char_proxy.discover_descriptors())
                for desc_proxy in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc_proxy, desc_proxy.handle, uuid_str(desc_proxy.type), characteristic)
                    )
        return collection

    def _max_write_without_response(self) -> int:
        return (self.mtu_size if self._connection is not None else ATT_DEFAULT_MTU) - 3

    async def disconnect(self) -> None:
        """Disconnect; returns once the link is down (the disconnected callback has run by then)."""
        connection = self._connection
        if connection is None:
            return
        await connection.disconnect()

    def _on_disconnection(self, reason: int) -> None:
        log.debug("%s: disconnected (reason %#04x)", self.address, reason)
        self._connection = None
        self._subscribers.clear()
        self.services = None
        if self._disconnected_callback is not None:
            try:
                self._disconnected_callback()
            except Exception:  # the application's callback must not break bumble's event dispatch
                log.exception("%s: disconnected callback failed", self.address)

    async def _secure(self, connection: Connection) -> None:
        """Encrypt with the bond's keys if there is a bond, else pair (and bond); BleakError if refused."""
        try:
            if await self._central.bonded(connection.peer_address):
                await connection.encrypt()
            else:
                await connection.pair()
        except BumbleProtocolError as exc:  # SMP's Pairing Failed reason, or an HCI encryption error
            what = "encryption with the bond's keys" if exc.error_namespace == "hci" else "pairing"
            raise BleakError(f"{self.name}: {what} refused by the device ({exc.error_name})") from exc

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond (or, with a bond already, encrypt the link with its keys)."""
        self._check_connected()
        assert self._connection is not None
        if not self._connection.is_encrypted:
            await self._secure(self._connection)

    async def unpair(self) -> None:
        """Forget the peer's keys (and disconnect, as bleak's backends do)."""
        keystore = self._central.device.keystore
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(str(self._peer_address))
        await self.disconnect()

    # --- I/O -------------------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        self._check_connected()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        return bytearray(await _att(proxy.read_value()))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        self._check_connected()
        proxy: DescriptorProxy = descriptor.obj
        return bytearray(await _att(proxy.read_value()))

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer,
                              response: bool) -> None:
        self._check_connected()
        value = bytes(data)
        if not response and len(value) > characteristic.max_write_without_response_size:
            raise BleakError(
                f"{len(value)} bytes do not fit one write without response "
                f"(at most {characteristic.max_write_without_response_size} at MTU {self.mtu_size})"
            )
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await _att(proxy.write_value(value, with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        self._check_connected()
        proxy: DescriptorProxy = descriptor.obj
        await _att(proxy.write_value(bytes(data), with_response=True))

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        self._check_connected()
        if "notify" not in characteristic.properties:
            raise BleakError(f"characteristic {characteristic.uuid} does not notify (indications not supported)")
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            await _att(proxy.unsubscribe(old))

        def subscriber(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = subscriber
        await _att(proxy.subscribe(subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._check_connected()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        subscriber = self._subscribers.pop(characteristic.handle, None)
        if subscriber is not None:
            await _att(proxy.unsubscribe(subscriber))
