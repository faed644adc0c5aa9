"""``stimrig verify BUNDLE``: check an evidence bundle (results chain, manifest, seal) and say what is
wrong, naming the file. Exit 0 verified, 1 failed (altered, missing, corrupt), 3 incomplete (the run
was killed; every record written so far verifies), 2 usage."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from rig.records.verify import Outcome, verify_bundle
from rig.results import SIMULATED_MARK

STYLE = {Outcome.VERIFIED: "green", Outcome.INCOMPLETE: "yellow", Outcome.FAILED: "red"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="run directory (results/<run-id>)")


def run_verify(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    worst = 0
    for bundle in args.bundles:
        report = verify_bundle(bundle)
        mark = f" [{SIMULATED_MARK}]" if report.simulated else ""
        console.print(f"[bold {STYLE[report.outcome]}]{report.outcome.value}[/] {escape(str(report.path))}"
                      f"{escape(mark)}: {report.records} chained records, {report.files_checked} files checked",
                      soft_wrap=True)
        for problem in report.problems:
            console.print(f"  [red]✗[/] {escape(problem)}", soft_wrap=True)
        for note in report.notes:
            console.print(f"  · {escape(note)}", soft_wrap=True)
        worst = max(worst, report.exit_code)
    return worst
