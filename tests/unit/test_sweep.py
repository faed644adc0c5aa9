"""Monte Carlo sweeps (simulator.sweep): spec validation, seed expansion, planning, determinism across
executors (1 vs 2 local workers, and a Dask LocalCluster), and failure reporting (a task that raises, a task that
kills its worker process). Every sweep here is tiny: walk_away cut to a few simulated seconds."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rig import __version__
from rig.config.scenario import SCENARIOS_DIR
from rig.errors import FixtureError
from simulator.sweep import (
    LocalProcesses,
    TaskOutcome,
    TaskSpec,
    execute_sweep,
    expand_seeds,
    load_sweep_spec,
    plan_sweep,
    run_task,
    run_tasks,
)
from simulator.sweep.aggregate import describe_values, quantile_name
from simulator.sweep.execute import DaskCluster, exit_text
from simulator.sweep.output import new_sweep_dir, num
from simulator.sweep.plan import SweepPlan
from simulator.sweep.spec import SEED_LIMIT

REPO = Path(__file__).resolve().parents[2]
WALK_AWAY = SCENARIOS_DIR / "walk_away.yaml"
RANGE_SPEC = REPO / "fixtures" / "sweeps" / "range_vs_environment.yaml"

TINY = f"""\
schema: stimrig.sweep/1
name: tiny
scenario: {WALK_AWAY}
seeds: {{base: 7, count: 3}}
set:
  duration_s: 30
grid:
  link.environment: [office, strzoda_indoor]
  link.phy: [LE_1M, LE_CODED_S8]
