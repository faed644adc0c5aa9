"""``stimrig certify``: run the certification suite with a progress bar and a readable summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rig.errors import FixtureError
from rig.pytest_plugin import DEFAULT_SIM_BENCH, StimrigState, call_outcome
from rig.results import new_run_id


def _crash_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


class ProgressReporter:
    """A pytest plugin object: progress bar while running, then a grouped summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]certify"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=console, transient=True,
        )
        self.task: Any = None
        self.outcomes: Counter[str] = Counter()
        self.problems: dict[str, list[str]] = defaultdict(list)
        self.per_file: dict[str, Counter[str]] = defaultdict(Counter)
        self.marginal: list[str] = []  # passed, with a measurement within its uncertainty of a limit

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.start()
        self.task = self.progress.add_task("", total=len(session.items))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome: str | None = None
        if report.when == "call":
            outcome = call_outcome(report)
        elif report.failed:
            outcome = "error"
        elif report.when == "setup" and report.skipped:
            outcome = "skipped"
        if outcome is None:
            return
        if outcome == "passed" and ("stimrig_verdict", "MARGINAL") in report.user_properties:
            self.marginal.append(report.nodeid)
        self.outcomes[outcome] += 1
        self.per_file[report.nodeid.split("::")[0]][outcome] += 1
        if outcome in ("failed", "error"):
            self.problems[f"{outcome.upper()}: {_crash_line(report)}"].append(report.nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=1, description=nodeid.split("::")[-1][:60])

    def pytest_sessionfinish(self) -> None:
        self.progress.stop()


def run_certify(
    *, suite: Path, bench: str | None, target: str | None, fault: str | None, results_dir: Path,
    select: str | None, extra: list[str], operator: str | None = None, transport: str | None = None,
) -> int:
    console = Console(stderr=False)
    # Validate every fixture before pytest (and allure) create anything: one line, nothing written.
    if target == "hw" and not bench:
        console.print("stimrig certify: --target hw needs --bench FILE naming the real bench's YAML", style="red")
        return int(pytest.ExitCode.USAGE_ERROR)
    try:
        StimrigState(
            bench_path=Path(bench) if bench else DEFAULT_SIM_BENCH, target=target, fault=fault,
            programs_dir=None, results_root=results_dir, transport=transport,
        ).load()
    except FixtureError as exc:
        console.print(f"stimrig certify: {exc}", soft_wrap=True, highlight=False, markup=False, style="red")
        return int(pytest.ExitCode.USAGE_ERROR)
    run_id = new_run_id()
    # The progress bar and summary replace pytest's terminal output; the project's addopts are for
    # its own test runs, so they are reset here.
    args = [str(suite), "-o", "addopts=", "--strict-markers", "-p", "no:terminal", "-p", "no:cacheprovider",
            "--results-dir", str(results_dir),
            "--stimrig-run-id", run_id, "--alluredir", str(results_dir / run_id / "allure-results")]
    if bench:
        args += ["--bench", bench]
    if target:
        args += ["--target", target]
    if fault:
        args += ["--fault", fault]
    if transport:
        args += ["--transport", transport]
    if select:
        args += ["-k", select]
    if operator:
        args += ["--operator", operator]
    args += extra
    reporter = ProgressReporter(console)
    exit_code = int(pytest.main(args, plugins=[reporter]))
    _remove_if_nothing_ran(results_dir / run_id)
    _summarise(console, reporter, exit_code, results_dir / run_id)
    return exit_code


def _remove_if_nothing_ran(run_dir: Path) -> None:
    """A run stopped before its first record (bad input) leaves no directory behind: allure-pytest
    creates its (empty) results folder when pytest starts."""
    if (run_dir / "results.jsonl").exists() or not run_dir.is_dir():
        return
    if any(p.is_file() for p in run_dir.rglob("*")):
        return
    for sub in sorted(run_dir.rglob("*"), reverse=True):
        sub.rmdir()
    run_dir.rmdir()


def _summarise(console: Console, rep: ProgressReporter, exit_code: int, run_dir: Path) -> None:
    if exit_code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR) and not rep.outcomes:
        console.print("[red]stimrig certify: the run did not start (see the message above); nothing was switched on")
        return
    table = Table(title="stimrig certification summary")
    table.add_column("test file")
    for col in ("passed", "failed", "error", "skipped"):
        table.add_column(col, justify="right")
    for path, counts in sorted(rep.per_file.items()):
        table.add_row(Path(path).name, *(str(counts.get(c, 0)) for c in ("passed", "failed", "error", "skipped")))
    console.print(table)
    for message, nodes in rep.problems.items():
        head = message if len(message) < 600 else message[:600] + " ..."
        console.print(f"{len(nodes)} test(s) {head}", soft_wrap=True, highlight=False, markup=False, style="red")
        for node in nodes[:5]:
            console.print(f"    {node}", soft_wrap=True, highlight=False, markup=False)
        if len(nodes) > 5:
            console.print(f"    ... and {len(nodes) - 5} more")
    if rep.marginal:
        console.print(f"{len(rep.marginal)} test(s) MARGINAL: a measurement inside its limit but within the "
                      "measurement uncertainty of it (the bench cannot show it conforms):",
                      style="yellow", soft_wrap=True)
        for node in rep.marginal[:5]:
            console.print(f"    {node}", soft_wrap=True, highlight=False, markup=False)
        if len(rep.marginal) > 5:
            console.print(f"    ... and {len(rep.marginal) - 5} more")
    if exit_code == pytest.ExitCode.INTERRUPTED:
        verdict = "[red]INTERRUPTED (every output was stopped)"
    elif exit_code == 0:
        verdict = "[yellow]PASSED WITH MARGINAL RESULTS" if rep.marginal else "[green]PASSED"
    else:
        verdict = "[red]NOT PASSED"
    totals = ", ".join(f"{n} {k}" for k, n in sorted(rep.outcomes.items()))
    if rep.marginal:
        totals += f"; {len(rep.marginal)} of them MARGINAL"
    console.print(f"{verdict}[/] ({totals})")
    if run_dir.exists():
        console.print(f"evidence bundle: {run_dir}  (report.html; check it with: stimrig verify {run_dir})",
                      soft_wrap=True)
