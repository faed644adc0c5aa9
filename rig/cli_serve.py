"""``stimrig serve``: run the virtual bench for external tools (pyvisa scripts, terminal programs)."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import TYPE_CHECKING

from rig.bench.serve_state import remove_serve_state, write_serve_state
from rig.config.bench import BenchConfig
from rig.config.loader import FIXTURES_DIR, load_bench, load_device, load_programs, resolve_fixture
from rig.errors import StimrigError
from rig.protocol.messages import StartRequest

if TYPE_CHECKING:
    from simulator.instruments.scope_model import ScopeModel

DEFAULT_SCOPE_MODEL = "fixtures/instruments/keysight_dsox3034t.yaml"  # SimulatorConfig.scope_model's default


def _parse_start(spec: str) -> tuple[str, int, float | None]:
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise StimrigError(f"--start {spec!r}: expected PROGRAM[:CHANNEL[:mA]], e.g. tens_hf:1:25")
    try:
        channel = int(parts[1]) if len(parts) > 1 else 1
        amplitude = float(parts[2]) if len(parts) > 2 else None
    except ValueError:
        raise StimrigError(f"--start {spec!r}: CHANNEL must be an integer and mA a number") from None
    return parts[0], channel, amplitude


def _scope_model_and_port(config: BenchConfig, requested_port: int | None) -> tuple[ScopeModel, int]:
    """The emulated scope's model fixture, and the port to serve its raw SCPI socket on: the one asked
    for, else the real instrument's own (5025 Keysight, 5555 Rigol)."""
    from simulator.instruments.scope_model import load_scope_model
    from simulator.instruments.serve import raw_socket_port

    sim = config.simulator
    model = load_scope_model(resolve_fixture(sim.scope_model if sim else "fixtures/instruments/keysight_dsox3034t.yaml",
                                             config.path))
    return model, raw_socket_port(model) if requested_port is None else requested_port


STANDARD_PORTMAPPER_PORT = 111


def run_serve(args: argparse.Namespace) -> int:
    from simulator.bench import VirtualBench
    from simulator.stimulator.firmware import Refusal

    try:
        config = load_bench(args.bench or FIXTURES_DIR / "benches" / "sim.yaml")
        if not config.simulated:
            raise StimrigError(f"{config.path}: stimrig serve needs a simulated bench (target: sim)")
        if args.transport is not None and args.transport != config.dut.transport:
            if args.transport == "ble" and config.dut.ble is None:
                raise StimrigError(f"{config.path}: --transport ble needs a 'dut.ble' section in the bench file")
            config = config.model_copy(update={"dut": config.dut.model_copy(update={"transport": args.transport})})
        device = load_device(config.device)
        programs = load_programs()
        start = _parse_start(args.start) if args.start else None
        scope_model, scope_port = _scope_model_and_port(config, args.port)
    except StimrigError as exc:
        print(f"stimrig serve: {exc}")
        return 2
    from simulator.instruments.vxi11 import Vxi11BindError

    # the standard portmapper port when we may bind it (plain pyvisa-py finds the scope there), else a free one
    portmappers = [args.portmapper_port] if args.portmapper_port is not None else [STANDARD_PORTMAPPER_PORT, 0]
    for portmapper in portmappers:
        vbench = VirtualBench(config, device, programs, fault=args.fault, realtime=args.realtime,
                              scope_port=scope_port, bind=args.bind, portmapper_port=portmapper)
        try:
            res = vbench.start()
            break
        except Vxi11BindError as exc:
            vbench.stop()
            if portmapper == portmappers[-1]:
                print(f"stimrig serve: {exc}")
                return 2
        except OSError as exc:
            vbench.stop()
            print(f"stimrig serve: cannot listen on {args.bind or '127.0.0.1'}:{scope_port}: {exc} (try --port 0)")
            return 2
    try:
        print(f"stimrig virtual bench ({'real-time' if vbench.realtime else 'virtual time'}), seed {config.seed}"
              + (f", fault {vbench.fault}" if vbench.fault else "") + "  [SIMULATED]")
        ident = scope_model.identity
        print(f"  oscilloscope ({ident.manufacturer} {ident.model}), raw SCPI socket: {res.scope_resource}")
        print(f"  oscilloscope, VXI-11 (portmapper on TCP {res.portmapper_port}): {res.scope_vxi11_resource}")
        if res.portmapper_port != STANDARD_PORTMAPPER_PORT:
            print(f"    (not the standard port 111: point pyvisa-py at it first with "
                  f"`import pyvisa_py.protocols.rpc as rpc; rpc.PMAP_PORT = {res.portmapper_port}`)")
        print(f"  stimulator {device.model} serial port (controller radio bridge): {res.dut_port}")
        print(f"  stimulator {device.model} over BLE, advertising as {res.ble_device_name!r}: its GATT service through "
              f"the emulated Bluetooth controller at {res.ble_adapter} (dut.ble.adapter; a second, "
              f"unbonded one at {res.ble_rogue_adapter})")
        pairing = ("open: the first central to pair bonds" if config.dut.transport == "ble" else
                   "closed: bonded to the controller bridge (--transport ble opens it for the first central)")
        print(f"    its pairing window is {pairing}")
        print(f"  RF attenuator (Mini-Circuits RCDAT telnet commands) in the radio path: {res.attenuator_resource}")
        print(f"  relay load box serial port: {res.loadbox_port} (loads: {', '.join(vbench.loadbox.loads())})")
        if res.bystander_port:
            print(f"  bystander stimulator serial port (the next patient's device): {res.bystander_port}")
        print("  scope CH1 probes the measurement load (10:1 probe); CH2 is the load box marker output")
        if start is not None:
            prog_id, channel, amplitude = start
            prog = next((p for p in programs if p.id == prog_id), None)
            if prog is None:
                raise StimrigError(f"--start: no program {prog_id!r}; have {[p.id for p in programs]}")
            first_load = "R500"
            vbench.loadbox.connect(channel, first_load)
            with vbench.clock.lock:
                vbench.firmware.start(StartRequest(program=prog_id, channels=[channel],
                                                   amplitude_mA=amplitude or prog.amplitude_mA))
            vbench.run_controller_heartbeat()
            print(f"  started {prog_id} on channel {channel} into {first_load}; a built-in controller keeps "
                  "the link alive (KEEPALIVE every 0.1 s)")
        state_file = write_serve_state(str(config.path), dict(res.__dict__))
        print(f"  addresses written to {state_file} (read by `stimrig bench check`)")
        print("Ctrl-C stops the bench (all outputs off).", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.2)
    except (StimrigError, Refusal) as exc:
        print(f"stimrig serve: {exc}")
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        remove_serve_state()
        vbench.stop()
        print("stimrig serve: stopped; all outputs off", flush=True)
    return 0
