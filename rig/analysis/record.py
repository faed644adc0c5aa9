"""Validation of an analysis input, and turning it so that the positive phase is the raw upper one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.errors import AnalysisError

MIN_SAMPLES = 8


@dataclass(frozen=True)
class Record:
    """Raw samples with ``physical = x * gain + offset`` and ``gain > 0``."""

    x: np.ndarray
    gain: float
    offset: float
    quantum: float  # one code for integer data, 0 for floats (resolution unknown)
    checked_extremes: tuple[float, float] | None  # (min, max), known for floats (checked finite)

    @property
    def n(self) -> int:
        return int(self.x.size)

    def extremes(self) -> tuple[float, float]:
        """(min, max) of the record: one pass each over integer codes, known already for floats."""
        if self.checked_extremes is not None:
            return self.checked_extremes
        return float(self.x.min()), float(self.x.max())


def prepare(samples: np.ndarray, dt_s: float, gain: float, offset: float) -> Record:
    """Check the input and return it as a :class:`Record` (no copy unless the gain is negative)."""
    x = np.asarray(samples)
    if x.dtype.kind not in "uif":
        raise AnalysisError(f"samples have dtype {x.dtype}; expected integer codes or floats")
    if x.ndim != 1:
        raise AnalysisError(f"samples have shape {x.shape}; expected a 1-D record")
    if x.size == 0:
        raise AnalysisError("samples are empty; expected a record holding at least one complete pulse")
    if x.size < MIN_SAMPLES:
        raise AnalysisError(f"record has {x.size} samples; expected at least {MIN_SAMPLES}")
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise AnalysisError(f"sample interval dt_s={dt_s!r}; expected a finite positive number of seconds")
    if not (math.isfinite(gain) and gain != 0 and math.isfinite(offset)):
        raise AnalysisError(f"scaling gain={gain!r}, offset={offset!r}; expected finite values, gain != 0")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if gain < 0:
        x, offset = _negate(x, gain, offset)
        gain = -gain
    if x.dtype.kind in "ui":
        return Record(x, float(gain), float(offset), 1.0, None)
    x_min, x_max = float(x.min()), float(x.max())
    if not (math.isfinite(x_min) and math.isfinite(x_max)):
        raise AnalysisError("samples contain NaN or infinity; expected finite values")
    return Record(x, float(gain), float(offset), 0.0, (x_min, x_max))


def _negate(x: np.ndarray, gain: float, offset: float) -> tuple[np.ndarray, float]:
    """Samples x' with ``x' * (-gain) + offset' == x * gain + offset`` (exact for integer codes)."""
    if x.dtype.kind == "u":
        return np.invert(x), offset + float(np.iinfo(x.dtype).max) * gain  # x = max - x'
    if x.dtype.kind == "i":
        return np.invert(x), offset - gain  # x = -x' - 1
    return np.negative(x), offset
