"""Fleet-level figures from a FleetResult: command latency against distance and fleet size, the distance up to which
the link holds 99 % of the time, the dropout timeline, and a summary. Pure numpy; the report renders them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.fleet.results import FleetResult
from simulator.fleet.rules import CommandStatus, percentile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOLD_LEVEL = 0.99


@dataclass(frozen=True)
class LatencyRow:
    """Commands of one group (distance bin or fleet size): how many, what became of them, delivered latency."""

    label: str
    devices: int
    issued: int
    delivered: int
    lost: int
    pending_at_end: int
    not_sent: int
    p50_s: float
    p90_s: float
    p99_s: float

    @property
    def delivered_fraction(self) -> float:
        """Delivered / issued, counting commands never sent (refused device) as not delivered; NaN if none issued."""
        decided = self.issued - self.pending_at_end
        return self.delivered / decided if decided > 0 else math.nan


def _row(result: FleetResult, label: str, select: npt.NDArray[np.bool_], devices: int) -> LatencyRow:
    status = result.record.command_status[select]
    lat = result.record.command_latency_s[select][status == CommandStatus.DELIVERED]
    return LatencyRow(
        label=label,
        devices=devices,
        issued=int(status.size),
        delivered=int(np.sum(status == CommandStatus.DELIVERED)),
        lost=int(np.sum(status == CommandStatus.LOST)),
        pending_at_end=int(np.sum(status == CommandStatus.PENDING_AT_END)),
        not_sent=int(np.sum(status == CommandStatus.NOT_SENT)),
        p50_s=percentile(lat, 50),
        p90_s=percentile(lat, 90),
        p99_s=percentile(lat, 99),
    )


def distance_edges_m(max_distance_m: float, bins: int = 10) -> FloatArray:
    """About ``bins`` equal distance bins of a round width covering 0..max_distance_m."""
    raw = max(max_distance_m, 1.0) / bins
    mag = 10 ** math.floor(math.log10(raw))
    width = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    return np.arange(0.0, max_distance_m + width, width)[: bins + 2]


def latency_by_distance(result: FleetResult, edges_m: FloatArray | None = None) -> list[LatencyRow]:
    """Sent commands (connected devices), binned by the target's distance from its controller at issue."""
    sent = result.record.command_status != CommandStatus.NOT_SENT
    d = result.command_distance_m
    if edges_m is None:
        edges_m = distance_edges_m(float(d[sent].max()) if np.any(sent) else 1.0)
    rows = []
    for lo, hi in itertools.pairwise(edges_m):
        sel = sent & (d >= lo) & (d < hi)
        if np.any(sel):
            devices = int(np.unique(result.plan.target[sel]).size)
            rows.append(_row(result, f"{lo:g}-{hi:g} m", sel, devices))
    return rows


