"""RigBench: what the `bench` fixture and `stimrig certify` hold for a run.

Everything is validated before anything is opened; instruments are opened lazily, each with its
own clear error, so a missing scope and a missing DUT are reported separately.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from rig.bench.clock import WallClock
from rig.bench.loads import FixedLoad
from rig.config.bench import AUTO, BenchConfig, BleConfig
from rig.config.device import DeviceModel
from rig.config.loader import FIXTURES_DIR, load_bench, load_device, load_programs
from rig.config.program import Program
from rig.dut.commands import StimulatorCommands
from rig.dut.serial_link import SerialDutLink
from rig.errors import DutError, LinkDown, StimrigError
from rig.interfaces import Clock, LoadBox, Oscilloscope, Periodic

log = logging.getLogger(__name__)

# The controller's heartbeat: four per supervision timeout (a lost one or two never trips the DUT),
# and never slower than this.
KEEPALIVES_PER_SUPERVISION_TIMEOUT = 4
MAX_KEEPALIVE_INTERVAL_S = 0.25


class RigBench:
    def __init__(
        self,
        config: BenchConfig,
        device: DeviceModel,
        programs: list[Program],
        *,
        fault: str | None = None,
    ) -> None:
        self.config = config
        self.device = device
        self.programs = programs
        self.fault = fault
        self.virtual: Any = None  # simulator.bench.VirtualBench on a simulated bench
        self._scope: Oscilloscope | None = None
        self._dut: StimulatorCommands | None = None
        self._load: LoadBox | None = None
        self._clock: Clock = WallClock()
        self._heartbeat: Periodic | None = None
        self.link_errors: list[str] = []  # keep-alives that failed, with the bench time
        self.link_events: list[str] = []  # keep-alives lost while a test expected the link to drop
        self._link_may_drop = False
        self._radio: Any = None  # rig.radio.channel.AttenuatedRadioChannel once opened
        self._bystander: SerialDutLink | None = None
        self._bystander_heartbeat: Periodic | None = None
        self._started = False
        self.programs_dir = FIXTURES_DIR / "programs"
        self.identities: dict[str, dict[str, Any]] = {}  # role -> identity of each instrument and DUT opened
        if fault is not None and not config.simulated:
            from rig.errors import FixtureError

            raise FixtureError(f"--fault {fault!r} needs a simulated bench; {config.path} has target: hw")
        if config.simulated:
            from simulator.faults import firmware_class

            firmware_class(fault if fault is not None else (config.simulator.fault if config.simulator else None))
        self._environment = self._radio_environment()  # validated now: a bad name stops the run before it starts

    def _radio_environment(self) -> Any:
        """The bench's radio environment profile (None without a radio); FixtureError naming the field."""
        if self.config.radio is None:
            return None
        from rig.config.link import load_link_profiles
        from rig.errors import FixtureError

        try:
            return load_link_profiles().environment(self.config.radio.environment)
        except KeyError as exc:
            raise FixtureError(f"{self.config.path}: field 'radio.environment': {exc.args[0]}") from None

    @classmethod
    def from_files(
        cls, bench_path: Path | str, *, programs_dir: Path | str | None = None, fault: str | None = None,
        transport: str | None = None,
    ) -> RigBench:
        """Load and validate every fixture the run needs; raises FixtureError (one line) otherwise.
        ``transport`` (serial | ble) overrides the bench's ``dut.transport``."""
        config = load_bench(bench_path)
        if transport is not None and transport != config.dut.transport:
            from rig.errors import FixtureError

            if transport not in ("serial", "ble"):
                raise FixtureError(f"--transport {transport!r}: expected serial or ble")
            if transport == "ble" and config.dut.ble is None:
                raise FixtureError(f"{config.path}: --transport ble needs a 'dut.ble' section in the bench file "
                                   "(adapter, device_name, ...; see fixtures/benches/sim.yaml)")
            if transport == "serial" and config.dut.port == AUTO and not config.simulated:
                raise FixtureError(f"{config.path}: --transport serial needs a real dut.port")
            config = config.model_copy(update={"dut": config.dut.model_copy(update={"transport": transport})})
        device = load_device(config.device)
        programs = load_programs(programs_dir)
        rig = cls(config, device, programs, fault=fault)
        if programs_dir is not None:
            rig.programs_dir = Path(programs_dir)
        return rig

    # ---- properties the suite reads -----------------------------------------------------------
    @property
    def simulated(self) -> bool:
        return self.config.simulated

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def calibration_overdue(self) -> bool:
        """A real bench's scope past its calibration due date: its results are not conforming evidence.
        (A simulated bench's emulated scope has no calibration to lapse.)"""
        return not self.simulated and self.config.scope_calibration.overdue(date.today())

    @property
    def clock(self) -> Clock:
        self.start()
        return self._clock

    def start(self) -> None:
        """Bring up the virtual bench (simulated target); no-op on a real bench."""
        if self._started:
            return
        self._started = True
        if self.config.simulated:
            from simulator.bench import VirtualBench

            self.virtual = VirtualBench(self.config, self.device, self.programs, fault=self.fault)
            self.virtual.start()
            self._clock = self.virtual.clock

    @property
    def scope_resource(self) -> str:
        self.start()
        if self.config.scope.resource == AUTO:
            sim = self.config.simulator
            if sim is not None and sim.scope_transport == "vxi11":
                from rig.instruments.vxi11_port import use_portmapper_port

                use_portmapper_port(int(self.virtual.resources.portmapper_port))
                return str(self.virtual.resources.scope_vxi11_resource)
            return str(self.virtual.resources.scope_resource)
        return self.config.scope.resource

    @property
    def dut_port(self) -> str:
        """Where the DUT is: its serial port, or ``ble:<advertised name>``."""
        if self.config.dut.transport == "ble":
            return self._dut.port if self._dut is not None else f"ble:{self.ble_device_name}"
        self.start()
        if self.config.dut.port == AUTO:
            return str(self.virtual.resources.dut_port)
        return self.config.dut.port

    @property
    def transport(self) -> str:
        return self.config.dut.transport

    def _ble_config(self) -> BleConfig:
        cfg = self.config.dut.ble
        if cfg is None:
            raise StimrigError(f"{self.config.path}: no 'dut.ble' section: this needs the DUT's BLE settings "
                               "(adapter, device_name, rogue_adapter; see fixtures/benches/sim.yaml)")
        return cfg

    @property
    def ble_adapter(self) -> str:
        """The rig's Bluetooth adapter (rig.dut.ble_central): system, or bumble:<HCI transport>."""
        spec = self._ble_config().adapter
        if spec != AUTO:
            return spec
        self.start()
        return str(self.virtual.resources.ble_adapter)

    @property
    def ble_device_name(self) -> str:
        """The name the DUT advertises: ``<model> <serial>`` unless the bench names it."""
        return self._ble_config().name_to_scan(self.device.model, self.device.identity.serial)

    @property
    def ble_rogue_adapter(self) -> str:
        """A second adapter, never bonded with the DUT (the rogue-central test's)."""
        cfg = self._ble_config()
        if cfg.rogue_adapter is None:
            raise StimrigError(f"{self.config.path}: no 'dut.ble.rogue_adapter': the rogue-central test needs a "
                               "second Bluetooth adapter, never bonded with the DUT (e.g. bumble:usb:1)")
        if cfg.rogue_adapter == AUTO:
            self.start()
            return str(self.virtual.resources.ble_rogue_adapter)
        return str(cfg.rogue_adapter)

    def ble_adapter_problem(self) -> str | None:
        """Why the BLE adapter cannot be used here (one line), or None; only for a BLE DUT transport."""
        if self.transport != "ble":
            return None
        from rig.dut.ble_central import adapter_problem

        return adapter_problem(self.ble_adapter)

    def _ble_event(self, text: str) -> None:
        self.link_events.append(text)

    def _open_dut(self) -> StimulatorCommands:
        d = self.config.dut
        if d.transport == "ble":
            from rig.dut.ble_link import BleDutLink

            return BleDutLink(
                self._ble_config(), adapter=self.ble_adapter, device_name=self.ble_device_name,
                reply_timeout_s=d.reply_timeout_s, ceiling_mA=self.config.amplitude_ceiling_mA, clock=self.clock,
                on_link_event=self._ble_event,
            )
        return SerialDutLink(self.dut_port, baudrate=d.baudrate, reply_timeout_s=d.reply_timeout_s,
                             ceiling_mA=self.config.amplitude_ceiling_mA)

    @property
    def scope(self) -> Oscilloscope:
        if self._scope is None:
            from rig.instruments import open_scope

            self._scope = open_scope(self.config.scope.model_copy(update={"resource": self.scope_resource}))
            cal = self.config.scope_calibration
            self._identified("scope", self.scope_resource, self._scope.identity(),
                             calibration={"certificate": cal.certificate, "calibrated_on": str(cal.calibrated_on),
                                          "due_on": str(cal.due_on), "overdue": self.calibration_overdue})
        return self._scope

    @property
    def radio(self) -> Any:
        """The controller-to-DUT radio path (rig.interfaces.RadioChannel): an RF attenuator set by
        distance. Opening it puts the patient at the bench's default distance."""
        if self._radio is None:
            cfg = self.config.radio
            if cfg is None:
                raise StimrigError(
                    f"{self.config.path}: no 'radio' section: this test sets the controller-to-DUT distance and "
                    "needs an RF attenuator in the bench (radio.environment, radio.cable_loss_dB, "
                    "radio.attenuator.resource; docs/attenuator.md)"
                )
            from rig.instruments.attenuator import open_attenuator
            from rig.radio.channel import AttenuatedRadioChannel

            self.start()
            resource = cfg.attenuator.resource
            if resource == AUTO:
                resource = str(self.virtual.resources.attenuator_resource)
            attenuator = open_attenuator(resource, cfg.attenuator.visa_library, cfg.attenuator.timeout_s)
            self._radio = AttenuatedRadioChannel(
                attenuator, cfg.environment, self._environment, cfg.cable_loss_dB, resource
            )
            self._radio.set_distance_m(cfg.default_distance_m)
            self._identified("rf_attenuator", resource, attenuator.identify())
        return self._radio

    def reset_radio(self) -> None:
        """Back to the default distance (after a test that moved the patient), and wait until the
        controller reaches the DUT again."""
        cfg = self.config.radio
        if self._radio is not None and cfg is not None and self._radio.distance_m() != cfg.default_distance_m:
            self._radio.set_distance_m(cfg.default_distance_m)
            self.await_link()

    def await_link(self, timeout_s: float | None = None) -> float:
        """Wait (bench time) until a KEEPALIVE gets through; returns how long that took. DutError if
        the link is not back within ``timeout_s`` (default: five supervision timeouts)."""
        limit_s = 5.0 * self.device.safety.supervision_timeout_s if timeout_s is None else timeout_s
        start = self.clock.now()
        while True:
            try:
                self.dut.keepalive()
                return self.clock.now() - start
            except LinkDown as exc:
                if self.clock.now() - start >= limit_s:
                    raise DutError(
                        f"{self.dut_port}: the radio link to the DUT is not back {limit_s:g} s after the patient "
                        f"returned to {self._radio.distance_m() if self._radio else '?'} m (expected it to "
                        f"reconnect): {exc}"
                    ) from None
                self.clock.wait(0.05)

    @contextlib.contextmanager
    def link_may_drop(self) -> Iterator[None]:
        """Inside the block the radio link may go down (the test causes it): keep-alives that do not
        get through are recorded as link events, not as failures of the test."""
        self._link_may_drop = True
        try:
            yield
        finally:
            self._link_may_drop = False

    @property
    def dut(self) -> StimulatorCommands:
        """The DUT link, over the bench's transport (serial, or BLE with bleak). Opening it starts the
        controller's keep-alive heartbeat (and, on a bench with a radio, first sets the patient at the
        default distance: the link runs through it)."""
        if self._dut is None:
            if self.config.radio is not None:
                _ = self.radio
            self._dut = self._open_dut()
            self._heartbeat = self.clock.every(self.keepalive_interval_s, self._keepalive)
            self._identified("dut", self.dut_port, self._dut.identify(), **self._dut.describe())
        return self._dut

    @property
    def bystander(self) -> SerialDutLink:
        """The bystander: a second stimulator beside the DUT on the same controller (bench section
        'bystander'). Opened with a keep-alive heartbeat of its own; ``close_bystander`` ends both."""
        if self._bystander is None:
            cfg = self.config.bystander
            if cfg is None:
                raise StimrigError(
                    f"{self.config.path}: no 'bystander' section: this test proves that a command addressed to "
                    "the DUT never changes another device, and needs a second stimulator of the same model on the "
                    "controller with one output on a resistor watched by a scope channel (bystander.port, "
                    "bystander.scope_channel; see fixtures/benches/sim.yaml)"
                )
            if cfg.channel > self.device.channels:
                raise StimrigError(f"{self.config.path}: field 'bystander.channel' is {cfg.channel}: the "
                                   f"{self.device.model} has outputs 1..{self.device.channels}")
            self.start()
            port = str(self.virtual.resources.bystander_port) if cfg.port == AUTO else cfg.port
            self._bystander = SerialDutLink(
                port, baudrate=cfg.baudrate, reply_timeout_s=cfg.reply_timeout_s,
                ceiling_mA=self.config.amplitude_ceiling_mA,
            )
            self._bystander_heartbeat = self.clock.every(self.keepalive_interval_s, self._keepalive_bystander)
            self._identified("bystander", port, self._bystander.identify())
        return self._bystander

    def close_bystander(self) -> None:
        """Stop the bystander's outputs, then its heartbeat and its port."""
        link, self._bystander = self._bystander, None
        if self._bystander_heartbeat is not None:
            self._bystander_heartbeat.cancel()
            self._bystander_heartbeat = None
        if link is None:
            return
        try:
            link.emergency_stop()
            link.stop()
        except Exception as exc:  # must not mask the original failure
            log.error("could not stop the bystander's outputs over %s: %s", link.port, exc)
        with contextlib.suppress(Exception):
            link.close()

    def _keepalive_bystander(self) -> None:
        if self._bystander is None:
            return
        try:
            self._bystander.keepalive()
        except StimrigError as exc:
            self.link_errors.append(f"{self.clock.now():.3f} s: bystander: {exc}")
            raise

    @property
    def loadbox_port(self) -> str:
        self.start()
        if self.config.load.port == AUTO:
            return str(self.virtual.resources.loadbox_port)
        return self.config.load.port

    @property
    def load(self) -> LoadBox:
        """The load box: a relay box over serial (the virtual bench serves one on a pty), or a
        fixed resistor."""
        if self._load is None:
            self.start()
            cfg = self.config.load
            if cfg.kind == "fixed":
                assert cfg.fixed is not None and cfg.loads_ohm is not None
                self._load = FixedLoad(cfg.loads_ohm, cfg.fixed.load, cfg.fixed.dut_channel)
            else:
                from rig.loadbox import SerialLoadBox

                self._load = SerialLoadBox(self.loadbox_port, baudrate=cfg.baudrate, timeout_s=cfg.timeout_s)
        return self._load

    def wait(self, seconds: float) -> None:
        """Let the DUT run for ``seconds`` of bench time. The controller's heartbeat keeps the link
        alive meanwhile (as it does during scope captures): see ``silenced`` for the opposite."""
        self.clock.wait(seconds)

    @contextlib.contextmanager
    def silenced(self) -> Iterator[float]:
        """The controller goes silent: no frame at all reaches the DUT until the block ends.

        Yields the bench time of the silence's start (after the last frame's reply).
        """
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.pause()
        try:
            yield self.clock.now()
        finally:
            if heartbeat is not None:
                heartbeat.resume()

    def _keepalive(self) -> None:
        if self._dut is None:
            return
        try:
            self._dut.keepalive()
        except DutError as exc:
            if self._link_may_drop:
                self.link_events.append(f"{self.clock.now():.3f} s: {exc}")
                return
            self.link_errors.append(f"{self.clock.now():.3f} s: {exc}")
            raise
        except StimrigError as exc:
            self.link_errors.append(f"{self.clock.now():.3f} s: {exc}")
            raise

    @property
    def keepalive_interval_s(self) -> float:
        timeout_s = self.device.safety.supervision_timeout_s
        return min(MAX_KEEPALIVE_INTERVAL_S, timeout_s / KEEPALIVES_PER_SUPERVISION_TIMEOUT)

    def program(self, program_id: str) -> Program:
        for p in self.programs:
            if p.id == program_id:
                return p
        raise KeyError(program_id)

    # ---- safety -------------------------------------------------------------------------------
    def outputs_off(self) -> None:
        """Stop every output. Best effort on every path: the DUT link (and the bystander's), then the
        virtual bench."""
        if self._bystander is not None:
            try:
                self._bystander.emergency_stop()
            except Exception as exc:  # must not mask the original failure
                log.error("could not stop the bystander's outputs over %s: %s", self._bystander.port, exc)
        if self._dut is not None:
            try:
                self._dut.emergency_stop()
                self._dut.stop()  # also clears latched faults, so the next test starts from idle
            except Exception as exc:  # must not mask the original failure
                log.error("could not stop outputs over %s: %s", self._dut.port, exc)
        if self.virtual is not None:
            with contextlib.suppress(Exception):
                self.virtual.emergency_stop_outputs()

    def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self.close_bystander()
        try:  # the patient back in range first, so the stop commands reach the DUT
            self.reset_radio()
        except Exception as exc:  # the DUT's own link-loss cutoff still stops it; must not mask the failure
            log.error("could not put the radio back at the default distance: %s", exc)
        self.outputs_off()
        attenuator = self._radio.attenuator if self._radio is not None else None
        for closer in (self._scope, self._dut, self._load, attenuator):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()
        self._scope = None
        self._dut = None
        self._load = None
        self._radio = None
        if self.virtual is not None:
            self.virtual.stop()

    def fixture_files(self) -> dict[str, Path]:
        """Every fixture file the run reads, by role (for the audit trail's hashes)."""
        from rig.config.requirements import DEFAULT_REQUIREMENTS

        files: dict[str, Path] = {"bench": Path(str(self.config.path)), "device": Path(self.config.device),
                                  "requirements": DEFAULT_REQUIREMENTS,
                                  "load_catalogue": Path(self.config.load.catalogue)}
        for program_file in sorted(self.programs_dir.glob("*.yaml")):
            files[f"program:{program_file.stem}"] = program_file
        if self.config.radio is not None:
            files["link_profiles"] = FIXTURES_DIR / "link" / "ble.yaml"
        if self.virtual is not None:
            files["scope_model (emulated)"] = Path(self.virtual.scope_model_path)
            files["attenuator_model (emulated)"] = FIXTURES_DIR / "instruments" / "minicircuits_rcdat_6000_90.yaml"
        return files

    def _identified(self, role: str, resource: str, identity: Any, **extra: Any) -> None:
        from dataclasses import asdict

        self.identities[role] = {"resource": resource, **asdict(identity), **extra}

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": self.config.name,
            "bench_file": str(self.config.path),
            "target": self.config.target,
            "simulated": self.simulated,
            "seed": self.seed,
            "amplitude_ceiling_mA": self.config.amplitude_ceiling_mA,
            "device_model": self.device.model,
            "dut_transport": self.transport,
            "fault": self.fault,
        }
        if self.virtual is not None:
            out["virtual_bench"] = self.virtual.describe()
        return out
