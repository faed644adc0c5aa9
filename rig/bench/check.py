"""``stimrig bench check``: connect to every instrument and DUT of a bench file, one at a time, and say
for each what it is (identity, firmware), whether its calibration is in date, or exactly why it
cannot be reached. The first command a lab engineer runs; it switches nothing on.

On a simulated bench whose resources are ``auto``, the addresses come from a running ``stimrig serve``
(its state file, rig.bench.serve_state); without one, a virtual bench is started here for the check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from rig.bench.serve_state import ServeState, read_serve_state
from rig.config.bench import AUTO, BenchConfig
from rig.errors import StimrigError


@dataclass(frozen=True)
class CheckResult:
    role: str
    resource: str
    ok: bool
    identity: str = ""
    firmware: str = ""
    calibration: str = ""
    error: str = ""


@dataclass(frozen=True)
class Addresses:
    scope: str
    dut: str
    loadbox: str | None
    attenuator: str | None
    bystander: str | None
    source: str  # where 'auto' addresses came from
    ble_adapter: str | None = None  # the rig's Bluetooth adapter, when the bench has dut.ble


def _calibration_text(config: BenchConfig, today: date) -> str:
    cal = config.scope.calibration
    if cal is None:
        return "no calibration data in the bench file (scope.calibration)"
    if config.simulated:
        return f"{cal.certificate} (emulated instrument)"
    days = (cal.due_on - today).days
    if days < 0:
        return f"OVERDUE since {cal.due_on} ({-days} days): results would be NON-CONFORMING ({cal.certificate})"
    return f"in date: due {cal.due_on} ({days} days left; {cal.certificate})"


def _check(role: str, resource: str, probe: Callable[[], tuple[str, str]]) -> CheckResult:
    try:
        identity, firmware = probe()
    except StimrigError as exc:
        return CheckResult(role, resource, False, error=str(exc))
    except Exception as exc:  # a library error the drivers did not translate: still one line, named
        return CheckResult(role, resource, False, error=f"{resource}: {type(exc).__name__}: {exc}")
    return CheckResult(role, resource, True, identity=identity, firmware=firmware)


def _scope(config: BenchConfig, resource: str) -> tuple[str, str]:
    from rig.instruments import open_scope

    scope = open_scope(config.scope.model_copy(update={"resource": resource}))
    try:
        i = scope.identity()
        return f"{i.manufacturer} {i.model}, serial {i.serial}", i.firmware
    finally:
        scope.close()


def _dut(config: BenchConfig, port: str, baudrate: int, timeout_s: float) -> tuple[str, str]:
    from rig.dut.serial_link import SerialDutLink

    link = SerialDutLink(port, baudrate=baudrate, reply_timeout_s=timeout_s, ceiling_mA=config.amplitude_ceiling_mA)
    try:
        i = link.identify()
        return f"{i.model}, serial {i.serial}, {i.channels} channels, protocol {i.protocol_version}", i.firmware_version
    finally:
        link.close()


def ble_device_name(config: BenchConfig) -> str:
    """What the DUT advertises: dut.ble.device_name, or '<model> <serial>' of the device fixture."""
    from rig.config.loader import load_device

    assert config.dut.ble is not None
    if config.dut.ble.device_name != AUTO:
        return config.dut.ble.device_name
    device = load_device(config.device)
    return config.dut.ble.name_to_scan(device.model, device.identity.serial)


def _dut_ble(config: BenchConfig, adapter: str) -> tuple[str, str]:
    """Scan, connect and read the identity characteristic, which needs no bonding (nothing is paired)."""
    import json

    from rig.dut.ble_rogue import UnbondedCentral

    assert config.dut.ble is not None
    name = ble_device_name(config)
    with UnbondedCentral(adapter, name, scan_timeout_s=config.dut.ble.scan_timeout_s,
                         timeout_s=config.dut.ble.connect_timeout_s) as central:
        raw = central.identity_bytes()
    try:
        i = json.loads(raw)
        return f"{i['model']}, serial {i['serial']}, advertising as {name!r}", str(i["firmware"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StimrigError(f"ble:{name}: identity characteristic is not the JSON of docs/protocol.md ({exc}): "
                           f"{raw[:80]!r}") from None


def _loadbox(config: BenchConfig, port: str) -> tuple[str, str]:
    from rig.loadbox import SerialLoadBox

    box = SerialLoadBox(port, baudrate=config.load.baudrate, timeout_s=config.load.timeout_s)
    try:
        i = box.identity()
        loads = ", ".join(box.loads())
        return f"{i.manufacturer} {i.model}, serial {i.serial}; loads {loads}", i.firmware
    finally:
        box.close()


def _attenuator(config: BenchConfig, resource: str) -> tuple[str, str]:
    from rig.instruments.attenuator import open_attenuator

    assert config.radio is not None
    att = open_attenuator(resource, config.radio.attenuator.visa_library, config.radio.attenuator.timeout_s)
    try:
        i = att.identify()
        lo, hi = att.range_dB
        return f"{i.manufacturer} {i.model}, serial {i.serial}; {lo:g}-{hi:g} dB", i.firmware
    finally:
        att.close()


def check_bench(config: BenchConfig, addresses: Addresses, today: date | None = None) -> list[CheckResult]:
    """Every instrument and DUT of the bench, each with its identity or its error."""
    results = [_check("oscilloscope", addresses.scope, lambda: _scope(config, addresses.scope))]
    results[0] = CheckResult(**{**results[0].__dict__, "calibration": _calibration_text(config, today or date.today())})
    d = config.dut
    results.append(_check("DUT (stimulator)", addresses.dut,
                          lambda: _dut(config, addresses.dut, d.baudrate, d.reply_timeout_s)))
    if config.dut.ble is not None and addresses.ble_adapter is not None:
        adapter = addresses.ble_adapter
        results.append(_check("DUT over BLE", adapter, lambda: _dut_ble(config, adapter)))
    if config.load.kind == "fixed":
        loads = ", ".join(f"{k} {v:g} ohm" for k, v in (config.load.loads_ohm or {}).items())
        results.append(CheckResult("load", "fixed resistor", True, identity=f"fixed: {loads} (nothing to connect to)"))
    elif addresses.loadbox is not None:
        port = addresses.loadbox
        results.append(_check("relay load box", port, lambda: _loadbox(config, port)))
    if config.radio is not None and addresses.attenuator is not None:
        att = addresses.attenuator
        results.append(_check("RF attenuator", att, lambda: _attenuator(config, att)))
    if config.bystander is not None and addresses.bystander is not None:
        b = config.bystander
        port = addresses.bystander
        results.append(_check("bystander stimulator", port,
                              lambda: _dut(config, port, b.baudrate, b.reply_timeout_s)))
    return results


def _resolve(value: str, served: str | None) -> str:
    return served if value == AUTO and served else value


@contextlib.contextmanager
def bench_addresses(config: BenchConfig, state: ServeState | None = None) -> Iterator[Addresses]:
    """The bench's addresses: as written, or for 'auto' (simulated bench) from a running ``stimrig
    serve`` of the same bench, else from a virtual bench started for the duration of the check."""
    uses_auto = AUTO in (config.scope.resource, config.dut.port, config.load.port) or (
        config.radio is not None and config.radio.attenuator.resource == AUTO) or (
        config.dut.ble is not None and config.dut.ble.adapter == AUTO)
    if not config.simulated or not uses_auto:
        yield _addresses(config, {}, "the bench file")
        return
    state = state if state is not None else read_serve_state()
    if state is not None:
        yield _addresses(config, state.resources, f"stimrig serve (pid {state.pid}, {state.bench})")
        return
    from rig.config.loader import load_device, load_programs
    from simulator.bench import VirtualBench

    vbench = VirtualBench(config, load_device(config.device), load_programs())
    res = vbench.start()
    try:
        yield _addresses(config, res.__dict__, "a virtual bench started for this check (no stimrig serve running)")
    finally:
        vbench.stop()


def _addresses(config: BenchConfig, served: dict[str, Any], source: str) -> Addresses:
    def get(key: str) -> str | None:
        value = served.get(key)
        return str(value) if value else None

    radio = config.radio
    return Addresses(
        scope=_resolve(config.scope.resource, get("scope_resource")),
        dut=_resolve(config.dut.port, get("dut_port")),
        loadbox=_resolve(config.load.port, get("loadbox_port")) if config.load.kind != "fixed" else None,
        attenuator=_resolve(radio.attenuator.resource, get("attenuator_resource")) if radio else None,
        bystander=_resolve(config.bystander.port, get("bystander_port")) if config.bystander else None,
        source=source,
        ble_adapter=_resolve(config.dut.ble.adapter, get("ble_adapter")) if config.dut.ble else None,
    )
