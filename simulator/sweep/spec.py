"""The sweep spec fixture (``stimrig.sweep/1``): a base scenario, seeds, a grid of scenario parameters, metrics.

``load_sweep_spec()`` validates on load and fails with ONE FixtureError line naming the file and the field (via
rig.config.loader). Whether a grid key names a real scenario field, and whether every grid point gives a valid
scenario, is checked when the sweep is planned (``simulator.sweep.plan``), also in one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from rig.config.loader import load_yaml_model
from simulator.sweep.metrics import DEFAULT_HOLD_LEVEL, METRICS

SCHEMA = "stimrig.sweep/1"
SEED_LIMIT = 2**63
"""Seeds are 0 <= seed < 2^63, as a scenario's."""
MAX_SEEDS = 100_000
MAX_TASKS = 1_000_000

PARAM_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+))*$")
RESERVED_PARAMS = {
    "schema": "the scenario schema is fixed",
    "name": "the scenario name is fixed",
    "seed": "seeds come from the sweep's 'seeds'",
    "link.fixture": "the link fixture is fixed by the base scenario",
}

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None
ParamValue = Scalar | list[Any]
"""A value given to one scenario field: a scalar, or a list (e.g. waypoints); the scenario schema checks it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def expand_seeds(base: int, count: int) -> list[int]:
    """``count`` seeds derived from ``base``: SeedSequence(base) words, shifted into 0 <= seed < 2^63.

    Deterministic and prefix-stable (the first k seeds of count n are the seeds of count k), and two sweeps with
    nearby bases (100 and 101) do not share seeds the way base + i would.
    """
    if not 0 <= base < SEED_LIMIT:
        raise ValueError(f"seed base must be 0 <= base < 2^63, got {base}")
    if count < 1:
        raise ValueError(f"seed count must be at least 1, got {count}")
    words = np.random.SeedSequence(base).generate_state(count, dtype=np.uint64)
    return [int(w) >> 1 for w in words]


class Seeds(_Strict):
    """Either ``values`` (explicit; a bare YAML list means this) or ``base`` + ``count`` (expanded)."""

    values: list[int] | None = Field(default=None, min_length=1, max_length=MAX_SEEDS)
    base: int | None = Field(default=None, ge=0, lt=SEED_LIMIT)
    count: int | None = Field(default=None, ge=1, le=MAX_SEEDS)

    @field_validator("values")
    @classmethod
    def _range_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        for s in v:
            if not 0 <= s < SEED_LIMIT:
                raise ValueError(f"seed {s} is outside 0 <= seed < 2^63")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"duplicate seed(s) {', '.join(map(str, dup))}: each seed once")
        return v

    @model_validator(mode="after")
    def _one_form(self) -> Seeds:
        explicit = self.values is not None
        derived = self.base is not None or self.count is not None
        if explicit == derived:
            raise ValueError("give either a list of seeds ('values', or a bare list) or 'base' and 'count'")
        if derived and (self.base is None or self.count is None):
            raise ValueError("derived seeds need both 'base' and 'count'")
        return self

    def expand(self) -> list[int]:
        if self.values is not None:
            return list(self.values)
        assert self.base is not None and self.count is not None  # checked by _one_form
        return expand_seeds(self.base, self.count)


def _check_param(key: str) -> str:
    if not PARAM_PATTERN.match(key):
        raise ValueError(f"{key!r} is not a scenario field path (expected dotted names, e.g. link.environment or "
                         f"patients.0.path.speed_m_s)")
    root = key.split(".")[0]
    reason = RESERVED_PARAMS.get(key) or (RESERVED_PARAMS.get(root) if root in ("schema", "name", "seed") else None)
    if reason:
        raise ValueError(f"{key!r} cannot be varied: {reason}")
    return key


class PlotSpec(_Strict):
    x: str | None = Field(default=None, description="grid key along x (default: the first grid key)")
    series: str | None = Field(default=None, description="grid key drawn as separate lines (default: the second)")
    metrics: list[str] | None = Field(default=None, min_length=1, description="one panel each (default: the first)")


class SweepSpec(_Strict):
    schema_: Literal["stimrig.sweep/1"] = Field(alias="schema")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    scenario: str = Field(min_length=1, description="scenario YAML: relative to this file, the cwd, the repo, or a "
                                                     "name from fixtures/scenarios")
    engine: Literal["fast", "reference"] = "fast"
    devices: int | None = Field(default=None, ge=1, description="simulate only the first N devices")
    seeds: Seeds
    set: dict[str, ParamValue] = Field(default_factory=dict, description="changes applied to every run")
    grid: dict[str, list[ParamValue]] = Field(default_factory=dict, description="the product of these is swept")
    metrics: list[str] = Field(min_length=1)
    hold_level: float = Field(default=DEFAULT_HOLD_LEVEL, gt=0, lt=1, description="for hold_distance_m")
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.5, 0.95], max_length=9)
    plot: PlotSpec = Field(default_factory=PlotSpec)

    @field_validator("seeds", mode="before")
    @classmethod
    def _bare_list(cls, v: Any) -> Any:
        return {"values": v} if isinstance(v, list) else v

    @field_validator("set")
    @classmethod
    def _set_keys(cls, v: dict[str, ParamValue]) -> dict[str, ParamValue]:
        for key in v:
            _check_param(key)
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[ParamValue]]) -> dict[str, list[ParamValue]]:
        for key, values in v.items():
            _check_param(key)
            if not values:
                raise ValueError(f"grid {key!r} has no values (expected a non-empty list)")
            seen: list[str] = []
            for value in values:
                text = repr(value)
                if text in seen:
                    raise ValueError(f"grid {key!r} lists {value!r} twice")
                seen.append(text)
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for m in v:
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r} (expected one of: {', '.join(METRICS)})")
        if len(set(v)) != len(v):
            raise ValueError("a metric is listed twice")
        return v

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v: list[float]) -> list[float]:
        for q in v:
            if not 0 <= q <= 1:
                raise ValueError(f"quantile {q:g} is outside 0..1")
        if len(set(v)) != len(v):
            raise ValueError("a quantile is listed twice")
        return sorted(v)

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        both = sorted(set(self.set) & set(self.grid))
        if both:
            raise ValueError(f"{', '.join(both)}: given in both 'set' and 'grid' (give each field in one of them)")
        for key, axis in (("plot.x", self.plot.x), ("plot.series", self.plot.series)):
            if axis is not None and axis not in self.grid:
                raise ValueError(f"{key} {axis!r} is not a grid key (grid: {', '.join(self.grid) or 'empty'})")
        if self.plot.x is not None and self.plot.x == self.plot.series:
            raise ValueError("plot.x and plot.series must be different grid keys")
        for m in self.plot.metrics or []:
            if m not in self.metrics:
                raise ValueError(f"plot.metrics: {m!r} is not one of this sweep's metrics ({', '.join(self.metrics)})")
        if self.n_tasks > MAX_TASKS:
            raise ValueError(f"{self.n_points} grid points x {self.n_seeds} seeds = {self.n_tasks} runs; "
                             f"at most {MAX_TASKS}")
        return self

    # ---- derived -----------------------------------------------------------------------------------

    @property
    def n_points(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    @property
    def n_seeds(self) -> int:
        if self.seeds.values is not None:
            return len(self.seeds.values)
        return self.seeds.count or 0

    @property
    def n_tasks(self) -> int:
        return self.n_points * self.n_seeds

    @property
    def plot_x(self) -> str | None:
        return self.plot.x or next(iter(self.grid), None)

    @property
    def plot_series(self) -> str | None:
        if self.plot.series is not None:
            return self.plot.series
        rest = [k for k in self.grid if k != self.plot_x]
        return rest[0] if rest else None

    @property
    def plot_metrics(self) -> list[str]:
        return list(self.plot.metrics or self.metrics[:1])


def load_sweep_spec(path: Path | str) -> SweepSpec:
    """Read and validate a sweep spec; FixtureError (one line naming the file and the field) otherwise."""
    return load_yaml_model(path, SweepSpec)
