"""One sweep task, and the pure function that runs it: ``run_task(TaskSpec) -> TaskOutcome``.

The task carries everything it needs (the validated scenario with its grid point applied, the link profiles, the
seed), so a worker needs only stimrig installed, not the fixture files. The outcome depends on the task alone:
the same task gives the same metrics in any process, on any worker, in any order.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from rig import __version__
from rig.config.link import LinkProfiles
from rig.config.scenario import Scenario
from simulator.fleet.run import EngineName, run_fleet
from simulator.sweep.metrics import extract


@dataclass(frozen=True)
class TaskSpec:
    task: int  # position in the sweep: results are ordered by it
    point: int  # grid point index
    seed_index: int
    seed: int
    params: tuple[tuple[str, Any], ...]  # the grid point: (dotted scenario field, value) in grid order
    scenario: Scenario  # the base scenario with ``set`` and this grid point applied
    profiles: LinkProfiles
    engine: EngineName
    devices: int | None
    metrics: tuple[str, ...]
    hold_level: float


@dataclass(frozen=True)
class TaskOutcome:
    task: int
    metrics: dict[str, float]
    version: str  # stimrig version of the worker that ran it
    worker: str  # host:pid (reported on failures only: it differs between executors)
    wall_s: float


def run_task(task: TaskSpec) -> TaskOutcome:
    """Simulate one (grid point, seed) and extract the metrics. Pure: no files, no shared state."""
    t0 = time.perf_counter()
    result = run_fleet(task.scenario, task.profiles, engine=task.engine, seed=task.seed, devices=task.devices)
    metrics = extract(result, task.metrics, task.hold_level)
    return TaskOutcome(task.task, metrics, __version__, worker_name(), time.perf_counter() - t0)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"

