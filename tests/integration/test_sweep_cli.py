"""`stimrig sweep` end to end (rig.cli_sweep): output directory, exit status for bad specs, failed tasks and an
unreachable scheduler, a Dask scheduler given by address, and one run in a subprocess as a user runs it."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rig import __version__
from rig.cli_sweep import add_arguments, main, run_sweep
from rig.config.scenario import SCENARIOS_DIR
from rig.evidence import SIMULATED_MARK
from simulator.sweep import TaskOutcome, TaskSpec, expand_seeds, run_task

REPO = Path(__file__).resolve().parents[2]
WALK_AWAY = SCENARIOS_DIR / "walk_away.yaml"
RANGE_SPEC = REPO / "fixtures" / "sweeps" / "range_vs_environment.yaml"

SPEC = f"""\
schema: stimrig.sweep/1
name: cli-tiny
description: two environments x two seeds, 20 s of walk-away
scenario: {WALK_AWAY}
seeds: {{base: 11, count: 2}}
set: {{duration_s: 20}}
grid:
  link.environment: [gym, office]
metrics: [hold_distance_m, dropout_rate_per_min, latency_p99_s]
"""


def spec_file(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stimrig sweep")
    add_arguments(parser)
    return parser.parse_args(argv)


def only_dir(out: Path) -> Path:
    (d,) = list(out.iterdir())
    return d


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def raise_on_task_3(task: TaskSpec) -> TaskOutcome:
    if task.task == 3:
        raise ValueError("injected: no such thing")
    return run_task(task)


def exit_on_task_0(task: TaskSpec) -> TaskOutcome:
    if task.task == 0:
        os._exit(7)
    return run_task(task)


def test_sweep_writes_a_new_directory_with_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = spec_file(tmp_path)
    out = tmp_path / "out"
    assert main([str(spec), "--out", str(out), "--workers", "2"]) == 0
    d = only_dir(out)
    assert d.name.startswith("sweep-cli-tiny-")
    tasks = rows(d / "tasks.csv")
    seeds = expand_seeds(11, 2)
    assert [(r["task"], r["link.environment"], r["seed"], r["status"]) for r in tasks] == [
        ("0", "gym", str(seeds[0]), "ok"), ("1", "gym", str(seeds[1]), "ok"),
        ("2", "office", str(seeds[0]), "ok"), ("3", "office", str(seeds[1]), "ok")]
    summary = rows(d / "summary.csv")
    assert [r["link.environment"] for r in summary] == ["gym", "office"]
    assert {"latency_p99_s_mean", "latency_p99_s_std", "latency_p99_s_q05", "latency_p99_s_q95",
            "hold_distance_m_n", "hold_observed_m_max"} <= set(summary[0])
    assert rows(d / "failures.csv") == []
    record = json.loads((d / "sweep.json").read_text())
    assert record["status"] == "complete" and record["stimrig_version"] == __version__
    assert record["seeds"] == seeds and record["spec"]["name"] == "cli-tiny"
    assert record["tasks"] == 4 and record["tasks_failed"] == 0 and record["workers"] == 2
    assert (d / "spec.yaml").read_bytes() == spec.read_bytes()
    assert [int(s) for s in (d / "seeds.txt").read_text().split() if s.isdigit()] == seeds
    html = (d / "report.html").read_text()
    assert html.count(SIMULATED_MARK) >= 2 and "all 4 tasks succeeded" in html
    assert (d / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"SIMULATED" in (d / "plot.png").read_bytes()
    printed = capsys.readouterr().out
    assert "sweep complete: 4 tasks" in printed and "report:" in printed
    # a second run never overwrites the first
    assert main([str(spec), "--out", str(out), "--workers", "1"]) == 0
    assert len(list(out.iterdir())) == 2


@pytest.mark.parametrize(("text", "expected"), [
    (SPEC.replace("seeds: {base: 11, count: 2}", "seeds: {base: 11, count: 0}"), "field 'seeds.count'"),
    (SPEC.replace("[gym, office]", "[gym, atlantis]"), "unknown environment 'atlantis'"),
    (SPEC.replace("metrics: [", "metrics: [fun, "), "unknown metric 'fun'"),
])
def test_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           text: str, expected: str) -> None:
    spec = spec_file(tmp_path, text)
    out = tmp_path / "out"
    assert main([str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stimrig sweep: ") and expected in err and str(spec) in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_missing_spec_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_dry_run_validates_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main([str(RANGE_SPEC), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "24 grid point(s) x 8 seed(s) = 192 tasks" in printed
    assert "link.environment=cluttered_clinic, link.phy=LE_CODED_S8" in printed
    assert not out.exists()


def test_failed_tasks_are_reported_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = parse(str(spec_file(tmp_path)), "--out", str(out), "--workers", "2")
    assert run_sweep(args, task_fn=raise_on_task_3) == 1
    printed = capsys.readouterr().out
    seed = expand_seeds(11, 2)[1]
    assert f"FAILED task 3 (link.environment=office, seed {seed}): raised: ValueError: injected: no such thing" \
        in printed.replace("\n", " ")
    assert "SWEEP INCOMPLETE: 1 of 4 task(s) failed" in printed
    d = only_dir(out)
    (failure,) = rows(d / "failures.csv")
    assert failure["task"] == "3" and failure["seed"] == str(seed) and failure["kind"] == "raised"
    assert failure["params"] == "link.environment=office"
    assert [r["status"] for r in rows(d / "tasks.csv")] == ["ok", "ok", "ok", "FAILED (raised)"]
    assert "injected: no such thing" in (d / "failures.txt").read_text()
    record = json.loads((d / "sweep.json").read_text())
    assert record["status"] == "failed tasks" and record["failed_task_ids"] == [3]


def test_a_dead_worker_is_reported_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = parse(str(spec_file(tmp_path)), "--out", str(out), "--workers", "2")
    assert run_sweep(args, task_fn=exit_on_task_0) == 1
    printed = capsys.readouterr().out.replace("\n", " ")
    assert "FAILED task 0 (link.environment=gym" in printed and "worker process exited with code 7" in printed
    assert [r["status"] for r in rows(only_dir(out) / "tasks.csv")] == ["FAILED (worker died)", "ok", "ok", "ok"]


def test_unreachable_scheduler_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main([str(spec_file(tmp_path)), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1",
                 "--scheduler-timeout", "0.5"])
    assert code == 2
    assert "cannot use the Dask scheduler tcp://127.0.0.1:1" in capsys.readouterr().err
    assert not out.exists()


def test_workers_and_scheduler_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["x.yaml", "--workers", "2", "--scheduler", "tcp://h:1"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_scheduler_by_address_gives_the_same_csv(tmp_path: Path) -> None:
    distributed: Any = pytest.importorskip("distributed")
    spec = spec_file(tmp_path)
    assert main([str(spec), "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        assert main([str(spec), "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
    local, remote = only_dir(tmp_path / "local"), only_dir(tmp_path / "dask")
    for name in ("tasks.csv", "summary.csv"):
        assert (local / name).read_text() == (remote / name).read_text()
    assert json.loads((remote / "sweep.json").read_text())["executor"].startswith("dask cluster tcp://")


def test_as_a_user_runs_it_in_a_subprocess(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "rig.cli_sweep", str(spec_file(tmp_path)), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sweep complete: 4 tasks" in proc.stdout and SIMULATED_MARK in proc.stdout


@pytest.mark.slow
def test_the_range_sweep_runs_and_ranks_the_phys(tmp_path: Path) -> None:
    assert main([str(RANGE_SPEC), "--out", str(tmp_path)]) == 0
    summary = {(r["link.environment"], r["link.phy"]): r for r in rows(only_dir(tmp_path) / "summary.csv")}
    assert len(summary) == 24
    for env in ("gym", "office", "strzoda_indoor"):
        # the more sensitive coded PHY holds the link at least as far, on average, as 1M, and 1M as far as 2M
        s8, m1, m2 = (float(summary[(env, phy)]["hold_distance_m_mean"]) for phy in ("LE_CODED_S8", "LE_1M",
                                                                                    "LE_2M"))
        assert s8 >= m1 >= m2
