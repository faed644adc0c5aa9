"""``stimrig fleet SCENARIO``: simulate a fleet of BLE stimulators and write its report.

Loads and validates the scenario (a path, or a name from fixtures/scenarios), runs the fast or the reference
engine with a progress bar, writes HTML + CSV + PNG (all marked SIMULATED) into a new directory under ``--out``
and prints the report's path. Exit status 0 on success; 2 for a bad scenario or argument (one line, nothing
written); 130 if interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rig.cli_args import at_least_one
from rig.errors import FixtureError


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected 0 <= seed < 2^63, got {value}")
    return value


_devices = at_least_one("device")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", metavar="SCENARIO",
                   help="scenario YAML (stimrig.scenario/1), or a name from fixtures/scenarios (e.g. gym_20)")
    p.add_argument("--engine", choices=("fast", "reference"), default="fast",
                   help="fast: numpy, vectorised (default); reference: simpy, one event per connection event")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="a new directory fleet-<scenario>-<UTC time> is created in DIR (default: results)")
    p.add_argument("--seed", type=_seed, default=None, help="override the scenario's seed")
    p.add_argument("--devices", type=_devices, default=None, metavar="N",
                   help="simulate only the first N devices of the scenario")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stimrig fleet", description="Simulate a fleet of BLE stimulators.")
    add_arguments(parser)
    return parser


def run_fleet_command(args: argparse.Namespace, console: Any = None) -> int:
    from rich.console import Console

    from rig.config.scenario import load_scenario

    console = console or Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        scenario, profiles = load_scenario(args.scenario)
    except FixtureError as exc:
        err.print(f"stimrig fleet: {exc}", style="red", markup=False, soft_wrap=True)
        return 2
    if args.devices is not None and args.devices > scenario.n_devices:
        err.print(f"stimrig fleet: --devices {args.devices}: scenario {scenario.name} has {scenario.n_devices} "
                  f"devices (expected 1..{scenario.n_devices})", style="red", markup=False, soft_wrap=True)
        return 2
    result = _simulate(scenario, profiles, args, console)
    return _report(result, args, console)


def _simulate(scenario: Any, profiles: Any, args: argparse.Namespace, console: Any) -> Any:
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from simulator.fleet import run_fleet

    n = args.devices or scenario.n_devices
    label = escape(f"{scenario.name}: {n} devices, {scenario.duration_s:g} s, {args.engine} engine")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(label, total=1.0)
        result = run_fleet(scenario, profiles, engine=args.engine, seed=args.seed, devices=args.devices,
                           progress=lambda fraction: progress.update(task, completed=fraction))
    return result


def _report(result: Any, args: argparse.Namespace, console: Any) -> int:
    from rich.markup import escape

    from rig.evidence import SIMULATED_MARK
    from rig.fleet_report import new_run_dir, write_report
    from simulator.fleet.metrics import summarise

    out_dir = new_run_dir(Path(args.out), result.scenario.name)
    files = write_report(result, out_dir, scenario_path=str(args.scenario))
    s = summarise(result)
    console.print(escape(f"[{SIMULATED_MARK}]"), style="bold red")
    refused = f"{s.refused_over_capacity} refused over capacity"
    if s.refused_out_of_range:
        refused += f", {s.refused_out_of_range} with no controller in range"
    console.print(f"{escape(result.scenario.name)}: {s.devices} devices ({s.connected} connected, "
                  f"[{'red' if s.refused else 'green'}]{refused}[/]), "
                  f"{result.engine} engine, seed {result.seed}, {result.wall_s:.2f} s wall", soft_wrap=True)
    lat = s.all_commands
    console.print(f"latency p50/p90/p99 {lat.p50_s * 1e3:.1f}/{lat.p90_s * 1e3:.1f}/{lat.p99_s * 1e3:.1f} ms"
                  if lat.delivered else "no command delivered", soft_wrap=True)
    console.print(f"{s.dropouts} dropouts, {s.cutoffs} link-loss cutoffs on {s.devices_cut_off} device(s)",
                  soft_wrap=True)
    console.print(escape(f"link holds 99 % up to: {s.hold.text}"), soft_wrap=True)
    console.print(f"report: {files.html}", markup=False, soft_wrap=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_fleet_command(args)
    except KeyboardInterrupt:
        print("stimrig fleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
