"""Bench fixture: which instruments and DUT ports make up a bench, its ceiling and its seed."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeAccuracy(_Strict):
    """The measurement chain's accuracy specification, from which each measurement's expanded
    uncertainty U is derived (rig.uncertainty). Each figure names its source in ``sources``."""

    dc_gain_pct: float = Field(ge=0, le=50, description="vertical (DC gain) accuracy, +/- % (taken of reading)")
    timebase_ppm: float = Field(ge=0, le=10000, description="timebase / sample-clock accuracy, +/- ppm")
    probe_pct: float = Field(ge=0, le=50, description="probe attenuation accuracy, +/- %")
    load_pct: float = Field(ge=0, le=50, description="measurement load resistor tolerance, +/- %")
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sourced(self) -> ScopeAccuracy:
        for key in ("dc_gain_pct", "timebase_ppm", "probe_pct", "load_pct"):
            if not self.sources.get(key, "").strip():
                raise ValueError(f"accuracy.sources['{key}'] is missing: every number must name its source")
        return self


class Calibration(_Strict):
    """The instrument's calibration: certificate, date and due date."""

    certificate: str = Field(min_length=1)
    calibrated_on: date
    due_on: date

    @model_validator(mode="after")
    def _ordered(self) -> Calibration:
        if self.due_on <= self.calibrated_on:
            raise ValueError(f"calibration due_on {self.due_on} is not after calibrated_on {self.calibrated_on}")
        return self

    def overdue(self, today: date) -> bool:
        return today > self.due_on


class ScopeConfig(_Strict):
    driver: Literal["auto", "keysight_infiniivision", "rigol_ds1000z"] = "auto"
    resource: str = Field(min_length=1, description="VISA resource string, or 'auto' on a simulated bench")
    visa_library: str = Field(default="@py", description="pyvisa backend: '@py' or a VISA library path")
    timeout_s: float = Field(default=5.0, gt=0, le=600)
    measure_channel: int = Field(default=1, ge=1, le=4, description="channel probing the measurement load")
    marker_channel: int = Field(default=2, ge=1, le=4, description="channel wired to the load box marker output")
    probe_attenuation: float = Field(default=10.0, gt=0, description="attenuation of the probe wired on it")
    # required in a bench file (BenchConfig checks); optional here so that a driver can be opened on its own
    accuracy: ScopeAccuracy | None = Field(default=None, description="accuracy of scope, probe and load")
    calibration: Calibration | None = Field(default=None, description="the scope's calibration and due date")


class BleConfig(_Strict):
    """How the rig reaches the DUT over BLE (docs/protocol.md, BLE transport; rig.dut.ble_link).

    ``adapter`` names the Bluetooth adapter: ``system`` (bleak's platform backend: BlueZ over D-Bus on
    Linux), ``bumble:<transport>`` (an HCI controller through bumble, e.g. ``bumble:usb:0`` or
    ``bumble:tcp-client:host:port``), or ``auto`` on a simulated bench (the virtual bench's emulated
    controller). Only that choice differs between benches: the transport code is the same.
    """

    adapter: str = Field(default="system", min_length=1, description="system | bumble:<transport> | auto (sim)")
    device_name: str = Field(default=AUTO, min_length=1,
                             description="advertised name to scan for; auto: '<model> <serial>' of the device fixture")
    address: str | None = Field(default=None, description="scan for this address instead of the name")
    scan_timeout_s: float = Field(default=5.0, gt=0, le=120, description="how long one scan looks for the device")
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120, description="connection + GATT discovery")
    reconnect_interval_s: float = Field(
        default=1.0, gt=0, le=600,
        description="bench time between reconnection attempts after the link dropped (requests fail at once between)",
    )
    max_reconnect_attempts: int | None = Field(
        default=None, ge=0, description="give up reconnecting after this many failed attempts (null: never)")
    pair: bool = Field(default=True, description="pair and bond at the first connection (the device requires it)")
    keystore: Path | None = Field(
        default=None,
        description="bumble adapters: a JSON key store file, so that the bond outlives the run (BlueZ keeps its own)")
    rogue_adapter: str | None = Field(
        default=None, min_length=1,
        description="a second adapter, not bonded to the DUT, for the rogue-central test (auto on a simulated bench)",
    )

    def name_to_scan(self, model: str, serial: str) -> str:
        """``device_name``, or for ``auto`` the name a device of that model and serial advertises."""
        from rig.dut.ble_uuids import advertised_name

        return advertised_name(model, serial) if self.device_name == AUTO else self.device_name

    @field_validator("adapter", "rogue_adapter")
    @classmethod
    def _adapter_spec(cls, v: str | None) -> str | None:
        if v is not None and v not in (AUTO, "system") and not (v.startswith("bumble:") and len(v) > len("bumble:")):
            raise ValueError(f"adapter {v!r} is not 'system', 'bumble:<transport>' (e.g. bumble:usb:0) or 'auto'")
        return v


