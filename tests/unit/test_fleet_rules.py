"""The engines' shared rules, checked exactly (not statistically).

* ``CommandWindows`` (fast engine: which events carry a command PDU) against a per-event oracle written straight
  from the rules, for random outcomes and random chunkings;
* the reference engine's own per-event record against the simulator.link array helpers the fast engine uses:
  dropouts, cutoffs, command latencies and the command-PDU events must follow from its outcomes exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.config.link import load_link_profiles
from rig.config.scenario import Scenario
from simulator.fleet.fast import _first_events, chunk_events
from simulator.fleet.reference import run_reference
from simulator.fleet.rules import NEVER, CommandStatus, expiry_events, first_event_index
from simulator.fleet.setup import RunSetup
from simulator.fleet.windows import CommandWindows
from simulator.link import command_latency_s, link_dropouts, lost_mask
from simulator.link.timeline import supervision_expired

SPACING_S = 0.03


def oracle(ok_e: np.ndarray, ok_c: np.ndarray, first: np.ndarray, spacing_s: float, timeout_s: float) -> np.ndarray:
    """Per event, per link, straight from the rules (BleConnection + reconnect at every event while lost)."""
    n, m = ok_e.shape
    out = np.zeros((n, m), dtype=bool)
    for i in range(n):
        starts = [int(f) for f in first[i] if f < NEVER]
        last, pending, down, ptr = 0, False, False, 0
        for k in range(m):
            while ptr < len(starts) and starts[ptr] <= k:
                ptr += 1
                pending = pending or not down  # issued while the link is lost: lost
            if not down and supervision_expired(k - last, spacing_s, timeout_s):
                down, pending = True, False  # link-loss cutoff: pending commands flushed
            ok = bool(ok_c[i, k] if pending else ok_e[i, k])
            out[i, k] = ok
            if ok:
                down, pending, last = False, False, k
    return out


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), m=st.integers(1, 160),
       timeout_s=st.sampled_from([0.1, 0.2, 0.35]), commands=st.integers(0, 25))
def test_command_windows_match_the_per_event_oracle_for_any_chunking(seed: int, n: int, m: int, timeout_s: float,
                                                                      commands: int) -> None:
    rng = np.random.default_rng(seed)
    p_empty = rng.uniform(0, 0.9)
    ok_e = rng.random((n, m)) > p_empty
    ok_c = ok_e & (rng.random((n, m)) > rng.uniform(0, 0.5))  # a command PDU fails more often
    first = np.sort(np.where(rng.random((n, commands)) < 0.1, NEVER, rng.integers(0, m + 4, (n, commands))), axis=1)
    expected = oracle(ok_e, ok_c, first, SPACING_S, timeout_s)
    windows = CommandWindows(first, SPACING_S, timeout_s)
    parts, k0 = [], 0
    while k0 < m:
        size = min(int(rng.integers(1, 50)), m - k0)
        parts.append(windows.step(ok_e[:, k0 : k0 + size], ok_c[:, k0 : k0 + size]))
        k0 += size
    assert np.array_equal(np.concatenate(parts, axis=1), expected)


def test_rule_helpers() -> None:
    assert expiry_events(0.03, 1.0) == 34  # 33 x 30 ms = 0.99 s < 1 s <= 34 x 30 ms
    assert expiry_events(0.03, 0.09) == 3  # exactly 3 x 30 ms counts as expired (tolerance)
    assert first_event_index([0.0, 0.03, 0.031, 0.06], 0.0, 0.03).tolist() == [0, 1, 2, 2]
    assert first_event_index(0.5, 0.01, 0.03).item() == 17
    assert chunk_events(10_000, 2400, 2_000_000) == 200
    assert chunk_events(1, 100, 2_000_000) == 104  # whole record, rounded up to a byte of packed outcomes
    assert chunk_events(10**7, 100, 2_000_000) == 8


def walkers(n: int = 5, duration_s: float = 15.0, static: int = 2) -> Scenario:
    patients: list[dict[str, Any]] = [
        {"id": f"w{i}", "path": {"waypoints_m": [[2 + i, 1.0], [78, 1.0]], "speed_m_s": 2.0 + 0.2 * i,
                                 "repeat": "bounce"}} for i in range(n)]
    if static:
        patients.append({"layout": "grid", "count": static, "area_m": {"x_m": [20, 60], "y_m": [0.5, 1.5]}})
    return Scenario.model_validate({
        "schema": "stimrig.scenario/1", "name": "walkers", "seed": 7, "duration_s": duration_s,
        "link": {"environment": "office"}, "room": {"width_m": 80, "depth_m": 2},
        "connection": {"interval_s": 0.03, "supervision_timeout_s": 0.5, "event_duration_s": 0.00125},
        "traffic": {"command_period_s": 0.25}, "dropout_threshold_s": 0.15,
        "controllers": [{"id": "c", "position_m": [0.5, 1.0]}], "patients": patients})


@pytest.fixture(scope="module")
def traced() -> tuple[RunSetup, Any]:
    setup = RunSetup.create(walkers(), load_link_profiles(), seed=5)
    return setup, run_reference(setup, trace=True)


def test_reference_record_follows_the_array_helpers_exactly(traced: tuple[RunSetup, Any]) -> None:
    setup, record = traced
    per_device = setup.plan.per_device(setup.fleet.n_devices)
    checked_cutoffs = 0
    for device, (ok, sent) in record.info["trace"].items():
        spec = setup.fleet.connection_of(device)
        spacing, timeout = spec.listen_interval_s, spec.supervision_timeout_s
        anchor = setup.fleet.anchor_s[device]
        for limit, gaps in ((setup.dropout_threshold_s, record.dropouts), (timeout, record.cutoffs)):
            expected = link_dropouts(ok, spacing, limit, start_s=anchor)
            mine = gaps.device == device
            assert np.allclose(gaps.start_s[mine], expected.lost_at_s)
            assert np.allclose(gaps.end_s[mine], expected.restored_at_s, equal_nan=True)
        checked_cutoffs += int(np.sum(record.cutoffs.device == device))
        cmds = per_device[device][per_device[device] >= 0]
        latency = command_latency_s(ok, spacing, timeout, setup.plan.issued_s[cmds] - anchor)[0]
        delivered = record.command_status[cmds] == CommandStatus.DELIVERED
        assert np.array_equal(np.isfinite(latency), delivered)
        assert np.allclose(record.command_latency_s[cmds][delivered], latency[delivered], atol=1e-9)
        # the events that carried a command PDU are exactly the fast engine's command windows
        windows = CommandWindows(_first_events(setup, cmds[None, :], np.array([anchor]), spacing), spacing, timeout)
        windows.step(ok[None, :], ok[None, :])
        assert np.array_equal(windows.in_window[0], sent)
        assert record.failures[device] == np.sum(~ok)
        assert (~lost_mask(ok, spacing, timeout)).sum() * spacing <= record.n_events[device] * spacing
    assert checked_cutoffs > 0 and len(record.dropouts) > checked_cutoffs  # the scenario exercises both


def test_reference_link_holding_time_is_the_helpers_lost_mask(traced: tuple[RunSetup, Any]) -> None:
    setup, record = traced
    held = 0.0
    for device, (ok, _) in record.info["trace"].items():
        spacing = setup.fleet.connection_of(device).listen_interval_s
        timeout = setup.fleet.connection_of(device).supervision_timeout_s
        held += float((~lost_mask(ok, spacing, timeout)).sum()) * spacing
    assert record.held_time_s.sum() == pytest.approx(held)
    assert record.hold_time_s.sum() == pytest.approx(float(np.nansum(record.n_events * record.spacing_s)))
