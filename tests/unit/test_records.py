"""Records that survive anything: the hash chain, the manifest and seal, and `stimrig verify` on
intact, killed, truncated, altered and malformed bundles. Every check names the file at fault."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from rig.cli import main
from rig.records.bundle import MANIFEST, SEAL, write_manifest
from rig.records.chain import GENESIS, ChainedLog, check_chain, read_head
from rig.records.verify import Outcome, verify_bundle
from rig.results import ResultsLog


def make_bundle(root: Path, *, seal: bool = True, records: int = 6) -> Path:
    """A small bundle as a run writes it: chained records, two evidence files, other files, the seal."""
    log = ResultsLog(root / "run", simulated=True)
    log.write("run_start", run_id="r1")
    for n in range(records - 2):
        log.write("measurement", test=f"t{n}", value=n * 0.5, verdict="PASS")
    log.save_file("captures/a.npz", bytes(range(256)) * 4)
    log.save_file("captures/a.png", b"\x89PNG\r\n\x1a\n" + b"\x00\n" * 50)
    (log.directory / "allure-results").mkdir()
    (log.directory / "allure-results" / "x-result.json").write_text('{"name": "t0"}')
    log.write("run_end", exit_status=0)
    if seal:
        log.write("bundle_sealed", status="passed")
        head = log.chain_head
        log.close()
        write_manifest(log.directory, run_id="r1", simulated=True, chain=head, status="passed")
    else:
        log.close()
    return log.directory


def test_chain_links_every_record_to_the_one_before(tmp_path: Path) -> None:
    log = ChainedLog(tmp_path / "c.jsonl")
    first = log.append({"a": 1})
    second = log.append({"a": 2})
    assert first["seq"] == 0 and first["prev"] == GENESIS
    assert second["seq"] == 1 and second["prev"] != GENESIS
    log.close()
    report = check_chain(tmp_path / "c.jsonl")
    assert report.intact and [r["a"] for r in report.records] == [1, 2]
    assert read_head(tmp_path / "c.jsonl").records == 2


def test_a_continued_chain_picks_up_where_the_file_ends(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for n in range(3):
        log = ChainedLog(path, exclusive=False)
        log.append({"run": n})
        log.close()
    report = check_chain(path)
    assert report.intact and [r["seq"] for r in report.records] == [0, 1, 2]


def test_verify_checks_a_chained_log_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = ChainedLog(path, exclusive=False)
    for n in range(4):
        log.append({"event": "run_start", "run": n})
    log.close()
    assert verify_bundle(path).outcome is Outcome.VERIFIED
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_bundle(path)
    assert report.outcome is Outcome.FAILED and "audit.jsonl line" in report.problems[0]


def test_a_run_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    ResultsLog(tmp_path / "run", simulated=True).close()
    with pytest.raises(FileExistsError):
        ResultsLog(tmp_path / "run", simulated=True)


def test_an_intact_bundle_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path)
    report = verify_bundle(bundle)
    assert report.outcome is Outcome.VERIFIED, report.problems
    assert report.simulated is True and report.records == 9
    assert main(["verify", str(bundle)]) == 0
    assert "VERIFIED" in capsys.readouterr().out


def test_flipping_any_byte_of_any_file_fails_and_names_the_file(tmp_path: Path) -> None:
    pristine = make_bundle(tmp_path / "a")
    files = sorted(p.relative_to(pristine).as_posix() for p in pristine.rglob("*") if p.is_file())
    assert {"results.jsonl", MANIFEST, SEAL, "captures/a.npz", "allure-results/x-result.json"} <= set(files)
    rng = random.Random(20261124)
    work = tmp_path / "work"
    for rel in files:
        size = (pristine / rel).stat().st_size
        positions = range(size) if size <= 400 else sorted({0, size - 1, *rng.sample(range(size), 150)})
        for pos in positions:
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(pristine, work)
            data = bytearray((work / rel).read_bytes())
            data[pos] ^= 1 << rng.randrange(8)
            (work / rel).write_bytes(bytes(data))
            report = verify_bundle(work)
            assert report.outcome is Outcome.FAILED, (rel, pos)
            assert any(rel in p for p in report.problems), (rel, pos, report.problems)


@pytest.mark.parametrize("change", ["remove", "add", "remove_manifest", "remove_seal", "drop_record"])
def test_removed_added_or_dropped_files_and_records_fail(tmp_path: Path, change: str) -> None:
    bundle = make_bundle(tmp_path)
    if change == "remove":
        (bundle / "captures" / "a.png").unlink()
        expected = "captures/a.png: missing"
    elif change == "add":
        (bundle / "captures" / "b.png").write_bytes(b"x")
        expected = "captures/b.png: added after the run"
    elif change == "remove_manifest":
        (bundle / MANIFEST).unlink()
        expected = f"{MANIFEST}: missing"
    elif change == "remove_seal":
        (bundle / SEAL).unlink()
        expected = f"{SEAL}: missing"
    else:
        lines = (bundle / "results.jsonl").read_bytes().split(b"\n")
        (bundle / "results.jsonl").write_bytes(b"\n".join(lines[:3] + lines[4:]))
        expected = "results.jsonl line 4"
    report = verify_bundle(bundle)
    assert report.outcome is Outcome.FAILED
    assert any(expected in p for p in report.problems), report.problems


def test_a_killed_run_is_incomplete_and_every_record_so_far_verifies(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, seal=False)
    with (bundle / "results.jsonl").open("ab") as fh:  # killed mid-write
        fh.write(b'{"seq": 9, "prev": "ab')
    (bundle / "captures" / ".b.npz.partial").write_bytes(b"half")
    report = verify_bundle(bundle)
    assert report.outcome is Outcome.INCOMPLETE and report.exit_code == 3
    assert report.records == 8 and report.files_checked == 2
    text = " ".join(report.notes)
    assert "all 8 records written verify" in text and "cut short" in text and "partial" in text


def test_a_killed_run_whose_evidence_was_altered_fails(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, seal=False)
    (bundle / "captures" / "a.npz").write_bytes(b"changed")
    report = verify_bundle(bundle)
    assert report.outcome is Outcome.FAILED
    assert report.problems == ["captures/a.npz: altered (its SHA-256 differs from results.jsonl record 5)"]


@pytest.mark.parametrize(("setup", "expected"), [
    ("not_a_dir", "not a directory"),
    ("no_results", "results.jsonl: missing (the bundle's manifest lists it)"),
    ("schema", "results.jsonl line 1: unknown schema version 'stimrig.results/99'"),
    ("manifest_schema", "manifest.json: unknown schema version"),
    ("manifest_garbage", "manifest.json: corrupt"),
    ("empty_file", "results.jsonl"),
])
def test_malformed_bundles_get_one_clear_message(tmp_path: Path, setup: str, expected: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_bundle(tmp_path)
    if setup == "not_a_dir":
        bundle = tmp_path / "nothing-here"
    elif setup == "no_results":
        (bundle / "results.jsonl").unlink()
    elif setup == "schema":
        # a well-formed chain written by a future stimrig: rebuild it with another schema
        records = [json.loads(line) for line in (bundle / "results.jsonl").read_text().splitlines()]
        shutil.rmtree(bundle)
        log = ChainedLog(bundle / "results.jsonl")
        for record in records:
            record.pop("seq"), record.pop("prev")
            if "schema" in record:
                record["schema"] = "stimrig.results/99"
            log.append(record)
        log.close()
    elif setup == "manifest_schema":
        manifest = json.loads((bundle / MANIFEST).read_text())
        manifest["schema"] = "stimrig.manifest/99"
        (bundle / MANIFEST).write_text(json.dumps(manifest))
    elif setup == "manifest_garbage":
        (bundle / MANIFEST).write_bytes(b"\xff\xfe not json")
    else:
        (bundle / "results.jsonl").write_bytes(b"")
    code = main(["verify", str(bundle)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert expected in out.replace("\n", " "), out
