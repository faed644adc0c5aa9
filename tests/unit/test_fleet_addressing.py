"""Command addressing: every command carries its target device; no device's state ever changes by a command
addressed to another. Checked on the device-state model (hypothesis: random fleets and command streams) and end to
end through both engines (random command streams over a fleet with refused devices), and a routing bug in an engine
is caught by its assertion rather than passing silently."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.config.link import load_link_profiles
from rig.config.scenario import Scenario
from simulator.fleet import AddressingError, CommandPlan, CommandStatus, DeviceStates, EngineName, run_fleet
from simulator.fleet.commands import Command

CHANNELS = 4


def replay(n: int, delivered: list[tuple[int, int, float]]) -> np.ndarray:
    """Set-points each device should have: only the commands addressed to it, last one per channel wins."""
    expected = np.zeros((n, CHANNELS))
    for target, channel, amplitude in delivered:
        expected[target, channel] = amplitude
    return expected


command = st.tuples(st.integers(0, 11), st.integers(0, CHANNELS - 1), st.floats(0, 100, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), stream=st.lists(command, max_size=60), data=st.data())
def test_a_device_changes_only_by_commands_addressed_to_it(n: int, stream: list[Any], data: st.DataObject) -> None:
    stream = [(t % n, c, a) for t, c, a in stream]
    states = DeviceStates([f"d{i}" for i in range(n)], CHANNELS)
    delivered = []
    for k, (target, channel, amplitude) in enumerate(stream):
        before = states.setpoints_mA.copy()
        cmd = Command(k, target, channel, amplitude, float(k))
        receiver = data.draw(st.integers(0, n - 1), label="device the link delivered it to")
        if receiver != target:
            with pytest.raises(AddressingError, match=f"addressed to d{target} reached d{receiver}"):
                states.apply(receiver, cmd)
            assert np.array_equal(states.setpoints_mA, before)  # nothing changed
            continue
        states.apply(receiver, cmd)
        delivered.append((target, channel, amplitude))
        others = np.arange(n) != target
        assert np.array_equal(states.setpoints_mA[others], before[others])
    assert np.array_equal(states.setpoints_mA, replay(n, delivered))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 12), stream=st.lists(command, max_size=60), data=st.data())
def test_batched_application_is_checked_before_anything_changes(n: int, stream: list[Any],
                                                                  data: st.DataObject) -> None:
    stream = [(t % n, c, a) for t, c, a in stream]
    targets = np.array([t for t, _, _ in stream], dtype=np.int64)
    channels = np.array([c for _, c, _ in stream], dtype=np.int64)
    amps = np.array([a for _, _, a in stream], dtype=np.float64)
    states = DeviceStates([f"d{i}" for i in range(n)], CHANNELS)
    states.apply_many(targets, targets, channels, amps)
    assert np.array_equal(states.setpoints_mA, replay(n, stream))
    assert np.array_equal(states.applied, np.bincount(targets, minlength=n))
    if n > 1 and stream:
        k = data.draw(st.integers(0, len(stream) - 1))
        misrouted = targets.copy()
        misrouted[k] = (misrouted[k] + 1) % n
        before = states.setpoints_mA.copy()
        with pytest.raises(AddressingError, match="reached the wrong device"):
            states.apply_many(misrouted, targets, channels, amps)
        assert np.array_equal(states.setpoints_mA, before)


def tiny_fleet(duration_s: float = 3.0) -> Scenario:
    """6 devices, one controller holding 4 (2 refused), one device far away (link losses), one walking away."""
    return Scenario.model_validate({
        "schema": "stimrig.scenario/1", "name": "tiny", "seed": 1, "duration_s": duration_s,
        "link": {"environment": "office"}, "room": {"width_m": 100, "depth_m": 4},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": 0.3, "event_duration_s": 0.0075},
        "traffic": {"command_period_s": 0.5, "channels": CHANNELS}, "dropout_threshold_s": 0.1,
        "controllers": [{"id": "c", "position_m": [0, 2]}],
        "patients": [
            {"id": "near", "position_m": [2, 2]},
            {"id": "far", "position_m": [60, 2], "body_in_path": True},
            {"id": "walker", "path": {"waypoints_m": [[3, 2], [99, 2]], "speed_m_s": 10}},
            {"id": "mid", "position_m": [20, 2]},
            {"id": "late1", "position_m": [5, 2]},
            {"id": "late2", "position_m": [6, 2]},
        ]})


def _random_plan(data: st.DataObject, n: int, duration_s: float) -> CommandPlan:
    rows = data.draw(st.lists(st.tuples(st.floats(0.03, duration_s - 0.01), st.integers(0, n - 1),
                                        st.integers(0, CHANNELS - 1), st.floats(0.5, 60)), max_size=40),
                     label="command stream (issued_s, target, channel, mA)")
    return CommandPlan.from_commands(rows)


@pytest.mark.parametrize("engine", ["fast", "reference"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_engines_apply_each_command_only_to_its_target(engine: EngineName, data: st.DataObject) -> None:
    sc = tiny_fleet()
    profiles = load_link_profiles()
    plan = _random_plan(data, sc.n_devices, sc.duration_s)
    result = run_fleet(sc, profiles, engine=engine, plan=plan, seed=data.draw(st.integers(0, 1000)))
    states, status = result.record.states, result.record.command_status
    n = result.n_devices
    # refused devices are never reached
    refused = ~result.connected
    assert np.all(status[refused[plan.target]] == CommandStatus.NOT_SENT)
    assert np.all(states.setpoints_mA[refused] == 0) and np.all(states.applied[refused] == 0)
    # every device applied exactly the delivered commands addressed to it ...
    delivered = status == CommandStatus.DELIVERED
    assert np.array_equal(states.applied, np.bincount(plan.target[delivered], minlength=n))
    # ... and its set-points are those commands replayed in delivery order, reset by its own cutoffs
    at = plan.issued_s + result.record.command_latency_s
    expected = np.zeros((n, CHANNELS))
    cut = result.record.cutoffs
    events = [(float(t), 1, int(d), -1) for d, t in zip(cut.device, cut.start_s, strict=True)]
    events += [(float(at[k]), 0, int(plan.target[k]), int(k)) for k in np.flatnonzero(delivered)]
    for _, kind, device, k in sorted(events):
        if kind == 1:
            expected[device] = 0.0
        else:
            expected[device, plan.channel[k]] = plan.amplitude_mA[k]
    assert np.array_equal(states.setpoints_mA, expected)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_an_engine_that_misroutes_a_command_stops_with_an_addressing_error(engine: EngineName,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate an indexing bug: each device's command queue holds its neighbour's commands."""
    original = CommandPlan.per_device

    def shifted(self: CommandPlan, n_devices: int) -> np.ndarray:
        return np.roll(original(self, n_devices), 1, axis=0)

    monkeypatch.setattr(CommandPlan, "per_device", shifted)
    sc = tiny_fleet(2.0)
    with pytest.raises(AddressingError):
        run_fleet(sc, load_link_profiles(), engine=engine)
