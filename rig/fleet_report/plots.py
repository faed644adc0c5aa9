"""PNG plots of a fleet run (matplotlib, Agg backend), each watermarked SIMULATED like rig.evidence's captures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rig.simulated_plots import png_bytes, pyplot
from simulator.fleet.metrics import HoldDistance, HoldRow, LatencyRow, Timeline
from simulator.fleet.results import FleetResult

BAR_DEVICES_MAX = 60  # per-device bars up to this many devices, scatter against distance beyond
RASTER_DEVICES_MAX = 120


def _plt() -> Any:
    return pyplot()


def _png(fig: Any) -> bytes:
    return png_bytes(fig, "stimrig fleet")


def _title(result: FleetResult, what: str) -> str:
    return f"{what} - {result.scenario.name}, {result.engine} engine, seed {result.seed} [SIMULATED]"


def per_device(result: FleetResult) -> bytes:
    plt = _plt()
    n = result.n_devices
    conn = result.connected
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True)
    refused_note = f"; {int((~conn).sum())} refused (over capacity, no link)" if np.any(~conn) else ""
    if n <= BAR_DEVICES_MAX:
        x = np.arange(n)
        panels: list[tuple[str, Callable[[Any], Any]]] = [
            ("mean RSSI (dBm)", lambda ax: ax.bar(x[conn], result.mean_rssi_dBm[conn], color="tab:blue")),
            ("PER", lambda ax: ax.bar(x[conn], result.per[conn], color="tab:orange")),
            ("dropouts / cutoffs", lambda ax: (
                ax.bar(x - 0.2, result.dropouts, 0.4, label="dropouts", color="tab:orange"),
                ax.bar(x + 0.2, result.cutoffs, 0.4, label="link-loss cutoffs", color="tab:red"), ax.legend())),
            ("latency (s)", lambda ax: (
                ax.plot(x, result.latency_p50_s, "o", label="p50", color="tab:green"),
                ax.plot(x, result.latency_p99_s, "v", label="p99", color="tab:purple"), ax.legend())),
        ]
        for ax, (label, draw) in zip(axes, panels, strict=True):
            draw(ax)
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            for i in np.flatnonzero(~conn):
                ax.axvspan(i - 0.45, i + 0.45, color="0.8", hatch="//", zorder=0)
        axes[-1].set_xticks(x)
        axes[-1].set_xticklabels(result.fleet.device_ids, rotation=90, fontsize=7)
        axes[0].set_title(_title(result, "per device" + refused_note), fontsize=10)
    else:
        d = result.distance_mean_m
        series = [("mean RSSI (dBm)", result.mean_rssi_dBm), ("PER", result.per),
                  ("link-loss cutoffs", result.cutoffs), ("latency p99 (s)", result.latency_p99_s)]
        for ax, (label, y) in zip(axes, series, strict=True):
            ax.plot(d[conn], np.asarray(y, dtype=float)[conn], ".", ms=2, alpha=0.5)
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
        axes[-1].set_xlabel("mean distance to controller (m)")
        axes[0].set_title(_title(result, f"per device against distance ({n} devices{refused_note})"), fontsize=10)
    return _png(fig)


def _latency_axes(ax: Any, x: Any, rows: list[LatencyRow], xlabel: str) -> Any:
    for q, attr, style in ((50, "p50_s", "o-"), (90, "p90_s", "s-"), (99, "p99_s", "v-")):
        ax.plot(x, [getattr(r, attr) for r in rows], style, label=f"p{q} (delivered)")
    ax.set_ylabel("command latency (s)")
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(x, [100 * r.delivered_fraction for r in rows], "k--", lw=1, label="delivered (%)")
    ax2.set_ylabel("delivered (%)")
    ax2.set_ylim(0, 105)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    return ax2


def latency_vs_distance(result: FleetResult, rows: list[LatencyRow]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    _latency_axes(ax, np.arange(len(rows)), rows, "distance from controller at issue")
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels([r.label for r in rows], rotation=30, fontsize=8)
    ax.set_title(_title(result, "command latency against distance"), fontsize=10)
    return _png(fig)


def latency_vs_fleet_size(result: FleetResult, rows: list[LatencyRow]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    sizes = [r.devices for r in rows]
    _latency_axes(ax, sizes, rows, "fleet size (first N devices, admission order)")
    ax.set_xscale("log")
    cap = result.scenario.total_capacity
    if cap < result.n_devices:
        ax.axvline(cap, color="tab:red", lw=1, ls=":")
        ax.text(cap, ax.get_ylim()[1], f" capacity {cap}", color="tab:red", va="top", fontsize=8)
    ax.set_title(_title(result, "command latency against fleet size"), fontsize=10)
    return _png(fig)


def link_hold(result: FleetResult, rows: list[HoldRow], hold: HoldDistance) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if rows:
        edges = [r.lo_m for r in rows]
        ax.bar(edges, [100 * r.held_fraction for r in rows], width=[r.hi_m - r.lo_m for r in rows], align="edge",
               color="tab:blue", alpha=0.7, label="link held (% of link time in bin)")
    ax.axhline(100 * hold.level, color="tab:red", ls="--", lw=1, label=f"{100 * hold.level:g} %")
    if hold.distance_m is not None:
        ax.axvline(hold.distance_m, color="tab:red", lw=1.5, label=f"holds {100 * hold.level:g} % up to "
                                                                     f"{hold.distance_m:g} m")
    ax.set_ylim(0, 101)
    ax.set_xlabel("distance from controller (m)")
    ax.set_ylabel("link held (%)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, alpha=0.3)
    ax.set_title(_title(result, "link holding against distance"), fontsize=10)
    return _png(fig)


def dropout_timeline(result: FleetResult, timeline: Timeline) -> bytes:
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    rec = result.record
    devices = np.unique(np.concatenate([rec.dropouts.device, rec.cutoffs.device]))
    shown = devices if result.n_devices <= RASTER_DEVICES_MAX else np.unique(rec.cutoffs.device)[:RASTER_DEVICES_MAX]
    row = {int(d): k for k, d in enumerate(shown)}
    for gaps, color, label in ((rec.dropouts, "tab:orange", "dropout"), (rec.cutoffs, "tab:red", "link-loss cutoff")):
        end = np.where(np.isnan(gaps.end_s), result.record_end_s[gaps.device], gaps.end_s)
        first = True
        for d, s, e in zip(gaps.device, gaps.start_s, end, strict=True):
            if int(d) in row:
                ax.barh(row[int(d)], max(e - s, 0.05), left=s, height=0.7, color=color,
                        label=label if first else None)
                first = False
    if len(shown) <= 40:
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([result.fleet.device_ids[d] for d in shown], fontsize=8)
        ax.set_ylabel("device")
    else:
        ax.set_ylabel(f"device (row; {len(shown)} shown, ids in dropouts.csv)")
    if len(shown):
        ax.legend(fontsize=8, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no dropouts", transform=ax.transAxes, ha="center")
    what = "devices with a gap" if result.n_devices <= RASTER_DEVICES_MAX else "devices with a cutoff"
    ax.set_title(_title(result, f"dropout timeline ({what})"), fontsize=10)
    ax2.step(timeline.t_s, timeline.in_dropout, where="post", color="tab:orange", label="in a dropout")
    ax2.step(timeline.t_s, timeline.cut_off, where="post", color="tab:red", label="link lost (cut off)")
    ax2.set_ylabel("devices")
    ax2.set_xlabel("time (s)")
    ax2.legend(fontsize=8)
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
    return _png(fig)


def distance_over_time(result: FleetResult, max_lines: int = 20) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    moving = np.flatnonzero(result.fleet.moving)
    static = np.flatnonzero(~result.fleet.moving)
    pick = np.concatenate([moving, static])[:max_lines]
    for i in pick:
        ax.plot(result.track_s, result.track_distance_m[i], lw=1.5 if result.fleet.moving[i] else 0.6,
                label=result.fleet.device_ids[i] if result.fleet.moving[i] else None)
    if moving.size:
        ax.legend(fontsize=7, ncol=2)
    more = result.n_devices - pick.size
    ax.set_title(_title(result, "distance to controller over time" + (f" (first {pick.size}, {more} more)"
                                                                       if more > 0 else "")), fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("distance (m)")
    ax.grid(True, alpha=0.3)
    return _png(fig)
