"""Fleet-level figures: latency against distance and fleet size, the 99 % link-holding distance, the timeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.config.scenario import load_scenario, scenario_with
from simulator.fleet import FleetResult, run_fleet
from simulator.fleet.metrics import (
    distance_edges_m,
    dropout_timeline,
    fleet_sizes,
    hold_distance,
    latency_by_distance,
    latency_by_fleet_size,
    link_hold_by_distance,
    summarise,
)
from simulator.fleet.results import distance_bin_width_m
from simulator.fleet.rules import CommandStatus, percentile


@pytest.fixture(scope="module")
def crowded() -> FleetResult:
    sc, profiles = load_scenario("crowded_clinic")
    return run_fleet(sc, profiles, seed=4)


@pytest.fixture(scope="module")
def walk() -> FleetResult:
    sc, profiles = load_scenario("walk_away")
    return run_fleet(sc, profiles, seed=4)


def test_helpers() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN
    assert percentile([3.0, 1.0, 2.0, np.nan], 50) == 2.0
    assert percentile(np.arange(1, 101, dtype=float), 99) == 99.0
    assert fleet_sizes(18, 12) == [1, 2, 5, 10, 12, 13, 18]
    assert fleet_sizes(10_000, None)[-3:] == [2000, 5000, 10_000]
    assert distance_bin_width_m(30.0) == 0.5 and distance_bin_width_m(150.0) == 2.0
    edges = distance_edges_m(150.0)
    assert edges[0] == 0 and edges[-1] >= 150 and len(edges) <= 12


def test_latency_by_fleet_size_shows_the_capacity_knee(crowded: FleetResult) -> None:
    rows = {r.devices: r for r in latency_by_fleet_size(crowded)}
    assert set(rows) >= {1, 12, 13, 18}
    for n, row in rows.items():
        assert row.issued == int(np.sum(crowded.plan.target < n))
        if n <= 12:
            assert row.not_sent == 0
        else:
            refused_targets = (crowded.plan.target >= 12) & (crowded.plan.target < n)  # devices 13.. are refused
            assert row.not_sent == int(refused_targets.sum())
            assert row.delivered_fraction <= 12 / n + 1e-9
    assert rows[18].delivered_fraction < rows[12].delivered_fraction


def test_latency_by_distance_counts_every_sent_command_once(walk: FleetResult) -> None:
    rows = latency_by_distance(walk)
    sent = walk.record.command_status != CommandStatus.NOT_SENT
    assert sum(r.issued for r in rows) == int(sent.sum())
    assert sum(r.delivered for r in rows) == int(np.sum(walk.record.command_status == CommandStatus.DELIVERED))
    near, far = rows[0], rows[-1]
    assert near.delivered_fraction > 0.95 and far.delivered_fraction < near.delivered_fraction
    for r in rows:
        if r.delivered:
            assert r.p50_s <= r.p90_s <= r.p99_s


def test_the_99_percent_distance_of_the_walk(walk: FleetResult) -> None:
    rows = link_hold_by_distance(walk)
    hold = hold_distance(walk)
    assert hold.distance_m is not None and 5.0 < hold.distance_m < 150.0
    assert all(r.held_fraction >= 0.99 for r in rows if r.hi_m <= hold.distance_m)
    assert next(r for r in rows if r.lo_m == hold.distance_m).held_fraction < 0.99
    assert "m (held >= 99 %" in hold.text
    assert sum(r.link_time_s for r in rows) == pytest.approx(walk.device_seconds)


def test_the_99_percent_distance_can_be_not_reached(crowded: FleetResult) -> None:
    short = scenario_with(crowded.scenario, link=crowded.scenario.link.model_copy(update={"environment": "open_hall"}))
    r = run_fleet(short, load_scenario("gym_20")[1], seed=1)
    hold = hold_distance(r)
    assert hold.distance_m is None and "not reached" in hold.text and hold.farthest_m > 0


def test_timeline_counts_devices_in_gaps(walk: FleetResult) -> None:
    tl = dropout_timeline(walk, points=2000)
    assert np.all(tl.cut_off >= 0) and np.all(tl.cut_off <= tl.in_dropout) and np.all(tl.in_dropout <= 1)
    cut = walk.record.cutoffs
    end = np.where(np.isnan(cut.end_s), walk.record_end_s[cut.device], cut.end_s)
    covered = float(np.mean(tl.cut_off)) * walk.scenario.duration_s
    assert covered == pytest.approx(float(np.sum(end - cut.start_s)), rel=0.05)


def test_summary(crowded: FleetResult) -> None:
    s = summarise(crowded)
    assert (s.devices, s.connected, s.refused, s.refused_over_capacity, s.refused_out_of_range) == (18, 12, 6, 6, 0)
    assert s.all_commands.not_sent == int(np.sum(~crowded.connected[crowded.plan.target]))
    assert not math.isnan(s.mean_per)
