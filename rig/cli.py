"""The ``stimrig`` command line: certify, serve, validate-suite, fleet, sweep, verify."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rig import __version__
from rig.cli_args import tcp_port
from rig.cli_bench import add_arguments as add_bench_arguments
from rig.cli_fleet import add_arguments as add_fleet_arguments
from rig.cli_sweep import add_arguments as add_sweep_arguments
from rig.cli_validate import add_arguments as add_validate_arguments
from rig.cli_verify import add_arguments as add_verify_arguments

REPO_ROOT = Path(__file__).resolve().parents[1]


def _suite_path(given: str | None) -> Path:
    if given:
        return Path(given)
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / "tests" / "certification"
        if candidate.is_dir():
            return candidate
    raise SystemExit(
        "stimrig: cannot find the certification suite (tests/certification); run from the stimrig checkout "
        "or pass --suite PATH"
    )


def _add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", help="bench YAML (default: fixtures/benches/sim.yaml, the simulated bench)")
    p.add_argument("--fault", help="inject a catalogued firmware defect (simulated bench only)")


def cmd_certify(args: argparse.Namespace) -> int:
    from rig.cli_certify import run_certify

    return run_certify(
        suite=_suite_path(args.suite),
        bench=args.bench,
        target=args.target,
        fault=args.fault,
        results_dir=Path(args.results_dir),
        select=args.k,
        extra=args.pytest_args,
        operator=args.operator,
        transport=args.transport,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from rig.cli_serve import run_serve

    return run_serve(args)


def cmd_validate_suite(args: argparse.Namespace) -> int:
    from rig.cli_validate import run_validate_suite

    return run_validate_suite(args)


def cmd_fleet(args: argparse.Namespace) -> int:
    from rig.cli_fleet import run_fleet_command

    return run_fleet_command(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from rig.cli_bench import run_bench

    return run_bench(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from rig.cli_verify import run_verify

    return run_verify(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from rig.cli_sweep import run_sweep

    return run_sweep(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stimrig", description="Test rig and simulator for EMS/TENS stimulators")
    parser.add_argument("--version", action="version", version=f"stimrig {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("certify", help="run the certification suite (simulated bench by default)")
    _add_bench_args(c)
    c.add_argument("--target", choices=("sim", "hw"), help="must match the bench file's target if given")
    c.add_argument("--transport", choices=("serial", "ble"),
                   help="how the rig reaches the DUT: serial, or ble (its GATT service, with bleak); "
                        "default: the bench file's dut.transport")
    c.add_argument("--results-dir", default="results", help="where the run directory is created (default: results)")
    c.add_argument("--suite", help="path of the certification suite (default: tests/certification)")
    c.add_argument("-k", help="only tests matching this pytest -k expression")
    c.add_argument("--operator", help="who runs it, for the audit trail (default: $STIMRIG_OPERATOR, else the login)")
    c.add_argument("pytest_args", nargs="*", help="extra arguments passed to pytest (after --)")
    c.set_defaults(func=cmd_certify)

    s = sub.add_parser("serve", help="start the virtual bench for external tools and print its addresses")
    _add_bench_args(s)
    s.add_argument("--port", type=tcp_port, default=None,
                   help="scope raw SCPI socket port (default: the model's own, 5025 Keysight, 5555 Rigol; 0: free)")
    s.add_argument("--portmapper-port", type=tcp_port, default=None,
                   help="VXI-11 portmapper port (default 111, the standard, if it can be bound, else a free one)")
    s.add_argument("--bind", default=None, help="address to listen on (default 127.0.0.1)")
    s.add_argument("--transport", choices=("serial", "ble"), default=None,
                   help="how the controller reaches the DUT: serial (its bridge, bonded; the default of sim.yaml) "
                        "or ble (the DUT's pairing window open for the first central)")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                      help="bench time follows the wall clock (default)")
    mode.add_argument("--virtual", dest="realtime", action="store_false",
                      help="bench time advances only while a client waits (deterministic)")
    s.add_argument("--start", metavar="PROGRAM[:CHANNEL[:mA]]",
                   help="start a program when the bench comes up, e.g. tens_hf:1:25")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser(
        "validate-suite", help="validate the suite itself: clean firmware passes, every catalogued fault is caught"
    )
    add_validate_arguments(v)
    v.set_defaults(func=cmd_validate_suite)

    f = sub.add_parser("fleet", help="simulate a fleet of BLE stimulators from a scenario and write its report")
    add_fleet_arguments(f)
    f.set_defaults(func=cmd_fleet)
    w = sub.add_parser("sweep", help="Monte Carlo sweep of a fleet scenario over seeds and a parameter grid")
    add_sweep_arguments(w)
    w.set_defaults(func=cmd_sweep)
    r = sub.add_parser("verify", help="check an evidence bundle: results chain, manifest and seal")
    add_verify_arguments(r)
    r.set_defaults(func=cmd_verify)
    b = sub.add_parser("bench", help="bench inventory: `stimrig bench check --bench FILE` lists every instrument")
    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("stimrig: interrupted; outputs stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
