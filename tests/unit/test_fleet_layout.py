"""Fleet layout: positions, paths, admission to controller slots (capacity, range, order), the event schedule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.config.scenario import Scenario, load_scenario
from simulator.fleet import build_fleet
from simulator.fleet.layout import admit, check_schedule, grid_points
from simulator.fleet.motion import Path, PathArrays
from simulator.fleet.setup import RunSetup


def scenario(**over: Any) -> Scenario:
    data: dict[str, Any] = {
        "schema": "stimrig.scenario/1", "name": "t", "seed": 3, "duration_s": 5.0,
        "link": {"environment": "gym"}, "room": {"width_m": 50, "depth_m": 20},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": 1.0, "event_duration_s": 0.0025},
        "traffic": {"command_period_s": 1.0},
        "controllers": [{"id": "a", "position_m": [0, 10]}, {"id": "b", "position_m": [50, 10], "capacity": 2}],
        "patients": [{"layout": "grid", "count": 10, "area_m": {"x_m": [1, 49], "y_m": [1, 19]}}],
    }
    data.update(over)
    return Scenario.model_validate(data)


def test_grid_fills_the_area_row_by_row() -> None:
    pts = grid_points((0.0, 40.0, 0.0, 20.0), 8)
    assert pts.shape == (8, 2)
    assert np.all((pts[:, 0] > 0) & (pts[:, 0] < 40) & (pts[:, 1] > 0) & (pts[:, 1] < 20))
    assert len({tuple(p) for p in pts}) == 8


def test_random_layout_and_body_flags_are_fixed_by_the_seed() -> None:
    sc = scenario(patients=[{"layout": "random", "count": 50}], body_in_path_probability=0.5)
    a, b, c = build_fleet(sc, 1), build_fleet(sc, 1), build_fleet(sc, 2)
    assert np.array_equal(a.start_xy_m, b.start_xy_m) and np.array_equal(a.body_in_path, b.body_in_path)
    assert not np.array_equal(a.start_xy_m, c.start_xy_m)
    assert 10 < a.body_in_path.sum() < 40
    # --devices N keeps the first N devices exactly as they were
    first = build_fleet(sc, 1, max_devices=7)
    assert np.array_equal(first.start_xy_m, a.start_xy_m[:7]) and np.array_equal(first.body_in_path, a.body_in_path[:7])


def test_admission_nearest_free_controller_in_order_then_refused() -> None:
    xy = np.array([[1.0, 0], [2, 0], [3, 0], [9, 0], [8, 0]])
    ctrl = np.array([[0.0, 0], [10, 0]])
    of, slot, nearest = admit(xy, ctrl, np.array([2, 2]))
    # devices 0, 1 fill controller 0; device 2 goes to the far one; 3 and 4 -> controller 1 holds 3 only
    assert of.tolist() == [0, 0, 1, 1, -1]
    assert slot.tolist() == [0, 1, 0, 1, -1]
    assert nearest.tolist() == [0, 0, 0, 1, 1]
    reach = np.array([[True, False]] * 5)
    of, _, _ = admit(xy, ctrl, np.array([2, 2]), reach)
    assert of.tolist() == [0, 0, -1, -1, -1]


def test_surplus_devices_are_refused_not_dropped() -> None:
    sc, profiles = load_scenario("crowded_clinic")
    setup = RunSetup.create(sc, profiles)
    fleet = setup.fleet
    assert fleet.n_devices == 18
    assert fleet.connected.sum() == 12 and fleet.refused_over_capacity.sum() == 6
    assert np.array_equal(np.flatnonzero(~fleet.connected), np.arange(12, 18))  # admitted in scenario order
    assert fleet.refused_out_of_range.sum() == 0


def test_devices_out_of_range_are_refused_as_such() -> None:
    sc = scenario(link={"environment": "office", "on_body": True})  # n = 3 and +20 dB: a few metres of range
    setup = RunSetup.create(sc, load_scenario("gym_20")[1])
    assert setup.fleet.refused_out_of_range.any()
    assert not np.any(setup.fleet.connected & ~setup.fleet.in_range)


def test_connection_events_of_one_controller_never_overlap() -> None:
    sc, profiles = load_scenario("fleet_10k")
    fleet = RunSetup.create(sc, profiles).fleet
    check_schedule(fleet)  # raises if two events of one controller overlap or spill over the interval
    for c in range(0, len(fleet.controller_ids), 37):
        links = np.flatnonzero(fleet.controller_of == c)
        anchors = np.sort(fleet.anchor_s[links])
        assert np.all(np.diff(anchors) >= 0.00125 - 1e-12)
        assert links.size <= fleet.controller_capacity[c]


def test_check_schedule_catches_overlap() -> None:
    fleet = build_fleet(scenario())
    broken = fleet.anchor_s.copy()
    broken[1] = broken[0] + 0.001
    from dataclasses import replace

    with pytest.raises(AssertionError, match="overlap"):
        check_schedule(replace(fleet, anchor_s=broken))


@settings(max_examples=60, deadline=None)
@given(
    waypoints=st.lists(st.tuples(st.floats(0, 100), st.floats(0, 50)), min_size=2, max_size=6),
    speed=st.floats(0.1, 5.0),
    start=st.floats(0, 10),
    repeat=st.sampled_from(["once", "loop", "bounce"]),
)
def test_scalar_and_vector_paths_agree(waypoints: list[tuple[float, float]], speed: float, start: float,
                                        repeat: str) -> None:
    path = Path(tuple(waypoints), speed, start, repeat)
    if path.length_m <= 1e-6:
        return
    arrays = PathArrays([path, Path(((0.0, 0.0), (1.0, 1.0)), 1.0)])
    t = np.linspace(0, 200, 97)
    xy = arrays.xy_m(np.vstack([t, t]))[0]
    walked = arrays.travelled_m(np.vstack([t, t]))[0]
    for k, tk in enumerate(t):
        assert xy[k] == pytest.approx(path.xy_m(float(tk)), abs=1e-6)
        assert walked[k] == pytest.approx(path.travelled_m(float(tk)), abs=1e-9)


def test_walk_away_goes_from_1_to_150_m() -> None:
    sc, profiles = load_scenario("walk_away")
    fleet = RunSetup.create(sc, profiles).fleet
    d = fleet.distance_m([0], np.array([0.0, 5.0, 80.0, 154.0, 160.0]))[0]
    assert d == pytest.approx([1.0, 1.0, 76.0, 150.0, 150.0])
