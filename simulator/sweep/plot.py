"""The sweep's PNG: each plotted metric against the x grid key, one line per value of the other grid keys
(mean over seeds, bars from the lowest to the highest quantile, every seed as a faint dot), watermarked SIMULATED.

Where a metric has no value for some seeds (e.g. the link held 99 % at every distance observed), the point says
how many seeds gave one (``k/n``); for ``hold_distance_m`` an open triangle marks the lower bound
(``hold_observed_m``) of the seeds that never fell below the level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rig.simulated_plots import png_bytes, pyplot
from simulator.sweep.aggregate import PointSummary, quantile_name
from simulator.sweep.metrics import COMPANIONS
from simulator.sweep.plan import SweepPlan, point_label, value_text


def _plt() -> Any:
    return pyplot()


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _lines(plan: SweepPlan, x_key: str | None, summaries: Sequence[PointSummary]) -> dict[str, list[PointSummary]]:
    """Summaries grouped by the grid parameters other than x (the series key first), in grid order."""
    series = plan.spec.plot_series
    out: dict[str, list[PointSummary]] = {}
    for s in summaries:
        rest = [(k, v) for k, v in s.params if k != x_key]
        rest.sort(key=lambda kv: kv[0] != series)
        out.setdefault(point_label(tuple(rest)) if rest else "", []).append(s)
    return out


def sweep_plot(plan: SweepPlan, summaries: Sequence[PointSummary]) -> bytes:
    plt = _plt()
    spec = plan.spec
    metrics = spec.plot_metrics
    x_key = spec.plot_x
    x_values: list[Any] = list(spec.grid[x_key]) if x_key is not None else ["(base scenario)"]
    numeric = _numeric(x_values)
    lines = _lines(plan, x_key, summaries)
    q = spec.quantiles
    lo_name, hi_name = (quantile_name(q[0]), quantile_name(q[-1])) if len(q) >= 2 else (None, None)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(10.5, 0.6 + 3.9 * len(metrics)), squeeze=False)
    width = 0.8 / max(len(lines), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        companion = COMPANIONS.get(metric)
        for i, (label, points) in enumerate(lines.items()):
            color = colors[i % len(colors)]
            xs, means, lows, highs = [], [], [], []
            for s in points:
                xv = dict(s.params).get(x_key, x_values[0]) if x_key is not None else x_values[0]
                pos = float(xv) if numeric else x_values.index(xv) + (i - (len(lines) - 1) / 2) * width
                st = s.stats[metric]
                vals = np.asarray(s.values[metric], dtype=float)
                jitter = 0.0 if numeric else width * 0.25
                offsets = np.linspace(-jitter, jitter, vals.size) if vals.size > 1 else np.zeros(vals.size)
                ax.plot(pos + offsets, vals, ".", color=color, alpha=0.25, ms=4, zorder=2)
                xs.append(pos)
                means.append(st["mean"])
                lows.append(st[lo_name] if lo_name else st["mean"] - st["std"])
                highs.append(st[hi_name] if hi_name else st["mean"] + st["std"])
                missing = s.ok - int(st["n"])
                bound = [b for v, b in zip(vals, s.values[companion], strict=True)
                         if not math.isfinite(v)] if companion is not None else []
                if bound:
                    ax.plot([pos], [min(bound)], "^", mfc="none", color=color, ms=8, zorder=3)
                if missing > 0:
                    y = st["mean"] if math.isfinite(st["mean"]) else (min(bound) if bound else 0.0)
                    ax.annotate(f"{int(st['n'])}/{s.ok}", (pos, y), textcoords="offset points", xytext=(4, 4),
                                fontsize=7, color=color)
            m, lo, hi = (np.asarray(a, dtype=float) for a in (means, lows, highs))
            err = np.vstack([np.maximum(m - lo, 0), np.maximum(hi - m, 0)])
            ax.errorbar(xs, m, yerr=np.where(np.isfinite(err), err, 0), fmt="o-" if numeric else "o",
                        color=color, capsize=3, label=label or "mean", zorder=4)
        if not numeric:
            ax.set_xticks(range(len(x_values)))
            ax.set_xticklabels([value_text(v) for v in x_values], rotation=15 if len(x_values) > 4 else 0)
            ax.set_xlim(-0.5, len(x_values) - 0.5)
        ax.set_xlabel(x_key or "")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if len(lines) > 1 or companion is not None:
            handles, labels = ax.get_legend_handles_labels()
            if companion is not None:
                handles.append(ax.plot([], [], "^", mfc="none", color="0.3")[0])
                labels.append(f"{companion} where {metric} is empty (lower bound)")
            ax.legend(handles, labels, fontsize=8, loc="best")
    bars = f"bars {lo_name}..{hi_name}" if lo_name else "bars +-1 std"
    axes[0, 0].set_title(f"{spec.name}: {plan.base.name}, {spec.engine} engine, {len(plan.seeds)} seeds per point "
                         f"(mean, {bars}, dots = seeds) [SIMULATED]", fontsize=10)
    return png_bytes(fig, "stimrig sweep")
