"""A scope capture: samples as the instrument sent them, plus the scaling that makes them physical."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Capture:
    """One channel's waveform record.

    ``samples`` are kept as read (uint8 / uint16 codes for BYTE / WORD, float for ASCii) so that the
    analysis can work on the compact raw codes. Physical value (volts at the probe tip, after the
    scope's probe-attenuation setting)::

        volts = (samples - y_reference) * y_increment + y_origin
        time  = x_origin_s + index * x_increment_s          (time 0 = trigger instant)
    """

    samples: np.ndarray
    x_increment_s: float
    x_origin_s: float
    y_increment_V: float
    y_origin_V: float
    y_reference: float
    channel: int
    instrument: str
    code_range: tuple[int, int] | None = None  # (min, max) code of the ADC; None for ASCii data
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.samples.size)

    @property
    def gain(self) -> float:
        """volts = samples * gain + offset."""
        return self.y_increment_V

    @property
    def offset(self) -> float:
        return self.y_origin_V - self.y_reference * self.y_increment_V

    def volts(self) -> np.ndarray:
        return (self.samples.astype(np.float64) * self.gain + self.offset).astype(np.float64)

    def times(self) -> np.ndarray:
        return self.x_origin_s + np.arange(self.n, dtype=np.float64) * self.x_increment_s

    @property
    def duration_s(self) -> float:
        return self.n * self.x_increment_s

    def clipped_fraction(self) -> float:
        """Share of samples at the ADC's end codes: clipped data cannot prove an amplitude."""
        if self.code_range is None or self.n == 0:
            return 0.0
        lo, hi = self.code_range
        s = self.samples
        return float(np.count_nonzero((s <= lo) | (s >= hi))) / self.n
