"""What a bundle's documents show, read back from its results chain (the single source of truth)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

VERDICT_ORDER = ("FAIL", "ERROR", "MARGINAL", "PASS", "SKIPPED")


@dataclass
class TestEntry:
    nodeid: str
    requirements: list[str] = field(default_factory=list)
    verdict: str = "NOT RUN"
    message: str = ""
    duration_s: float = 0.0
    measurements: list[dict[str, Any]] = field(default_factory=list)
    link_events: list[str] = field(default_factory=list)


@dataclass
class RunModel:
    start: dict[str, Any]
    end: dict[str, Any] | None
    traceability: dict[str, Any] | None
    tests: dict[str, TestEntry]
    tables: dict[str, list[dict[str, Any]]]
    instruments: dict[str, dict[str, Any]]
    evidence_files: list[dict[str, Any]]
    problems: list[str]

    @property
    def simulated(self) -> bool:
        return bool(self.start.get("simulated"))

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for t in self.tests.values():
            counts[t.verdict] += 1
        return dict(counts)

    @property
    def non_conforming(self) -> bool:
        return bool((self.start.get("scope_calibration") or {}).get("overdue")) and not self.simulated

    def overall(self, uncovered: int = 0) -> str:
        """The run's verdict, the first that applies: INCOMPLETE (the run did not end), NON-CONFORMING (a
        real bench's scope past its calibration due date), FAIL (a test failed or errored, or the run was
        interrupted), NO RESULT, NOT COVERED (``uncovered`` requirements no test of this run proved),
        MARGINAL, PASS."""
        if self.end is None:
            return "INCOMPLETE"
        counts = self.verdict_counts()
        if self.non_conforming:
            return "NON-CONFORMING"
        if counts.get("FAIL") or counts.get("ERROR") or self.end.get("exit_status") not in (0, None):
            return "FAIL"
        if not any(counts.get(v) for v in ("PASS", "MARGINAL")):
            return "NO RESULT"
        if uncovered:
            return "NOT COVERED"
        return "MARGINAL" if counts.get("MARGINAL") else "PASS"


def build_model(records: list[dict[str, Any]]) -> RunModel:
    start = records[0] if records and records[0].get("kind") == "run_start" else {}
    model = RunModel(start=start, end=None, traceability=None, tests={}, tables=defaultdict(list), instruments={},
                     evidence_files=[], problems=[])

    def entry(nodeid: str) -> TestEntry:
        if nodeid not in model.tests:
            model.tests[nodeid] = TestEntry(nodeid)
        return model.tests[nodeid]

    for r in records:
        kind = r.get("kind")
        if kind == "traceability":
            model.traceability = r
            for nodeid, ids in (r.get("tests") or {}).items():
                entry(nodeid).requirements = list(ids)
        elif kind == "measurement":
            entry(r["test"]).measurements.append(r)
        elif kind == "test_result":
            t = entry(r["test"])
            t.requirements = r.get("requirements") or t.requirements
            verdict = r.get("verdict") or str(r.get("outcome", "")).upper()
            if r.get("phase") in ("setup", "call") or t.verdict != "FAIL":  # a teardown error after a FAIL stays FAIL
                t.verdict = verdict
            t.message = r.get("message") or t.message
            t.duration_s += float(r.get("duration_s") or 0.0)
        elif kind == "link_event":
            entry(r["test"]).link_events.append(str(r.get("event")))
        elif kind == "table_row":
            model.tables[str(r.get("table"))].append({"test": r.get("test"), **(r.get("row") or {})})
        elif kind == "instrument":
            model.instruments[str(r.get("role"))] = r
        elif kind == "evidence_file":
            model.evidence_files.append(r)
        elif kind == "run_end":
            model.end = r
        elif kind == "document_error":
            model.problems.append(str(r.get("error")))
    model.tables = dict(model.tables)
    return model
