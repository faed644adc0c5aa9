"""Expand a sweep spec into tasks: each (grid point, seed) is one task, in a fixed order (points in grid order,
the last grid key fastest; seeds in list order within a point). Every grid point is applied to the base scenario
and re-validated here, before anything runs, so a bad value fails the spec in one line."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.config.link import LinkProfiles
from rig.config.scenario import Scenario, check_against_link, load_scenario, scenario_with
from rig.errors import FixtureError
from simulator.sweep.metrics import with_companions
from simulator.sweep.spec import SweepSpec
from simulator.sweep.task import TaskSpec

Params = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    spec_path: Path
    scenario_path: Path
    base: Scenario  # with the spec's ``set`` applied
    profiles: LinkProfiles
    seeds: list[int]
    points: list[Params]
    tasks: list[TaskSpec]

    @property
    def param_names(self) -> list[str]:
        return list(self.spec.grid)

    @property
    def metric_names(self) -> list[str]:
        return list(self.tasks[0].metrics) if self.tasks else with_companions(self.spec.metrics)


def value_text(value: Any) -> str:
    """How a parameter value is written in CSV / labels: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def point_label(params: Params) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in params) or "(base scenario)"


def resolve_scenario_path(ref: str, spec_path: Path) -> Path | str:
    """The spec's scenario: relative to the spec file if it exists there, else as load_scenario resolves it."""
    beside = spec_path.parent / ref
    return beside if beside.is_file() else ref


def set_path(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (dotted; integers index lists) in the scenario data; it must already exist there."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        here = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(f"{here}: the base scenario has {len(node)} entries there (index 0..{len(node) - 1})")
            idx: int | str = int(part)
        elif isinstance(node, dict):
            if part not in node:
                raise KeyError(f"the scenario has no field {here!r}")
            idx = part
        else:
            raise KeyError(f"{'.'.join(parts[:depth])!r} is not set in the base scenario (nothing to change below it)")
        if last:
            node[idx] = value
        else:
            node = node[idx]


def apply_params(scenario: Scenario, changes: Params, where: str) -> Scenario:
    """A re-validated copy of ``scenario`` with the dotted fields changed; FixtureError (one line) if invalid."""
    if not changes:
        return scenario
    data = scenario.model_dump(by_alias=True)
    for key, value in changes:
        try:
            set_path(data, key, value)
        except KeyError as exc:
            raise FixtureError(f"{where}: field {key!r}: {exc.args[0]}") from None
    tops = {key.split(".")[0] for key, _ in changes}
    return scenario_with(scenario, where, **{top: data[top] for top in tops})


def grid_points(spec: SweepSpec) -> list[Params]:
    keys = list(spec.grid)
    return [tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]


def plan_sweep(spec: SweepSpec, spec_path: Path | str) -> SweepPlan:
    """Load the base scenario, apply ``set`` and every grid point (validating each), and list the tasks."""
    spec_path = Path(spec_path)
    ref = resolve_scenario_path(spec.scenario, spec_path)
    try:
        scenario, profiles = load_scenario(ref)
    except FixtureError as exc:
        raise FixtureError(f"{spec_path}: field 'scenario': {exc}") from None
    scenario_path = (Path(ref) if Path(ref).is_file() else _found_scenario(ref)).resolve()
    base = apply_params(scenario, tuple(spec.set.items()), f"{spec_path}: set")
    if spec.devices is not None and spec.devices > base.n_devices:
        raise FixtureError(f"{spec_path}: field 'devices': {spec.devices} exceeds the scenario's "
                           f"{base.n_devices} devices (expected 1..{base.n_devices})")
    seeds = spec.seeds.expand()
    points = grid_points(spec)
    metrics = tuple(with_companions(spec.metrics))
    tasks: list[TaskSpec] = []
    for p, params in enumerate(points):
        where = f"{spec_path}: grid point {p} ({point_label(params)})"
        sc = apply_params(base, params, where)
        check_against_link(sc, profiles, where)
        for s, seed in enumerate(seeds):
            tasks.append(TaskSpec(
                task=len(tasks), point=p, seed_index=s, seed=seed, params=params, scenario=sc, profiles=profiles,
                engine=spec.engine, devices=spec.devices, metrics=metrics, hold_level=spec.hold_level,
            ))
    return SweepPlan(spec, spec_path, scenario_path, base, profiles, seeds, points, tasks)


def _found_scenario(ref: Path | str) -> Path:
    from rig.config.loader import resolve_fixture
    from rig.config.scenario import SCENARIOS_DIR

    p = Path(ref)
    if p.suffix == "" and (SCENARIOS_DIR / f"{p.name}.yaml").exists():
        return SCENARIOS_DIR / f"{p.name}.yaml"
    return resolve_fixture(p)
