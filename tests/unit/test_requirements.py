"""Requirement catalogue: the shipped one loads, a broken one fails with ONE line naming file and field,
trace() finds every gap, and the certification tests' markers name only catalogued requirements and
cover all of them (except the output-specification ones another module verifies)."""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config.loader import FIXTURES_DIR
from rig.config.requirements import (
    DEFAULT_REQUIREMENTS,
    TRACE_COLUMNS,
    Requirement,
    RequirementCatalogue,
    base_nodeid,
    load_requirements,
    trace,
    unknown_requirement_message,
)
from rig.errors import FixtureError

REPO = FIXTURES_DIR.parent
CERTIFICATION = REPO / "tests" / "certification"
# verified by tests/certification/test_output_specification.py, which is written separately
OUTPUT_SPECIFICATION_FILE = "test_output_specification.py"
OUTPUT_SPECIFICATION_IDS = frozenset({
    "OUT-SPEC-TABLE", "OUT-TRACINGS", "OUT-LIMIT-RMS", "OUT-LIMIT-ENERGY", "OUT-LIMIT-VPEAK",
    "OUT-DENSITY-CURRENT", "OUT-DENSITY-POWER",
})


def _requirement(rid: str, **changes: Any) -> dict[str, Any]:
    req = {
        "id": rid,
        "title": f"title of {rid}",
        "text": f"{rid} shall hold.",
        "source": "IEC 60601-1 12.4 (standards.md)",
        "acceptance": "measured into 500 ohm, at most the limit",
        "feature": "Safety cutoffs",
        "severity": "critical",
    }
    req.update(changes)
    return req


GOOD: dict[str, Any] = {
    "schema": "stimrig.requirements/1",
    "requirements": [_requirement("SAFE-A"), _requirement("SAFE-B"), _requirement("OUT-C", severity="normal")],
}


