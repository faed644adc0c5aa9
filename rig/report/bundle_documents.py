"""Writes the bundle's documents from its results chain, each saved and chained as it is written:

- ``config/``: copies of the bench, device and requirement fixtures the run used;
- ``traceability.csv`` / ``traceability.html``: requirement -> tests -> verdict, gaps shown first;
- ``output_specification.csv`` / ``.html``: the FDA 510(k) output table, one column per program;
- ``run.json``: run ID, times, operator, versions, bench, instruments and calibration, DUT, seeds, verdict;
- ``report.html``: the self-contained report a reviewer reads (prints to PDF; needs only a browser).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rig.config.requirements import RequirementCatalogue, load_requirements
from rig.records.chain import check_chain
from rig.report.model import RunModel, build_model
from rig.report.page import render_report, render_table_page
from rig.report.tables import TRACE_HEADER, spec_fields, to_csv, traceability_rows
from rig.results import SIMULATED_MARK, ResultsLog, utc_now

SPEC_TABLE = "output_specification"


def write_documents(results: ResultsLog, catalogue: RequirementCatalogue | None = None) -> None:
    """``catalogue``: the requirements the run was traced against (default: read the shipped file)."""
    model = build_model(check_chain(results.path).records)
    simulated = results.simulated
    catalogue = catalogue if catalogue is not None else load_requirements()
    _copy_fixtures(results, model)
    trace, untraced = traceability_rows(model, catalogue)
    results.save_file("traceability.csv", to_csv(TRACE_HEADER, trace, simulated=simulated))
    results.save_file("traceability.html", render_table_page(
        "Traceability matrix", list(TRACE_HEADER), trace, model=model,
        notes=[f"{t}: names no requirement" for t in untraced]).encode("utf-8"))
    spec_rows = model.tables.get(SPEC_TABLE, [])
    fields = spec_fields(spec_rows)
    results.save_file(f"{SPEC_TABLE}.csv", to_csv(fields, spec_rows, simulated=simulated))
    results.save_file(f"{SPEC_TABLE}.html", render_table_page(
        "Output specification (FDA PMS 510(k) attachment II)", fields, spec_rows, model=model,
        transpose=True).encode("utf-8"))
    summary = run_summary(model, results)
    summary["verdict"] = model.overall(uncovered=sum(r["status"] != "COVERED" for r in trace))
    summary["requirements_proven"] = {"proven": sum(r["status"] == "COVERED" for r in trace), "of": len(trace)}
    results.save_file("run.json", json.dumps(summary, indent=1, default=str).encode("utf-8"))
    figures = _figures(results.directory, model)
    page = render_report(model, trace=trace, untraced=untraced, spec_fields=fields, spec_rows=spec_rows,
                         figures=figures, run_dir=results.directory.name,
                         bundle_dir=results.directory)
    results.save_file("report.html", page.encode("utf-8"))


def run_summary(model: RunModel, results: ResultsLog) -> dict[str, Any]:
    s = model.start
    out = {
        "schema": "stimrig.run/1",
        "run_id": s.get("run_id"),
        "simulated": results.simulated,
        "utc_start": s.get("utc"),
        "utc_end": (model.end or {}).get("utc") or utc_now(),
        "verdict": model.overall(),
        "tests": model.verdict_counts(),
        "operator": s.get("operator"),
        "host": s.get("host"),
        "command": s.get("command"),
        "stimrig_version": s.get("stimrig_version"),
        "git": s.get("git"),
        "python": s.get("python"),
        "packages": s.get("packages"),
        "target": s.get("target"),
        "bench": s.get("bench"),
        "bench_file": s.get("bench_file"),
        "fixtures": s.get("fixtures"),
        "seeds": {"bench": s.get("seed"), "random_streams": (s.get("virtual_bench") or {}).get("random_streams")},
        "fault": s.get("fault"),
        "scope_accuracy": s.get("scope_accuracy"),
        "scope_calibration": s.get("scope_calibration"),
        "instruments": model.instruments,
        "dut": model.instruments.get("dut"),
    }
    if results.simulated:
        out["mark"] = SIMULATED_MARK
    return out


def _copy_fixtures(results: ResultsLog, model: RunModel) -> None:
    from rig.records.audit import REPO_ROOT

    for role, info in (model.start.get("fixtures") or {}).items():
        if role not in ("bench", "device", "requirements"):
            continue
        path = Path(info["path"])
        path = path if path.is_absolute() else REPO_ROOT / path
        if path.is_file():
            results.save_file(f"config/{role}-{path.name}", path.read_bytes(), fixture=role)


def _figures(run_dir: Path, model: RunModel) -> list[dict[str, str]]:
    """The waveform tracings of the output specification (labelled PNGs saved with the run)."""
    out = []
    for ev in model.evidence_files:
        rel = str(ev.get("path", ""))
        if rel.endswith(".png") and "-spec-" in rel:
            out.append({"path": rel, "sha256": str(ev.get("sha256"))})
    return out
