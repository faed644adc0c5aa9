"""What a fleet run produces, the same for both engines.

An engine fills an ``EngineRecord`` (raw per-link counters, gaps, command outcomes, device states);
``FleetResult.build`` adds what follows deterministically from the fleet and the plan (distances, per-device
counts and times) so that both engines are summarised by the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rig.config.scenario import Scenario
from simulator.fleet.commands import CommandPlan
from simulator.fleet.device_state import DeviceStates
from simulator.fleet.layout import Fleet
from simulator.fleet.rules import CommandStatus

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TRACK_POINTS = 241
"""Samples of each device's distance over time kept for the report."""


def distance_bin_width_m(max_distance_m: float, max_bins: int = 100) -> float:
    """A round bin width giving at most ``max_bins`` bins up to ``max_distance_m``."""
    for w in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0):
        if max_distance_m / w <= max_bins:
            return w
    return float(10 ** math.ceil(math.log10(max_distance_m / max_bins)))


@dataclass
class Gaps:
    """Intervals without a successful exchange: dropouts (>= the threshold) or cutoffs (>= supervision timeout).

    ``start_s`` = last success + threshold (when the gap became a dropout / the link-loss cutoff fired);
    ``end_s`` = the successful event that ended it, NaN if it ran to the end of the record.
    """

    device: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    end_s: FloatArray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.device.size)

    @classmethod
    def concat(cls, parts: list[Gaps]) -> Gaps:
        if not parts:
            return cls()
        g = cls(
            np.concatenate([p.device for p in parts]).astype(np.int64),
            np.concatenate([p.start_s for p in parts]).astype(np.float64),
            np.concatenate([p.end_s for p in parts]).astype(np.float64),
        )
        order = np.lexsort((g.start_s, g.device))
        return cls(g.device[order], g.start_s[order], g.end_s[order])

    @classmethod
    def from_lists(cls, device: list[int], start_s: list[float], end_s: list[float]) -> Gaps:
        return cls.concat([cls(np.array(device, dtype=np.int64), np.array(start_s, dtype=np.float64),
                               np.array(end_s, dtype=np.float64))])

    def durations_s(self, record_end_s: FloatArray) -> FloatArray:
        """Durations, an open gap running to its device's record end."""
        end = np.where(np.isnan(self.end_s), record_end_s[self.device], self.end_s)
        return np.asarray(end - self.start_s, dtype=np.float64)


@dataclass
class EngineRecord:
    """Raw outcome of one engine run (arrays over devices unless noted)."""

    n_events: IntArray  # connection events in each link's record (0 = refused)
    spacing_s: FloatArray  # listen interval of each link (NaN = refused)
    rssi_sum_dBm: FloatArray
    failures: IntArray  # events whose exchange failed
    dropouts: Gaps
    cutoffs: Gaps
    command_status: npt.NDArray[np.int8]  # per plan command: CommandStatus
    command_latency_s: FloatArray  # per plan command, NaN unless delivered
    states: DeviceStates
    hold_bin_width_m: float
    hold_time_s: FloatArray  # per distance bin: link time observed there (connected devices)
    held_time_s: FloatArray  # ... of which the link was up (not lost by the supervision timeout)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class FleetResult:
    scenario: Scenario
    fleet: Fleet
    plan: CommandPlan
    record: EngineRecord
    engine: str
    seed: int
    wall_s: float
    # per device
    record_end_s: FloatArray
    mean_rssi_dBm: FloatArray
    per: FloatArray
    dropouts: IntArray
    dropout_time_s: FloatArray
    cutoffs: IntArray
    time_disconnected_s: FloatArray
    stimulation_stopped_s: FloatArray
    commands_sent: IntArray
    commands_delivered: IntArray
    commands_lost: IntArray
    commands_pending_at_end: IntArray
    commands_not_sent: IntArray
    latency_p50_s: FloatArray
    latency_p99_s: FloatArray
    latency_max_s: FloatArray
    distance_mean_m: FloatArray
    distance_min_m: FloatArray
    distance_max_m: FloatArray
    track_s: FloatArray
    track_distance_m: npt.NDArray[np.float32]  # (n_devices, TRACK_POINTS)
    command_distance_m: FloatArray  # per plan command: distance of its target at issue
    link_info: dict[str, Any] = field(default_factory=dict)  # the effective link parameters (TX power, ...)

    @property
    def n_devices(self) -> int:
        return self.fleet.n_devices

    @property
    def connected(self) -> BoolArray:
        return self.fleet.connected

    @property
    def device_seconds(self) -> float:
        """Simulated link time: sum over connected devices of their record length."""
        return float(np.nansum(self.record.n_events * self.record.spacing_s))

    @classmethod
    def build(
        cls,
        scenario: Scenario,
        fleet: Fleet,
        plan: CommandPlan,
        record: EngineRecord,
        *,
        engine: str,
        seed: int,
        wall_s: float,
    ) -> FleetResult:
        n = fleet.n_devices
        ev = record.n_events.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_rssi = np.where(ev > 0, record.rssi_sum_dBm / ev, np.nan)
            per = np.where(ev > 0, record.failures / ev, np.nan)
        record_end = fleet.anchor_s + np.nan_to_num(record.n_events * record.spacing_s)
        record_end = np.where(fleet.connected, record_end, scenario.duration_s)

        drop_dur = record.dropouts.durations_s(record_end)
        cut_dur = record.cutoffs.durations_s(record_end)
        dropouts = np.bincount(record.dropouts.device, minlength=n)
        cutoffs = np.bincount(record.cutoffs.device, minlength=n)
        dropout_time = np.bincount(record.dropouts.device, weights=drop_dur, minlength=n).astype(np.float64)
        disconnected = np.bincount(record.cutoffs.device, weights=cut_dur, minlength=n).astype(np.float64)
        disconnected = np.where(fleet.connected, disconnected, scenario.duration_s).astype(np.float64)

        status = record.command_status
        tgt = plan.target

        def count(s: CommandStatus) -> IntArray:
            return np.bincount(tgt[status == s], minlength=n).astype(np.int64)

        delivered = count(CommandStatus.DELIVERED)
        lost = count(CommandStatus.LOST)
        pending = count(CommandStatus.PENDING_AT_END)
        not_sent = count(CommandStatus.NOT_SENT)
        lat = record.command_latency_s
        p50, p99, pmax = _per_device_latency(tgt, lat, status, n)

        delivery_s = plan.issued_s + np.where(status == CommandStatus.DELIVERED, lat, np.nan)
        stopped = _stimulation_stopped_s(record.cutoffs, tgt, delivery_s, record_end, n)

        track_s = np.linspace(0.0, scenario.duration_s, TRACK_POINTS)
        track = fleet.distance_m(np.arange(n), track_s)
        cmd_dist = _command_distance_m(fleet, plan)
        return cls(
            scenario=scenario, fleet=fleet, plan=plan, record=record, engine=engine, seed=seed, wall_s=wall_s,
            record_end_s=record_end, mean_rssi_dBm=mean_rssi, per=per,
            dropouts=dropouts.astype(np.int64), dropout_time_s=dropout_time,
            cutoffs=cutoffs.astype(np.int64), time_disconnected_s=disconnected, stimulation_stopped_s=stopped,
            commands_sent=delivered + lost + pending, commands_delivered=delivered, commands_lost=lost,
            commands_pending_at_end=pending, commands_not_sent=not_sent,
            latency_p50_s=p50, latency_p99_s=p99, latency_max_s=pmax,
            distance_mean_m=track.mean(axis=1), distance_min_m=track.min(axis=1), distance_max_m=track.max(axis=1),
            track_s=track_s, track_distance_m=track.astype(np.float32), command_distance_m=cmd_dist,
        )