def _write(tmp_path: Path, data: Any, name: str = "requirements.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(FixtureError) as info:
        load_requirements(path)
    return str(info.value)


def _assert_one_line(msg: str, path: Path, *expected: str) -> None:
    assert "\n" not in msg and "\r" not in msg, f"message spans several lines: {msg!r}"
    assert str(path) in msg, f"file {path} not named in: {msg}"
    for part in expected:
        assert part in msg, f"{part!r} not in: {msg}"


def _catalogue(tmp_path: Path) -> RequirementCatalogue:
    return load_requirements(_write(tmp_path, GOOD))


# ---- the shipped catalogue ---------------------------------------------------------------------------


def test_shipped_catalogue_loads() -> None:
    cat = load_requirements()
    assert cat.path == DEFAULT_REQUIREMENTS
    assert len(cat) == len(cat.ids) > 0
    assert all(isinstance(r, Requirement) for r in cat)
    assert cat.sha256 == hashlib.sha256(DEFAULT_REQUIREMENTS.read_bytes()).hexdigest()
    assert set(cat.ids) >= OUTPUT_SPECIFICATION_IDS, "IDs test_output_specification.py relies on are missing"


def test_shipped_catalogue_sources_keep_unconfirmed_marks() -> None:
    """No invented clause number: the IEC 60601-2-10 ed.2 output-limit clause is not in standards.md."""
    cat = load_requirements()
    for rid in ("OUT-LIMIT-RMS", "OUT-LIMIT-ENERGY"):
        src = cat[rid].source
        assert "51.104" in src and "no ed.2 clause number" in src, src


def test_catalogue_lookup_and_order(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    assert cat.ids == ("SAFE-A", "SAFE-B", "OUT-C")
    assert [r.id for r in cat] == list(cat.ids)
    assert "SAFE-B" in cat and "SAFE-X" not in cat
    got = cat.get("OUT-C")
    assert got is not None and got.severity == "normal"
    assert cat.get("SAFE-X") is None
    with pytest.raises(KeyError, match="SAFE-X"):
        cat["SAFE-X"]
    assert cat.path == tmp_path / "requirements.yaml"
    assert cat.sha256 == hashlib.sha256(cat.path.read_bytes()).hexdigest()


# ---- refusals: one line naming file, field and expectation -------------------------------------------


def test_duplicate_id_refused_naming_both_positions(tmp_path: Path) -> None:
    data = copy.deepcopy(GOOD)
    data["requirements"][2]["id"] = "SAFE-A"
    path = _write(tmp_path, data)
    _assert_one_line(_refusal(path), path, "requirements[2].id", "'SAFE-A'", "requirements[0].id", "duplicate")


@pytest.mark.parametrize("bad_id", ["safe-a", "SAFEA", "SAFE_A", "SAFE-", "-SAFE-A", "1SAFE-A", "SAFE--A"])
def test_bad_id_pattern_refused(tmp_path: Path, bad_id: str) -> None:
    data = copy.deepcopy(GOOD)
    data["requirements"][1]["id"] = bad_id
    path = _write(tmp_path, data)
    _assert_one_line(_refusal(path), path, "field 'requirements[1].id'", "pattern", repr(bad_id))


@pytest.mark.parametrize("field", ["text", "source", "acceptance", "title"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_text_refused(tmp_path: Path, field: str, blank: str) -> None:
    data = copy.deepcopy(GOOD)
    data["requirements"][1][field] = blank
    path = _write(tmp_path, data)
    _assert_one_line(_refusal(path), path, f"field 'requirements[1].{field}'", "must not be empty")


def test_unknown_severity_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(GOOD)
    data["requirements"][0]["severity"] = "high"
    path = _write(tmp_path, data)
    _assert_one_line(_refusal(path), path, "field 'requirements[0].severity'", "'critical'", "'high'")


def test_unknown_schema_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(GOOD)
    data["schema"] = "stimrig.requirements/2"
    path = _write(tmp_path, data)
    _assert_one_line(_refusal(path), path, "field 'schema'", "'stimrig.requirements/1'")


def test_missing_and_unknown_fields_refused(tmp_path: Path) -> None:
    data = copy.deepcopy(GOOD)
    del data["requirements"][1]["acceptance"]
    path = _write(tmp_path, data, "missing.yaml")
    _assert_one_line(_refusal(path), path, "field 'requirements[1].acceptance' is missing")
    data = copy.deepcopy(GOOD)
    data["requirements"][0]["clause"] = "12.4"
    path = _write(tmp_path, data, "extra.yaml")
    _assert_one_line(_refusal(path), path, "field 'requirements[0].clause' is not a known field")


def test_empty_catalogue_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {"schema": "stimrig.requirements/1", "requirements": []})
    _assert_one_line(_refusal(path), path, "field 'requirements'")


def test_missing_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    _assert_one_line(_refusal(path), path, "file not found")


# ---- trace ---------------------------------------------------------------------------------------------


def test_trace_complete(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    t = trace(cat, {"tests/c/test_a.py::test_a": ["SAFE-A", "OUT-C"], "tests/c/test_b.py::test_b": ["SAFE-B"]})
    assert t.complete
    assert t.uncovered == () and t.untraced_tests == () and not t.unknown
    assert t.tests_for("SAFE-A") == ("tests/c/test_a.py::test_a",)
    assert t.problems() == []


def test_trace_finds_uncovered_untraced_and_unknown(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    t = trace(cat, {
        "tests/c/test_a.py::test_a": ["SAFE-A", "SAFE-NOPE"],
        "tests/c/test_b.py::test_b": [],
    })
    assert not t.complete
    assert t.uncovered == ("SAFE-B", "OUT-C")
    assert t.untraced_tests == ("tests/c/test_b.py::test_b",)
    assert dict(t.unknown) == {"tests/c/test_a.py::test_a": ("SAFE-NOPE",)}
    assert t.tests_for("SAFE-A") == ("tests/c/test_a.py::test_a",)
    assert len(t.problems()) == 4


def test_trace_merges_parametrised_node_ids(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    t = trace(cat, {
        "tests/c/test_a.py::test_a[ch1-min_amplitude]": ["SAFE-A"],
        "tests/c/test_a.py::test_a[ch2-max_amplitude]": ["SAFE-A", "SAFE-B"],
        "tests/c/test_c.py::test_c": ["OUT-C"],
    })
    assert t.complete
    assert t.tests_for("SAFE-A") == ("tests/c/test_a.py::test_a",)
    assert t.tests_for("SAFE-B") == ("tests/c/test_a.py::test_a",)
    assert base_nodeid("tests/x.py::test_y[a-b]") == "tests/x.py::test_y"
    assert base_nodeid("tests/x.py::test_y") == "tests/x.py::test_y"


def test_trace_rows_one_per_requirement_in_file_order(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    t = trace(cat, {"tests/c/test_a.py::test_a": ["SAFE-A"], "tests/c/test_b.py::test_b": ["SAFE-A"]})
    rows = t.rows()
    assert [r.id for r in rows] == ["SAFE-A", "SAFE-B", "OUT-C"]
    assert rows[0].tests == "tests/c/test_a.py::test_a; tests/c/test_b.py::test_b"
    assert rows[1].tests == ""
    assert rows[0].title == "title of SAFE-A" and rows[0].source and rows[0].acceptance
    assert TRACE_COLUMNS == ("id", "title", "source", "acceptance", "tests")


def test_unknown_requirement_message_is_one_line(tmp_path: Path) -> None:
    cat = _catalogue(tmp_path)
    t = trace(cat, {"tests/certification/test_x.py::test_y[ch1]": ["SAFE-FOO"], "tests/c/test_z.py::test_z":
                    ["SAFE-A", "SAFE-BAR", "SAFE-BAZ"]})
    msg = unknown_requirement_message(t)
    _assert_one_line(msg, cat.path, "tests/certification/test_x.py::test_y: requirement 'SAFE-FOO' is not in",
                     "tests/c/test_z.py::test_z: requirements 'SAFE-BAR', 'SAFE-BAZ' are not in",
                     "known: SAFE-A, SAFE-B, OUT-C")
    assert "'SAFE-A'" not in msg
    assert unknown_requirement_message(t.unknown, cat) == msg


def test_unknown_requirement_message_names_the_shipped_file_relative() -> None:
    msg = unknown_requirement_message({"tests/certification/test_x.py::test_y": ["SAFE-FOO"]}, load_requirements())
    assert msg.startswith(
        "tests/certification/test_x.py::test_y: requirement 'SAFE-FOO' is not in fixtures/requirements.yaml (known: "
    ), msg


# ---- the certification suite's markers -----------------------------------------------------------------


def _certification_modules() -> list[Path]:
    return sorted(p for p in CERTIFICATION.glob("test_*.py") if p.name != OUTPUT_SPECIFICATION_FILE)


def _marked_tests() -> dict[str, list[str]]:
    """Test id -> the requirement IDs its @pytest.mark.requirement markers name, for every test function."""
    tests: dict[str, list[str]] = {}
    for path in _certification_modules():
        module = importlib.import_module(f"tests.certification.{path.stem}")
        module_marks = list(getattr(module, "pytestmark", []))
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or func.__module__ != module.__name__:
                continue
            marks = module_marks + list(getattr(func, "pytestmark", []))
            ids = [str(i) for m in marks if m.name == "requirement" for i in m.args]
            tests[f"{path.relative_to(REPO).as_posix()}::{name}"] = ids
    return tests


def test_certification_markers_trace_to_the_catalogue() -> None:
    cat = load_requirements()
    tests = _marked_tests()
    assert len(tests) >= len(_certification_modules()), "no test functions found in tests/certification"
    t = trace(cat, tests)
    assert not t.untraced_tests, f"certification tests naming no requirement: {t.untraced_tests}"
    assert not t.unknown, unknown_requirement_message(t)
    uncovered = [rid for rid in t.uncovered if rid not in OUTPUT_SPECIFICATION_IDS]
    assert not uncovered, f"requirements no certification test verifies: {uncovered}"
