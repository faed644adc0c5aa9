"""The record of a sweep, written into a NEW directory (never overwriting; files opened exclusively):

* ``tasks.csv``: one row per task (grid parameters, seed, status, metrics), ordered by task;
* ``summary.csv``: one row per grid point, each metric aggregated over seeds;
* ``failures.csv`` (+ ``failures.txt`` with tracebacks): every task that raised or whose worker died;
* ``spec.yaml`` (the spec file as given), ``seeds.txt`` and ``sweep.json`` (spec, seeds, resolved scenario,
  executor, stimrig version, times): what is needed to reproduce the sweep.

CSV files start with ``#`` comment lines saying SIMULATED (read with ``pandas.read_csv(path, comment="#")``).
``tasks.csv`` and ``summary.csv`` depend only on the spec and the results, not on the executor or the time, so
the same spec gives byte-identical files on any executor.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from rig import __version__
from rig.evidence import SIMULATED_MARK
from rig.output_dirs import new_output_dir
from simulator.sweep.aggregate import PointSummary, stat_names
from simulator.sweep.execute import TaskResult
from simulator.sweep.plan import SweepPlan, point_label, value_text

RUN_SCHEMA = "stimrig.sweep-run/1"


def new_sweep_dir(out_root: Path, name: str, stamp: str | None = None) -> Path:
    """``<out_root>/sweep-<name>-<UTC stamp>[-n]``, created new: never an existing directory."""
    return new_output_dir(out_root, f"sweep-{name}", stamp)


def num(x: float) -> str:
    """A metric in CSV: empty for NaN, whole numbers without '.0', else the shortest exact repr."""
    v = float(x)
    if math.isnan(v):
        return ""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header_lines(plan: SweepPlan, what: str) -> list[str]:
    spec = plan.spec
    return [
        f"# {SIMULATED_MARK}",
        f"# stimrig sweep {spec.name} {what}: scenario {plan.base.name}, {spec.engine} engine, "
        f"{len(plan.points)} grid points x {len(plan.seeds)} seeds, spec sha256 {sha256(plan.spec_path)[:16]}, "
        f"stimrig {__version__}",
    ]


def _write_csv(path: Path, comments: list[str], head: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("x", newline="", encoding="utf-8") as fh:
        for line in comments:
            fh.write(line + "\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(head)
        w.writerows(rows)
    return path


def status_text(r: TaskResult) -> str:
    return "ok" if r.failure is None else f"FAILED ({r.failure.kind})"


def write_tasks_csv(path: Path, plan: SweepPlan, results: Sequence[TaskResult]) -> Path:
    metrics = plan.metric_names
    head = ["task", "point", "seed_index", "seed", *plan.param_names, "status", "error", *metrics]
    rows = []
    for r in results:
        t = r.task
        values = [num(r.outcome.metrics[m]) for m in metrics] if r.outcome is not None else [""] * len(metrics)
        rows.append([t.task, t.point, t.seed_index, t.seed, *(value_text(v) for _, v in t.params), status_text(r),
                     r.failure.error if r.failure else "", *values])
    return _write_csv(path, header_lines(plan, "tasks (one row per grid point x seed)"), head, rows)


def write_summary_csv(path: Path, plan: SweepPlan, summaries: Sequence[PointSummary]) -> Path:
    stats = stat_names(plan.spec.quantiles)
    metrics = plan.metric_names
    head = ["point", *plan.param_names, "tasks", "ok", "failed", *(f"{m}_{s}" for m in metrics for s in stats)]
    rows = [[s.point, *(value_text(v) for _, v in s.params), s.tasks, s.ok, s.failed,
             *(num(s.stats[m][st]) for m in metrics for st in stats)] for s in summaries]
    return _write_csv(path, header_lines(plan, "summary over seeds (successful runs, finite values; std ddof=1)"),
                      head, rows)


def write_failures(directory: Path, plan: SweepPlan, results: Sequence[TaskResult]) -> tuple[Path, Path]:
    failed = [r for r in results if r.failure is not None]
    head = ["task", "point", "seed_index", "seed", "params", "kind", "error", "worker"]
    rows = [[r.task.task, r.task.point, r.task.seed_index, r.task.seed, point_label(r.task.params),
             r.failure.kind, r.failure.error, r.failure.worker] for r in failed if r.failure is not None]
    csv_path = _write_csv(directory / "failures.csv", header_lines(plan, "failed tasks"), head, rows)
    txt_path = directory / "failures.txt"
    with txt_path.open("x", encoding="utf-8") as fh:
        fh.write(f"{SIMULATED_MARK}\n{len(failed)} failed task(s) of {len(results)}\n")
        for r in failed:
            assert r.failure is not None
            fh.write(f"\n=== task {r.task.task} (point {r.task.point}: {point_label(r.task.params)}; seed "
                     f"{r.task.seed}): {r.failure.kind}: {r.failure.error}\n")
            if r.failure.worker:
                fh.write(f"worker: {r.failure.worker}\n")
            if r.failure.detail:
                fh.write(r.failure.detail.rstrip() + "\n")
    return csv_path, txt_path


def write_inputs(directory: Path, plan: SweepPlan) -> dict[str, Path]:
    """What reproduces the sweep, written before it runs: the spec as given, the seed list."""
    spec_copy = directory / "spec.yaml"
    with spec_copy.open("xb") as fh:
        fh.write(plan.spec_path.read_bytes())
    seeds = directory / "seeds.txt"
    with seeds.open("x", encoding="utf-8") as fh:
        fh.write(f"# seeds of sweep {plan.spec.name} ({len(plan.seeds)}; each grid point runs with every seed)\n")
        fh.writelines(f"{s}\n" for s in plan.seeds)
    return {"spec": spec_copy, "seeds": seeds}


def run_record(plan: SweepPlan, *, executor: str, workers: int, status: str, started: datetime,
               finished: datetime | None, results: Sequence[TaskResult] | None) -> dict[str, Any]:
    failed = [r for r in results or [] if r.failure is not None]
    return {
        "schema": RUN_SCHEMA,
        "mark": SIMULATED_MARK,
        "status": status,
        "stimrig_version": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "spec_file": str(plan.spec_path),
        "spec_sha256": sha256(plan.spec_path),
        "spec": plan.spec.model_dump(mode="json", by_alias=True),
        "seeds": plan.seeds,
        "scenario_file": str(plan.scenario_path),
        "scenario_sha256": sha256(plan.scenario_path) if plan.scenario_path.is_file() else None,
        "scenario_with_set": plan.base.model_dump(mode="json", by_alias=True),
        "grid_points": [{"point": p, "params": {k: v for k, v in params}} for p, params in enumerate(plan.points)],
        "metrics": plan.metric_names,
        "tasks": len(plan.tasks),
        "tasks_done": len(results) if results is not None else 0,
        "tasks_failed": len(failed),
        "failed_task_ids": [r.task.task for r in failed],
        "executor": executor,
        "workers": workers,
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": finished.isoformat(timespec="seconds") if finished else None,
        "wall_s": round((finished - started).total_seconds(), 3) if finished else None,
    }


def write_record(directory: Path, record: dict[str, Any], *, replace: bool = False) -> Path:
    """``sweep.json``; written once when the sweep starts and replaced by the final record when it ends."""
    path = directory / "sweep.json"
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    if replace:
        tmp = directory / "sweep.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    else:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    return path
