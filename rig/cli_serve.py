"""``stimrig serve``: run the virtual bench for external tools (pyvisa scripts, terminal programs)."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import TYPE_CHECKING

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


def _scope_model_and_port(config: BenchConfig, requested_port: int | None) -> tuple[ScopeModel, int | None]:
    """The emulated scope's model fixture, and the port to serve it on: the one asked for, except that
    the CLI's default (the Keysight raw-socket port 5025) becomes the model's own raw-socket port
    (5555 for a Rigol DS1000Z)."""
    from simulator.instruments.scope_model import load_scope_model
    from simulator.instruments.serve import KEYSIGHT_RAW_SOCKET_PORT, raw_socket_port

    sim = config.simulator
    model = load_scope_model(resolve_fixture(sim.scope_model if sim else DEFAULT_SCOPE_MODEL, config.path))
    if requested_port == KEYSIGHT_RAW_SOCKET_PORT:
        return model, raw_socket_port(model)
    return model, requested_port  # None: the bench file's simulator.scope_port


def run_serve(args: argparse.Namespace) -> int:
    from simulator.bench import VirtualBench
    from simulator.stimulator.firmware import Refusal

    try:
        config = load_bench(args.bench or FIXTURES_DIR / "benches" / "sim.yaml")
        if not config.simulated:
            raise StimrigError(f"{config.path}: stimrig serve needs a simulated bench (target: sim)")
        device = load_device(config.device)
        programs = load_programs()
        start = _parse_start(args.start) if args.start else None
        scope_model, scope_port = _scope_model_and_port(config, args.port)
        vbench = VirtualBench(config, device, programs, fault=args.fault, realtime=args.realtime,
                              scope_port=scope_port, bind=args.bind)
    except StimrigError as exc:
        print(f"stimrig serve: {exc}")
        return 2
    try:
        res = vbench.start()
    except OSError as exc:
        print(f"stimrig serve: cannot listen on {args.bind or '127.0.0.1'}:{scope_port}: {exc} (try --port 0)")
        return 2
    try:
        print(f"stimrig virtual bench ({'real-time' if vbench.realtime else 'virtual time'}), seed {config.seed}"
              + (f", fault {vbench.fault}" if vbench.fault else "") + "  [SIMULATED]")
        ident = scope_model.identity
        print(f"  oscilloscope ({ident.manufacturer} {ident.model}, raw SCPI socket): {res.scope_resource}")
        print(f"  stimulator {device.model} serial port (controller radio bridge): {res.dut_port}")
        print(f"  RF attenuator (Mini-Circuits RCDAT telnet commands) in the radio path: {res.attenuator_resource}")
        print(f"  relay load box serial port: {res.loadbox_port} (loads: {', '.join(vbench.loadbox.loads())})")
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
        vbench.stop()
        print("stimrig serve: stopped; all outputs off", flush=True)
    return 0