metrics: [hold_distance_m, dropouts, cutoffs, latency_p99_s, delivered_fraction]
"""


def write_spec(tmp_path: Path, text: str = TINY, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_plan(tmp_path: Path, text: str = TINY) -> SweepPlan:
    path = write_spec(tmp_path, text)
    return plan_sweep(load_sweep_spec(path), path)


def spec_error(tmp_path: Path, text: str) -> str:
    path = write_spec(tmp_path, text)
    with pytest.raises(FixtureError) as info:
        plan_sweep(load_sweep_spec(path), path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# ---- tasks injected into workers (module level: workers import them by name) ----------------------------


def raise_on_task_1(task: TaskSpec) -> TaskOutcome:
    if task.task == 1:
        raise RuntimeError("injected failure in task 1")
    return run_task(task)


def exit_on_task_2(task: TaskSpec) -> TaskOutcome:
    if task.task == 2:
        os._exit(3)
    return run_task(task)


def wrong_version(task: TaskSpec) -> TaskOutcome:
    out = run_task(task)
    return TaskOutcome(out.task, out.metrics, "0.0.0-other", out.worker, out.wall_s)


# ---- spec ---------------------------------------------------------------------------------------------------


def test_tiny_spec_loads(tmp_path: Path) -> None:
    spec = load_sweep_spec(write_spec(tmp_path))
    assert spec.n_points == 4 and spec.n_seeds == 3 and spec.n_tasks == 12
    assert spec.plot_x == "link.environment" and spec.plot_series == "link.phy"
    assert spec.plot_metrics == ["hold_distance_m"]
    assert spec.quantiles == [0.05, 0.5, 0.95]


@pytest.mark.parametrize(("change", "field", "expected"), [
    (("name: tiny", "name: tiny\ncolour: red"), "colour", "not a known field"),
    (("schema: stimrig.sweep/1", "schema: stimrig.sweep/2"), "schema", "stimrig.sweep/1"),
    (("seeds: {base: 7, count: 3}", "seeds: {base: 7, count: '3'}"), "seeds.count", "valid integer"),
    (("seeds: {base: 7, count: 3}", "seeds: {base: 7}"), "seeds", "both 'base' and 'count'"),
    (("seeds: {base: 7, count: 3}", "seeds: {base: 7, count: 3, values: [1]}"), "seeds", "either"),
    (("seeds: {base: 7, count: 3}", "seeds: [1, 2, 1]"), "seeds.values", "duplicate seed(s) 1"),
    (("seeds: {base: 7, count: 3}", "seeds: [-1]"), "seeds.values", "outside"),
    (("seeds: {base: 7, count: 3}", "seeds: []"), "seeds.values", "at least 1"),
    (("metrics: [hold_distance_m,", "metrics: [range_km,"), "metrics", "unknown metric 'range_km'"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  seed: [1, 2]"), "grid", "seeds come from"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link.phy: []"), "grid", "no values"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link.phy: [LE_1M, LE_1M]"), "grid", "twice"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link phy: [LE_1M]"), "grid", "not a scenario field path"),
    (("  duration_s: 30", "  link.environment: gym"), "", "both 'set' and 'grid'"),
    (("name: tiny", "name: tiny\nplot: {x: duration_s}"), "", "plot.x 'duration_s' is not a grid key"),
    (("name: tiny", "name: tiny\nquantiles: [0.5, 1.5]"), "quantiles", "outside 0..1"),
    (("name: tiny", "name: tiny\nhold_level: 1"), "hold_level", "less than 1"),
])
def test_spec_errors_are_one_line_naming_file_and_field(tmp_path: Path, change: tuple[str, str], field: str,
                                                        expected: str) -> None:
    old, new = change
    assert old in TINY
    message = spec_error(tmp_path, TINY.replace(old, new))
    if field:
        assert f"'{field}" in message
    assert expected in message


@pytest.mark.parametrize(("change", "expected"), [
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link.environmnt: [gym]"), "no field 'link.environmnt'"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link.tx_power_dBm: [0, 99]"),
     "grid point 1 (link.environment=office, link.tx_power_dBm=99)"),
    (("  link.phy: [LE_1M, LE_CODED_S8]", "  link.environment: [office, moon_base]"), "unknown environment"),
    (("  duration_s: 30", "  patients.3.id: x"), "index 0..0"),
    (("  duration_s: 30", "  duration_s: -5"), "set"),
    (("name: tiny", "name: tiny\ndevices: 5"), "'devices': 5 exceeds the scenario's 1 devices"),
    ((f"scenario: {WALK_AWAY}", "scenario: no_such_scenario.yaml"), "field 'scenario'"),
])
def test_bad_grid_points_fail_before_anything_runs(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    text = TINY.replace(old, new)
    if "environmnt" in new or "tx_power" in new:
        text = text.replace("  link.environment: [office, strzoda_indoor]\n", "  link.environment: [office]\n")
    assert expected in spec_error(tmp_path, text)


def test_scenario_is_found_relative_to_the_spec_and_by_name(tmp_path: Path) -> None:
    plan = plan_sweep(load_sweep_spec(RANGE_SPEC), RANGE_SPEC)
    assert plan.scenario_path == WALK_AWAY.resolve()
    assert len(plan.tasks) == 6 * 4 * 8
    by_name = tiny_plan(tmp_path, TINY.replace(f"scenario: {WALK_AWAY}", "scenario: walk_away"))
    assert by_name.scenario_path == WALK_AWAY.resolve()


# ---- seeds and plan -----------------------------------------------------------------------------------------


def test_seed_expansion_is_deterministic_prefix_stable_and_in_range() -> None:
    seeds = expand_seeds(20260310, 50)
    assert seeds == expand_seeds(20260310, 50)
    assert seeds[:7] == expand_seeds(20260310, 7)
    assert len(set(seeds)) == 50 and all(0 <= s < SEED_LIMIT for s in seeds)
    assert not set(expand_seeds(100, 10)) & set(expand_seeds(101, 10))  # nearby bases share nothing
    with pytest.raises(ValueError, match="count"):
        expand_seeds(1, 0)


def test_explicit_seeds_are_kept_in_order(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path, TINY.replace("seeds: {base: 7, count: 3}", "seeds: [5, 3, 9]"))
    assert plan.seeds == [5, 3, 9]
    assert [t.seed for t in plan.tasks[:3]] == [5, 3, 9]


def test_tasks_are_ordered_point_major_last_grid_key_fastest(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    assert [t.task for t in plan.tasks] == list(range(12))
    assert [(t.point, t.seed_index) for t in plan.tasks[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [dict(p)["link.phy"] for p in plan.points] == ["LE_1M", "LE_CODED_S8"] * 2
    assert [dict(p)["link.environment"] for p in plan.points] == ["office"] * 2 + ["strzoda_indoor"] * 2
    t = plan.tasks[5]  # point 1, seed 2
    assert t.scenario.link.environment == "office" and t.scenario.link.phy == "LE_CODED_S8"
    assert t.scenario.duration_s == 30 and t.seed == plan.seeds[2]
    assert t.metrics[-1] == "hold_observed_m"  # the lower bound comes along with hold_distance_m


def test_run_task_is_pure(tmp_path: Path) -> None:
    task = tiny_plan(tmp_path).tasks[0]
    a, b = run_task(task), run_task(task)
    assert a.task == 0 and a.version == __version__
    assert a.metrics.keys() == set(task.metrics)
    np.testing.assert_equal(list(a.metrics.values()), list(b.metrics.values()))


# ---- aggregation, output helpers ------------------------------------------------------------------------------


def test_describe_values_skips_nan_and_names_quantiles() -> None:
    st = describe_values([1.0, math.nan, 3.0, 2.0], [0.05, 0.5, 0.95])
    assert st["n"] == 3 and st["mean"] == 2.0 and st["std"] == 1.0 and st["q50"] == 2.0
    assert st["min"] == 1.0 and st["max"] == 3.0
    empty = describe_values([math.nan], [0.5])
    assert empty["n"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["q50"])
    assert math.isnan(describe_values([4.0], [])["std"])
    assert [quantile_name(q) for q in (0.05, 0.5, 0.95, 0.025, 1.0)] == ["q05", "q50", "q95", "q2.5", "q100"]


def test_csv_numbers_and_new_directories(tmp_path: Path) -> None:
    assert (num(math.nan), num(3.0), num(0.1), num(-2.5e-7)) == ("", "3", "0.1", "-2.5e-07")
    first = new_sweep_dir(tmp_path, "x", stamp="T")
    second = new_sweep_dir(tmp_path, "x", stamp="T")
    assert first.name == "sweep-x-T" and second.name == "sweep-x-T-2"


def test_exit_text() -> None:
    assert exit_text(3) == "worker process exited with code 3 while running the task"
    assert exit_text(-9) == "worker process killed by signal SIGKILL"


# ---- determinism across executors ---------------------------------------------------------------------------


def csv_body(directory: Path, name: str) -> str:
    return (directory / name).read_text(encoding="utf-8")


def test_one_and_two_workers_give_identical_csv(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    one = execute_sweep(plan, LocalProcesses(1), out_root=tmp_path / "one")
    two = execute_sweep(plan, LocalProcesses(2), out_root=tmp_path / "two")
    assert one.exit_code == two.exit_code == 0
    for name in ("tasks.csv", "summary.csv"):
        assert csv_body(one.directory, name) == csv_body(two.directory, name)
    body = csv_body(one.directory, "tasks.csv")
    assert body.startswith("# SIMULATED")
    assert len([line for line in body.splitlines() if not line.startswith("#")]) == 1 + 12
    for name in ("tasks.csv", "summary.csv", "failures.csv", "failures.txt", "plot.png", "report.html",
                 "spec.yaml", "seeds.txt", "sweep.json"):
        assert (one.directory / name).is_file(), name


def test_results_are_ordered_by_task_not_completion(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    seen: list[int] = []
    results = run_tasks(list(reversed(plan.tasks)), LocalProcesses(2), on_done=lambda r: seen.append(r.task.task))
    assert [r.task.task for r in results] == list(range(11, -1, -1))  # the order given
    assert sorted(seen) == list(range(12))


# ---- failures -------------------------------------------------------------------------------------------------


def clean_metrics(tmp_path: Path, plan: SweepPlan) -> list[dict[str, float]]:
    return [r.outcome.metrics for r in run_tasks(plan.tasks, LocalProcesses(2)) if r.outcome is not None]


def test_a_task_that_raises_is_reported_and_the_rest_kept(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    outcome = execute_sweep(plan, LocalProcesses(2), out_root=tmp_path, fn=raise_on_task_1)
    assert outcome.exit_code == 1
    assert [r.task.task for r in outcome.failed] == [1]
    failure = outcome.failed[0].failure
    assert failure is not None and failure.kind == "raised"
    assert failure.error == "RuntimeError: injected failure in task 1"
    assert "raise_on_task_1" in failure.detail  # the worker's traceback
    assert len(outcome.results) == 12 and sum(r.ok for r in outcome.results) == 11
    failures = csv_body(outcome.directory, "failures.csv")
    assert f"1,0,1,{plan.seeds[1]},\"link.environment=office, link.phy=LE_1M\",raised," in failures
    assert "FAILED (raised)" in csv_body(outcome.directory, "tasks.csv")
    assert outcome.summaries[0].ok == 2 and outcome.summaries[0].failed == 1
    assert "injected failure in task 1" in csv_body(outcome.directory, "report.html")


def test_a_task_that_kills_its_worker_is_reported_and_the_rest_rerun(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    outcome = execute_sweep(plan, LocalProcesses(2), out_root=tmp_path, fn=exit_on_task_2)
    assert [r.task.task for r in outcome.failed] == [2]
    failure = outcome.failed[0].failure
    assert failure is not None and failure.kind == "worker died"
    assert failure.error == "worker process exited with code 3 while running the task"
    assert outcome.exit_code == 1
    # the tasks in flight with it were re-run: every other result is there, and equal to a clean run's
    clean = clean_metrics(tmp_path, plan)
    got = [r.outcome.metrics for r in outcome.results if r.outcome is not None]
    assert len(got) == 11
    np.testing.assert_equal(got, clean[:2] + clean[3:])
    assert "worker died,worker process exited with code 3" in csv_body(outcome.directory, "failures.csv")


def test_a_worker_with_another_stimrig_version_is_refused(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path, TINY.replace("count: 3", "count: 1"))
    results = run_tasks(plan.tasks[:2], LocalProcesses(1), fn=wrong_version)
    assert all(r.failure is not None and r.failure.kind == "wrong version" for r in results)


# ---- dask -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    import dask

    # one task in flight per worker thread: a worker killed by one task takes no queued bystander with it
    # (with the default saturation a task queued on that worker is counted as having killed it too)
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        with cluster, distributed.Client(cluster) as client:
            yield client


def test_dask_cluster_gives_the_same_csv_as_local_processes(tmp_path: Path, dask_client: Any) -> None:
    plan = tiny_plan(tmp_path)
    local = execute_sweep(plan, LocalProcesses(2), out_root=tmp_path / "local")
    backend = DaskCluster(client=dask_client)
    remote = execute_sweep(plan, backend, out_root=tmp_path / "dask")
    assert backend.workers == 2 and remote.executor.startswith("dask cluster tcp://")
    assert remote.exit_code == 0
    for name in ("tasks.csv", "summary.csv"):
        assert csv_body(remote.directory, name) == csv_body(local.directory, name)


def test_dask_reports_a_task_that_raises(tmp_path: Path, dask_client: Any) -> None:
    plan = tiny_plan(tmp_path)
    results = run_tasks(plan.tasks, DaskCluster(client=dask_client), fn=raise_on_task_1)
    assert [r.task.task for r in results] == list(range(12))
    failed = [r for r in results if r.failure is not None]
    assert [r.task.task for r in failed] == [1]
    assert failed[0].failure is not None and failed[0].failure.error == "RuntimeError: injected failure in task 1"


@pytest.mark.slow
def test_dask_reports_a_task_that_kills_its_worker(tmp_path: Path, dask_client: Any) -> None:
    # the nanny restarts the worker; the scheduler gives up after distributed.scheduler.allowed-failures deaths
    plan = tiny_plan(tmp_path)
    results = run_tasks(plan.tasks, DaskCluster(client=dask_client), fn=exit_on_task_2)
    failed = [r for r in results if r.failure is not None]
    assert [r.task.task for r in failed] == [2]
    assert failed[0].failure is not None and failed[0].failure.kind == "worker died"
    assert "KilledWorker" in failed[0].failure.error
