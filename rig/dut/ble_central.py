"""One Bluetooth adapter of the rig, driven with bleak from an event loop on a thread of its own.

bleak is asyncio; the rig and its pytest suite are synchronous. A ``BleCentral`` owns a private loop,
runs bleak's coroutines on it (``run``), and maps what the adapter spec names to bleak's arguments:

- ``system``: bleak's platform backend (BlueZ over D-Bus on Linux, CoreBluetooth, WinRT);
- ``bumble:<transport>``: the bleak backend over bumble (rig.dut.bleak_bumble) on the HCI controller at
  that bumble transport, e.g. ``bumble:usb:0`` (a USB dongle) or ``bumble:tcp-client:127.0.0.1:9001``
  (the virtual bench's emulated controller).

That choice is the only difference between a real and a simulated bench: scanning, connecting,
discovery, writes and notifications are the same bleak calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDBusError, BleakError

from rig.errors import DutError

_T = TypeVar("_T")

SYSTEM = "system"
BUMBLE_PREFIX = "bumble:"
#: extra wall time a loop call may take beyond its own timeout before the rig gives up on it
CALL_MARGIN_S = 5.0


def no_stack_reason(exc: BaseException) -> str | None:
    """If ``exc`` says the machine has no usable Bluetooth stack, a short reason; else None."""
    if isinstance(exc, FileNotFoundError):  # dbus_fast: no system bus socket
        return f"no D-Bus system bus to reach BlueZ through ({exc.strerror or exc})"
    if isinstance(exc, BleakDBusError):
        if "ServiceUnknown" in str(exc.dbus_error) or "org.bluez" in str(exc):
            return "BlueZ (bluetoothd) is not running"
        return f"D-Bus error {exc.dbus_error}"
    if isinstance(exc, BleakError) and "adapter" in str(exc).lower():
        return str(exc)
    if isinstance(exc, ConnectionRefusedError | PermissionError):
        return f"{type(exc).__name__}: {exc}"
    return None


class BleCentral:
    """An adapter (``system`` or ``bumble:<transport>``), opened at construction; DutError if it cannot be."""

    def __init__(self, adapter: str, *, address: str | None = None, keystore_file: str | None = None) -> None:
        self.adapter = adapter
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"ble {adapter}", daemon=True)
        self._thread.start()
        self._bumble: Any = None
        self.scanner_kwargs: dict[str, Any] = {}
        self.client_kwargs: dict[str, Any] = {}
        if adapter.startswith(BUMBLE_PREFIX):
            self._open_bumble(adapter[len(BUMBLE_PREFIX):], address, keystore_file)
        elif adapter != SYSTEM:
            self.close()
            raise DutError(f"BLE adapter {adapter!r}: unknown (expected 'system' or 'bumble:<transport>')")

    def _open_bumble(self, transport: str, address: str | None, keystore_file: str | None) -> None:
        from rig.dut.bleak_bumble import DEFAULT_CENTRAL_ADDRESS, BumbleCentral, BumbleClient, BumbleScanner

        host_log = logging.getLogger("bumble.host")  # it logs a traceback of its own when the transport drops
        level = host_log.level
        host_log.setLevel(logging.CRITICAL)
        try:
            self._bumble = self.run(BumbleCentral.open(transport, address or DEFAULT_CENTRAL_ADDRESS,
                                                       keystore_file=keystore_file), 10.0)
        except Exception as exc:
            self.close()
            busy = " or another program is using this adapter" if "lost" in str(exc) else ""
            raise DutError(
                f"BLE adapter {self.adapter!r}: cannot open the HCI transport {transport!r}: "
                f"{type(exc).__name__}: {exc} (expected a Bluetooth controller there, e.g. usb:0 for a USB dongle"
                f"{busy})"
            ) from None
        finally:
            host_log.setLevel(level)
        self.scanner_kwargs = {"backend": BumbleScanner, "bumble_central": self._bumble}
        self.client_kwargs = {"backend": BumbleClient, "bumble_central": self._bumble}

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout_s: float) -> _T:
        """Run ``coroutine`` on the adapter's loop; TimeoutError after ``timeout_s`` of wall time (cancelled)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout_s:g} s") from None

    async def find(self, *, name: str | None, address: str | None, timeout_s: float) -> BLEDevice | None:
        """Scan for the device by address (if given) or advertised name; None if not heard in time."""
        if address is not None:
            return await BleakScanner.find_device_by_address(address, timeout=timeout_s, **self.scanner_kwargs)
        assert name is not None
        return await BleakScanner.find_device_by_name(name, timeout=timeout_s, **self.scanner_kwargs)

    def scan_for(self, *, name: str | None, address: str | None, timeout_s: float, who: str) -> BLEDevice:
        """``find``, or DutError in one line naming ``who`` (e.g. ``ble:CS-4 123``): not found, or no stack."""
        try:
            device = self.run(self.find(name=name, address=address, timeout_s=timeout_s), timeout_s + CALL_MARGIN_S)
        except (BleakError, OSError, TimeoutError) as exc:
            reason = no_stack_reason(exc)
            if reason is not None:
                raise DutError(f"{who}: scan on BLE adapter {self.adapter!r}: no usable Bluetooth stack on this "
                               f"machine: {reason}") from None
            raise DutError(f"{who}: scan on BLE adapter {self.adapter!r} failed: {exc}") from None
        if device is None:
            wanted = f"address {address}" if address else f"name {name!r}"
            raise DutError(f"{who}: device not found: nothing advertising with {wanted} within {timeout_s:g} s on BLE "
                           f"adapter {self.adapter!r} (expected the stimulator powered, in range and advertising)")
        return device

    def client(self, device: BLEDevice, **kwargs: Any) -> BleakClient:
        return BleakClient(device, **kwargs, **self.client_kwargs)

    def close(self) -> None:
        if self._bumble is not None:
            with contextlib.suppress(Exception):
                self.run(self._bumble.close(), 5.0)
            self._bumble = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=2.0)


def adapter_problem(adapter: str, timeout_s: float = 1.0) -> str | None:
    """Why ``adapter`` cannot be used on this machine, in one line (None if a short scan works)."""
    try:
        central = BleCentral(adapter)
    except DutError as exc:
        return str(exc)
    try:
        central.run(BleakScanner.discover(timeout=0.2, **central.scanner_kwargs), timeout_s + CALL_MARGIN_S)
    except Exception as exc:
        reason = no_stack_reason(exc) or f"{type(exc).__name__}: {exc}"
        return (f"BLE adapter {adapter!r}: no usable Bluetooth stack on this machine: {reason} (expected BlueZ "
                "with an adapter for 'system', or dut.ble.adapter: bumble:usb:0 for a USB HCI dongle)")
    finally:
        central.close()
    return None
