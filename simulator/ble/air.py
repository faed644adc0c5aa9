"""The virtual bench's air: the simulated stimulator's BLE radio, and HCI controllers for the rig's adapters.

One asyncio event loop on a thread of its own runs a bumble ``LocalLink`` with

- the DUT as a bumble peripheral (simulator.ble.peripheral) serving its GATT service; the virtual bench
  hands each request frame to the same radio path as the controller bridge's (simulator.radio_path):
  across the link model, through the firmware, and back;
- one emulated HCI controller per adapter the bench offers, each served over TCP with H4 framing, the
  way a USB Bluetooth dongle is reached through an HCI transport. The rig opens one with bumble's
  ``tcp-client:HOST:PORT`` transport (``rig.dut.ble_adapter``), exactly as it would open ``usb:0``:
  ``controller`` is the rig's, ``rogue`` a second central for the security test.

The link model decides what gets through: each frame's request and reply cross its connection events
(retransmitted, delayed, or lost with the connection). When it declares the connection lost (the
supervision timeout expired) the device drops every BLE connection with reason 0x08 (connection timeout)
and stops advertising; when it hears the device again the device advertises, and a central may
reconnect. Bench time runs only inside an exchange (``SimClock.run_process``) or while the rig waits, so
what happens does not depend on how fast this loop runs.

Pairing: the device accepts pairing only while its pairing window is open (simulator.ble.peripheral).
With ``bonded_bridge`` (a bench whose DUT is driven through the controller bridge's serial port) the
device starts bonded to that bridge, so its window is closed from the start, as in a commissioned clinic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

from rig.protocol.framing import Frame, FrameDecoder, FrameError, encode_frame
from simulator.ble.gatt_service import DeviceInfo
from simulator.ble.peripheral import ConnectionParameters, SimPeripheral

#: what the device does with one request: its reply, or None when no reply gets back (the link dropped)
RequestHandler = Callable[[Frame | FrameError], Frame | None]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: the adapters the air offers, by role
ADAPTER_ROLES = ("controller", "rogue")
START_TIMEOUT_S = 10.0
#: how long a bench-time event (link lost / restored) waits for the air to act on it
REACH_CHANGE_TIMEOUT_S = 5.0


class HciAdapterServer:
    """An emulated HCI controller on ``link``, served over TCP (H4 packets, Nagle off) to one host at a time,
    as a USB dongle is opened by one stack at a time: a second client is closed at once (logged)."""

    def __init__(self, name: str, link: LocalLink) -> None:
        self.name = name
        self.controller = Controller(name, host_sink=self, link=link)
        self.host: asyncio.Transport | None = None
        self.server: asyncio.Server | None = None

    async def listen(self, bind: str) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # then turns Nagle off on each client
        sock.bind((bind, 0))
        self.server = await asyncio.get_running_loop().create_server(self._protocol, sock=sock)
        return int(sock.getsockname()[1])

    def _protocol(self) -> asyncio.Protocol:
        return _HostConnection(self)

    def on_packet(self, packet: bytes) -> None:
        """The controller's HCI events and ACL data, to the attached host."""
        if self.host is not None:
            self.host.write(packet)

    async def close(self) -> None:
        if self.host is not None:
            self.host.close()
        if self.server is not None:
            self.server.close()


class _HostConnection(StreamPacketSource):
    def __init__(self, adapter: HciAdapterServer) -> None:
        super().__init__()
        self.adapter = adapter
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.adapter.host is not None:
            log.warning("%s: a second host tried to attach while one is attached; refused", self.adapter.name)
            transport.close()
            return
        self.transport = transport
        self.adapter.host = transport
        self.set_packet_sink(self.adapter.controller)  # HCI commands and ACL data from this host

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and self.adapter.host is self.transport:
            self.adapter.host = None


@dataclass(frozen=True)
class AirAdapters:
    """bumble transport names of the emulated HCI controllers, by role."""

    controller: str
    rogue: str


