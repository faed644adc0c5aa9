"""What a sweep extracts from one fleet run: named scalar metrics (units in the names), from ``FleetResult``.

Every metric is a float; NaN means "no value" (e.g. no command delivered, or the link never fell below the hold
level within the distances observed: then ``hold_observed_m`` bounds ``hold_distance_m`` from below).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.fleet.metrics import HOLD_LEVEL, HoldDistance, Summary, hold_distance, summarise
from simulator.fleet.results import FleetResult

DEFAULT_HOLD_LEVEL = HOLD_LEVEL


@dataclass(frozen=True)
class RunFigures:
    """What the metrics are computed from: the run, its fleet summary, and the hold distance at the sweep's level."""

    result: FleetResult
    summary: Summary
    hold: HoldDistance

    @property
    def link_min(self) -> float:
        """Connected device-minutes simulated."""
        return self.result.device_seconds / 60.0


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    extract: Callable[[RunFigures], float]


def _per(count: float, amount: float) -> float:
    return count / amount if amount > 0 else math.nan


def _hold_m(f: RunFigures) -> float:
    return math.nan if f.hold.distance_m is None else float(f.hold.distance_m)


def _mean_rssi(f: RunFigures) -> float:
    c = f.result.connected
    return float(np.nanmean(f.result.mean_rssi_dBm[c])) if np.any(c) else math.nan


_LIST = [
    Metric("hold_distance_m", "distance up to which the link holds hold_level (default 99 %) of the time: the lower "
           "edge of the first distance bin below it; empty if never below within the distances observed",
           _hold_m),
    Metric("hold_observed_m", "farthest distance observed (a lower bound for hold_distance_m when that is empty)",
           lambda f: float(f.hold.farthest_m)),
    Metric("dropouts", "gaps between successful exchanges >= dropout_threshold_s, all devices",
           lambda f: float(f.summary.dropouts)),
    Metric("dropout_rate_per_min", "dropouts per connected device-minute", lambda f: _per(f.summary.dropouts,
                                                                                          f.link_min)),
    Metric("cutoffs", "link-loss cutoffs (gaps >= the supervision timeout: stimulation stops), all devices",
           lambda f: float(f.summary.cutoffs)),
    Metric("cutoff_rate_per_h", "link-loss cutoffs per connected device-hour",
           lambda f: _per(f.summary.cutoffs, f.link_min / 60.0)),
    Metric("devices_cut_off", "devices with at least one link-loss cutoff", lambda f: float(f.summary.devices_cut_off)),
    Metric("disconnected_fraction", "share of connected link time spent disconnected (after a cutoff)",
           lambda f: _per(f.summary.time_disconnected_s, f.result.device_seconds)),
    Metric("latency_p50_s", "median command latency, delivered commands", lambda f: f.summary.all_commands.p50_s),
    Metric("latency_p90_s", "90th percentile command latency, delivered commands",
           lambda f: f.summary.all_commands.p90_s),
    Metric("latency_p99_s", "99th percentile command latency, delivered commands",
           lambda f: f.summary.all_commands.p99_s),
    Metric("delivered_fraction", "commands delivered / commands decided (not pending at the end)",
           lambda f: f.summary.all_commands.delivered_fraction),
    Metric("commands_lost", "commands lost with the link", lambda f: float(f.summary.all_commands.lost)),
    Metric("mean_per", "mean packet error rate over connected devices", lambda f: f.summary.mean_per),
    Metric("mean_rssi_dBm", "mean RSSI over connected devices", _mean_rssi),
    Metric("connected", "devices connected", lambda f: float(f.summary.connected)),
    Metric("refused", "devices refused (over capacity or out of range)", lambda f: float(f.summary.refused)),
]

METRICS: dict[str, Metric] = {m.name: m for m in _LIST}

COMPANIONS = {"hold_distance_m": "hold_observed_m"}
"""Metrics always extracted with another one (so the plot can show a lower bound where the first is empty)."""


def with_companions(names: Sequence[str]) -> list[str]:
    """``names`` plus their companions (after them, once)."""
    out = list(names)
    for n in names:
        extra = COMPANIONS.get(n)
        if extra is not None and extra not in out:
            out.append(extra)
    return out


def extract(result: FleetResult, names: Sequence[str], hold_level: float = DEFAULT_HOLD_LEVEL) -> dict[str, float]:
    """The named metrics of one run, in the order given."""
    figures = RunFigures(result, summarise(result), hold_distance(result, hold_level))
    return {n: float(METRICS[n].extract(figures)) for n in names}
