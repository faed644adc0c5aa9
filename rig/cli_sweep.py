"""``stimrig sweep SPEC``: a Monte Carlo sweep of a fleet scenario over seeds and a grid of parameters.

Validates the sweep spec (``stimrig.sweep/1``) and every grid point before anything runs, runs each
(grid point, seed) as one task on local processes (default: one per core) or on a Dask cluster
(``--scheduler tcp://host:port``) with a progress bar, and writes CSV, summary CSV, PNG and HTML (all marked
SIMULATED) plus the spec, the seed list and the run record into a new directory under ``--out``.

Exit status: 0 if every task gave its metrics; 1 if any task raised or its worker died (each is printed with its
task id, parameters and seed, and listed in failures.csv); 2 for a bad spec, argument or unreachable scheduler
(one line, nothing written); 130 if interrupted. The logic is in ``simulator.sweep``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rig.cli_args import positive_workers
from rig.errors import FixtureError

FAILURES_SHOWN = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="sweep spec YAML (stimrig.sweep/1), e.g. "
                                                "fixtures/sweeps/range_vs_environment.yaml")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="a new directory sweep-<name>-<UTC time> is created in DIR (default: results)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_workers, default=None, metavar="N",
                       help="local worker processes (default: the number of cores)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this Dask cluster instead, e.g. tcp://10.0.0.5:8786 (its workers need the same "
                            "stimrig version installed)")
    p.add_argument("--scheduler-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler and its first worker (default: 30)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the spec and every grid point, print the plan, run and write nothing")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stimrig sweep",
                                     description="Monte Carlo sweep of a fleet scenario over seeds and parameters.")
    add_arguments(parser)
    return parser


def run_sweep(args: argparse.Namespace, *, console: Any = None, task_fn: Any = None, client: Any = None) -> int:
    """Run the sweep ``args`` describe. ``task_fn`` (default ``run_task``) and ``client`` (an existing dask
    Client, instead of ``--scheduler``) are for tests and embedding."""
    from rich.console import Console

    from simulator.sweep import DaskCluster, LocalProcesses, load_sweep_spec, plan_sweep

    console = console or Console(highlight=False)
    err = Console(stderr=True, highlight=False) if console.file is sys.stdout else console

    def fail(text: str) -> int:
        err.print(f"stimrig sweep: {text}", style="red", markup=False, soft_wrap=True)
        return 2

    try:
        spec = load_sweep_spec(args.spec)
        plan = plan_sweep(spec, args.spec)
    except FixtureError as exc:
        return fail(str(exc))
    if args.dry_run:
        _print_plan(console, plan)
        return 0
    backend: Any
    if client is not None or args.scheduler:
        timeout_s = args.scheduler_timeout
        backend = (DaskCluster(args.scheduler, connect_timeout_s=timeout_s) if client is None
                   else DaskCluster(client=client, connect_timeout_s=timeout_s))
        try:
            backend.prepare()
        except (OSError, TimeoutError) as exc:
            backend.close()
            return fail(f"cannot use the Dask scheduler {args.scheduler}: {type(exc).__name__}: {exc}")
    else:
        backend = LocalProcesses(args.workers)
    try:
        outcome = _execute(plan, backend, Path(args.out), console, task_fn)
    finally:
        if isinstance(backend, DaskCluster):
            backend.close()
    _print_outcome(console, outcome)
    return int(outcome.exit_code)


def _execute(plan: Any, backend: Any, out: Path, console: Any, task_fn: Any) -> Any:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from simulator.sweep import execute_sweep, run_task

    failed = 0
    label = escape(f"{plan.spec.name}: {len(plan.points)} points x {len(plan.seeds)} seeds on {backend.describe()}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        bar = progress.add_task(label, total=len(plan.tasks), failed="")

        def done(result: Any) -> None:
            nonlocal failed
            if result.failure is not None:
                failed += 1
                progress.console.print(f"task {result.task.task} FAILED: {_where(result)}: {result.failure.error}",
                                       style="red", markup=False, soft_wrap=True)
            progress.update(bar, advance=1, failed=f"[red]{failed} failed[/]" if failed else "")

        return execute_sweep(plan, backend, out_root=out, fn=task_fn or run_task, on_done=done)


def _where(result: Any) -> str:
    from simulator.sweep.plan import point_label

    return f"{point_label(result.task.params)}, seed {result.task.seed}"


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.4g}"  # NaN != NaN


def _cell(summary: Any, metric: str) -> str:
    """mean ± std (n); where no seed gave a value but a lower bound exists (hold_distance_m): > bound (0)."""
    from simulator.sweep.metrics import COMPANIONS

    st = summary.stats[metric]
    companion = COMPANIONS.get(metric)
    if st["n"] == 0 and companion is not None and summary.values[companion]:
        return f"> {_fmt(min(summary.values[companion]))} (0)"
    return f"{_fmt(st['mean'])} ± {_fmt(st['std'])} ({int(st['n'])})"


def _print_plan(console: Any, plan: Any) -> None:
    from simulator.sweep.plan import point_label

    spec = plan.spec
    console.print(f"{spec.name}: scenario {plan.base.name} ({plan.scenario_path}), {spec.engine} engine", markup=False,
                  soft_wrap=True)
    console.print(f"{len(plan.points)} grid point(s) x {len(plan.seeds)} seed(s) = {len(plan.tasks)} tasks; "
                  f"metrics: {', '.join(plan.metric_names)}", markup=False, soft_wrap=True)
    for p, params in enumerate(plan.points):
        console.print(f"  point {p}: {point_label(params)}", markup=False, soft_wrap=True)
    console.print(f"seeds: {', '.join(map(str, plan.seeds))}", markup=False, soft_wrap=True)
    console.print("dry run: nothing run, nothing written")


def _print_outcome(console: Any, outcome: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rig.evidence import SIMULATED_MARK
    from simulator.sweep.plan import value_text

    plan = outcome.plan
    metrics = plan.spec.plot_metrics
    table = Table(title=escape(f"stimrig sweep {plan.spec.name}: mean ± std over seeds (n) [SIMULATED]"))
    for k in plan.param_names:
        table.add_column(escape(k))
    table.add_column("ok", justify="right")
    for m in metrics:
        table.add_column(escape(m), justify="right")
    for s in outcome.summaries:
        cells = [_cell(s, m) for m in metrics]
        ok = f"{s.ok}/{s.tasks}" if not s.failed else f"[red]{s.ok}/{s.tasks}[/]"
        table.add_row(*(escape(value_text(v)) for _, v in s.params), ok, *cells)
    console.print(table)
    failed = outcome.failed
    for r in failed[:FAILURES_SHOWN]:
        console.print(f"FAILED task {r.task.task} ({_where(r)}): {r.failure.kind}: {r.failure.error}", style="red",
                      markup=False, soft_wrap=True)
    if len(failed) > FAILURES_SHOWN:
        console.print(f"... and {len(failed) - FAILURES_SHOWN} more failed task(s): failures.csv", style="red")
    verdict = (f"[red]SWEEP INCOMPLETE: {len(failed)} of {len(outcome.results)} task(s) failed[/]" if failed
               else f"[green]sweep complete: {len(outcome.results)} tasks[/]")
    console.print(f"{verdict} in {outcome.wall_s:.1f} s on {escape(outcome.executor)}  "
                  f"{escape(f'[{SIMULATED_MARK}]')}")
    console.print(f"report: {outcome.files['html']}", markup=False, soft_wrap=True)
    console.print(f"CSV:    {outcome.files['tasks']}, {outcome.files['summary'].name}", markup=False, soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_sweep(args)
    except KeyboardInterrupt:
        print("stimrig sweep: interrupted (the sweep directory's sweep.json says so)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
