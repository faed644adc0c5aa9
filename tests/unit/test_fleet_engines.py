"""The two fleet engines: each deterministic per seed, and statistically the same on the same scenario.

The reference engine (simpy, BleConnection per device) is the slow, obviously-right one; the fast engine (numpy)
must agree with it in distribution: PER, RSSI, dropouts, cutoffs, time disconnected, delivered share and latency
percentiles, compared over several seeds with a tolerance of a few standard errors. The default run keeps this to
a few seconds; the slow run repeats it on the shipped scenarios with more seeds.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from rig.config.link import LinkProfiles, load_link_profiles
from rig.config.scenario import Scenario, load_scenario, scenario_with
from simulator.fleet import CommandStatus, EngineName, FleetResult, run_fleet
from simulator.fleet.rules import percentile

Z_LIMIT = 4.0


@pytest.fixture(scope="module")
def profiles() -> LinkProfiles:
    return load_link_profiles()


def walkers(n: int = 10, duration_s: float = 20.0, environment: str = "office") -> Scenario:
    """Patients walking a corridor to 78 m and back: every link goes through good, marginal and lost."""
    return Scenario.model_validate({
        "schema": "stimrig.scenario/1", "name": "walkers", "seed": 7, "duration_s": duration_s,
        "link": {"environment": environment}, "room": {"width_m": 80, "depth_m": 2},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": 0.5, "event_duration_s": 0.00125},
        "traffic": {"command_period_s": 0.25}, "dropout_threshold_s": 0.15,
        "controllers": [{"id": "c", "position_m": [0.5, 1.0]}],
        "patients": [{"id": f"w{i}", "path": {"waypoints_m": [[2 + 0.5 * i, 1.0], [78, 1.0]],
                                              "speed_m_s": 2.0 + 0.1 * i, "repeat": "bounce"}} for i in range(n)]})


def stats(r: FleetResult) -> dict[str, float]:
    c = r.connected
    status = r.record.command_status
    latency = r.record.command_latency_s[status == CommandStatus.DELIVERED]
    sent = np.sum(status != CommandStatus.NOT_SENT)
    return {
        "per": float(np.mean(r.per[c])),
        "rssi_dBm": float(np.mean(r.mean_rssi_dBm[c])),
        "dropouts": float(np.mean(r.dropouts[c])),
        "cutoffs": float(np.mean(r.cutoffs[c])),
        "disconnected_s": float(np.mean(r.time_disconnected_s[c])),
        "delivered": float(latency.size / sent),
        "p50_s": percentile(latency, 50),
        "p90_s": percentile(latency, 90),
        "p99_s": percentile(latency, 99),
        "held": float(r.record.held_time_s.sum() / r.record.hold_time_s.sum()),
    }


def compare(scenario: Scenario, profiles: LinkProfiles, fast_seeds: int, reference_seeds: int,
            z_limit: float = Z_LIMIT) -> dict[str, tuple[float, float, float]]:
    runs: dict[str, list[dict[str, float]]] = {}
    for engine, n in (("fast", fast_seeds), ("reference", reference_seeds)):
        runs[engine] = [stats(run_fleet(scenario, profiles, engine=engine, seed=100 + s))  # type: ignore[arg-type]
                        for s in range(n)]
    table = {}
    for key in runs["fast"][0]:
        f = np.array([r[key] for r in runs["fast"]])
        g = np.array([r[key] for r in runs["reference"]])
        se = math.sqrt(f.var(ddof=1) / f.size + g.var(ddof=1) / g.size)
        diff = float(f.mean() - g.mean())
        z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
        table[key] = (float(f.mean()), float(g.mean()), z)
    bad = {k: v for k, v in table.items() if not abs(v[2]) <= z_limit}
    assert not bad, f"fast vs reference (mean fast, mean reference, z) beyond {z_limit} standard errors: {bad}"
    return table


def test_engines_agree_statistically_on_walkers(profiles: LinkProfiles) -> None:
    table = compare(walkers(), profiles, fast_seeds=16, reference_seeds=3)
    # the scenario is harsh enough to exercise every rule
    assert table["cutoffs"][1] > 0.3 and table["dropouts"][1] > table["cutoffs"][1] and table["delivered"][1] < 0.99


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gym_20", "crowded_clinic", "walk_away"])
def test_engines_agree_statistically_on_shipped_scenarios(profiles: LinkProfiles, name: str) -> None:
    sc, _ = load_scenario(name)
    compare(scenario_with(sc, duration_s=min(sc.duration_s, 60.0)), profiles, fast_seeds=30, reference_seeds=10)


@pytest.mark.slow
def test_engines_agree_statistically_on_many_walkers(profiles: LinkProfiles) -> None:
    compare(walkers(20, 40.0, "cluttered_clinic"), profiles, fast_seeds=40, reference_seeds=10)


def _same(a: FleetResult, b: FleetResult) -> bool:
    for f in fields(a.record):
        x, y = getattr(a.record, f.name), getattr(b.record, f.name)
        if f.name == "info":
            continue
        if f.name in ("dropouts", "cutoffs"):
            if not all(np.array_equal(getattr(x, k), getattr(y, k), equal_nan=True) for k in ("device", "start_s",
                                                                                                  "end_s")):
                return False
        elif f.name == "states":
            if not np.array_equal(x.setpoints_mA, y.setpoints_mA) or not np.array_equal(x.applied, y.applied):
                return False
        elif isinstance(x, np.ndarray):
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(("engine", "scenario"), [("fast", "gym_20"), ("reference", "walkers")])
def test_each_engine_is_deterministic_per_seed(profiles: LinkProfiles, engine: EngineName, scenario: str) -> None:
    sc = scenario_with(load_scenario("gym_20")[0], duration_s=30.0) if scenario == "gym_20" else walkers(4, 6.0)
    a = run_fleet(sc, profiles, engine=engine, seed=11)
    b = run_fleet(sc, profiles, engine=engine, seed=11, progress=lambda fraction: None)
    c = run_fleet(sc, profiles, engine=engine, seed=12)
    assert _same(a, b)
    assert not _same(a, c)
    assert a.seed == 11 and c.seed == 12


def test_without_a_seed_the_scenario_seed_is_used_and_recorded(profiles: LinkProfiles) -> None:
    sc = walkers(2, 3.0)
    r = run_fleet(sc, profiles)
    assert r.seed == sc.seed
    assert _same(r, run_fleet(sc, profiles, seed=sc.seed))


def test_both_engines_share_fleet_plan_and_admission(profiles: LinkProfiles) -> None:
    sc = scenario_with(load_scenario("crowded_clinic")[0], duration_s=5.0)
    fast = run_fleet(sc, profiles, engine="fast")
    ref = run_fleet(sc, profiles, engine="reference")
    assert np.array_equal(fast.fleet.controller_of, ref.fleet.controller_of)
    assert np.array_equal(fast.plan.amplitude_mA, ref.plan.amplitude_mA)
    not_sent = fast.record.command_status == CommandStatus.NOT_SENT
    assert np.array_equal(not_sent, ref.record.command_status == CommandStatus.NOT_SENT)
    assert np.array_equal(not_sent, ~fast.connected[fast.plan.target])
    for r in (fast, ref):
        assert np.all(np.isnan(r.per[~r.connected])) and np.all(r.commands_delivered[~r.connected] == 0)
        assert np.all(r.time_disconnected_s[~r.connected] == sc.duration_s)


def test_fast_engine_memory_is_bounded_by_chunking(profiles: LinkProfiles) -> None:
    """A tiny element budget forces many chunks and blocks; the result stays statistically the same."""
    sc = walkers(10, 20.0)
    small: list[dict[str, Any]] = []
    normal: list[dict[str, Any]] = []
    for s in range(8):
        r = run_fleet(sc, profiles, seed=200 + s, max_elements=200)
        assert set(r.record.info["chunk_events"].values()) == {16}  # 200 // 10 links = 20 -> 16 (whole bytes)
        small.append(stats(r))
        normal.append(stats(run_fleet(sc, profiles, seed=300 + s)))
    for key in ("per", "dropouts", "cutoffs", "delivered", "held"):
        a, b = np.array([x[key] for x in small]), np.array([x[key] for x in normal])
        se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size) or 1e-12
        assert abs(a.mean() - b.mean()) / se < Z_LIMIT, key


def test_records_are_consistent(profiles: LinkProfiles) -> None:
    r = run_fleet(walkers(6, 15.0), profiles, seed=3)
    c = r.connected
    assert np.all(r.cutoffs <= r.dropouts)  # a cutoff is a dropout that reached the supervision timeout
    assert np.all(r.stimulation_stopped_s + 1e-9 >= r.time_disconnected_s)  # output stays off until a command
    assert np.all(r.dropout_time_s + 1e-9 >= 0) and np.all(r.time_disconnected_s <= r.record_end_s)
    sent = r.commands_delivered + r.commands_lost + r.commands_pending_at_end
    assert np.array_equal(sent, r.commands_sent)
    assert np.all(r.latency_p50_s[c] <= r.latency_p99_s[c]) and np.all(r.latency_p99_s[c] <= r.latency_max_s[c])
    for i in np.flatnonzero(c)[:3]:
        mine = (r.plan.target == i) & (r.record.command_status == CommandStatus.DELIVERED)
        assert r.latency_p99_s[i] == percentile(r.record.command_latency_s[mine], 99)


@pytest.mark.slow
def test_fleet_10k_runs_with_the_fast_engine(profiles: LinkProfiles) -> None:
    sc, _ = load_scenario("fleet_10k")
    r = run_fleet(sc, profiles, engine="fast")
    assert r.n_devices == 10_000
    assert r.fleet.refused_over_capacity.sum() > 0
    assert r.connected.sum() + (~r.connected).sum() == 10_000 and r.connected.sum() <= r.fleet.controller_capacity.sum()
    assert np.array_equal(r.record.command_status == CommandStatus.NOT_SENT, ~r.connected[r.plan.target])
    assert np.all(r.record.n_events[r.connected] == round(sc.duration_s / sc.connection.listen_interval_s))
