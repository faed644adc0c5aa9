"""Requirement catalogue (fixtures/requirements.yaml) and its traceability to the certification tests.

Each requirement names its source (standard clause, guidance field or device specification) and how a
measurement proves it. Certification tests name the requirements they verify with
``@pytest.mark.requirement("ID", ...)``; :func:`trace` joins the two and finds the gaps: requirements
no test verifies, tests naming no requirement, and tests naming IDs the catalogue does not have.

A broken catalogue fails with one line naming the file, the field and what was expected, e.g.::

    fixtures/requirements.yaml: field 'requirements[3].id': String should match pattern ... (got 'safe_x')
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rig.config.loader import FIXTURES_DIR, load_yaml_model
from rig.errors import FixtureError

DEFAULT_REQUIREMENTS = FIXTURES_DIR / "requirements.yaml"
ID_PATTERN = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
Severity = Literal["blocker", "critical", "normal", "minor", "trivial"]
_PARAMETRISATION = re.compile(r"\[.*\]$")
KNOWN_SHOWN = 8  # how many known IDs an unknown-requirement message lists


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirement(_Strict):
    id: str = Field(pattern=ID_PATTERN, description="short upper-case ID with hyphens, e.g. SAFE-WATCHDOG")
    title: str = Field(description="a few words")
    text: str = Field(description="the requirement in one or two sentences (shall ...)")
    source: str = Field(description="standard clause, guidance field or device specification (fixture field)")
    acceptance: str = Field(description="what is measured, on which load, and the limit")
    feature: str = Field(description="grouping, used as the allure 'feature' label")
    severity: Severity = Field(description="allure severity")

    @field_validator("title", "text", "source", "acceptance", "feature")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty (expected text)")
        return value


class RequirementsFile(_Strict):
    """The file as written: schema tag and the requirements in order."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["stimrig.requirements/1"] = Field(alias="schema")
    requirements: tuple[Requirement, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> RequirementsFile:
        first: dict[str, int] = {}
        for i, req in enumerate(self.requirements):
            if req.id in first:
                raise ValueError(
                    f"field 'requirements[{i}].id': duplicate requirement id {req.id!r} "
                    f"(first at requirements[{first[req.id]}].id); expected every id once"
                )
            first[req.id] = i
        return self


def display_path(path: Path | str) -> str:
    """``path`` relative to the repository root when it lies inside it (fixtures/requirements.yaml)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(FIXTURES_DIR.parent))
    except (OSError, ValueError):
        return str(p)


class RequirementCatalogue:
    """The loaded catalogue: requirements in file order, looked up by ID."""

    def __init__(self, path: Path, requirements: Sequence[Requirement], sha256: str) -> None:
        self.path = path
        self.sha256 = sha256
        self.requirements: tuple[Requirement, ...] = tuple(requirements)
        self._by_id = {r.id: r for r in self.requirements}

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.requirements)

    def get(self, req_id: str) -> Requirement | None:
        return self._by_id.get(req_id)

    def __getitem__(self, req_id: str) -> Requirement:
        try:
            return self._by_id[req_id]
        except KeyError:
            raise KeyError(f"requirement {req_id!r} is not in {display_path(self.path)}") from None

    def __contains__(self, req_id: object) -> bool:
        return req_id in self._by_id

    def __iter__(self) -> Iterator[Requirement]:
        return iter(self.requirements)

    def __len__(self) -> int:
        return len(self.requirements)

    def __repr__(self) -> str:
        return f"RequirementCatalogue({display_path(self.path)!r}, {len(self)} requirements)"


def load_requirements(path: Path | str | None = None) -> RequirementCatalogue:
    """Load and validate the catalogue (default: fixtures/requirements.yaml); FixtureError with one line
    naming the file and the field otherwise."""
    p = Path(path) if path is not None else DEFAULT_REQUIREMENTS
    parsed = load_yaml_model(p, RequirementsFile)
    try:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError as exc:
        raise FixtureError(f"{p}: cannot be read: {exc}") from None
    return RequirementCatalogue(p, parsed.requirements, digest)


# ---- traceability ---------------------------------------------------------------------------------


def base_nodeid(nodeid: str) -> str:
    """A pytest node id without its parametrisation: ``...::test_x[ch1-min]`` -> ``...::test_x``."""
    return _PARAMETRISATION.sub("", nodeid)


class TraceRow(NamedTuple):
    """One requirement as the traceability matrix shows it (CSV / HTML)."""

    id: str
    title: str
    source: str
    acceptance: str
    tests: str  # the verifying tests, joined with "; "; empty: not verified


TRACE_COLUMNS = TraceRow._fields


@dataclass(frozen=True)
class Traceability:
    """Which tests verify which requirement, and the gaps in both directions."""

    catalogue: RequirementCatalogue
    verified_by: Mapping[str, tuple[str, ...]]  # requirement id -> tests, for every requirement
    uncovered: tuple[str, ...]  # requirement ids no test verifies, in file order
    untraced_tests: tuple[str, ...]  # tests naming no requirement
    unknown: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # test -> ids not in the catalogue

    @property
    def complete(self) -> bool:
        return not self.uncovered and not self.untraced_tests and not self.unknown

    def tests_for(self, req_id: str) -> tuple[str, ...]:
        return self.verified_by.get(req_id, ())

    def rows(self) -> list[TraceRow]:
        return [
            TraceRow(r.id, r.title, r.source, r.acceptance, "; ".join(self.verified_by.get(r.id, ())))
            for r in self.catalogue
        ]

    def problems(self) -> list[str]:
        """One line per gap; empty when complete."""
        lines = [f"requirement {rid!r} is verified by no test" for rid in self.uncovered]
        lines += [f"{t}: names no requirement (expected @pytest.mark.requirement(\"ID\", ...))"
                  for t in self.untraced_tests]
        if self.unknown:
            lines.append(unknown_requirement_message(self))
        return lines


def trace(catalogue: RequirementCatalogue, tests: Mapping[str, Sequence[str]]) -> Traceability:
    """Join the catalogue with ``tests`` (test id -> the requirement ids its marker names).

    Test ids may carry a parametrisation (``[ch1-min_amplitude]``); it is dropped and the ids of the
    variants are merged. Tests are listed in the order first given."""
    merged: dict[str, list[str]] = {}
    for nodeid, ids in tests.items():
        listed = merged.setdefault(base_nodeid(nodeid), [])
        listed.extend(i for i in ids if i not in listed)
    verified: dict[str, list[str]] = {r.id: [] for r in catalogue}
    unknown: dict[str, tuple[str, ...]] = {}
    for tid, ids in merged.items():
        for rid in ids:
            if rid in verified:
                verified[rid].append(tid)
        missing = tuple(rid for rid in ids if rid not in catalogue)
        if missing:
            unknown[tid] = missing
    return Traceability(
        catalogue=catalogue,
        verified_by={rid: tuple(ts) for rid, ts in verified.items()},
        uncovered=tuple(rid for rid, ts in verified.items() if not ts),
        untraced_tests=tuple(tid for tid, ids in merged.items() if not ids),
        unknown=unknown,
    )


def unknown_requirement_message(
    unknown: Traceability | Mapping[str, Sequence[str]], catalogue: RequirementCatalogue | None = None
) -> str:
    """One line naming each test, the IDs it names that the catalogue lacks, the catalogue file and the
    first few IDs it does have. ``unknown`` is a Traceability or its ``unknown`` mapping (then pass the
    catalogue to have its file and IDs named; without it the default file is named)."""
    if isinstance(unknown, Traceability):
        catalogue = catalogue or unknown.catalogue
        unknown = unknown.unknown
    where = display_path(catalogue.path if catalogue is not None else DEFAULT_REQUIREMENTS)
    parts = []
    for tid, ids in unknown.items():
        quoted = ", ".join(repr(i) for i in ids)
        what = f"requirement {quoted} is" if len(ids) == 1 else f"requirements {quoted} are"
        parts.append(f"{tid}: {what} not in {where}")
    line = "; ".join(parts) if parts else f"no unknown requirement (catalogue {where})"
    if catalogue is not None:
        known = list(catalogue.ids)
        shown = ", ".join(known[:KNOWN_SHOWN])
        more = f", ... {len(known) - KNOWN_SHOWN} more" if len(known) > KNOWN_SHOWN else ""
        line += f" (known: {shown}{more})"
    return line
