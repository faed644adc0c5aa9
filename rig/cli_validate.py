"""``stimrig validate-suite``: the certification suite's own validation record, with progress and a summary.

Runs the suite on clean simulated firmware and once per catalogued fault (in parallel), prints which
fault each test run caught, and writes the detection matrix (CSV + HTML). Exit status 0 only if the
clean run passed everything and every fault was detected; 1 otherwise; 2 for a usage error; 130 if
interrupted. The logic is in ``rig.validation``; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rig.cli_args import positive_workers

_DEFAULT: Any = object()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faults", metavar="NAME[,NAME...]",
                   help="validate only these catalogued faults (default: every fault in simulator/faults.py)")
    p.add_argument("--reduced", action="store_true",
                   help="for CI: each run only on channel 1 (plus the tests not parametrized by channel); "
                        "must still detect every fault")
    p.add_argument("--workers", type=positive_workers, default=None,
                   help="suite runs in parallel (default: the number of cores)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="a new directory validation-<UTC time> is created in DIR (default: results)")
    p.add_argument("--suite", help="path of the certification suite (default: tests/certification)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stimrig validate-suite",
        description="Validate the certification suite: clean simulated firmware passes everything, "
                    "every catalogued firmware fault fails at least one test.",
    )
    add_arguments(parser)
    return parser


def run_validate_suite(args: argparse.Namespace, *, runner: Any = None, collect: Any = _DEFAULT,
                       console: Any = None) -> int:
    from rich.console import Console

    from rig.cli import _suite_path
    from rig.validation import collect_test_ids, default_workers, run_validation, write_outputs

    console = console or Console(highlight=False)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()] if args.faults is not None else None
    if faults is not None and not faults:
        console.print("stimrig validate-suite: --faults names no fault", style="red")
        return 2
    workers = args.workers or default_workers()
    try:
        suite = _suite_path(args.suite)
        report = run_validation(
            out_root=Path(args.out), suite=suite, faults=faults, reduced=args.reduced, workers=workers,
            console=console, runner=runner, collect=collect_test_ids if collect is _DEFAULT else collect,
        )
    except ValueError as exc:
        console.print(f"stimrig validate-suite: {exc}", style="red", markup=False, soft_wrap=True)
        return 2
    csv_path, html_path = write_outputs(report)
    print_summary(console, report, csv_path, html_path)
    return report.exit_code


def print_summary(console: Any, report: Any, csv_path: Path, html_path: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rig.validation import SIMULATED_MARK, STATUS_TEXT, Status

    scope = f'reduced: -k "{report.selection}"' if report.selection else "full suite"
    table = Table(title=escape(f"stimrig suite validation, {scope} [SIMULATED]"))
    table.add_column("fault", no_wrap=True)
    table.add_column("detected?")
    table.add_column("# tests caught", justify="right")
    table.add_column("first catching test", overflow="fold")
    clean = report.clean
    clean_style = "green" if clean.status is Status.PASSED else "red"
    table.add_row("(clean run)", f"[{clean_style}]{clean.status.value}[/]",
                  f"{len(clean.failed)} failed" if clean.failed else "-", "-", end_section=True)
    for run in report.faults:
        style = "green" if run.status is Status.DETECTED else "red"
        answer = "yes" if run.status is Status.DETECTED else f"NO: {STATUS_TEXT[run.status]}"
        table.add_row(escape(run.name), f"[{style}]{escape(answer)}[/]", str(len(run.failed)),
                      escape(_short(run.first_catch)) if run.first_catch else "-")
    console.print(table)
    for line in report.problems():
        console.print(line, style="red", markup=False, soft_wrap=True)
    for line in report.warnings():
        console.print(f"note: {line}", style="yellow", markup=False, soft_wrap=True)
    pct = report.detection_pct
    console.print(f"detection: {len(report.detected)}/{len(report.faults)} faults"
                  + (f" = {pct:.0f} %" if pct is not None else ""))
    verdict = "[green]VALIDATION PASSED" if report.passed else "[red]VALIDATION NOT PASSED"
    if report.interrupted:
        verdict = "[red]VALIDATION INTERRUPTED (incomplete)"
    console.print(f"{verdict}[/] in {report.wall_s:.1f} s with {report.workers} worker(s)  "
                  f"{escape(f'[{SIMULATED_MARK}]')}")
    console.print(f"CSV:  {csv_path}", soft_wrap=True, markup=False)
    console.print(f"HTML: {html_path}", soft_wrap=True, markup=False)


def _short(nodeid: str) -> str:
    return nodeid.rpartition("::")[2] or nodeid


def main(argv: Sequence[str] | None = None, *, runner: Any = None, collect: Any = _DEFAULT) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_validate_suite(args, runner=runner, collect=collect)
    except KeyboardInterrupt:
        print("stimrig validate-suite: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
