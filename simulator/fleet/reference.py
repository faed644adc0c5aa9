"""Reference fleet engine: simpy, one simpy event per connection event per device.

Each connected device is a simpy process holding a ``BleConnection`` and a ``ShadowingProcess`` (its own seeded
stream ``reference/<device id>``). At each connection event it submits the commands issued since the previous
event (or counts them lost while the link is lost), works out the path loss of that moment (mean path loss at the
current distance + shadowing stepped by the distance walked + body/on-body loss) and lets the connection decide the
event. When the supervision timeout expires the link-loss cutoff fires (pending commands flushed, the device's
output stops) and the controller tries to reconnect at every following event (``reconnect`` + an empty-PDU
exchange) until one gets through: the rule of ``simulator.link.timeline``. Slow and obviously right; the fast
engine (simulator.fleet.fast) must agree with it statistically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from rig.config.link import Environment
from rig.radio.path_loss import REFERENCE_DISTANCE_M
from simulator.fleet.device_state import DeviceStates
from simulator.fleet.results import EngineRecord, Gaps
from simulator.fleet.rules import TIME_TOLERANCE_S, CommandStatus, first_event_index, n_events
from simulator.fleet.setup import RunSetup
from simulator.link.timeline import supervision_expired
from simulator.rng import SeededStreams

Progress = Callable[[float], None]
BoolArray = npt.NDArray[np.bool_]

_PROGRESS_STEPS = 100


def _mean_path_loss_dB(env: Environment, distance_m: float) -> float:
    """``rig.radio.mean_path_loss_dB`` for one distance (>= 0, finite: a device-controller distance), without its
    array checks: the same IEEE operations in the same order and the same ``np.log10`` ufunc, so bit-identical
    (math.log10 would not be: numpy's SIMD log10 differs from libm's in the last bit for some inputs).
    tests/unit/test_fleet_engines.py checks it against the array form."""
    d = distance_m if distance_m > REFERENCE_DISTANCE_M else REFERENCE_DISTANCE_M  # the clamp below 1 m
    return env.pl_1m_dB + env.excess_loss_dB + 10.0 * env.path_loss_exponent * float(
        np.log10(d / REFERENCE_DISTANCE_M))


class _Log:
    """What the device processes record. Per-event sums go into Python floats and lists (one device's own counters
    in its process, the shared distance bins here) and become arrays at the end: the same IEEE additions in the
    same order as numpy element updates, at a fraction of the cost."""

    def __init__(self, setup: RunSetup) -> None:
        n, k = setup.fleet.n_devices, len(setup.plan)
        self.n_events = np.zeros(n, dtype=np.int64)
        self.spacing = np.full(n, np.nan)
        self.rssi_sum = np.zeros(n)
        self.failures = np.zeros(n, dtype=np.int64)
        self.status = np.full(k, CommandStatus.NOT_SENT, dtype=np.int8)
        self.latency = np.full(k, np.nan)
        self.drops: tuple[list[int], list[float], list[float]] = ([], [], [])
        self.cuts: tuple[list[int], list[float], list[float]] = ([], [], [])
        self.hold = [0.0] * setup.n_hold_bins
        self.held = [0.0] * setup.n_hold_bins
        self.states = DeviceStates(setup.fleet.device_ids, setup.scenario.traffic.channels)

    @staticmethod
    def gap(into: tuple[list[int], list[float], list[float]], device: int, start_s: float, end_s: float) -> None:
        into[0].append(device)
        into[1].append(start_s)
        into[2].append(end_s)


def _link(env: simpy.Environment, setup: RunSetup, device: int, commands: list[int], rng: np.random.Generator,
          log: _Log, trace: dict[int, tuple[BoolArray, BoolArray]] | None) -> Generator[Any, Any, None]:
    fleet, plan = setup.fleet, setup.plan
    spec = fleet.connection_of(device)
    model = setup.link_model(spec)
    spacing, timeout = spec.listen_interval_s, spec.supervision_timeout_s
    threshold = setup.dropout_threshold_s
    # scalar form of supervision_expired(elapsed, spacing, threshold): elapsed x spacing >= threshold - tolerance
    dropout_from_s = threshold - TIME_TOLERANCE_S
    anchor = float(fleet.anchor_s[device])
    n = n_events(setup.scenario.duration_s, spacing)
    log.n_events[device], log.spacing[device] = n, spacing
    conn = model.connection(rng, start_s=anchor)
    shadow = model.shadowing(rng)
    fixed_dB = (setup.body_loss_dB if fleet.body_in_path[device] else 0.0) + setup.extra_loss_dB
    tx = model.budget.tx_power_dBm
    path = fleet.paths.get(device)
    first = [int(f) for f in first_event_index(plan.issued_s[commands], anchor, spacing)] if commands else []
    issued = [float(x) for x in plan.issued_s[commands]]
    n_commands = len(commands)
    payload = setup.payload_bytes
    status, states, hold, held = log.status, log.states, log.hold, log.held
    lost_status, delivered_status = CommandStatus.LOST, CommandStatus.DELIVERED

    env_ = model.environment
    static_d = fleet.distance_at_m(device, anchor)
    static_loss = float(model.mean_path_loss_dB(static_d)) + shadow.value_dB + fixed_dB
    static_bin = setup.hold_bin(static_d)
    walked = path.travelled_m(anchor) if path is not None else 0.0

    tracing = trace is not None
    ok_trace = sent_trace = np.zeros(n if tracing else 0, dtype=bool)
    if trace is not None:
        ok_trace, sent_trace = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        trace[device] = (ok_trace, sent_trace)
    pending: dict[int, int] = {}  # connection command id -> plan index
    ptr = 0
    last_k = 0  # last successful event (0 = connection established)
    down = False
    cut_start = math.nan
    rssi_sum = 0.0
    failures = 0
    d, loss, b = static_d, static_loss, static_bin
    for k in range(n):
        t = anchor + k * spacing
        yield env.timeout(max(t - env.now, 0.0))
        while ptr < n_commands and first[ptr] <= k:
            j = commands[ptr]
            if down:
                status[j] = lost_status
            else:
                pending[conn.submit(issued[ptr], payload)] = j
            ptr += 1
        if path is not None:
            now_walked = path.travelled_m(t)
            moved, walked = now_walked - walked, now_walked
            sh = shadow.step(moved) if moved > 0 else shadow.value_dB
            d = fleet.distance_at_m(device, t)
            loss = _mean_path_loss_dB(env_, d) + sh + fixed_dB
            b = setup.hold_bin(d)
        rssi_sum += tx - loss
        if down:
            conn.reconnect(conn.next_event_s)
        if tracing:
            sent_trace[k] = conn.pending > 0
        out = conn.event(loss)
        if out.lost:  # the supervision timeout expired at this event: link-loss cutoff
            assert conn.lost_at_s is not None
            cut_start = conn.lost_at_s
            assert abs(cut_start - (anchor + last_k * spacing + timeout)) < 1e-6, "cutoff time off the rule"
            for cid in out.dropped:
                status[pending.pop(cid)] = lost_status
            states.cut_off([device])
            down = True
            conn.reconnect(out.time_s)
            if tracing:
                sent_trace[k] = False
            out = conn.event(loss)  # the same event, as a reconnection attempt
        hold[b] += spacing
        if not down:
            held[b] += spacing
        if out.success:
            if tracing:
                ok_trace[k] = True
            if (k - last_k) * spacing >= dropout_from_s:
                log.gap(log.drops, device, anchor + last_k * spacing + threshold, t)
            if down:
                log.gap(log.cuts, device, cut_start, t)
                down = False
            last_k = k
            for dl in out.delivered:
                j = pending.pop(dl.command_id)
                status[j] = delivered_status
                log.latency[j] = dl.latency_s
                states.apply(device, plan.command(j))
        else:
            failures += 1
    log.rssi_sum[device] = rssi_sum
    log.failures[device] = failures
    if supervision_expired(n - 1 - last_k, spacing, threshold):
        log.gap(log.drops, device, anchor + last_k * spacing + threshold, math.nan)
    if down:
        log.gap(log.cuts, device, cut_start, math.nan)
    for j in list(pending.values()) + commands[ptr:]:
        status[j] = CommandStatus.PENDING_AT_END


def run_reference(setup: RunSetup, progress: Progress | None = None, *, trace: bool = False) -> EngineRecord:
    """Run the per-event engine; ``progress(fraction)`` is called as simulated time advances.

    ``trace=True`` keeps, per connected device, each event's outcome and whether it carried a command PDU
    (``info["trace"][device] = (ok, sent_command)``), for checking the rules against the array helpers.
    """
    t0 = time.perf_counter()
    fleet = setup.fleet
    env = simpy.Environment()
    streams = SeededStreams(setup.seed)
    log = _Log(setup)
    traces: dict[int, tuple[BoolArray, BoolArray]] | None = {} if trace else None
    per_device = setup.plan.per_device(fleet.n_devices)
    horizon = 0.0
    for i in np.flatnonzero(fleet.connected):
        commands = [int(j) for j in per_device[i] if j >= 0]
        rng = streams(f"reference/{fleet.device_ids[i]}")
        env.process(_link(env, setup, int(i), commands, rng, log, traces))
        spacing = fleet.connection_of(int(i)).listen_interval_s
        horizon = max(horizon, fleet.anchor_s[i] + n_events(setup.scenario.duration_s, spacing) * spacing)
    for s in range(1, _PROGRESS_STEPS + 1):
        if horizon > 0:
            env.run(until=horizon * s / _PROGRESS_STEPS)
        if progress is not None:
            progress(s / _PROGRESS_STEPS)
    env.run()
    return EngineRecord(
        n_events=log.n_events, spacing_s=log.spacing, rssi_sum_dBm=log.rssi_sum, failures=log.failures,
        dropouts=Gaps.from_lists(*log.drops), cutoffs=Gaps.from_lists(*log.cuts),
        command_status=log.status, command_latency_s=log.latency, states=log.states,
        hold_bin_width_m=setup.hold_bin_width_m, hold_time_s=np.array(log.hold), held_time_s=np.array(log.held),
        info={"engine_wall_s": time.perf_counter() - t0, "simpy_events": int(log.n_events.sum()),
              **({"trace": traces} if traces is not None else {})},
    )
