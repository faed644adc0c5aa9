"""``stimrig verify BUNDLE``: check an evidence bundle's results chain, manifest and seal.

Outcomes: VERIFIED (complete and intact), INCOMPLETE (its run was killed: no manifest; every record
written so far verifies), FAILED (a file was altered, removed or added, or is corrupt: the message
names it). Never raises for bad content.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rig.records.bundle import MANIFEST, MANIFEST_SCHEMA, PARTIAL_PREFIX, SEAL, bundle_files, canonical_json
from rig.records.chain import ChainReport, check_chain
from rig.results import RESULTS_FILE, RESULTS_SCHEMA, file_sha256

SEAL_PATTERN = re.compile(rb"^([0-9a-f]{64})  manifest\.json\n$")


class Outcome(StrEnum):
    VERIFIED = "VERIFIED"
    INCOMPLETE = "INCOMPLETE"
    FAILED = "FAILED"


EXIT_CODES = {Outcome.VERIFIED: 0, Outcome.FAILED: 1, Outcome.INCOMPLETE: 3}


@dataclass
class BundleReport:
    path: Path
    outcome: Outcome = Outcome.VERIFIED
    problems: list[str] = field(default_factory=list)  # each names the file
    notes: list[str] = field(default_factory=list)
    records: int = 0
    run_id: str | None = None
    simulated: bool | None = None
    files_checked: int = 0

    def fail(self, message: str) -> None:
        self.outcome = Outcome.FAILED
        self.problems.append(message)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


def verify_bundle(path: Path | str) -> BundleReport:
    report = BundleReport(Path(path))
    try:
        _verify(report)
    except OSError as exc:  # unreadable files, permissions, a directory removed meanwhile
        report.fail(f"{exc.filename or report.path}: cannot be read: {exc.strerror or exc}")
    return report


def _verify(report: BundleReport) -> None:
    run_dir = report.path
    if run_dir.is_file() and run_dir.suffix == ".jsonl":  # a chained log on its own, e.g. results/audit.jsonl
        chain = check_chain(run_dir)
        report.records = len(chain.records)
        if not chain.intact:
            report.fail(str(chain.problem))
        elif chain.truncated:
            report.outcome = Outcome.INCOMPLETE
            report.notes.append(chain.truncated)
        else:
            report.notes.append(f"{run_dir.name}: all {len(chain.records)} chained records verify")
        return
    if not run_dir.is_dir():
        report.fail(f"{run_dir}: not a directory (expected an evidence bundle, a run directory under results/, "
                    "or a chained .jsonl log such as results/audit.jsonl)")
        return
    results = run_dir / RESULTS_FILE
    if not results.is_file():
        if (run_dir / MANIFEST).exists() or (run_dir / SEAL).exists():
            report.fail(f"{RESULTS_FILE}: missing (the bundle's manifest lists it)")
        else:
            report.outcome = Outcome.INCOMPLETE
            report.notes.append(f"{RESULTS_FILE}: not there yet: the run stopped before its first record, "
                                f"so there is nothing to verify ({len(bundle_files(run_dir))} other file(s))")
        return
    chain = check_chain(results)
    report.records = len(chain.records)
    if not chain.intact:
        report.fail(str(chain.problem))
    _check_first_record(report, chain)
    recorded = _check_recorded_files(report, run_dir, chain)
    manifest_path, seal_path = run_dir / MANIFEST, run_dir / SEAL
    if not manifest_path.exists() and not seal_path.exists():
        _incomplete(report, run_dir, chain, recorded)
        return
    if chain.truncated:
        report.fail(f"{chain.truncated}, yet the bundle has a manifest: the file was altered after the run")
    _check_manifest(report, run_dir, chain)


def _check_first_record(report: BundleReport, chain: ChainReport) -> None:
    if not chain.records:
        if chain.intact and not chain.truncated:
            report.notes.append(f"{RESULTS_FILE}: empty (the run was killed before its first record)")
        return
    first = chain.records[0]
    schema = first.get("schema")
    if schema != RESULTS_SCHEMA:
        report.fail(f"{RESULTS_FILE} line 1: unknown schema version {schema!r} (this stimrig reads {RESULTS_SCHEMA})")
    report.run_id = first.get("run_id")
    report.simulated = first.get("simulated")


def _check_recorded_files(report: BundleReport, run_dir: Path, chain: ChainReport) -> set[str]:
    """Evidence files chained as they were written: each must still have its recorded SHA-256."""
    recorded: set[str] = set()
    for record in chain.records:
        if record.get("kind") != "evidence_file":
            continue
        rel = str(record.get("path", ""))
        recorded.add(rel)
        target = run_dir / rel
        if not target.is_file():
            report.fail(f"{rel}: missing (recorded in {RESULTS_FILE} record {record.get('seq')})")
        elif file_sha256(target) != record.get("sha256"):
            report.fail(f"{rel}: altered (its SHA-256 differs from {RESULTS_FILE} record {record.get('seq')})")
        else:
            report.files_checked += 1
    return recorded


def _incomplete(report: BundleReport, run_dir: Path, chain: ChainReport, recorded: set[str]) -> None:
    if report.outcome is Outcome.FAILED:
        return
    report.outcome = Outcome.INCOMPLETE
    report.notes.append(f"{MANIFEST}: missing: the run did not finish (killed or crashed); checked what it wrote")
    last = chain.records[-1] if chain.records else None
    if last is not None:
        report.notes.append(f"{RESULTS_FILE}: all {len(chain.records)} records written verify (the last: "
                            f"{last.get('kind')} at {last.get('utc')})")
    if chain.truncated:
        report.notes.append(chain.truncated)
    unrecorded = [rel for rel in bundle_files(run_dir) if rel != RESULTS_FILE and rel not in recorded]
    partial = [rel for rel in unrecorded if Path(rel).name.startswith(PARTIAL_PREFIX)]
    if unrecorded:
        report.notes.append(
            f"{len(unrecorded)} file(s) not covered by a record, so not verifiable (allure results, or written "
            f"when the run stopped){', of them ' + str(len(partial)) + ' partial' if partial else ''}"
        )


def _check_manifest(report: BundleReport, run_dir: Path, chain: ChainReport) -> None:
    manifest_path, seal_path = run_dir / MANIFEST, run_dir / SEAL
    if not manifest_path.is_file():
        report.fail(f"{MANIFEST}: missing, but {SEAL} is there: the manifest was removed")
        return
    data = manifest_path.read_bytes()
    sealed: str | None = None
    if not seal_path.is_file():
        report.fail(f"{SEAL}: missing, but {MANIFEST} is there: the seal was removed")
    else:
        match = SEAL_PATTERN.match(seal_path.read_bytes())
        if match is None:
            report.fail(f"{SEAL}: altered (expected '<sha256>  manifest.json' and a newline)")
        else:
            sealed = match.group(1).decode("ascii")
    try:
        manifest = json.loads(data.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        report.fail(f"{MANIFEST}: corrupt ({exc})")
        return
    if manifest.get("schema") != MANIFEST_SCHEMA:
        report.fail(f"{MANIFEST}: unknown schema version {manifest.get('schema')!r} (this stimrig reads "
                    f"{MANIFEST_SCHEMA})")
        return
    file_problems = _check_listed_files(run_dir, manifest)
    seal_ok = sealed is not None and hashlib.sha256(data).hexdigest() == sealed
    canonical = _canonical(manifest) == data
    if sealed is not None and not seal_ok:
        # one of the two was changed: if the manifest is still what stimrig wrote and matches every file,
        # the seal is the altered one
        if canonical and not file_problems and _chain_matches(manifest, chain, report.run_id) is None:
            report.fail(f"{SEAL}: altered (it does not match {MANIFEST}, which matches every file)")
        else:
            report.fail(f"{MANIFEST}: altered (its SHA-256 differs from the seal in {SEAL})")
        return
    if not canonical:
        report.fail(f"{MANIFEST}: altered (not byte-for-byte the canonical form stimrig writes)")
        return
    for problem in file_problems:
        report.fail(problem)
    chain_problem = _chain_matches(manifest, chain, report.run_id)
    if chain_problem is not None:
        report.fail(chain_problem)
    report.files_checked = len(manifest.get("files", {}))
    if report.outcome is Outcome.VERIFIED:
        report.notes.append(f"status at the end of the run: {manifest.get('status')}")


def _canonical(manifest: dict[str, Any]) -> bytes | None:
    try:
        return canonical_json(manifest)
    except ValueError:
        return None


def _check_listed_files(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    files = manifest.get("files")
    if not isinstance(files, dict):
        return [f"{MANIFEST}: corrupt (no 'files' table)"]
    present = set(bundle_files(run_dir))
    for rel, entry in sorted(files.items()):
        target = run_dir / rel
        if rel not in present:
            problems.append(f"{rel}: missing (listed in {MANIFEST})")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{MANIFEST}: corrupt entry for {rel}")
            continue
        if target.stat().st_size != entry.get("bytes") or file_sha256(target) != entry.get("sha256"):
            problems.append(f"{rel}: altered (its SHA-256 differs from {MANIFEST})")
    for rel in sorted(present - set(files)):
        problems.append(f"{rel}: added after the run (not in {MANIFEST})")
    return problems


def _chain_matches(manifest: dict[str, Any], chain: ChainReport, run_id: str | None) -> str | None:
    sealed = manifest.get("results_chain") or {}
    if sealed.get("records") != len(chain.records) or sealed.get("head") != chain.head:
        return (f"{RESULTS_FILE}: records {len(chain.records)} / head {chain.head[:12]}... differ from {MANIFEST} "
                f"({sealed.get('records')} / {str(sealed.get('head'))[:12]}...): records were removed or altered")
    if run_id is not None and manifest.get("run_id") != run_id:
        return f"{MANIFEST}: run_id {manifest.get('run_id')!r} is not the results' run_id {run_id!r}"
    return None
