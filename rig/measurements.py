"""Measurements declared with units and limits, kept apart from how they are recorded.

A test states what it measures (name, unit, limits, where the limits come from) and hands in a
value; the verdict follows from the declaration alone. NaN or infinite values never pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PASS = "PASS"
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

    def verdict(self, value: float) -> Verdict:
        if not isinstance(value, int | float) or not math.isfinite(value):
            return Verdict.FAIL
        if self.low is not None and value < self.low:
            return Verdict.FAIL
        if self.high is not None and value > self.high:
            return Verdict.FAIL
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

    def describe(self) -> str:
        m = self.measurement
        return f"{m.name} = {self.value:.6g} {m.unit}, limits {m.limits_text()}: {self.verdict.value}"

    def record(self) -> dict[str, Any]:
        value: float | None = self.value if math.isfinite(self.value) else None
        return {
            "measurement": asdict(self.measurement),
            "value": value,
            "verdict": self.verdict.value,
            "context": self.context,
        }


class MeasurementSet:
    """The measurements one test took, in order."""

    def __init__(self) -> None:
        self.values: list[MeasuredValue] = []

    def take(self, measurement: Measurement, value: float, **context: Any) -> MeasuredValue:
        mv = MeasuredValue(measurement, float(value), measurement.verdict(float(value)), dict(context))
        self.values.append(mv)
        return mv

    @property
    def failures(self) -> list[MeasuredValue]:
        return [v for v in self.values if v.verdict is Verdict.FAIL]