class BleAir:
    def __init__(
        self,
        handle_request: RequestHandler,
        info: DeviceInfo,
        *,
        bind: str = "127.0.0.1",
        control_point_requires_bonding: bool = True,
        bonded_bridge: bool = False,
        connection_parameters: ConnectionParameters | None = None,
    ) -> None:
        self.handle_request = handle_request
        self.info = info
        self.bind = bind
        self.control_point_requires_bonding = control_point_requires_bonding
        self.bonded_bridge = bonded_bridge
        self.connection_parameters = connection_parameters
        self.adapters: AirAdapters | None = None
        self.peripheral: SimPeripheral | None = None
        self._decoder = FrameDecoder()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"ble-air {info.serial}", daemon=True)
        self._servers: list[HciAdapterServer] = []

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> AirAdapters:
        self._thread.start()
        self.adapters = self._call(self._start(), START_TIMEOUT_S)
        return self.adapters

    async def _start(self) -> AirAdapters:
        link = LocalLink()
        self.peripheral = SimPeripheral(link, self.info, self._handle,
                                        control_point_requires_bonding=self.control_point_requires_bonding,
                                        connection_parameters=self.connection_parameters)
        if self.bonded_bridge:
            self.peripheral.bonds.append("controller bridge (serial)")
            self.peripheral.pairing_open = False
        specs = {}
        for role in ADAPTER_ROLES:
            server = HciAdapterServer(f"{role} adapter", link)
            self._servers.append(server)
            specs[role] = f"tcp-client:{self.bind}:{await server.listen(self.bind)}"
        await self.peripheral.start()
        return AirAdapters(**specs)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._stop(), START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)

    async def _stop(self) -> None:
        if self.peripheral is not None:
            await self.peripheral.stop()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.close()

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout_s: float) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    # ---- the link model's say (called from simpy, on whichever thread runs bench time) ----------
    def link_lost(self) -> None:
        """The supervision timeout expired: the device is out of reach until ``link_restored``."""
        if self.peripheral is None:
            return
        self.peripheral.reachable = False  # at once: frames arriving from now on never reached it
        self._apply(self.peripheral.go_out_of_reach())

    def link_restored(self) -> None:
        """The device is heard again: it advertises, and a central may reconnect."""
        if self.peripheral is None:
            return
        self._apply(self.peripheral.come_into_reach())

    def _apply(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run on the air's loop; from another thread, wait until done, so the rig's next step sees it."""
        if threading.current_thread() is self._thread:
            self._loop.create_task(coroutine)
            return
        try:
            self._call(coroutine, REACH_CHANGE_TIMEOUT_S)
        except Exception as exc:  # the device's state flag is already set; the air catches up
            log.warning("BLE air did not apply a reach change: %s", exc)

    def open_pairing_window(self) -> None:
        """The device's pairing button."""
        if self.peripheral is not None:
            self._loop.call_soon_threadsafe(self.peripheral.open_pairing_window)

    # ---- frames from the control point (on the air's loop) --------------------------------------
    def _handle(self, frame_bytes: bytes) -> bytes:
        replies = []
        for item in self._decoder.feed(frame_bytes):
            reply = self.handle_request(item)
            if reply is not None:
                replies.append(encode_frame(reply))
        return b"".join(replies)

    def describe(self) -> dict[str, Any]:
        p = self.peripheral
        return {
            "advertised_name": self.info.advertised_name(),
            "address": p.address_string if p is not None else None,
            "adapters": None if self.adapters is None else {"controller": self.adapters.controller,
                                                             "rogue": self.adapters.rogue},
            "bonds": list(p.bonds) if p is not None else [],
            "connections": [] if p is None else [
                {"peer": c.peer_address.to_string(with_type_qualifier=False), "encrypted": bool(c.is_encrypted),
                 "interval_ms": c.parameters.connection_interval, "peripheral_latency": c.parameters.peripheral_latency,
                 "supervision_timeout_ms": c.parameters.supervision_timeout} for c in list(p.connections)],
            "pairings_refused": p.pairings_refused if p is not None else 0,
            "frames_handled": p.frames_handled if p is not None else 0,
            "frames_dropped_out_of_reach": p.frames_dropped if p is not None else 0,
        }
