"""RigBench: what the `bench` fixture and `stimrig certify` hold for a run.

Everything is validated before anything is opened; instruments are opened lazily, each with its
own clear error, so a missing scope and a missing DUT are reported separately.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rig.bench.clock import WallClock
from rig.bench.loads import FixedLoad
from rig.config.bench import AUTO, BenchConfig
from rig.config.device import DeviceModel
from rig.config.loader import load_bench, load_device, load_programs
from rig.config.program import Program
from rig.dut.serial_link import SerialDutLink
from rig.errors import StimrigError
from rig.interfaces import Clock, LoadBox, Oscilloscope, Periodic

log = logging.getLogger(__name__)

# The controller's heartbeat: well inside any BLE supervision timeout (>= 100 ms, spec minimum).
KEEPALIVE_INTERVAL_S = 0.05


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
        self._dut: SerialDutLink | None = None
        self._load: LoadBox | None = None
        self._clock: Clock = WallClock()
        self._heartbeat: Periodic | None = None
        self.link_errors: list[str] = []  # keep-alives that failed, with the bench time
        self._started = False
        if fault is not None and not config.simulated:
            from rig.errors import FixtureError

            raise FixtureError(f"--fault {fault!r} needs a simulated bench; {config.path} has target: hw")
        if config.simulated:
            from simulator.faults import firmware_class

            firmware_class(fault if fault is not None else (config.simulator.fault if config.simulator else None))

    @classmethod
    def from_files(
        cls, bench_path: Path | str, *, programs_dir: Path | str | None = None, fault: str | None = None
    ) -> RigBench:
        """Load and validate every fixture the run needs; raises FixtureError (one line) otherwise."""
        config = load_bench(bench_path)
        device = load_device(config.device)
        programs = load_programs(programs_dir)
        return cls(config, device, programs, fault=fault)

    # ---- properties the suite reads -----------------------------------------------------------
    @property
    def simulated(self) -> bool:
        return self.config.simulated

    @property
    def seed(self) -> int:
        return self.config.seed

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
            return str(self.virtual.resources.scope_resource)
        return self.config.scope.resource

    @property
    def dut_port(self) -> str:
        self.start()
        if self.config.dut.port == AUTO:
            return str(self.virtual.resources.dut_port)
        return self.config.dut.port

    @property
    def scope(self) -> Oscilloscope:
        if self._scope is None:
            from rig.instruments import open_scope

            self._scope = open_scope(self.config.scope.model_copy(update={"resource": self.scope_resource}))
        return self._scope

    @property
    def dut(self) -> SerialDutLink:
        """The DUT link. Opening it starts the controller's keep-alive heartbeat."""
        if self._dut is None:
            d = self.config.dut
            self._dut = SerialDutLink(
                self.dut_port,
                baudrate=d.baudrate,
                reply_timeout_s=d.reply_timeout_s,
                ceiling_mA=self.config.amplitude_ceiling_mA,
            )
            self._heartbeat = self.clock.every(KEEPALIVE_INTERVAL_S, self._keepalive)
        return self._dut

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
        except StimrigError as exc:
            self.link_errors.append(f"{self.clock.now():.3f} s: {exc}")
            raise

    def program(self, program_id: str) -> Program:
        for p in self.programs:
            if p.id == program_id:
                return p
        raise KeyError(program_id)

    # ---- safety -------------------------------------------------------------------------------
    def outputs_off(self) -> None:
        """Stop every output. Best effort on every path: the DUT link, then the virtual bench."""
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
        self.outputs_off()
        for closer in (self._scope, self._dut, self._load):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()
        self._scope = None
        self._dut = None
        self._load = None
        if self.virtual is not None:
            self.virtual.stop()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": self.config.name,
            "bench_file": str(self.config.path),
            "target": self.config.target,
            "simulated": self.simulated,
            "seed": self.seed,
            "amplitude_ceiling_mA": self.config.amplitude_ceiling_mA,
            "device_model": self.device.model,
            "fault": self.fault,
        }
        if self.virtual is not None:
            out["virtual_bench"] = self.virtual.describe()
        return out
