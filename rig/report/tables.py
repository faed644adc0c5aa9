"""The bundle's tables as rows: traceability matrix and output specification (for CSV and HTML)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from rig.config.requirements import base_nodeid
from rig.report.model import VERDICT_ORDER, RunModel
from rig.results import SIMULATED_MARK

TRACE_HEADER = ("requirement", "title", "source", "acceptance", "tests", "verdict", "status")


def worst(verdicts: list[str]) -> str:
    ranked = [v for v in VERDICT_ORDER if v in verdicts]
    return ranked[0] if ranked else "NOT RUN"


def traceability_rows(model: RunModel, catalogue: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per requirement of the catalogue: the tests of this run that verify it and their verdict."""
    rows = []
    for req in catalogue:
        tests = model.tests_for(req["id"])
        verdict = worst([t.verdict for t in tests])
        status = "NOT COVERED" if not tests else ("NOT PROVEN" if verdict not in ("PASS", "MARGINAL") else "COVERED")
        rows.append({
            "requirement": req["id"], "title": req["title"], "source": req["source"],
            "acceptance": req["acceptance"], "tests": "; ".join(_grouped(t.nodeid for t in tests)),
            "verdict": verdict, "status": status,
        })
    return rows


def _grouped(nodeids: Iterable[str]) -> list[str]:
    """Test functions with the number of their parametrised cases: ``path::test_x (16 cases)``."""
    counts: dict[str, int] = {}
    for nodeid in nodeids:
        base = base_nodeid(nodeid)
        counts[base] = counts.get(base, 0) + 1
    return [f"{base} ({n} cases)" if n > 1 else base for base, n in counts.items()]


def untraced_tests(model: RunModel) -> list[str]:
    return [t.nodeid for t in model.tests.values() if not t.requirements]


def spec_fields(rows: list[dict[str, Any]]) -> list[str]:
    """Every field of the output specification rows, in first-seen order (test and program first)."""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    first = [f for f in ("program", "mode") if f in fields]
    return first + [f for f in fields if f not in first and f != "test"]


def to_csv(header: list[str] | tuple[str, ...], rows: list[dict[str, Any]], *, simulated: bool) -> bytes:
    buf = io.StringIO()
    if simulated:
        buf.write(f"# {SIMULATED_MARK}\n")
    writer = csv.DictWriter(buf, fieldnames=list(header), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k, "")) for k in header})
    return buf.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
