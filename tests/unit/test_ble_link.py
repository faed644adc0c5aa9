"""BleDutLink (rig.dut.ble_link) end to end: bleak over bumble, through the virtual bench's air (simulator.ble.air).

Each test starts a ``BleAir`` whose device is a tiny fake firmware (IDENTIFY, STATUS, KEEPALIVE; an ERROR
frame for anything else; swappable per test) and opens the rig's link on the air's emulated HCI controller,
as the virtual bench does: scanning, connecting, pairing, GATT discovery, writes and notifications are real.
Bench time is a fake clock the test sets (the reconnection policy is in bench time).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bumble.gatt import Characteristic, Service
from pydantic import ValidationError

from rig.config.bench import BleConfig, DutConfig
from rig.dut.ble_central import adapter_problem
from rig.dut.ble_link import BleDutLink
from rig.dut.ble_rogue import UnbondedCentral
from rig.dut.ble_uuids import SERVICE_UUID, STATUS_UUID
from rig.dut.bleak_bumble import DEFAULT_CENTRAL_ADDRESS
from rig.errors import CeilingError, DeviceRefused, DutError, LinkDown, ProtocolError
from rig.interfaces import DeviceIdentity, Periodic
from rig.protocol.framing import Frame, FrameError
from rig.protocol.messages import ErrorCode, MsgType, error_payload, reply_type
from simulator.ble import peripheral as peripheral_module
from simulator.ble.air import AirAdapters, BleAir
from simulator.ble.gatt_service import DeviceInfo, StimulatorGattService

INFO = DeviceInfo(model="CS-4", serial="SIM-CS4-000042", firmware="1.4.2")
NAME = "CS-4 SIM-CS4-000042"
PORT = f"ble:{NAME}"
IDENTIFY_REPLY: dict[str, Any] = {"model": "CS-4", "serial": "SIM-CS4-000042", "firmware": "1.4.2", "protocol": 1,
                                  "channels": 4}
STATUS_REPLY: dict[str, Any] = {"channels": [
    {"channel": ch, "state": "idle", "program": None, "amplitude_mA": 0.0, "target_mA": 0.0, "elapsed_s": 0.0}
    for ch in (1, 2, 3, 4)
]}
CEILING_MA = 50.0
RECONNECT_INTERVAL_S = 2.0

Handler = Callable[[Frame | FrameError], Frame | None]


def fake_firmware(item: Frame | FrameError) -> Frame | None:
    """Answers IDENTIFY, STATUS and KEEPALIVE; anything else (or a broken frame) gets an ERROR frame."""
    if isinstance(item, FrameError):
        return Frame(MsgType.ERROR, item.seq or 0, error_payload(ErrorCode(item.code), item.detail))
    if item.msg_type == MsgType.IDENTIFY:
        return Frame(reply_type(MsgType.IDENTIFY), item.seq, IDENTIFY_REPLY)
    if item.msg_type == MsgType.STATUS:
        return Frame(reply_type(MsgType.STATUS), item.seq, STATUS_REPLY)
    if item.msg_type == MsgType.KEEPALIVE:
        return Frame(reply_type(MsgType.KEEPALIVE), item.seq, {})
    return Frame(MsgType.ERROR, item.seq, error_payload(ErrorCode.UNKNOWN_COMMAND, "not in the fake"))


class FakeClock:
    """Bench time that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def every(self, interval_s: float, callback: Callable[[], None]) -> Periodic:
        raise NotImplementedError("no periodic callbacks in these tests")


@dataclass
class Device:
    """The fake firmware behind the air: records every request it is handed; ``handler`` is swappable."""

    handler: Handler = fake_firmware
    requests: list[Frame | FrameError] = field(default_factory=list)

    def __call__(self, item: Frame | FrameError) -> Frame | None:
        self.requests.append(item)
        return self.handler(item)

    def kinds(self) -> list[int]:
        return [item.msg_type for item in self.requests if isinstance(item, Frame)]


