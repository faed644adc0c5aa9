"""Monte Carlo sweeps of fleet scenarios (``stimrig sweep SPEC``, docs/sweeps.md).

* ``spec`` - the sweep fixture (``stimrig.sweep/1``): base scenario, seeds (explicit or base + count, expanded by
  ``expand_seeds``), a grid of scenario fields, the metrics to extract;
* ``plan.plan_sweep`` - every (grid point, seed) as a ``task.TaskSpec``, each grid point validated up front;
* ``task.run_task`` - the one pure function a worker runs: ``run_fleet`` + ``metrics.extract``;
* ``execute`` - local processes (``LocalProcesses``) or a Dask cluster (``DaskCluster``) through one code path;
  results ordered by task; a task that raises or whose worker dies is a ``Failure``, never dropped;
* ``aggregate`` (over seeds), ``output`` (CSV, spec, seeds, run record), ``plot`` (PNG), ``report`` (HTML);
* ``run.execute_sweep`` - all of it into a new directory.

Every figure is SIMULATED; every run's seed is recorded; the same spec gives the same tasks.csv on any executor.
"""

from simulator.sweep.aggregate import PointSummary, summarise_points
from simulator.sweep.execute import DaskCluster, Failure, LocalProcesses, TaskResult, default_workers, run_tasks
from simulator.sweep.metrics import METRICS, extract
from simulator.sweep.plan import SweepPlan, apply_params, plan_sweep
from simulator.sweep.run import SweepOutcome, execute_sweep
from simulator.sweep.spec import SCHEMA, SweepSpec, expand_seeds, load_sweep_spec
from simulator.sweep.task import TaskOutcome, TaskSpec, run_task

__all__ = [
    "METRICS",
    "SCHEMA",
    "DaskCluster",
    "Failure",
    "LocalProcesses",
    "PointSummary",
    "SweepOutcome",
    "SweepPlan",
    "SweepSpec",
    "TaskOutcome",
    "TaskResult",
    "TaskSpec",
    "apply_params",
    "default_workers",
    "execute_sweep",
    "expand_seeds",
    "extract",
    "load_sweep_spec",
    "plan_sweep",
    "run_task",
    "run_tasks",
    "summarise_points",
]
