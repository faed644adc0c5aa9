"""bleak's own BleakScanner / BleakClient, with the bumble backends, against the simulated peripheral.

Everything runs in one asyncio event loop per test, on an in-process bumble LocalLink: no radio, no
BlueZ, no D-Bus. The peripheral's frame handler is a tiny fake answering IDENTIFY and KEEPALIVE.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bumble.core import AdvertisingData
from bumble.device import Advertisement
from bumble.hci import Address
from bumble.link import LocalLink

from rig.dut.ble_uuids import CONTROL_POINT_UUID, IDENTITY_UUID, SERVICE_UUID, STATUS_UUID
from rig.dut.bleak_bumble import BumbleCentral, BumbleClient, BumbleScanner, advertisement_data
from rig.protocol.framing import Frame, FrameDecoder, FrameError, decode_frame, encode_frame
from rig.protocol.messages import ErrorCode, MsgType, error_payload, reply_type
from simulator.ble.gatt_service import DeviceInfo
from simulator.ble.peripheral import FrameSplitter, SimPeripheral

INFO = DeviceInfo(model="CS-4", serial="SIM-CS4-000042", firmware="1.4.2")
NAME = "CS-4 SIM-CS4-000042"
IDENTIFY_REPLY = {"channels": 4, "firmware": "1.4.2", "model": "CS-4", "protocol": 1, "serial": "SIM-CS4-000042"}


def fake_firmware(frame_bytes: bytes) -> bytes:
    """Answers IDENTIFY and KEEPALIVE; anything else is an UNKNOWN_COMMAND error."""
    try:
        frame = decode_frame(frame_bytes[:-1])
    except FrameError as err:
        return encode_frame(Frame(MsgType.ERROR, err.seq or 0, error_payload(ErrorCode(err.code), err.detail)))
    if frame.msg_type == MsgType.IDENTIFY:
        return encode_frame(Frame(reply_type(MsgType.IDENTIFY), frame.seq, IDENTIFY_REPLY))
    if frame.msg_type == MsgType.KEEPALIVE:
        return encode_frame(Frame(reply_type(MsgType.KEEPALIVE), frame.seq, {}))
    return encode_frame(Frame(MsgType.ERROR, frame.seq, error_payload(ErrorCode.UNKNOWN_COMMAND, "not in the fake")))


@dataclass
class Bench:
    link: LocalLink
    peripheral: SimPeripheral
    central: BumbleCentral
    kw: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def ble_bench() -> AsyncIterator[Bench]:
    link = LocalLink()
    peripheral = SimPeripheral(link, INFO, fake_firmware)
    central = BumbleCentral.on_link(link)
    await peripheral.start()
    await central.power_on()
    try:
        yield Bench(link, peripheral, central, {"bumble_central": central})
    finally:
        await central.close()
        await peripheral.stop()


def run(scenario: Callable[[Bench], Awaitable[None]], budget_s: float = 5.0) -> None:
    async def main() -> None:
        async with ble_bench() as bench:
            await asyncio.wait_for(scenario(bench), budget_s)

    asyncio.run(main())


class Notifications:
    """Collects notified bytes and decodes reply frames from them."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.frames: asyncio.Queue[Frame | FrameError] = asyncio.Queue()
        self.chunks: list[bytes] = []

    def __call__(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self.chunks.append(bytes(data))
        for item in self.decoder.feed(bytes(data)):
            self.frames.put_nowait(item)

    async def next_frame(self) -> Frame:
        item = await asyncio.wait_for(self.frames.get(), 1.0)
        assert isinstance(item, Frame), item
        return item


def test_scan_finds_the_peripheral_by_name_and_by_address() -> None:
    async def scenario(bench: Bench) -> None:
        by_name = await BleakScanner.find_device_by_name(NAME, timeout=2.0, backend=BumbleScanner, **bench.kw)
        assert by_name is not None
        assert by_name.name == NAME
        assert by_name.address == bench.peripheral.address_string
        by_address = await BleakScanner.find_device_by_address(
            bench.peripheral.address_string.lower(), timeout=2.0, backend=BumbleScanner, **bench.kw
        )
        assert by_address is not None and by_address.name == NAME
        devices = await BleakScanner.discover(timeout=0.2, return_adv=True, backend=BumbleScanner, **bench.kw)
        _device, adv = devices[bench.peripheral.address_string]
        assert adv.local_name == NAME
        assert adv.rssi == -50 and adv.platform_data
        # The service UUID is in the scan response, which bumble's LocalLink does not carry (its controller
        # repeats the advertising data instead): a real adapter would list it here.
        assert adv.service_uuids == []
        assert bytes.fromhex(SERVICE_UUID.replace("-", ""))[::-1] in bench.peripheral.device.scan_response_data

    run(scenario)


def test_scan_filtered_on_another_service_uuid_does_not_report_the_device() -> None:
    async def scenario(bench: Bench) -> None:
        other = await BleakScanner.find_device_by_name(
            NAME, timeout=0.3, service_uuids=["0000180d-0000-1000-8000-00805f9b34fb"], backend=BumbleScanner,
            **bench.kw,
        )
        assert other is None

    run(scenario)


def test_device_not_found_returns_none_within_the_timeout() -> None:
    async def scenario(bench: Bench) -> None:
        t0 = time.monotonic()
        found = await BleakScanner.find_device_by_name("CS-4 NO-SUCH-DEVICE", timeout=0.3,
                                                       backend=BumbleScanner, **bench.kw)
        elapsed = time.monotonic() - t0
        assert found is None
        assert 0.25 <= elapsed < 2.0

    run(scenario)


def test_connect_discover_read_identity_and_exchange_a_frame() -> None:
    async def scenario(bench: Bench) -> None:
        device = await BleakScanner.find_device_by_name(NAME, timeout=2.0, backend=BumbleScanner, **bench.kw)
        assert device is not None
        async with BleakClient(device, backend=BumbleClient, timeout=2.0, pair=True, **bench.kw) as client:
            assert client.is_connected
            assert client.mtu_size == 247

            service = client.services.get_service(SERVICE_UUID)
            assert service is not None
            props = {c.uuid: sorted(c.properties) for c in service.characteristics}
            assert props == {
                CONTROL_POINT_UUID: ["write"],
                STATUS_UUID: ["notify"],
                IDENTITY_UUID: ["read"],
            }
            status = service.get_characteristic(STATUS_UUID)
            assert status is not None
            assert [d.uuid for d in status.descriptors] == ["00002902-0000-1000-8000-00805f9b34fb"]  # CCCD

            identity = json.loads(await client.read_gatt_char(IDENTITY_UUID))
            assert identity == {"model": "CS-4", "serial": "SIM-CS4-000042", "firmware": "1.4.2"}

            notes = Notifications()
            await client.start_notify(STATUS_UUID, notes)
            request = encode_frame(Frame(MsgType.IDENTIFY, 1, {}))
            assert request == bytes.fromhex("08010101 7b7d8140 00".replace(" ", ""))  # docs/protocol.md, example 1
            await client.write_gatt_char(CONTROL_POINT_UUID, request, response=True)
            reply = await notes.next_frame()
            assert (reply.msg_type, reply.seq, reply.payload) == (0x81, 1, IDENTIFY_REPLY)

            # two frames in one write, then one frame split over three writes: the same replies
            keepalive = [encode_frame(Frame(MsgType.KEEPALIVE, seq, {})) for seq in (2, 3, 4)]
            await client.write_gatt_char(CONTROL_POINT_UUID, keepalive[0] + keepalive[1], response=True)
            for piece in (keepalive[2][:3], keepalive[2][3:5], keepalive[2][5:]):
                await client.write_gatt_char(CONTROL_POINT_UUID, piece, response=True)
            for seq in (2, 3, 4):
                frame = await notes.next_frame()
                assert (frame.msg_type, frame.seq) == (0x88, seq)

            # after stop_notify nothing is notified: the reply is lost, as on a real device
            await client.stop_notify(STATUS_UUID)
            await client.write_gatt_char(CONTROL_POINT_UUID, encode_frame(Frame(MsgType.KEEPALIVE, 5, {})),
                                         response=True)
            for _ in range(20):
                await asyncio.sleep(0)
            assert notes.frames.empty()
            assert bench.peripheral.frames_handled == 5
        assert not client.is_connected

    run(scenario)


def test_a_reply_longer_than_the_mtu_arrives_in_pieces() -> None:
    big = {"detail": "x" * 600}

    def handler(frame_bytes: bytes) -> bytes:
        frame = decode_frame(frame_bytes[:-1])
        return encode_frame(Frame(reply_type(frame.msg_type), frame.seq, big))

    async def scenario(bench: Bench) -> None:
        bench.peripheral.handle = handler
        async with BleakClient(bench.peripheral.address_string, backend=BumbleClient, timeout=2.0, pair=True,
                               **bench.kw) as client:
            notes = Notifications()
            await client.start_notify(STATUS_UUID, notes)
            await client.write_gatt_char(CONTROL_POINT_UUID, encode_frame(Frame(MsgType.STATUS, 9, {})), response=True)
            reply = await notes.next_frame()
            assert (reply.seq, reply.payload) == (9, big)
            assert len(notes.chunks) == 3 and max(len(c) for c in notes.chunks) == client.mtu_size - 3

    run(scenario)


def test_long_writes_up_to_the_attribute_limit_and_writes_without_response_up_to_the_mtu() -> None:
    async def scenario(bench: Bench) -> None:
        async with BleakClient(bench.peripheral.address_string, services=[SERVICE_UUID], backend=BumbleClient,
                               pair=True, **bench.kw) as client:
            assert [s.uuid for s in client.services] == [SERVICE_UUID]  # bleak's services= filter
            notes = Notifications()
            await client.start_notify(STATUS_UUID, notes)
            # a frame longer than one ATT write goes as an ATT long write (prepare + execute), as on BlueZ
            frame = encode_frame(Frame(MsgType.KEEPALIVE, 7, {"pad": "x" * 300}))
            assert client.mtu_size - 3 < len(frame) <= 512
            await client.write_gatt_char(CONTROL_POINT_UUID, frame, response=True)
            reply = await notes.next_frame()
            assert (reply.msg_type, reply.seq) == (0x88, 7)
            # beyond 512 bytes (the longest attribute value) the device refuses it
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(CONTROL_POINT_UUID, b"\x01" * 513, response=True)
            assert refused.value.code == BleakGATTProtocolErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH
            # without response: one ATT packet, at most MTU - 3 bytes
            control_point = client.services.get_characteristic(CONTROL_POINT_UUID)
            assert control_point is not None
            assert control_point.max_write_without_response_size == client.mtu_size - 3
            with pytest.raises(BleakError, match="do not fit one write without response"):
                await client.write_gatt_char(CONTROL_POINT_UUID, b"\x01" * (client.mtu_size - 2), response=False)
            assert bench.peripheral.frames_handled == 1

    run(scenario)


def test_disconnect_from_the_peripheral_fires_the_disconnected_callback() -> None:
    async def scenario(bench: Bench) -> None:
        device = await BleakScanner.find_device_by_address(bench.peripheral.address_string, timeout=2.0,
                                                           backend=BumbleScanner, **bench.kw)
        assert device is not None
        calls: list[BleakClient] = []
        gone = asyncio.Event()

        def disconnected(client: BleakClient) -> None:
            calls.append(client)
            gone.set()

        client = BleakClient(device, disconnected_callback=disconnected, backend=BumbleClient, **bench.kw)
        await client.connect()
        assert client.is_connected and len(bench.peripheral.connections) == 1
        await bench.peripheral.disconnect()
        await asyncio.wait_for(gone.wait(), 1.0)
        assert calls == [client]
        assert not client.is_connected
        assert bench.peripheral.connections == []
        with pytest.raises(BleakError, match="Not connected"):
            await client.start_notify(STATUS_UUID, Notifications())
        # the peripheral advertises again and accepts a new connection; a local disconnect calls back too
        await client.connect()
        assert client.is_connected and len(bench.peripheral.connections) == 1
        await client.disconnect()
        assert calls == [client, client]
        assert not client.is_connected

    run(scenario)


def test_frame_splitter_bounds_its_buffer() -> None:
    splitter = FrameSplitter()
    assert list(splitter.feed(b"\x00\x00abc")) == []
    assert list(splitter.feed(b"def\x00gh")) == [b"abcdef\x00"]
    out = list(splitter.feed(b"x" * 5000))
    assert len(out) == 1 and len(out[0]) == 2065  # once, cut: the handler's decoder reports BAD_FRAME
    assert list(splitter.feed(b"y" * 5000)) == []
    assert list(splitter.feed(b"zz\x00ok\x00")) == [b"ok\x00"]
    assert list(splitter.feed(b"w" * 3000 + b"\x00")) == [b"w" * 2064 + b"\x00"]  # cut too
    for run in (b"x" * 2064, b"w" * 2064):  # what a handler using FrameDecoder makes of a cut run
        assert [type(item) for item in FrameDecoder().feed(run + b"\x00")] == [FrameError]


def test_advertisement_data_is_converted_to_bleak_form() -> None:
    data = AdvertisingData([
        (AdvertisingData.COMPLETE_LOCAL_NAME, b"CS-4 X"),
        (AdvertisingData.MANUFACTURER_SPECIFIC_DATA, bytes.fromhex("ffff0102")),
        (AdvertisingData.SERVICE_DATA_16_BIT_UUID, bytes.fromhex("0f18") + b"\x64"),
        (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, bytes.fromhex("0d180f18")),
        (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
         bytes.fromhex(SERVICE_UUID.replace("-", ""))[::-1]),
        (AdvertisingData.TX_POWER_LEVEL, bytes([4])),
    ])
    adv = advertisement_data(Advertisement(address=Address("F0:00:00:00:00:01"), rssi=-61, data_bytes=bytes(data)))
    assert adv.local_name == "CS-4 X"
    assert adv.manufacturer_data == {0xFFFF: b"\x01\x02"}
    assert adv.service_data == {"0000180f-0000-1000-8000-00805f9b34fb": b"\x64"}
    assert adv.service_uuids == ["0000180d-0000-1000-8000-00805f9b34fb", "0000180f-0000-1000-8000-00805f9b34fb",
                                 SERVICE_UUID]
    assert (adv.tx_power, adv.rssi) == (4, -61)