class DutConfig(_Strict):
    transport: Literal["serial", "ble"] = "serial"
    port: str = Field(default=AUTO, min_length=1,
                      description="serial port path or pyserial URL, or 'auto' when simulated")
    baudrate: int = Field(default=115200, gt=0)
    reply_timeout_s: float = Field(default=1.0, gt=0, le=60)
    ble: BleConfig | None = Field(default=None, description="the BLE transport's settings (transport: ble)")

    @model_validator(mode="after")
    def _ble_settings(self) -> DutConfig:
        if self.transport == "ble" and self.ble is None:
            raise ValueError("dut.transport is 'ble' but there is no dut.ble section (adapter, device_name, ...)")
        return self


class FixedLoad(_Strict):
    load: str
    dut_channel: int = Field(ge=1)


class LoadConfig(_Strict):
    """How the bench switches loads.

    - ``simulated``: the virtual bench's relay load box, served on a pty (port 'auto'), with the
      load models of ``catalogue``;
    - ``relay``: a real relay load box on a serial port (docs/loadbox.md);
    - ``fixed``: no load box, one resistor wired to one DUT channel (``loads_ohm`` + ``fixed``).
    """

    kind: Literal["simulated", "relay", "fixed"]
    port: str = Field(default=AUTO, min_length=1, description="serial port of the relay box ('auto' when simulated)")
    baudrate: int = Field(default=115200, gt=0)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    catalogue: Path = Field(
        default=Path("fixtures/loads/standard.yaml"), validate_default=True, description="simulated box's load models"
    )
    loads_ohm: dict[str, float] | None = Field(default=None, description="fixed: the resistor(s) wired")
    fixed: FixedLoad | None = None

    @field_validator("loads_ohm")
    @classmethod
    def _positive(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for name, ohms in (v or {}).items():
            if not ohms > 0:
                raise ValueError(f"load {name!r} must be a positive resistance in ohm, got {ohms}")
        return v

    @field_validator("catalogue")
    @classmethod
    def _catalogue_exists(cls, v: Path, info: ValidationInfo) -> Path:
        from rig.config.loader import resolve_fixture

        resolved = resolve_fixture(v, (info.context or {}).get("path"))
        if not resolved.is_file():
            raise ValueError(f"load catalogue {str(v)!r} not found (expected a file under fixtures/loads/)")
        return resolved

    @model_validator(mode="after")
    def _kind_consistent(self) -> LoadConfig:
        if self.kind == "fixed":
            if self.fixed is None or not self.loads_ohm:
                raise ValueError("a 'fixed' load needs loads_ohm and fixed.load / fixed.dut_channel")
            if self.fixed.load not in self.loads_ohm:
                raise ValueError(f"fixed.load {self.fixed.load!r} is not one of loads_ohm {list(self.loads_ohm)}")
        elif self.kind == "relay" and self.port == AUTO:
            raise ValueError("a 'relay' load box needs its serial port (load.port), not 'auto'")
        return self


class AttenuatorConfig(_Strict):
    resource: str = Field(
        default=AUTO, min_length=1,
        description="VISA resource of the RF attenuator, e.g. TCPIP0::192.0.2.20::23::SOCKET ('auto' when simulated)",
    )
    visa_library: str = Field(default="@py", description="pyvisa backend: '@py' or a VISA library path")
    timeout_s: float = Field(default=2.0, gt=0, le=60)


class RadioConfig(_Strict):
    """The radio path between the controller and the DUT: a programmable RF attenuator in the conducted
    path, set to the path loss of a distance in a named environment less the cabling's fixed loss
    (docs/attenuator.md, docs/link-model.md)."""

    environment: str = Field(min_length=1, description="environment profile in fixtures/link/ble.yaml")
    cable_loss_dB: float = Field(ge=0, le=60, description="fixed loss of the conducted path without the attenuator")
    default_distance_m: float = Field(
        default=1.0, gt=0, le=1000, description="distance set at the start and after every test"
    )
    attenuator: AttenuatorConfig = AttenuatorConfig()


class BystanderConfig(_Strict):
    """A second stimulator of the DUT's model on the same controller, beside the DUT (the next patient
    in a clinic). Its own port to the controller; one of its outputs drives a fixed resistor watched by
    a scope channel. A command addressed to the DUT must never change it (certification test
    test_device_isolation; docs/protocol.md, addressing)."""

    port: str = Field(min_length=1, description="its serial port (controller bridge port), or 'auto' when simulated")
    baudrate: int = Field(default=115200, gt=0)
    reply_timeout_s: float = Field(default=1.0, gt=0, le=60)
    channel: int = Field(default=1, ge=1, description="the bystander's output wired to the resistor")
    load_ohm: float = Field(default=500.0, gt=0, description="the fixed resistor on that output")
    scope_channel: int = Field(ge=1, le=4, description="scope channel probing that resistor")
    probe_attenuation: float = Field(default=10.0, gt=0)


class SimulatorConfig(_Strict):
    bind: str = Field(default="127.0.0.1", description="address the emulated instruments listen on")
    scope_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    scope_model: str = "fixtures/instruments/keysight_dsox3034t.yaml"
    fault: str | None = Field(default=None, description="name of a seeded firmware defect to inject")
    vxi11_portmapper_port: int = Field(
        default=0, ge=0, le=65535,
        description="port of the VXI-11 portmapper serving the emulated scope (111 is the standard, 0 a free port)",
    )
    scope_transport: Literal["socket", "vxi11"] = Field(
        default="socket", description="how the rig reaches the emulated scope: raw SCPI socket or VXI-11 (INSTR)"
    )
    realtime: bool = False


class BenchConfig(_Strict):
    schema_: Literal["stimrig.bench/1"] = Field(alias="schema")
    name: str = Field(min_length=1)
    target: Literal["sim", "hw"]
    seed: int = Field(ge=0, lt=2**63)
    amplitude_ceiling_mA: float = Field(gt=0, le=200, description="the rig never commands more than this")
    device: Path = Field(description="device model fixture of the DUT (limits and tolerances)")
    scope: ScopeConfig
    dut: DutConfig
    load: LoadConfig
    radio: RadioConfig | None = None
    bystander: BystanderConfig | None = None
    simulator: SimulatorConfig | None = None
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("device")
    @classmethod
    def _device_exists(cls, v: Path, info: ValidationInfo) -> Path:
        from rig.config.loader import resolve_fixture

        ctx = info.context or {}
        resolved = resolve_fixture(v, ctx.get("path"))
        if not resolved.is_file():
            raise ValueError(f"device fixture {str(v)!r} not found (expected a file under fixtures/devices/)")
        return resolved

    @model_validator(mode="after")
    def _target_consistent(self, info: ValidationInfo) -> BenchConfig:
        if self.target == "hw":
            if self.scope.resource == AUTO or (self.dut.transport == "serial" and self.dut.port == AUTO):
                raise ValueError("a hardware bench needs a real scope.resource and dut.port, not 'auto'")
            if self.dut.ble is not None and AUTO in (self.dut.ble.adapter, self.dut.ble.rogue_adapter):
                raise ValueError("a hardware bench needs a real dut.ble.adapter (system or bumble:<transport>) and "
                                 "dut.ble.rogue_adapter, not 'auto'")
            if self.load.kind == "simulated":
                raise ValueError("a hardware bench cannot use a 'simulated' load box (use 'relay' or 'fixed')")
            if self.simulator is not None:
                raise ValueError("'simulator' settings belong only to a bench with target: sim")
            if self.radio is not None and self.radio.attenuator.resource == AUTO:
                raise ValueError("a hardware bench needs a real radio.attenuator.resource, not 'auto'")
            if self.bystander is not None and self.bystander.port == AUTO:
                raise ValueError("a hardware bench needs a real bystander.port, not 'auto'")
        else:
            if self.load.kind != "simulated":
                raise ValueError("a simulated bench uses load.kind: simulated (its relay box is served on a pty)")
            if self.radio is None:
                raise ValueError("a simulated bench needs a 'radio' section: its DUT link runs through the link model")
        for name in ("accuracy", "calibration"):
            if getattr(self.scope, name) is None:
                raise ValueError(f"scope.{name} is missing: verdicts are guard-banded with the scope's measurement "
                                 "uncertainty and its calibration status (see fixtures/benches/sim.yaml)")
        if self.bystander is not None and self.bystander.scope_channel == self.scope.measure_channel:
            raise ValueError(
                f"bystander.scope_channel {self.bystander.scope_channel} is the scope's measure_channel: the "
                "bystander's resistor needs a scope channel of its own"
            )
        ctx = info.context or {}
        if ctx.get("path") is not None:
            object.__setattr__(self, "path", Path(ctx["path"]))
        return self

    @property
    def simulated(self) -> bool:
        return self.target == "sim"

    @property
    def scope_accuracy(self) -> ScopeAccuracy:
        assert self.scope.accuracy is not None  # a validated bench file has it
        return self.scope.accuracy

    @property
    def scope_calibration(self) -> Calibration:
        assert self.scope.calibration is not None  # a validated bench file has it
        return self.scope.calibration