@dataclass
class Rig:
    air: BleAir
    adapters: AirAdapters
    device: Device
    clock: FakeClock = field(default_factory=FakeClock)
    events: list[str] = field(default_factory=list)
    links: list[BleDutLink] = field(default_factory=list)

    @property
    def adapter(self) -> str:
        return "bumble:" + self.adapters.controller

    def open_link(self, *, device_name: str = NAME, **config: Any) -> BleDutLink:
        settings: dict[str, Any] = {"adapter": self.adapter, "device_name": device_name, "scan_timeout_s": 0.5,
                                    "connect_timeout_s": 3.0, "reconnect_interval_s": RECONNECT_INTERVAL_S}
        settings.update(config)
        link = BleDutLink(BleConfig(**settings), adapter=self.adapter, device_name=device_name, reply_timeout_s=1.0,
                          ceiling_mA=CEILING_MA, clock=self.clock, on_link_event=self.events.append)
        self.links.append(link)
        return link


def wait_until(condition: Callable[[], bool], timeout_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def start_air() -> Iterator[Callable[..., Rig]]:
    """``start_air(**BleAir options) -> Rig``; every link and air it made is closed at teardown."""
    rigs: list[Rig] = []

    def start(**options: Any) -> Rig:
        device = Device()
        air = BleAir(device, INFO, **options)
        try:
            adapters = air.start()
        except BaseException:
            air.stop()
            raise
        rig = Rig(air, adapters, device)
        rigs.append(rig)
        return rig

    yield start
    for rig in rigs:
        for link in rig.links:
            link.close()
        rig.air.stop()


@pytest.fixture
def rig(start_air: Callable[..., Rig]) -> Rig:
    return start_air()


def test_identify_over_a_bonded_link(rig: Rig) -> None:
    link = rig.open_link()
    assert link.identify() == DeviceIdentity(model="CS-4", serial="SIM-CS4-000042", firmware_version="1.4.2",
                                             protocol_version=1, channels=4)
    assert [s.channel for s in link.status()] == [1, 2, 3, 4]
    link.keepalive()
    assert rig.device.kinds() == [MsgType.IDENTIFY, MsgType.STATUS, MsgType.KEEPALIVE]
    described = link.describe()
    assert described["transport"] == "ble"
    assert described["att_mtu"] == 247
    assert described["paired"] is True
    assert link.port == PORT
    peripheral = rig.air.peripheral
    assert peripheral is not None
    assert described["address"] == peripheral.address_string
    assert peripheral.bonds == [DEFAULT_CENTRAL_ADDRESS]  # it paired (and bonded) on connecting
    assert peripheral.pairing_open is False
    assert rig.events == []


def test_device_not_found_names_the_device_and_the_name(rig: Rig) -> None:
    began = time.monotonic()
    with pytest.raises(DutError, match="device not found") as caught:
        rig.open_link(device_name="CS-4 NOBODY")
    assert time.monotonic() - began < 0.5 + 3.0
    message = str(caught.value)
    assert message.startswith("ble:CS-4 NOBODY: ")
    assert "'CS-4 NOBODY'" in message and "0.5 s" in message
    assert "\n" not in message
    assert rig.links == []


def _without_identity(service: StimulatorGattService) -> None:
    service.service = Service(SERVICE_UUID, [service.control_point, service.status])


def _status_without_notify(service: StimulatorGattService) -> None:
    service.status = Characteristic(STATUS_UUID, Characteristic.Properties.READ,
                                    Characteristic.Permissions.READABLE, b"")
    service.service = Service(SERVICE_UUID, [service.control_point, service.status, service.identity])


@pytest.mark.parametrize(("alter", "expected"), [
    (_without_identity, r"lacks the identity characteristic .* with 'read' \(missing;"),
    (_status_without_notify, r"lacks the status characteristic .* with 'notify' \(has \['read'\];"),
], ids=["no-identity", "status-not-notify"])
def test_a_gatt_service_missing_a_characteristic_is_refused_by_name(
    start_air: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch,
    alter: Callable[[StimulatorGattService], None], expected: str,
) -> None:
    class AlteredService(StimulatorGattService):  # a firmware whose GATT table lacks something
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            alter(self)

    monkeypatch.setattr(peripheral_module, "StimulatorGattService", AlteredService)
    rig = start_air()
    with pytest.raises(DutError, match=expected) as caught:
        rig.open_link()
    assert str(caught.value).startswith(f"{PORT}: GATT service {SERVICE_UUID} ")
    assert rig.device.requests == []


def test_a_request_frame_longer_than_one_att_write_is_refused_before_sending(rig: Rig) -> None:
    link = rig.open_link()
    with pytest.raises(DutError, match="does not fit one ATT write") as caught:
        link.start("x" * 300, [1], 1.0)
    assert not isinstance(caught.value, LinkDown)
    message = str(caught.value)
    assert message.startswith(f"{PORT}: START: the ")
    assert "at ATT MTU 247" in message
    link.keepalive()  # the link is still usable, and the device only ever saw the keepalive
    assert rig.device.kinds() == [MsgType.KEEPALIVE]


def test_a_reply_with_a_bad_crc_is_a_protocol_error(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    link = rig.open_link()
    peripheral = rig.air.peripheral
    assert peripheral is not None
    encode = peripheral.handle

    def corrupting(frame_bytes: bytes) -> bytes:  # the reply as the device sends it, one payload byte flipped
        encoded = encode(frame_bytes)
        assert isinstance(encoded, bytes)  # the air's handler is synchronous
        reply = bytearray(encoded)
        i = len(reply) // 2
        reply[i] = reply[i] ^ 0x01 if reply[i] != 0x01 else 0x03
        return bytes(reply)

    monkeypatch.setattr(peripheral, "handle", corrupting)
    with pytest.raises(ProtocolError, match="corrupt") as caught:
        link.keepalive()
    assert str(caught.value).startswith(f"{PORT}: reply to KEEPALIVE is corrupt: ")
    assert "CRC" in str(caught.value)


def test_a_dropped_connection_is_a_link_event_and_the_link_reconnects(rig: Rig) -> None:
    link = rig.open_link()
    link.identify()
    air = rig.air

    def drop(item: Frame | FrameError) -> Frame | None:  # the link model loses the connection mid-exchange
        air.link_lost()
        return None

    rig.device.handler = drop
    with pytest.raises(LinkDown) as caught:
        link.status()
    assert caught.value.command == "STATUS"
    assert str(caught.value).startswith(f"{PORT}: STATUS not delivered: ")
    assert link.connected is False and link.disconnections == 1
    assert len(rig.events) == 1 and "lost at 100.000 s bench time" in rig.events[0] and PORT in rig.events[0]
    rig.device.handler = fake_firmware

    # first request after the loss: one reconnection attempt, which fails (the device is out of reach)
    with pytest.raises(LinkDown, match="reconnection failed") as caught:
        link.keepalive()
    assert caught.value.command == "KEEPALIVE"
    # within reconnect_interval_s of bench time: refused at once, without scanning
    rig.clock.t += RECONNECT_INTERVAL_S / 2
    began = time.monotonic()
    with pytest.raises(LinkDown, match=re.escape("next reconnection attempt at 102.000 s")) as caught:
        link.identify()
    assert time.monotonic() - began < 0.2
    assert caught.value.command == "IDENTIFY" and str(caught.value).startswith(f"{PORT}: IDENTIFY not delivered: ")

    air.link_restored()
    rig.clock.t = 100.0 + RECONNECT_INTERVAL_S + 0.1
    assert link.identify().serial == "SIM-CS4-000042"
    assert link.connected is True and link.reconnections == 1
    assert "re-established at 102.100 s bench time" in rig.events[-1]
    assert link.describe()["reconnections"] == 1
    assert rig.device.kinds()[-1] == MsgType.IDENTIFY


def test_the_ceiling_refuses_before_anything_is_written(rig: Rig) -> None:
    link = rig.open_link()
    with pytest.raises(CeilingError, match=re.escape(f"{PORT}: rig interlock refused START tens_hf")) as caught:
        link.start("tens_hf", [1], CEILING_MA + 0.5)
    assert "nothing was sent" in str(caught.value)
    with pytest.raises(CeilingError, match="SET_AMPLITUDE on channel 2"):
        link.set_amplitude(2, float("nan"))
    link.keepalive()
    assert rig.device.kinds() == [MsgType.KEEPALIVE]


def test_an_unbonded_central_may_read_the_identity_and_nothing_more(rig: Rig) -> None:
    link = rig.open_link()
    link.keepalive()
    peripheral = rig.air.peripheral
    assert peripheral is not None
    with UnbondedCentral("bumble:" + rig.adapters.rogue, NAME, scan_timeout_s=0.5, timeout_s=2.0) as rogue:
        identity = rogue.read_identity()
        identity_value = rogue.identity_bytes()
        write = rogue.write_request(MsgType.START, {"program": "tens_hf", "channels": [1], "amplitude_mA": 40.0}, 7)
        pairing = rogue.pair()
    assert identity.accepted and identity_value == INFO.identity_json()
    assert not write.accepted, write
    assert not pairing.accepted, pairing
    assert peripheral.pairings_refused == 1
    assert peripheral.bonds == [DEFAULT_CENTRAL_ADDRESS]
    link.keepalive()
    assert rig.device.kinds() == [MsgType.KEEPALIVE, MsgType.KEEPALIVE]  # the rogue's START never got through


def test_with_an_open_control_point_an_unbonded_write_gets_through(start_air: Callable[..., Rig]) -> None:
    rig = start_air(control_point_requires_bonding=False)  # what fault ble_control_point_open does
    with UnbondedCentral("bumble:" + rig.adapters.rogue, NAME, scan_timeout_s=0.5, timeout_s=2.0) as rogue:
        write = rogue.write_request(MsgType.START, {"program": "tens_hf", "channels": [1], "amplitude_mA": 40.0}, 7)
        wait_until(lambda: bool(rig.device.requests))
    assert write.accepted, write
    assert rig.device.kinds() == [MsgType.START]


@pytest.mark.skipif(Path("/run/dbus/system_bus_socket").exists(), reason="this machine has a D-Bus system bus")
def test_the_system_adapter_without_bluez_is_one_line() -> None:
    problem = adapter_problem("system")
    assert problem is not None
    assert problem.startswith("BLE adapter 'system'")
    assert "\n" not in problem


@pytest.mark.parametrize("adapter", ["bogus", "bumble:", "usb:0"])
def test_ble_config_rejects_an_unknown_adapter(adapter: str) -> None:
    with pytest.raises(ValidationError) as caught:
        BleConfig(adapter=adapter)
    message = str(caught.value)
    assert repr(adapter) in message
    assert "'system'" in message and "'bumble:<transport>'" in message and "'auto'" in message


def test_a_ble_dut_needs_its_ble_section() -> None:
    with pytest.raises(ValidationError, match=re.escape("dut.transport is 'ble' but there is no dut.ble section")):
        DutConfig(transport="ble")
    assert DutConfig(transport="ble", ble=BleConfig(adapter="bumble:usb:0")).ble is not None


def test_the_device_refusing_a_command_is_device_refused(rig: Rig) -> None:
    link = rig.open_link()
    with pytest.raises(DeviceRefused) as caught:
        link.stop([1])
    assert caught.value.command == "STOP" and caught.value.code == ErrorCode.UNKNOWN_COMMAND
    assert str(caught.value).startswith(f"{PORT}: device refused STOP: UNKNOWN_COMMAND")
    assert link.connected is True


def test_the_link_gives_up_after_max_reconnect_attempts(rig: Rig) -> None:
    link = rig.open_link(max_reconnect_attempts=1)
    rig.air.link_lost()
    wait_until(lambda: not link.connected)  # bleak's disconnected callback has run
    assert link.disconnections == 1 and "lost at" in rig.events[-1]
    with pytest.raises(LinkDown, match=r"reconnection failed: .*device not found"):
        link.keepalive()  # the first request after the loss tries once, and fails: out of reach
    rig.air.link_restored()
    rig.clock.t += 10 * RECONNECT_INTERVAL_S
    began = time.monotonic()
    with pytest.raises(LinkDown, match="gave up after 1 reconnection attempts") as caught:
        link.keepalive()
    assert time.monotonic() - began < 0.2
    assert caught.value.command == "KEEPALIVE"
    assert link.reconnections == 0 and rig.device.requests == []


def test_a_device_whose_pairing_window_is_closed_refuses_the_connection(start_air: Callable[..., Rig]) -> None:
    rig = start_air(bonded_bridge=True)  # bonded to the controller bridge: no pairing without its button
    with pytest.raises(DutError, match=r"connect to .* failed: .*pairing refused") as caught:
        rig.open_link()
    message = str(caught.value)
    assert message.startswith(f"{PORT}: connect to ")
    assert "is the device in pairing mode?" in message
    peripheral = rig.air.peripheral
    assert peripheral is not None and peripheral.pairings_refused == 1
    assert rig.device.requests == []


def test_without_pairing_the_status_subscription_is_refused(rig: Rig) -> None:
    with pytest.raises(DutError, match="subscribe to the status characteristic failed") as caught:
        rig.open_link(pair=False)
    assert str(caught.value).startswith(f"{PORT}: ")
    peripheral = rig.air.peripheral
    assert peripheral is not None and peripheral.bonds == []


def test_scanning_by_address_names_the_device_by_its_address(rig: Rig) -> None:
    peripheral = rig.air.peripheral
    assert peripheral is not None
    link = rig.open_link(address=peripheral.address_string)
    assert link.port == f"ble:{peripheral.address_string}"
    assert link.identify().serial == "SIM-CS4-000042"
    link.close()  # one host at a time on an adapter (the air's emulated controller serves the latest)
    with pytest.raises(DutError, match="device not found: nothing advertising with address C0:FF:EE:00:00:01"):
        rig.open_link(address="C0:FF:EE:00:00:01")


def test_an_adapter_in_use_refuses_a_second_host_in_one_line(start_air: Callable[..., Rig]) -> None:
    """Like a USB dongle, the emulated controller serves one host at a time: a second opener gets one line,
    at once, and the first keeps working. Once it closes, the adapter opens again, but the new host has no
    bond (its key store was the first host's) and the device, bonded already, refuses to pair again."""
    rig = start_air()
    link = rig.open_link()
    t0 = time.monotonic()
    with pytest.raises(DutError) as err:
        rig.open_link()
    assert time.monotonic() - t0 < 2.0
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"BLE adapter '{rig.adapter}': cannot open the HCI transport")
    assert "another program is using this adapter" in message
    assert link.identify().serial == "SIM-CS4-000042"
    link.close()
    with pytest.raises(DutError, match=r"pairing refused by the device \(PAIRING_NOT_SUPPORTED\)"):
        rig.open_link()


def test_a_bond_kept_in_a_key_store_file_outlives_the_host(start_air: Callable[..., Rig], tmp_path: Path) -> None:
    """With dut.ble.keystore, a later host (the next run) re-encrypts with the stored bond: no pairing needed,
    and the device, whose pairing window closed with that bond, accepts it."""
    rig = start_air()
    keystore = tmp_path / "bonds.json"
    rig.open_link(keystore=keystore).close()
    assert keystore.is_file() and rig.air.peripheral is not None and not rig.air.peripheral.pairing_open
    again = rig.open_link(keystore=keystore)
    assert again.identify().serial == "SIM-CS4-000042"
    assert rig.air.peripheral.pairings_refused == 0


def test_a_rogue_attempt_that_fails_for_another_reason_is_an_error_not_a_refusal(rig: Rig) -> None:
    """Only the device's security refusing counts as refused: a write that fails because the connection
    dropped proves nothing, so it raises (the security test ends ERROR) instead of passing as refused."""
    rig.open_link()
    with UnbondedCentral("bumble:" + rig.adapters.rogue, NAME, scan_timeout_s=0.5, timeout_s=2.0) as rogue:
        rig.air.link_lost()  # the device drops every connection, the rogue's too
        wait_until(lambda: not rogue._client.is_connected)
        with pytest.raises(DutError, match=r"rogue central's write START .* failed") as caught:
            rogue.write_request(MsgType.START, {"program": "tens_hf", "channels": [1], "amplitude_mA": 40.0}, 7)
    assert str(caught.value).startswith(f"{PORT}: ") and rogue.attempts == []
