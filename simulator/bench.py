"""The virtual bench: one simulated stimulator, its loads, and the instruments that observe it.

It owns the simpy clock and the seeded random streams, serves the device protocol on a pty and the
scope over SCPI/TCP, and is the ScopeHost the emulated scope renders captures from.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from rig.config.bench import BenchConfig
from rig.config.device import DeviceModel
from rig.config.link import load_link_profiles
from rig.config.loader import resolve_fixture
from rig.config.program import Program
from rig.protocol.framing import Frame, FrameError
from rig.protocol.messages import MsgType
from rig.radio.path_loss import mean_path_loss_dB
from simulator.bench_radio import SimRadio
from simulator.ble.air import BleAir
from simulator.ble.gatt_service import DeviceInfo
from simulator.ble.peripheral import ConnectionParameters
from simulator.bystander import SimBystander
from simulator.clock import SimClock
from simulator.device_server import PtyDeviceServer
from simulator.faults import firmware_class
from simulator.instruments.attenuator import serve_attenuator
from simulator.instruments.attenuator_model import load_attenuator_model
from simulator.loadbox import SimLoadBox
from simulator.loadbox_server import PtyLoadBoxServer
from simulator.loads import load_catalogue
from simulator.radio_path import LostInTheAir
from simulator.rng import SeededStreams
from simulator.stimulator.firmware import Sense

MEASURE_PROBE_ATTENUATION = 10.0  # the 10:1 passive probe wired across the measurement load


@dataclass(frozen=True)
class SimResources:
    scope_resource: str
    dut_port: str
    loadbox_port: str
    attenuator_resource: str
    bystander_port: str | None = None
    scope_vxi11_resource: str | None = None  # the same scope over VXI-11 (TCPIP0::host::inst0::INSTR)
    portmapper_port: int | None = None  # where that VXI-11 server's portmapper listens
    ble_adapter: str | None = None  # bumble transport of the emulated HCI controller for the rig ('tcp-client:...')
    ble_rogue_adapter: str | None = None  # a second one, for a central the DUT never bonded with
    ble_device_name: str | None = None  # what the DUT advertises


class _LoadVoltage:
    """Voltage across the measurement load: the routed channel's current into the routed load's model,
    piecewise across relay switches inside the window."""

    def __init__(self, bench: VirtualBench) -> None:
        self.bench = bench

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        b = self.bench
        out = np.zeros(n)
        with b.clock.lock:
            t_end = t0_s + n * dt_s
            cuts = [(t0_s, b.loadbox.route_at(t0_s)), *b.loadbox.route_changes(t0_s, t_end)]
            for k, (t_from, route) in enumerate(cuts):
                t_to = cuts[k + 1][0] if k + 1 < len(cuts) else t_end
                i0 = max(0, math.ceil((t_from - t0_s) / dt_s - 1e-9))
                i1 = min(n, math.ceil((t_to - t0_s) / dt_s - 1e-9))
                if route is None or i1 <= i0:
                    continue
                channel, load = route
                model = b.loadbox.model(load)
                # a load with memory (the electrode-skin capacitor) is rendered from its settled past
                lead = math.ceil(min(model.memory_s, 1.0) / dt_s) if model.memory_s > 0 else 0
                start = t0_s + (i0 - lead) * dt_s
                current = b.firmware.channels[channel].schedule.render_mA(start, dt_s, i1 - i0 + lead)
                if channel in b.regulator_fault:  # delivered = gain x DAC from the moment it failed
                    since_s, gain = b.regulator_fault[channel]
                    current[max(0, math.ceil((since_s - start) / dt_s - 1e-9)):] *= gain
                volts = model.render_voltage_V(current, dt_s, b.device.output.compliance_voltage_V)
                out[i0:i1] = volts[lead:]
        return out


class _Marker:
    """The load box's marker output (relay-sense / MARK), wired to scope CH2."""

    def __init__(self, bench: VirtualBench) -> None:
        self.bench = bench

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        return self.bench.loadbox.marker_V(t0_s, dt_s, n)


class _BystanderVoltage:
    """Voltage across the bystander's resistor (its own scope channel)."""

    def __init__(self, bench: VirtualBench, bystander: SimBystander) -> None:
        self.bench = bench
        self.bystander = bystander

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        with self.bench.clock.lock:
            return self.bystander.render_load_V(t0_s, dt_s, n)


