"""``stimrig bench check --bench FILE``: list every instrument and DUT of a bench with its identity,
firmware and calibration status, or a clear error for each one that cannot be reached. Exit 0 when
all answer, 1 when any fails, 2 when the bench file itself is bad."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from rig.bench.check import bench_addresses, check_bench
from rig.config.loader import FIXTURES_DIR, load_bench
from rig.errors import FixtureError, StimrigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", required=True)
    c = sub.add_parser("check", help="connect to every instrument and DUT of a bench file and list them")
    c.add_argument("--bench", default=str(FIXTURES_DIR / "benches" / "sim.yaml"),
                   help="bench YAML (default: fixtures/benches/sim.yaml)")


def run_bench(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    try:
        config = load_bench(args.bench)
    except FixtureError as exc:
        console.print(f"[red]stimrig bench check: {escape(str(exc))}")
        return 2
    kind = "SIMULATED bench" if config.simulated else "hardware bench"
    console.print(f"bench: {escape(config.name)} ({kind}, {escape(str(config.path))})")
    try:
        with bench_addresses(config) as addresses:
            console.print(f"addresses from {escape(addresses.source)}")
            results = check_bench(config, addresses)
    except (StimrigError, OSError) as exc:
        console.print(f"[red]stimrig bench check: could not bring up the bench: {escape(str(exc))}")
        return 1
    for r in results:
        mark = "[green]OK  " if r.ok else "[red]FAIL"
        console.print(f"{mark}[/] {escape(r.role)}: {escape(r.resource)}")
        details = [d for d in (r.identity, f"firmware {r.firmware}" if r.firmware else "",
                               f"calibration: {r.calibration}" if r.calibration else "") if d]
        if details:
            console.print("      " + escape(" · ".join(details)))
        if not r.ok:
            console.print(f"      [red]{escape(r.error)}")
    failed = [r for r in results if not r.ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} could not be reached")
        return 1
    console.print(f"[green]all {len(results)} answered")
    return 0
