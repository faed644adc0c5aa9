"""Aggregate task results over seeds: per grid point and metric, n / mean / std / min / max / quantiles.

Only successful tasks and finite values count (``n`` says how many did); std is the sample standard deviation
(ddof = 1, empty below two values); quantiles are numpy's default (linear interpolation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.sweep.execute import TaskResult
from simulator.sweep.plan import Params

STATS = ("n", "mean", "std", "min", "max")


def quantile_name(q: float) -> str:
    """0.05 -> q05, 0.5 -> q50, 0.025 -> q2.5."""
    pct = q * 100
    return f"q{round(pct):02d}" if abs(pct - round(pct)) < 1e-9 else f"q{pct:g}"


@dataclass(frozen=True)
class PointSummary:
    point: int
    params: Params
    tasks: int
    ok: int
    failed: int
    stats: dict[str, dict[str, float]]  # metric -> stat name (n, mean, std, min, max, q..) -> value
    values: dict[str, list[float]]  # metric -> per-seed values of the successful tasks (task order)


def stat_names(quantiles: Sequence[float]) -> list[str]:
    return [*STATS, *(quantile_name(q) for q in quantiles)]


def describe_values(values: Sequence[float], quantiles: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    out: dict[str, float] = {"n": float(a.size)}
    nan = math.nan
    out["mean"] = float(a.mean()) if a.size else nan
    out["std"] = float(a.std(ddof=1)) if a.size >= 2 else nan
    out["min"] = float(a.min()) if a.size else nan
    out["max"] = float(a.max()) if a.size else nan
    for q in quantiles:
        out[quantile_name(q)] = float(np.quantile(a, q)) if a.size else nan
    return out


def summarise_points(results: Sequence[TaskResult], points: Sequence[Params], metrics: Sequence[str],
                     quantiles: Sequence[float]) -> list[PointSummary]:
    by_point: list[list[TaskResult]] = [[] for _ in points]
    for r in results:
        by_point[r.task.point].append(r)
    out = []
    for p, params in enumerate(points):
        rs = by_point[p]
        good = [r.outcome for r in rs if r.outcome is not None]
        values = {m: [o.metrics[m] for o in good] for m in metrics}
        out.append(PointSummary(
            point=p, params=params, tasks=len(rs), ok=len(good), failed=len(rs) - len(good),
            stats={m: describe_values(values[m], quantiles) for m in metrics}, values=values,
        ))
    return out