class VirtualBench:
    def __init__(
        self,
        config: BenchConfig,
        device: DeviceModel,
        programs: list[Program],
        *,
        fault: str | None = None,
        realtime: bool | None = None,
        scope_port: int | None = None,
        bind: str | None = None,
        portmapper_port: int | None = None,
    ) -> None:
        sim = config.simulator
        self.config = config
        self.device = device
        self.fault = fault if fault is not None else (sim.fault if sim else None)
        self.realtime = realtime if realtime is not None else (sim.realtime if sim else False)
        self.bind = bind or (sim.bind if sim else "127.0.0.1")
        self.scope_port = scope_port if scope_port is not None else (sim.scope_port if sim else 0)
        self.portmapper_port = portmapper_port if portmapper_port is not None else (
            sim.vxi11_portmapper_port if sim else 0)
        self.scope_model_path = resolve_fixture(
            sim.scope_model if sim else "fixtures/instruments/keysight_dsox3034t.yaml", config.path
        )
        self.rngs = SeededStreams(config.seed)
        self.clock = SimClock(realtime=self.realtime)
        self.firmware = firmware_class(self.fault)(self.clock.env, device, {p.id: p for p in programs})
        self.loadbox = SimLoadBox(
            load_catalogue(config.load.catalogue).models(), device.channels, clock=self.clock,
            on_change=self._load_changed,
        )
        # hardware single faults injected by sim-only tests: channel -> (since, delivered / DAC current)
        self.regulator_fault: dict[int, tuple[float, float]] = {}
        self.firmware.sense = self._sense
        # the controller-to-device radio: the emulated attenuator's setting + the cabling's fixed loss
        if config.radio is None:
            raise ValueError(f"{config.path}: a simulated bench needs a 'radio' section")
        self.radio_config = config.radio
        self.link_profiles = load_link_profiles()
        self.environment = self.link_profiles.environment(config.radio.environment)
        self.attenuator_model = load_attenuator_model()
        self.power_on_attenuation_dB = self._power_on_attenuation_dB()
        self.radio = SimRadio(
            self.clock.env, device, self.link_profiles, self.rngs("radio"),
            path_loss_dB=self.power_on_attenuation_dB + config.radio.cable_loss_dB,
            supervision_timeout_s=self.firmware.supervision_timeout_s(),
            on_link_lost=self.firmware.link_disconnected,
        )
        self.bystander: SimBystander | None = None
        if config.bystander is not None:
            if config.bystander.scope_channel == 2:
                raise ValueError(f"{config.path}: field 'bystander.scope_channel': 2 is the load box marker's "
                                 "channel on the simulated bench (use 3 or 4)")
            self.bystander = SimBystander.build(
                config.bystander, device, programs, type(self.firmware), clock=self.clock,
                profiles=self.link_profiles, rng=self.rngs("radio-bystander"),
                path_loss_dB=self.power_on_attenuation_dB + config.radio.cable_loss_dB,
            )
        self._attenuator_server: Any = None
        self._signal = _LoadVoltage(self)
        self._marker = _Marker(self)
        self.device_server = PtyDeviceServer(self.clock, self.firmware, self.radio)
        if self.bystander is not None:  # each hears what the controller sends the other
            self.device_server.neighbours.append((self.bystander.firmware, self.bystander.radio))
            self.bystander.server.neighbours.append((self.firmware, self.radio))
        # the DUT's own BLE radio: its GATT service, through the same link model (simulator.ble.air); on a
        # bench that drives it through the controller bridge, the device is bonded to the bridge
        self.air = BleAir(
            self._over_the_air,
            DeviceInfo(model=device.model, serial=device.identity.serial, firmware=device.identity.firmware_version),
            bind=self.bind,
            control_point_requires_bonding=self.firmware.control_point_requires_bonding(),
            bonded_bridge=config.dut.transport == "serial",
            connection_parameters=ConnectionParameters(  # the device fixture's, as the link model's
                interval_ms=self.radio.params.interval_s * 1000.0,
                peripheral_latency=self.radio.params.peripheral_latency,
                supervision_timeout_ms=self.radio.params.supervision_timeout_s * 1000.0,
            ),
        )
        self.radio.loss_listeners.append(self.air.link_lost)
        self.radio.reconnect_listeners.append(self.air.link_restored)
        self.loadbox_server = PtyLoadBoxServer(self.clock, self.loadbox)
        self._scope_server: Any = None
        self._vxi11_server: Any = None
        self.resources: SimResources | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> SimResources:
        from simulator.instruments.serve import make_scope
        from simulator.instruments.socket_server import ScpiSocketServer
        from simulator.instruments.vxi11 import Vxi11Server

        port = self.device_server.start()
        loadbox_port = self.loadbox_server.start()
        # the emulator the scope model fixture names (Rigol DS1000Z or Keysight InfiniiVision), on its raw
        # SCPI socket and over VXI-11, one program message at a time across both
        scope = make_scope(self, self.scope_model_path)
        self._scope_server = ScpiSocketServer(scope.session, host=self.bind, port=self.scope_port).start()
        resource = f"TCPIP0::{self.bind}::{self._scope_server.port}::SOCKET"
        self._vxi11_server = Vxi11Server(scope.session, host=self.bind, portmapper_port=self.portmapper_port,
                                         lock=self._scope_server.lock).start()
        adapters = self.air.start()
        self._attenuator_server = serve_attenuator(host=self.bind, port=0, on_change=self._attenuation_changed)
        self._attenuator_server.instrument.execute(f":SETATT={self.power_on_attenuation_dB:g}")
        self.resources = SimResources(
            scope_resource=resource, dut_port=port, loadbox_port=loadbox_port,
            attenuator_resource=self._attenuator_server.resource(),
            bystander_port=self.bystander.server.start() if self.bystander is not None else None,
            scope_vxi11_resource=self._vxi11_server.resource(), portmapper_port=self._vxi11_server.portmapper_port,
            ble_adapter=f"bumble:{adapters.controller}", ble_rogue_adapter=f"bumble:{adapters.rogue}",
            ble_device_name=self.air.info.advertised_name(),
        )
        return self.resources

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.emergency_stop_outputs()
        if self._vxi11_server is not None:
            self._vxi11_server.stop()
            self._vxi11_server = None
        if self._scope_server is not None:
            self._scope_server.stop()
            self._scope_server = None
        if self._attenuator_server is not None:
            self._attenuator_server.stop()
            self._attenuator_server = None
        self.device_server.stop()
        self.air.stop()
        if self.bystander is not None:
            self.bystander.server.stop()
        self.loadbox_server.stop()
        self.clock.close()

    def __enter__(self) -> VirtualBench:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _over_the_air(self, request: Frame | FrameError) -> Frame | None:
        """A request written to the DUT's control point: across the link model and back (None: the
        connection dropped on the way, and the air drops it for the central too)."""
        outcome = self.device_server.path.exchange(request)
        return None if isinstance(outcome, LostInTheAir) else outcome

    def _sense(self, channel: int) -> Sense:
        """What the stimulator's output-stage sensing sees on ``channel``: the impedance of the load it
        drives, and the current it really delivers (relative to its DAC)."""
        z = self.loadbox.model(self.loadbox.load_of(channel)).sensed_impedance_ohm
        gain = self.regulator_fault[channel][1] if channel in self.regulator_fault else 1.0
        return Sense(impedance_ohm=z, current_gain=gain)

    def _power_on_attenuation_dB(self) -> float:
        """The attenuator's configured power-up value: the bench's default distance (so `stimrig serve`
        comes up with a working link; the rig sets it again when it opens the radio)."""
        cfg = self.radio_config
        wanted = float(mean_path_loss_dB(self.environment, cfg.default_distance_m)) - cfg.cable_loss_dB
        lo, hi = self.attenuator_model.range_dB
        return self.attenuator_model.quantize_dB(min(max(wanted, lo), hi))

    def _attenuation_changed(self, attenuation_dB: float) -> None:
        """The emulated attenuator was set (from its TCP server thread)."""
        with self.clock.lock:
            self.radio.set_path_loss_dB(attenuation_dB + self.radio_config.cable_loss_dB)

    def _load_changed(self, dut_channel: int, load: str) -> None:
        """The load box switched a relay: the stimulator sees it on its next pulses."""
        with self.clock.lock:
            self.firmware.on_load_changed(dut_channel)

    # ---- a built-in controller, for `stimrig serve --start` only ------------------------------
    def run_controller_heartbeat(self, interval_s: float = 0.1) -> None:
        """Stand in for a clinic controller: a KEEPALIVE frame every ``interval_s`` of bench time,
        through the same firmware path as frames from the pty. Never used under test: there, the
        rig is the controller."""

        def heartbeat() -> Generator[simpy.Event, Any, None]:
            seq = 0
            while True:
                yield self.clock.env.timeout(interval_s)
                seq = seq % 255 + 1
                yield self.clock.env.process(self.firmware.handle(Frame(MsgType.KEEPALIVE, seq, {})))

        with self.clock.lock:
            self.clock.env.process(heartbeat())

    # ---- single faults a sim-only test injects (IEC 60601-1 4.7) --------------------------------
    @contextlib.contextmanager
    def current_regulator_failed(self, channel: int, gain: float) -> Iterator[None]:
        """Inside the block the output stage's current regulator has failed: ``channel`` delivers
        ``gain`` x what its DAC is set to (up to the compliance voltage), and its current sense sees
        that. Repaired on leaving the block."""
        with self.clock.lock:
            self.regulator_fault[channel] = (self.clock.now(), float(gain))
            self.firmware.on_load_changed(channel)
        try:
            yield
        finally:
            with self.clock.lock:
                self.regulator_fault.pop(channel, None)
                self.firmware.on_load_changed(channel)

    def hang_firmware(self, duration_s: float) -> None:
        """The firmware's main loop locks up for ``duration_s`` (the watchdog should reset it first)."""
        with self.clock.lock:
            self.firmware.hang(duration_s)

    @contextlib.contextmanager
    def battery_at(self, volts: float) -> Iterator[None]:
        """Inside the block the battery is at ``volts``; a fresh battery on leaving it."""
        with self.clock.lock:
            self.firmware.set_battery_V(volts)
        try:
            yield
        finally:
            with self.clock.lock:
                self.firmware.set_battery_V(self.device.safety.low_battery_V + 0.8)

    # ---- bench-side safety net ----------------------------------------------------------------
    def emergency_stop_outputs(self) -> None:
        with self.clock.lock:
            self.firmware.emergency_stop()
            if self.bystander is not None:
                self.bystander.firmware.emergency_stop()

    def output_amplitudes_mA(self) -> dict[int, float]:
        with self.clock.lock:
            now = self.clock.now()
            return {n: ch.schedule.envelope_mA(now) for n, ch in self.firmware.channels.items()}

    # ---- ScopeHost ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def advance_to(self, t_s: float) -> None:
        self.clock.advance_to(t_s)

    def signal(self, channel: int) -> _LoadVoltage | _Marker | _BystanderVoltage | None:
        """CH1: across the measurement load (10:1 probe). CH2: the load box's marker output (BNC).
        The bystander's scope channel (if the bench has one): across its resistor."""
        if channel == 1:
            return self._signal
        if channel == 2:
            return self._marker
        if self.bystander is not None and channel == self.bystander.config.scope_channel:
            return _BystanderVoltage(self, self.bystander)
        return None

    def probe_attenuation(self, channel: int) -> float:
        if self.bystander is not None and channel == self.bystander.config.scope_channel:
            return self.bystander.config.probe_attenuation
        return MEASURE_PROBE_ATTENUATION if channel == 1 else 1.0

    def rng(self, stream: str) -> np.random.Generator:
        return self.rngs(stream)

    def describe(self) -> dict[str, Any]:
        return {
            "simulated": True,
            "seed": self.config.seed,
            "fault": self.fault,
            "realtime": self.realtime,
            "device_model": self.device.model,
            "random_streams": self.rngs.streams,
            "bench_time_s": self.clock.now(),
            "radio": {
                "environment": self.radio_config.environment,
                "path_loss_dB": self.radio.path_loss_dB,
                "connection_events": self.radio.events,
                "link_losses_s": list(self.radio.losses),
                "reconnections_s": list(self.radio.reconnections),
            },
            "ble": self.air.describe(),
            "bystander": None if self.bystander is None else {
                "serial": self.bystander.device.identity.serial,
                "channel": self.bystander.config.channel,
                "scope_channel": self.bystander.config.scope_channel,
            },
        }
