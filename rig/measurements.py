"""Measurements declared with units and limits, kept apart from how they are recorded.

A test states what it measures (name, unit, limits, where the limits come from) and hands in a
value; the verdict follows from the declaration and the measurement's expanded uncertainty U
(rig.uncertainty, from the bench's instrument accuracy), guard-banded:

- FAIL: outside the limits (or NaN / infinite: never passes);
- MARGINAL: inside the limits but within U of one, so the instrument cannot show it conforms;
- PASS: inside the limits by more than U.

As in OpenHTF, a MARGINAL measurement does not fail its test; it is reported as MARGINAL everywhere
(records, summary, report), and a run with one is not a clean PASS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PASS = "PASS"
    MARGINAL = "MARGINAL"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Measurement:
    name: str
    unit: str
    low: float | None = None
    high: float | None = None
    nominal: float | None = None
    source: str = ""  # which standard clause / device specification the limits stand for
    description: str = ""
    requirement: str = ""  # its requirement ID (fixtures/requirements.yaml); "": the test's requirement marker

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError(f"measurement {self.name!r} declares no limit: it could never fail")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"measurement {self.name!r}: low {self.low} > high {self.high}")

    @classmethod
    def around(cls, name: str, unit: str, nominal: float, band: float, **kw: Any) -> Measurement:
        return cls(name, unit, nominal - band, nominal + band, nominal=nominal, **kw)

    def verdict(self, value: float, uncertainty: float = 0.0) -> Verdict:
        """FAIL outside the limits, MARGINAL within ``uncertainty`` (expanded, same unit) inside one."""
        if not isinstance(value, int | float) or not math.isfinite(value):
            return Verdict.FAIL
        if self.low is not None and value < self.low:
            return Verdict.FAIL
        if self.high is not None and value > self.high:
            return Verdict.FAIL
        u = abs(uncertainty) if math.isfinite(uncertainty) else math.inf
        if (self.low is not None and value < self.low + u) or (self.high is not None and value > self.high - u):
            return Verdict.MARGINAL
        return Verdict.PASS

    def limits_text(self) -> str:
        if self.low is not None and self.high is not None:
            return f"[{self.low:.6g}, {self.high:.6g}] {self.unit}"
        if self.low is not None:
            return f">= {self.low:.6g} {self.unit}"
        return f"<= {self.high:.6g} {self.unit}"


@dataclass(frozen=True)
class MeasuredValue:
    measurement: Measurement
    value: float
    verdict: Verdict
    context: dict[str, Any] = field(default_factory=dict)
    uncertainty: float = 0.0  # expanded uncertainty U (k=2), same unit

    def describe(self) -> str:
        m = self.measurement
        text = f"{m.name} = {self.value:.6g} {m.unit}, limits {m.limits_text()}: {self.verdict.value}"
        if self.verdict is Verdict.MARGINAL:
            text += f" (within the expanded uncertainty U = {self.uncertainty:.2g} {m.unit} of a limit)"
        return text

    def record(self) -> dict[str, Any]:
        value: float | None = self.value if math.isfinite(self.value) else None
        return {
            "measurement": asdict(self.measurement),
            "value": value,
            "verdict": self.verdict.value,
            "uncertainty": self.uncertainty,
            "context": self.context,
        }


class MeasurementSet:
    """The measurements one test took, in order."""

    def __init__(self) -> None:
        self.values: list[MeasuredValue] = []

    def take(self, measurement: Measurement, value: float, uncertainty: float = 0.0, **context: Any) -> MeasuredValue:
        verdict = measurement.verdict(float(value), uncertainty)
        mv = MeasuredValue(measurement, float(value), verdict, dict(context), uncertainty)
        self.values.append(mv)
        return mv

    @property
    def failures(self) -> list[MeasuredValue]:
        return [v for v in self.values if v.verdict is Verdict.FAIL]

    @property
    def marginal(self) -> list[MeasuredValue]:
        return [v for v in self.values if v.verdict is Verdict.MARGINAL]
