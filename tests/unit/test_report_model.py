"""The run verdict a report states, from the records alone."""

from __future__ import annotations

from typing import Any

import pytest

from rig.report.model import build_model


def records(*, simulated: bool = True, overdue: bool = False, verdicts: tuple[str, ...] = ("PASS",),
            ended: bool = True, exit_status: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"kind": "run_start", "simulated": simulated, "run_id": "r",
                                  "scope_calibration": {"overdue": overdue, "due_on": "2026-01-01"}}]
    for n, verdict in enumerate(verdicts):
        out.append({"kind": "test_result", "test": f"t{n}", "phase": "call", "verdict": verdict,
                    "requirements": ["REQ-A"]})
    if ended:
        out.append({"kind": "run_end", "exit_status": exit_status})
    return out


@pytest.mark.parametrize(("kwargs", "uncovered", "expected"), [
    ({}, 0, "PASS"),
    ({"verdicts": ("PASS", "MARGINAL")}, 0, "MARGINAL"),
    ({"verdicts": ("PASS", "MARGINAL")}, 3, "NOT COVERED"),
    ({"verdicts": ("PASS", "FAIL", "MARGINAL")}, 0, "FAIL"),
    ({"verdicts": ("ERROR",)}, 0, "FAIL"),
    ({"exit_status": 2}, 0, "FAIL"),  # interrupted
    ({"ended": False}, 0, "INCOMPLETE"),
    ({"verdicts": ("SKIPPED",)}, 0, "NO RESULT"),
    ({"simulated": False, "overdue": True}, 0, "NON-CONFORMING"),
    ({"simulated": True, "overdue": True}, 0, "PASS"),  # an emulated scope has no calibration to lapse
])
def test_the_run_verdict(kwargs: dict[str, Any], uncovered: int, expected: str) -> None:
    assert build_model(records(**kwargs)).overall(uncovered=uncovered) == expected


def test_a_teardown_error_after_a_pass_makes_the_test_an_error() -> None:
    recs = records()
    recs.insert(2, {"kind": "test_result", "test": "t0", "phase": "teardown", "verdict": "ERROR"})
    model = build_model(recs)
    assert model.tests["t0"].verdict == "ERROR" and model.overall() == "FAIL"