def _per_device_latency(
    target: IntArray, latency_s: FloatArray, status: npt.NDArray[np.int8], n: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    p50, p99, pmax = (np.full(n, np.nan) for _ in range(3))
    ok = status == CommandStatus.DELIVERED
    t, lat = target[ok], latency_s[ok]
    if t.size == 0:
        return p50, p99, pmax
    order = np.lexsort((lat, t))
    t, lat = t[order], lat[order]
    counts = np.bincount(t, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    for q, out in ((50.0, p50), (99.0, p99)):
        # inverted-CDF percentile: the ceil(q/100 x count)-th smallest value
        rank = np.maximum(np.ceil(q / 100.0 * counts).astype(np.int64) - 1, 0)
        out[has] = lat[(starts + rank)[has]]
    pmax[has] = lat[(starts + counts - 1)[has]]
    return p50, p99, pmax


def _stimulation_stopped_s(
    cutoffs: Gaps, target: IntArray, delivery_s: FloatArray, record_end_s: FloatArray, n: int
) -> FloatArray:
    """Per device: time from each link-loss cutoff to the next command delivered after it (or the record end)."""
    out = np.zeros(n)
    if len(cutoffs) == 0:
        return out
    ok = np.isfinite(delivery_s)
    dev, t = target[ok], delivery_s[ok]
    order = np.lexsort((t, dev))
    dev, t = dev[order], t[order]
    span = float(np.nanmax(record_end_s)) + 1.0
    keys = dev * span + t
    nxt_idx = np.searchsorted(keys, cutoffs.device * span + cutoffs.start_s, side="right")
    nxt = np.full(len(cutoffs), np.inf)
    inside = nxt_idx < keys.size
    same = np.zeros(len(cutoffs), dtype=bool)
    same[inside] = dev[nxt_idx[inside]] == cutoffs.device[inside]
    nxt[same] = t[nxt_idx[same]]
    end = np.minimum(nxt, record_end_s[cutoffs.device])
    # a later cutoff of the same device before that delivery: count only up to it (no double counting)
    later = np.full(len(cutoffs), np.inf)
    same_dev_next = np.zeros(len(cutoffs), dtype=bool)
    same_dev_next[:-1] = cutoffs.device[1:] == cutoffs.device[:-1]
    later[:-1][same_dev_next[:-1]] = cutoffs.start_s[1:][same_dev_next[:-1]]
    end = np.minimum(end, later)
    np.add.at(out, cutoffs.device, np.maximum(end - cutoffs.start_s, 0.0))
    return out


def _command_distance_m(fleet: Fleet, plan: CommandPlan) -> FloatArray:
    out = fleet.distance_m(plan.target, plan.issued_s[:, None])[:, 0] if len(plan) else np.zeros(0)
    return np.asarray(out, dtype=np.float64)
