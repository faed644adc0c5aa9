"""Run a scenario with either engine and summarise it (``FleetResult``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from rig.config.link import LinkProfiles
from rig.config.scenario import Scenario
from simulator.fleet.commands import CommandPlan
from simulator.fleet.fast import DEFAULT_MAX_ELEMENTS, run_fast
from simulator.fleet.reference import run_reference
from simulator.fleet.results import FleetResult
from simulator.fleet.setup import RunSetup

EngineName = Literal["fast", "reference"]
ENGINES: tuple[EngineName, ...] = ("fast", "reference")


def run_fleet(
    scenario: Scenario,
    profiles: LinkProfiles,
    *,
    engine: EngineName = "fast",
    seed: int | None = None,
    devices: int | None = None,
    plan: CommandPlan | None = None,
    progress: Callable[[float], None] | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> FleetResult:
    """Simulate ``scenario`` (seed: the scenario's unless given; devices: the first N of the scenario's)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    t0 = time.perf_counter()
    setup = RunSetup.create(scenario, profiles, seed=seed, max_devices=devices, plan=plan)
    if engine == "fast":
        record = run_fast(setup, progress, max_elements=max_elements)
    else:
        record = run_reference(setup, progress)
    wall_s = time.perf_counter() - t0
    result = FleetResult.build(scenario, setup.fleet, setup.plan, record, engine=engine, seed=setup.seed,
                               wall_s=wall_s)
    model = setup.link_model(scenario.connection)
    result.link_info.update(
        tx_power_dBm=model.budget.tx_power_dBm,
        sensitivity_dBm=model.budget.sensitivity_dBm,
        body_loss_dB=setup.body_loss_dB,
        extra_loss_dB=setup.extra_loss_dB,
        interference_loss=model.interference_loss,
    )
    return result
