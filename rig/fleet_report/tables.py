"""CSV tables of a fleet run: one row per device, plus the fleet-level tables. Each file starts with comment lines
(``#``) saying SIMULATED and what run it is (read with e.g. ``pandas.read_csv(path, comment="#")``)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rig.evidence import SIMULATED_MARK
from simulator.fleet.metrics import HoldRow, LatencyRow, Timeline
from simulator.fleet.results import FleetResult

STATUS_CONNECTED = "connected"
STATUS_REFUSED = "refused (over capacity)"
STATUS_OUT_OF_RANGE = "refused (no controller in range)"


def status_text(result: FleetResult, device: int) -> str:
    f = result.fleet
    if f.controller_of[device] >= 0:
        return STATUS_CONNECTED
    return STATUS_REFUSED if f.in_range[device] else STATUS_OUT_OF_RANGE


def header_lines(result: FleetResult, what: str, stamp: str) -> list[str]:
    sc = result.scenario
    return [
        f"# {SIMULATED_MARK}",
        f"# stimrig fleet {what}: scenario {sc.name}, engine {result.engine}, seed {result.seed}, "
        f"duration {sc.duration_s:g} s, {result.n_devices} devices, generated {stamp}",
    ]


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return ""
    v = float(x)
    if math.isnan(v):
        return ""
    return f"{v:.{digits}g}" if abs(v) < 1e6 else f"{v:.6e}"


def _write(path: Path, comments: list[str], head: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    with path.open("x", newline="", encoding="utf-8") as fh:
        for line in comments:
            fh.write(line + "\n")
        w = csv.writer(fh)
        w.writerow(head)
        w.writerows(rows)
    return path


def device_rows(result: FleetResult) -> tuple[list[str], list[list[str]]]:
    f, states = result.fleet, result.record.states
    channels = states.channels
    head = [
        "device_id", "status", "controller", "slot", "anchor_s", "body_in_path", "moving",
        "distance_start_m", "distance_mean_m", "distance_min_m", "distance_max_m",
        "mean_rssi_dBm", "per", "dropouts", "dropout_time_s", "cutoffs", "time_disconnected_s",
        "stimulation_stopped_s", "commands_sent", "commands_delivered", "commands_lost",
        "commands_pending_at_end", "commands_not_sent", "latency_p50_s", "latency_p99_s", "latency_max_s",
        "commands_applied", *[f"setpoint_ch{c + 1}_mA" for c in range(channels)],
    ]
    rows = []
    moving = f.moving
    for i in range(f.n_devices):
        connected = bool(f.controller_of[i] >= 0)
        rows.append([
            f.device_ids[i], status_text(result, i),
            f.controller_ids[f.controller_of[i]] if connected else "", str(int(f.slot[i])) if connected else "",
            _num(f.anchor_s[i], 6) if connected else "", "yes" if f.body_in_path[i] else "no",
            "yes" if moving[i] else "no",
            _num(result.track_distance_m[i, 0]), _num(result.distance_mean_m[i]), _num(result.distance_min_m[i]),
            _num(result.distance_max_m[i]), _num(result.mean_rssi_dBm[i]), _num(result.per[i]),
            str(int(result.dropouts[i])), _num(result.dropout_time_s[i]), str(int(result.cutoffs[i])),
            _num(result.time_disconnected_s[i]), _num(result.stimulation_stopped_s[i]),
            str(int(result.commands_sent[i])), str(int(result.commands_delivered[i])),
            str(int(result.commands_lost[i])), str(int(result.commands_pending_at_end[i])),
            str(int(result.commands_not_sent[i])), _num(result.latency_p50_s[i]), _num(result.latency_p99_s[i]),
            _num(result.latency_max_s[i]), str(int(states.applied[i])),
            *[_num(states.setpoints_mA[i, c]) for c in range(channels)],
        ])
    return head, rows


def latency_rows(rows: list[LatencyRow], first: str) -> tuple[list[str], list[list[str]]]:
    head = [first, "devices", "commands_issued", "delivered", "lost", "pending_at_end", "not_sent",
            "delivered_fraction", "p50_s", "p90_s", "p99_s"]
    return head, [[r.label, str(r.devices), str(r.issued), str(r.delivered), str(r.lost), str(r.pending_at_end),
                   str(r.not_sent), _num(r.delivered_fraction), _num(r.p50_s), _num(r.p90_s), _num(r.p99_s)]
                  for r in rows]


def write_tables(result: FleetResult, out_dir: Path, stamp: str, by_distance: list[LatencyRow],
                 by_size: list[LatencyRow], hold: list[HoldRow], timeline: Timeline) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    head, rows = device_rows(result)
    paths["devices"] = _write(out_dir / "devices.csv", header_lines(result, "per-device table", stamp), head, rows)
    head, rows = latency_rows(by_distance, "distance_bin")
    paths["latency_by_distance"] = _write(out_dir / "latency_by_distance.csv",
                                          header_lines(result, "command latency by distance", stamp), head, rows)
    head, rows = latency_rows(by_size, "fleet_size")
    paths["latency_by_fleet_size"] = _write(out_dir / "latency_by_fleet_size.csv",
                                            header_lines(result, "command latency by fleet size", stamp), head, rows)
    paths["link_hold_by_distance"] = _write(
        out_dir / "link_hold_by_distance.csv", header_lines(result, "link held by distance", stamp),
        ["distance_lo_m", "distance_hi_m", "link_time_s", "held_fraction"],
        [[_num(h.lo_m), _num(h.hi_m), _num(h.link_time_s, 6), _num(h.held_fraction, 6)] for h in hold])
    rec, ids = result.record, result.fleet.device_ids
    gap_rows = []
    for kind, gaps in (("dropout", rec.dropouts), ("cutoff", rec.cutoffs)):
        for d, s, e in zip(gaps.device, gaps.start_s, gaps.end_s, strict=True):
            gap_rows.append([ids[d], kind, _num(s, 7), _num(e, 7) if np.isfinite(e) else "end of run"])
    gap_rows.sort(key=lambda r: (float(r[2]), r[0]))
    paths["dropouts"] = _write(out_dir / "dropouts.csv", header_lines(result, "dropout timeline", stamp),
                               ["device_id", "kind", "start_s", "end_s"], gap_rows)
    return paths
