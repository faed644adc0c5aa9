"""Run a planned sweep end to end: a new output directory, the inputs recorded first, the tasks on the chosen
backend, then the CSVs, the plot, the HTML summary and the final run record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from simulator.sweep.aggregate import PointSummary, summarise_points
from simulator.sweep.execute import Backend, Settle, TaskFn, TaskResult, run_tasks
from simulator.sweep.output import (
    new_sweep_dir,
    run_record,
    write_failures,
    write_inputs,
    write_record,
    write_summary_csv,
    write_tasks_csv,
)
from simulator.sweep.plan import SweepPlan
from simulator.sweep.plot import sweep_plot
from simulator.sweep.report import render
from simulator.sweep.task import run_task

HTML_NAME = "report.html"
PNG_NAME = "plot.png"


@dataclass(frozen=True)
class SweepOutcome:
    plan: SweepPlan
    results: list[TaskResult]
    summaries: list[PointSummary]
    directory: Path
    executor: str
    wall_s: float
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.results if r.failure is not None]

    @property
    def exit_code(self) -> int:
        """0 if every task gave its metrics, 1 if any failed."""
        return 1 if self.failed else 0


def execute_sweep(plan: SweepPlan, backend: Backend, *, out_root: Path, fn: TaskFn = run_task,
                  on_done: Settle | None = None, stamp: str | None = None) -> SweepOutcome:
    """Run every task of ``plan`` on ``backend`` and write the sweep's record into a new directory."""
    backend.prepare()
    executor = backend.describe()
    directory = new_sweep_dir(out_root, plan.spec.name, stamp)
    files = write_inputs(directory, plan)
    started = datetime.now(UTC)

    def record(status: str, finished: datetime | None, results: Sequence[TaskResult] | None, first: bool) -> Path:
        return write_record(directory, run_record(plan, executor=executor, workers=backend.workers, status=status,
                                                  started=started, finished=finished, results=results),
                            replace=not first)

    files["record"] = record("running", None, None, first=True)
    try:
        results = run_tasks(plan.tasks, backend, fn=fn, on_done=on_done)
    except BaseException:
        record("interrupted", datetime.now(UTC), None, first=False)
        raise
    finished = datetime.now(UTC)
    wall_s = (finished - started).total_seconds()
    metrics = plan.metric_names
    summaries = summarise_points(results, plan.points, metrics, plan.spec.quantiles)
    files["tasks"] = write_tasks_csv(directory / "tasks.csv", plan, results)
    files["summary"] = write_summary_csv(directory / "summary.csv", plan, summaries)
    files["failures"], files["failures_detail"] = write_failures(directory, plan, results)
    png = sweep_plot(plan, summaries)
    files["plot"] = directory / PNG_NAME
    with files["plot"].open("xb") as fh:
        fh.write(png)
    failed = any(r.failure is not None for r in results)
    files["record"] = record("failed tasks" if failed else "complete", finished, results, first=False)
    html = render(plan, results, summaries, png=png, executor=executor, wall_s=wall_s,
                  stamp=finished.strftime("%Y-%m-%d %H:%M:%S UTC"),
                  files=sorted(p.name for p in [*files.values(), directory / HTML_NAME]))
    files["html"] = directory / HTML_NAME
    with files["html"].open("x", encoding="utf-8") as text:
        text.write(html)
    return SweepOutcome(plan, results, summaries, directory, executor, wall_s, files)
