"""Capture evidence: compressed raw data and a labelled PNG plot, saved with the results and
attached to the allure results."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.capture import Capture
from rig.results import SIMULATED_MARK, ResultsLog

PLOT_POINTS = 2000  # min/max pairs: two per pixel column of the 9-inch, 100 dpi plot




def capture_npz(capture: Capture, *, simulated: bool) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        simulated=simulated,
        instrument=capture.instrument,
        samples=capture.samples,
        x_increment_s=capture.x_increment_s,
        x_origin_s=capture.x_origin_s,
        y_increment_V=capture.y_increment_V,
        y_origin_V=capture.y_origin_V,
        y_reference=capture.y_reference,
        channel=capture.channel,
    )
    return buf.getvalue()


def _envelope(t: np.ndarray, y: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max decimation so that narrow pulses stay visible in a long record."""
    if y.size <= points:
        return t, y
    step = y.size // (points // 2)
    n = (y.size // step) * step
    blocks = y[:n].reshape(-1, step)
    tb = t[:n:step]
    lo, hi = blocks.min(axis=1), blocks.max(axis=1)
    return np.repeat(tb, 2), np.column_stack([lo, hi]).ravel()


def capture_png(
    capture: Capture, title: str, labels: dict[str, Any], *, simulated: bool, scale: float = 1.0, unit: str = "V"
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, y = _envelope(capture.times(), capture.volts() * scale, PLOT_POINTS)
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    span = capture.duration_s
    tscale, tunit = (1e3, "ms") if span >= 2e-3 else (1e6, "us")
    ax.plot(t * tscale, y, lw=0.8, color="tab:blue")
    ax.axhline(0.0, color="0.5", lw=0.6, ls="--", label="baseline (0)")
    ax.set_xlabel(f"time from trigger ({tunit})")
    ax.set_ylabel(unit)
    ax.set_title(title, fontsize=10)
    if simulated:
        ax.text(0.5, 0.5, "SIMULATED", transform=ax.transAxes, ha="center", va="center", fontsize=44,
                color="tab:red", alpha=0.15, rotation=20)
        fig.text(0.01, 0.01, SIMULATED_MARK, color="tab:red", fontsize=8)
    ax.grid(True, alpha=0.3)
    text = "\n".join(f"{k}: {v}" for k, v in labels.items())
    ax.text(1.01, 1.0, text, transform=ax.transAxes, va="top", fontsize=7, family="monospace")
    fig.subplots_adjust(left=0.08, right=0.66, top=0.9, bottom=0.13)  # fixed: no layout pass (a second draw)
    buf = io.BytesIO()
    metadata = {"Software": "stimrig", "Title": title,
                "Description": SIMULATED_MARK if simulated else "measured on a real bench"}
    fig.savefig(buf, format="png", metadata=metadata)
    plt.close(fig)
    return buf.getvalue()


@dataclass(frozen=True)
class CaptureEvidence:
    """A capture rendered once as evidence: raw data (.npz) and a labelled plot (.png)."""

    name: str
    npz: bytes
    png: bytes

    @classmethod
    def render(
        cls,
        capture: Capture,
        name: str,
        title: str,
        labels: dict[str, Any],
        *,
        simulated: bool,
        scale: float = 1.0,
        unit: str = "V",
    ) -> CaptureEvidence:
        png = capture_png(capture, title, labels, simulated=simulated, scale=scale, unit=unit)
        return cls(name, capture_npz(capture, simulated=simulated), png)

    def save(self, log: ResultsLog, folder: str = "captures") -> None:
        """Write the raw capture and its plot into the run's bundle (once), each recorded with its
        SHA-256 in the results chain as it is written."""
        for suffix, data in ((".npz", self.npz), (".png", self.png)):
            relative = f"{folder}/{self.name}{suffix}"
            if not (log.directory / relative).exists():
                log.save_file(relative, data, evidence=self.name)

    def attach(self) -> None:
        import allure

        allure.attach(self.npz, name=f"{self.name} (raw capture, npz)", extension="npz")
        allure.attach(self.png, name=f"{self.name} (plot)", attachment_type=allure.attachment_type.PNG)
