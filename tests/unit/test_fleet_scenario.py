"""Scenario fixtures (stimrig.scenario/1): the shipped ones load, bad ones fail with one line naming file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config.scenario import MAX_DEVICES, SCENARIOS_DIR, load_scenario, scenario_with
from rig.errors import FixtureError

SHIPPED = ("gym_20", "walk_away", "crowded_clinic", "fleet_10k", "fleet_1k_30min")


def _base() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SCENARIOS_DIR / "gym_20.yaml").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def _load(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FixtureError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    return msg


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load_and_say_what_they_show(name: str) -> None:
    scenario, profiles = load_scenario(name)
    assert scenario.name == name
    assert scenario.link.environment in profiles.environments
    text = (SCENARIOS_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.startswith(f"# {name}:") and "What it shows" in text


def test_shipped_scenarios_have_the_requested_shape() -> None:
    gym, _ = load_scenario("gym_20")
    assert gym.n_devices == 20 and gym.n_controllers == 1
    assert (gym.room.width_m, gym.room.depth_m) == (40, 25)
    walk, _ = load_scenario("walk_away")
    (walker,) = walk.patients
    assert walker.path is not None
    crowded, _ = load_scenario("crowded_clinic")
    assert crowded.n_devices > crowded.total_capacity  # the surplus must show as refused
    big, _ = load_scenario("fleet_10k")
    assert big.n_devices == MAX_DEVICES


def test_a_scenario_loads_by_path_too() -> None:
    scenario, _ = load_scenario(SCENARIOS_DIR / "gym_20.yaml")
    assert scenario.name == "gym_20"


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda d: d["link"].update(environment="moon"), ["link.environment", "unknown environment 'moon'", "gym"]),
        (lambda d: d["link"].update(tx_power_dBm=30), ["link.tx_power_dBm", "less than or equal to 20"]),
        (lambda d: d["link"].update(phy="LE_4M"), ["link.phy"]),
        (lambda d: d.update(duration_s=-1), ["duration_s", "greater than 0"]),
        (lambda d: d.update(seed=-3), ["seed"]),
        (lambda d: d.update(body_in_path_probability=1.5), ["body_in_path_probability"]),
        (lambda d: d["connection"].update(interval_s=0.031), ["connection", "1.25 ms"]),
        (lambda d: d["connection"].update(supervision_timeout_s=0.05), ["connection", "0.1"]),
        (lambda d: d["controllers"][0].update(capacity=30),
         ["controllers[0]: capacity 30 exceeds interval / event duration", "= 24", "overlap"]),
        (lambda d: d["controllers"][0].update(position_m=[50, 1]), ["controllers[0].position_m", "outside the room"]),
        (lambda d: d["patients"][1]["path"]["waypoints_m"].append([41, 3]), ["waypoints_m[4]", "outside the room"]),
        (lambda d: d["patients"][0].update(count=MAX_DEVICES), ["patients", "expected 1..10000"]),
        (lambda d: d["patients"].append({"id": "circuit-a", "position_m": [1, 1]}), ["duplicate device id"]),
        (lambda d: d["patients"].append({"id": "x", "position_m": [1, 1], "path": {"waypoints_m": [[1, 1], [2, 2]],
                                          "speed_m_s": 1}}), ["exactly one of 'position_m'"]),
        (lambda d: d["patients"].append({"layout": "hexagonal", "count": 3}), ["patients[3].layout"]),
        (lambda d: d["patients"].append({"layout": "grid"}), ["needs 'count'"]),
        (lambda d: d.update(dropout_threshold_s=2.0), ["dropout_threshold_s", "supervision timeout"]),
        (lambda d: d["traffic"].update(command_period_s=0.01), ["command_period_s", "listen interval"]),
        (lambda d: d.update(colour="red"), ["'colour' is not a known field"]),
        (lambda d: d.pop("controllers"), ["'controllers' is missing"]),
    ],
)
def test_bad_scenario_is_one_line_naming_file_and_field(tmp_path: Path, change: Any, fragments: list[str]) -> None:
    data = _base()
    change(data)
    msg = _load(tmp_path, data)
    for fragment in fragments:
        assert fragment in msg, msg


def test_missing_and_invalid_yaml_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: [unclosed\n", encoding="utf-8")
    with pytest.raises(FixtureError, match="not valid YAML"):
        load_scenario(bad)


def test_capacity_defaults_to_what_the_schedule_allows() -> None:
    scenario, _ = load_scenario("gym_20")
    conn = scenario.connection
    assert conn.max_links == 24  # 30 ms / 1.25 ms
    assert scenario.capacity_of(scenario.controllers[0]) == 24
    crowded, _ = load_scenario("crowded_clinic")
    assert crowded.total_capacity == 12


def test_scenario_with_revalidates() -> None:
    scenario, _ = load_scenario("gym_20")
    assert scenario_with(scenario, duration_s=5.0).duration_s == 5.0
    with pytest.raises(FixtureError, match="duration_s"):
        scenario_with(scenario, duration_s=0.0)
