"""Plots of simulated results: the Agg backend, a SIMULATED watermark on every panel and footer, and
the mark in the PNG's metadata (fleet reports and sweeps)."""

from __future__ import annotations

import io
from typing import Any

from rig.evidence import SIMULATED_MARK


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def watermark(fig: Any) -> None:
    seen: set[tuple[float, ...]] = set()
    for ax in fig.axes:
        where = tuple(round(v, 4) for v in ax.get_position().bounds)
        if where in seen:  # a twin axis: one watermark per panel
            continue
        seen.add(where)
        ax.text(0.5, 0.5, "SIMULATED", transform=ax.transAxes, ha="center", va="center", fontsize=40,
                color="tab:red", alpha=0.15, rotation=20, zorder=0)
    fig.text(0.01, 0.005, SIMULATED_MARK, color="tab:red", fontsize=8)


def png_bytes(fig: Any, software: str) -> bytes:
    """Watermark, lay out, render and close ``fig``; the PNG's metadata carries the SIMULATED mark."""
    watermark(fig)
    fig.tight_layout(rect=(0, 0.025, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Description": SIMULATED_MARK, "Software": software})
    pyplot().close(fig)
    return buf.getvalue()
