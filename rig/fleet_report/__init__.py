"""The record of a ``stimrig fleet`` run, written into a NEW directory (never overwriting): a self-contained HTML
report, CSV tables (per device, latency by distance and fleet size, link held by distance, dropout timeline) and
PNG plots, every one marked SIMULATED."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rig import __version__
from rig.fleet_report import page, plots
from rig.fleet_report.tables import device_rows, write_tables
from rig.output_dirs import new_output_dir
from simulator.fleet.metrics import (
    dropout_timeline,
    latency_by_distance,
    latency_by_fleet_size,
    link_hold_by_distance,
    summarise,
)
from simulator.fleet.results import FleetResult

HTML_NAME = "report.html"
CONTROLLER_ROWS_MAX = 100


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    html: Path
    csv: dict[str, Path]
    png: dict[str, Path]


def new_run_dir(out_root: Path, name: str, stamp: str | None = None) -> Path:
    """``<out_root>/fleet-<name>-<UTC stamp>[-n]``, created new: never an existing directory."""
    return new_output_dir(out_root, f"fleet-{name}", stamp)


def _engine_text(result: FleetResult) -> str:
    if result.engine == "reference":
        return "per-event simpy engine: one simpy event per connection event per device"
    chunks = result.record.info.get("chunk_events", {})
    return ("vectorised numpy engine over devices x connection events, chunked in time "
            f"({', '.join(f'{v} events' for v in sorted(set(chunks.values())))} per chunk)")


def write_report(result: FleetResult, out_dir: Path, scenario_path: str = "") -> ReportFiles:
    """Write every file into ``out_dir`` (which must be new/empty: files are opened exclusively)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    by_distance = latency_by_distance(result)
    by_size = latency_by_fleet_size(result)
    hold_rows = link_hold_by_distance(result)
    timeline = dropout_timeline(result)
    summary = summarise(result)
    csvs = write_tables(result, out_dir, stamp, by_distance, by_size, hold_rows, timeline)

    images = {
        "per_device": plots.per_device(result),
        "latency_vs_distance": plots.latency_vs_distance(result, by_distance),
        "latency_vs_fleet_size": plots.latency_vs_fleet_size(result, by_size),
        "link_hold": plots.link_hold(result, hold_rows, summary.hold),
        "dropout_timeline": plots.dropout_timeline(result, timeline),
        "distance_over_time": plots.distance_over_time(result),
    }
    pngs: dict[str, Path] = {}
    for name, data in images.items():
        path = out_dir / f"{name}.png"
        with path.open("xb") as fh:
            fh.write(data)
        pngs[name] = path

    sc, fleet = result.scenario, result.fleet
    head, rows = device_rows(result)
    keep = [h for h in head if not h.startswith("setpoint_") and h not in ("anchor_s", "distance_start_m")]
    idx = [head.index(h) for h in keep]
    controllers = []
    for c, cid in enumerate(fleet.controller_ids[:CONTROLLER_ROWS_MAX]):
        conn = fleet.controller_connection[c]
        controllers.append({
            "id": cid, "xy": f"({fleet.controller_xy_m[c, 0]:.1f}, {fleet.controller_xy_m[c, 1]:.1f})",
            "capacity": int(fleet.controller_capacity[c]), "connected": int(np.sum(fleet.controller_of == c)),
            "interval": f"{conn.interval_s * 1e3:g} ms", "event": f"{conn.event_duration_s * 1e3:g} ms",
        })
    conn = sc.connection
    html = page.render(
        r=result, sc=sc, s=summary, stamp=stamp, version=__version__, scenario_path=scenario_path or sc.name,
        engine_text=_engine_text(result), rate=result.device_seconds / max(result.wall_s, 1e-9),
        tx=f"{result.link_info.get('tx_power_dBm', float('nan')):g}",
        sens=f"{result.link_info.get('sensitivity_dBm', float('nan')):g}",
        body_count=int(fleet.body_in_path.sum()),
        conn_text=(f"interval {conn.interval_s * 1e3:g} ms, peripheral latency {conn.peripheral_latency}, "
                   f"supervision timeout {conn.supervision_timeout_s:g} s, controller event "
                   f"{conn.event_duration_s * 1e3:g} ms (controllers may override)"),
        by_distance=by_distance, by_size=by_size,
        img={k: page.data_uri(v) for k, v in images.items()},
        controllers=controllers, controllers_more=max(0, len(fleet.controller_ids) - CONTROLLER_ROWS_MAX),
        device_head=keep, devices=[[row[i] for i in idx] for row in rows[: page.DEVICE_ROWS_MAX]],
        devices_more=max(0, len(rows) - page.DEVICE_ROWS_MAX),
        files=[p.name for p in (*csvs.values(), *pngs.values())],
    )
    html_path = out_dir / HTML_NAME
    with html_path.open("x", encoding="utf-8") as fh:
        fh.write(html)
    return ReportFiles(out_dir, html_path, csvs, pngs)
