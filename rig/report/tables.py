"""The bundle's tables as rows: traceability matrix and output specification (for CSV and HTML)."""

from __future__ import annotations

import csv
import io
from typing import Any

from rig.config.requirements import RequirementCatalogue, trace
from rig.report.model import VERDICT_ORDER, RunModel
from rig.results import SIMULATED_MARK

TRACE_HEADER = ("requirement", "title", "source", "acceptance", "tests", "verdict", "status")


def worst(verdicts: list[str]) -> str:
    ranked = [v for v in VERDICT_ORDER if v in verdicts]
    return ranked[0] if ranked else "NOT RUN"


def traceability_rows(model: RunModel, catalogue: RequirementCatalogue) -> tuple[list[dict[str, str]], list[str]]:
    """The traceability matrix of this run (rig.config.requirements.trace over the tests it ran), one
    row per requirement with the worst verdict of its tests; and the tests that name no requirement."""
    traced = trace(catalogue, {t.nodeid: t.requirements for t in model.tests.values()})
    rows = []
    for row in traced.rows():
        verdict = worst([t.verdict for t in model.tests.values() if row.id in t.requirements])
        proven = verdict in ("PASS", "MARGINAL")
        status = "NOT COVERED" if not row.tests else ("COVERED" if proven else "NOT PROVEN")
        rows.append({**row._asdict(), "requirement": row.id, "verdict": verdict, "status": status})
    return rows, list(traced.untraced_tests)


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
