"""The measurement record of one analysed pulse train."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

#: The per-pulse array fields of :class:`PulseTrain`, all of length ``n_pulses``.
PER_PULSE_FIELDS = (
    "start_s",
    "phase1_duration_s",
    "gap_s",
    "phase2_duration_s",
    "phase1_amplitude",
    "phase2_amplitude",
    "phase1_integral",
    "phase2_integral",
    "net_integral",
    "square_integral",
    "rise_time_s",
    "overshoot",
)


@dataclass(frozen=True, eq=False)
class PulseTrain:
    """IEEE Std 181-2011 measurements of a biphasic (or monophasic) pulse train.

    Values are physical ("unit" = whatever ``samples * gain + offset`` is, usually volts), times in
    seconds. Arrays are float64, read-only, one entry per *complete* pulse in record order. Phase-2
    entries are NaN for a pulse without a negative phase; ``net_integral`` then equals the phase-1
    integral (a monophasic pulse's net charge is its phase charge).
    """

    baseline: float  # baseline state level
    high_level: float  # positive-phase state level
    low_level: float  # negative-phase state level, NaN if the record has none
    start_s: np.ndarray  # phase-1 leading-edge 50 % instant
    phase1_duration_s: np.ndarray  # between the phase-1 50 % instants
    gap_s: np.ndarray  # phase-1 trailing 50 % instant to phase-2 leading 50 % instant
    phase2_duration_s: np.ndarray  # between the phase-2 50 % instants
    phase1_amplitude: np.ndarray  # plateau minus baseline, > 0
    phase2_amplitude: np.ndarray  # baseline minus plateau, > 0
    phase1_integral: np.ndarray  # integral of (x - baseline) dt over phase 1, unit*s, > 0
    phase2_integral: np.ndarray  # same over phase 2, < 0
    net_integral: np.ndarray  # phase1_integral + phase2_integral
    square_integral: np.ndarray  # integral of (x - baseline)^2 dt over the pulse, unit^2*s
    rise_time_s: np.ndarray  # 10-90 % transition duration of the phase-1 leading edge
    overshoot: np.ndarray  # phase-1 leading-edge overshoot, fraction of the phase-1 amplitude
    periods_s: np.ndarray  # differences of start_s, n_pulses - 1 entries
    rms: float  # rms of (x - baseline) over the whole record, unit
    dt_s: float
    n_samples: int
    noise_rms: float = math.nan  # rms of the baseline noise (quantisation included), unit

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = np.array(value, dtype=np.float64)
                value.setflags(write=False)
                object.__setattr__(self, f.name, value)
        lengths = {getattr(self, name).size for name in PER_PULSE_FIELDS}
        if len(lengths) != 1:
            raise ValueError(f"per-pulse arrays differ in length: {sorted(lengths)}")

    @property
    def n_pulses(self) -> int:
        return int(self.start_s.size)

    @property
    def frequency_Hz(self) -> float:
        """1 / mean period; NaN with fewer than two pulses."""
        if self.periods_s.size == 0:
            return math.nan
        return float(1.0 / np.mean(self.periods_s))

    @property
    def duration_s(self) -> float:
        return self.n_samples * self.dt_s