def fleet_sizes(n_devices: int, first_refused: int | None) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to n, plus n, the last size with every device connected and the first without."""
    sizes = {n_devices}
    k = 1
    while k < n_devices:
        for s in (1, 2, 5):
            if s * k < n_devices:
                sizes.add(s * k)
        k *= 10
    if first_refused is not None:
        sizes.update({first_refused, first_refused + 1} & set(range(1, n_devices + 1)))
    return sorted(sizes)


def latency_by_fleet_size(result: FleetResult, sizes: list[int] | None = None) -> list[LatencyRow]:
    """All commands to the first n devices (scenario order, the admission order), refused devices included.

    Devices do not interfere with each other in this model, so the first n devices of a run behave as a run of
    those n devices would: the fleet size matters through capacity (refused devices) only.
    """
    refused = np.flatnonzero(~result.connected)
    first_refused = int(refused[0]) if refused.size else None
    sizes = sizes or fleet_sizes(result.n_devices, first_refused)
    return [_row(result, f"{n}", result.plan.target < n, n) for n in sizes]


@dataclass(frozen=True)
class HoldRow:
    lo_m: float
    hi_m: float
    link_time_s: float
    held_fraction: float


def link_hold_by_distance(result: FleetResult) -> list[HoldRow]:
    """Share of link time the link was up (not lost by the supervision timeout), per distance bin with data."""
    rec = result.record
    w = rec.hold_bin_width_m
    rows = []
    for b, (total, held) in enumerate(zip(rec.hold_time_s, rec.held_time_s, strict=True)):
        if total > 0:
            rows.append(HoldRow(b * w, (b + 1) * w, float(total), float(held / total)))
    return rows


@dataclass(frozen=True)
class HoldDistance:
    """The distance up to which the link holds ``level`` of the time.

    ``distance_m`` is the lower edge of the first distance bin (with data) where the held fraction falls below the
    level; None if it never does, and then ``farthest_m`` (the upper edge of the farthest bin observed) bounds it
    from below.
    """

    level: float
    distance_m: float | None
    farthest_m: float

    @property
    def text(self) -> str:
        pct = f"{self.level * 100:g} %"
        if self.distance_m is None:
            return f"held >= {pct} at every distance observed (up to {self.farthest_m:g} m): not reached"
        return f"{self.distance_m:g} m (held >= {pct} in every distance bin below it)"


def hold_distance(result: FleetResult, level: float = HOLD_LEVEL) -> HoldDistance:
    rows = link_hold_by_distance(result)
    farthest = rows[-1].hi_m if rows else 0.0
    for r in rows:
        if r.held_fraction < level:
            return HoldDistance(level, r.lo_m, farthest)
    return HoldDistance(level, None, farthest)


@dataclass(frozen=True)
class Timeline:
    t_s: FloatArray
    in_dropout: IntArray  # devices in a dropout (gap >= threshold) at t
    cut_off: IntArray  # devices whose link is lost (link-loss cutoff fired, not yet reconnected) at t


def dropout_timeline(result: FleetResult, points: int = 600) -> Timeline:
    t = np.linspace(0.0, result.scenario.duration_s, points)

    def active(gaps_start: FloatArray, gaps_end: FloatArray, devices: IntArray) -> IntArray:
        end = np.where(np.isnan(gaps_end), result.record_end_s[devices], gaps_end)
        return np.asarray(
            np.searchsorted(np.sort(gaps_start), t, side="right") - np.searchsorted(np.sort(end), t, side="right"),
            dtype=np.int64,
        )

    d, c = result.record.dropouts, result.record.cutoffs
    return Timeline(t, active(d.start_s, d.end_s, d.device), active(c.start_s, c.end_s, c.device))


@dataclass(frozen=True)
class Summary:
    devices: int
    connected: int
    refused: int
    refused_over_capacity: int
    refused_out_of_range: int
    controllers: int
    device_seconds: float
    mean_per: float
    dropouts: int
    cutoffs: int
    devices_cut_off: int
    time_disconnected_s: float
    all_commands: LatencyRow
    hold: HoldDistance


def summarise(result: FleetResult) -> Summary:
    c = result.connected
    every = np.ones(len(result.plan), dtype=bool)
    return Summary(
        devices=result.n_devices,
        connected=int(c.sum()),
        refused=int((~c).sum()),
        refused_over_capacity=int(result.fleet.refused_over_capacity.sum()),
        refused_out_of_range=int(result.fleet.refused_out_of_range.sum()),
        controllers=len(result.fleet.controller_ids),
        device_seconds=result.device_seconds,
        mean_per=float(np.nanmean(result.per[c])) if np.any(c) else math.nan,
        dropouts=int(result.dropouts.sum()),
        cutoffs=int(result.cutoffs.sum()),
        devices_cut_off=int(np.sum(result.cutoffs > 0)),
        time_disconnected_s=float(result.time_disconnected_s[c].sum()),
        all_commands=_row(result, "all", every, result.n_devices),
        hold=hold_distance(result),
    )
