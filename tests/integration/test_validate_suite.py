"""`stimrig validate-suite`: the detection matrix, its CSV / HTML record and the exit status.

The default-run tests drive the real orchestration (worker pool, parsing, report, CLI) with a fake
runner that writes synthetic results.jsonl files; the slow ones run the real suite in subprocesses.
Fault names always come from the catalogue (simulator.faults.FAULTS), never from this file.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from markupsafe import escape

from rig import __version__
from rig.cli_validate import main
from rig.measurements import Measurement
from rig.validation import (
    CSV_NAME,
    HTML_NAME,
    SIMULATED_MARK,
    RunOutcome,
    RunSpec,
    Status,
    SubprocessRunner,
    measurement_line,
    new_output_dir,
    parse_run,
    reduced_selection,
    sim_channels,
)
from simulator.faults import FAULTS

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "certification"
SEED = 20261123
FREQ = "tests/certification/test_output_accuracy.py::test_pulse_frequency[tens_hf-ch1]"
PHASE = "tests/certification/test_output_accuracy.py::test_phase_durations[tens_hf-ch1]"
PROTO = "tests/certification/test_protocol_robustness.py::test_bad_frame_refused_output_unchanged[bad_crc]"
TESTS = [FREQ, PHASE, PROTO]
CHANNEL_ID = re.compile(r"[-\[]ch(\d+)[-\]]")  # the channel in a test id: [tens_hf-ch2], [ch2-max_amplitude]
FREQ_M = Measurement.around("pulse_frequency", "Hz", 90.0, 1.8)
FREQ_LINE = "pulse_frequency = 94.5 Hz, limits [88.2, 91.8] Hz: FAIL"


# ---- synthetic runs --------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a fake suite run records: each test's outcome, its FAIL measurements, how the run ends."""

    outcomes: dict[str, str] = field(default_factory=lambda: dict.fromkeys(TESTS, "passed"))
    fails: dict[str, list[tuple[Measurement, float]]] = field(default_factory=dict)
    run_end: bool = True
    returncode: int | None = None  # default: 1 if anything failed or errored, else 0
    results: bool = True  # False: certify wrote nothing (e.g. the bench did not start)
    log: str = "synthetic certify log\n"


def detected_by_frequency() -> Plan:
    return Plan(outcomes={FREQ: "failed", PHASE: "passed", PROTO: "passed"}, fails={FREQ: [(FREQ_M, 94.5)]})


def write_run(results_dir: Path, fault: str | None, plan: Plan) -> int:
    bad = any(o in ("failed", "error") for o in plan.outcomes.values())
    code = plan.returncode if plan.returncode is not None else (1 if bad else 0)
    if not plan.results:
        results_dir.mkdir(parents=True, exist_ok=True)
        return code
    run_dir = results_dir / "20261124T000000Z-abcdef"
    run_dir.mkdir(parents=True)
    recs: list[dict] = [{"kind": "run_start", "simulated": True, "seed": SEED, "fault": fault, "target": "sim"}]
    counts: dict[str, int] = {}
    for test, outcome in plan.outcomes.items():
        for m, value in plan.fails.get(test, []):
            recs.append({"kind": "measurement", "simulated": True, "test": test, "measurement": asdict(m),
                         "value": value, "verdict": m.verdict(value).value, "context": {}})
        phase = "setup" if outcome == "error" else "call"
        message = "" if outcome == "passed" else f"{outcome}: synthetic"
        recs.append({"kind": "test_result", "simulated": True, "test": test, "phase": phase, "outcome": outcome,
                     "duration_s": 0.1, "message": message})
        counts[outcome] = counts.get(outcome, 0) + 1
    if plan.run_end:
        recs.append({"kind": "run_end", "simulated": True, "exit_status": code, "counts": counts})
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return code


class FakeRunner:
    """Stands in for `stimrig certify`: writes a synthetic run; tracks how many run at once."""

    def __init__(self, plans: dict[str, Plan] | None = None, delay_s: float = 0.0) -> None:
        self.plans = plans or {}
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.specs: list[RunSpec] = []

    def __call__(self, spec: RunSpec) -> RunOutcome:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.specs.append(spec)
        try:
            time.sleep(self.delay_s)
            plan = self.plans.get(spec.name) or (Plan() if spec.fault is None else detected_by_frequency())
            spec.results_dir.mkdir(parents=True, exist_ok=True)
            spec.log_path.write_text(plan.log)
            return RunOutcome(write_run(spec.results_dir, spec.fault, plan))
        finally:
            with self.lock:
                self.running -= 1


def validate(tmp_path: Path, runner: FakeRunner, *args: str) -> int:
    return main(["--out", str(tmp_path / "out"), "--suite", str(SUITE), *args], runner=runner, collect=None)


def outputs(tmp_path: Path) -> tuple[list[dict[str, str]], str]:
    (vdir,) = list((tmp_path / "out").iterdir())
    assert vdir.name.startswith("validation-")
    with (vdir / CSV_NAME).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows, (vdir / HTML_NAME).read_text(encoding="utf-8")


def one_fault() -> str:
    return next(iter(FAULTS))


# ---- the whole command, synthetic runs -----------------------------------------------------------------
def test_every_fault_detected_exit_0_with_csv_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    runner = FakeRunner()
    assert validate(tmp_path, runner, "--workers", "2") == 0
    out = capsys.readouterr().out
    assert "test_pulse_frequency[tens_hf-ch1]" in out  # the first catching test, brackets and all
    assert "VALIDATION PASSED" in out and f"{len(FAULTS)}/{len(FAULTS)} faults = 100 %" in out
    assert CSV_NAME in out and HTML_NAME in out
    assert sorted(s.name for s in runner.specs) == sorted(["clean", *FAULTS])
    assert all(s.select is None for s in runner.specs)  # the full suite

    rows, page = outputs(tmp_path)
    assert [r["run"] for r in rows] == ["clean", *FAULTS]
    assert {r["bench"] for r in rows} == {SIMULATED_MARK}
    clean, faults = rows[0], rows[1:]
    assert clean["status"] == "PASSED" and clean["validation"] == "PASS" and clean["tests_failed"] == "0"
    for row in faults:
        name = row["run"]
        assert row["fault"] == name and row["description"] == " ".join(FAULTS[name].description.split())
        assert row["status"] == "DETECTED" and row["validation"] == "PASS"
        assert row["tests_failed"] == "1" and row["first_catching_test"] == FREQ and row["caught_by"] == FREQ
        assert row["failing_measurements"] == f"{FREQ}: {FREQ_LINE}"
        assert row[FREQ] == "FAIL"  # the matrix: one column per test that failed somewhere
        assert row["seeds"] == str(SEED) and row["stimrig_version"] == __version__
    assert clean[FREQ] == "pass" and PHASE not in clean  # tests that never failed get no column
    assert rows[0]["git_commit"]

    assert page.count(SIMULATED_MARK) >= 2 and "Validation PASSED" in page
    assert f"<td>{__version__}</td>" in page and str(SEED) in page
    assert FREQ_LINE in page
    for name, fault in FAULTS.items():
        assert name in page and escape(" ".join(fault.description.split())) in page
    assert "<link" not in page and "<script" not in page and "src=" not in page  # self-contained


def test_undetected_fault_fails_the_validation_and_is_named(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    missed = one_fault()
    assert validate(tmp_path, FakeRunner({missed: Plan()})) == 1
    out = capsys.readouterr().out
    assert f"fault {missed} went UNDETECTED" in out and "VALIDATION NOT PASSED" in out
    pct = 100 * (len(FAULTS) - 1) / len(FAULTS)
    assert f"{len(FAULTS) - 1}/{len(FAULTS)} faults = {pct:.0f} %" in out
    rows, page = outputs(tmp_path)
    row = next(r for r in rows if r["run"] == missed)
    assert row["status"] == "UNDETECTED" and row["validation"] == "FAIL" and row["tests_failed"] == "0"
    assert f"fault {missed} went UNDETECTED" in page


def test_error_only_fault_is_not_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    erring = one_fault()
    plan = Plan(outcomes={FREQ: "error", PHASE: "passed", PROTO: "error"})
    assert validate(tmp_path, FakeRunner({erring: plan})) == 1
    out = capsys.readouterr().out
    assert f"fault {erring} errored, not detected by a measurement: 2 test(s) ERRORED" in out
    rows, page = outputs(tmp_path)
    row = next(r for r in rows if r["run"] == erring)
    assert row["status"] == "ERRORED" and row["validation"] == "FAIL"
    assert row["status_text"] == "errored, not detected by a measurement"
    assert row["tests_failed"] == "0" and row["tests_errored"] == "2" and row["first_catching_test"] == ""
    assert row[FREQ] == "ERROR"
    assert "errored, not detected by a measurement" in page


def test_failing_clean_run_fails_the_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = Plan(outcomes={FREQ: "passed", PHASE: "failed", PROTO: "passed"},
                fails={PHASE: [(Measurement.around("phase1_duration", "us", 200, 20), 230.0)]})
    assert validate(tmp_path, FakeRunner({"clean": plan})) == 1
    out = capsys.readouterr().out
    assert "clean run FAILED: 1 test(s) did not pass on clean firmware:" in out
    assert ("test_output_accuracy.py::test_phase_durations[tens_hf-ch1] (FAILED): "
            "phase1_duration = 230 us, limits [180, 220] us: FAIL") in out
    rows, page = outputs(tmp_path)
    assert rows[0]["status"] == "FAILED" and rows[0]["validation"] == "FAIL"
    assert "phase1_duration = 230 us, limits [180, 220] us: FAIL" in rows[0]["failing_measurements"]
    assert "Validation NOT PASSED" in page and "phase1_duration = 230 us" in page


@pytest.mark.parametrize(("plan", "why"), [
    (Plan(outcomes={FREQ: "failed"}, run_end=False, returncode=-9), "ended without its run_end record"),
    (Plan(outcomes={}, results=False, returncode=1, log="...\n3 test(s) ERROR: TypeError: boom\n    t1\n"),
     "certify wrote no results (exit status 1; 3 test(s) ERROR: TypeError: boom)"),
], ids=["killed", "no_results"])
def test_run_that_did_not_complete_does_not_count(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  plan: Plan, why: str) -> None:
    fault = one_fault()
    assert validate(tmp_path, FakeRunner({fault: plan})) == 1
    out = capsys.readouterr().out
    assert f"fault {fault} not detected: " in out and why in out
    rows, _ = outputs(tmp_path)
    assert next(r for r in rows if r["run"] == fault)["status"] == "INCOMPLETE"


def test_catch_without_a_failing_measurement_is_flagged(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Detected, but only by e.g. an instrument error: it counts, and the reviewer is told."""
    fault = one_fault()
    plan = Plan(outcomes={FREQ: "failed", PHASE: "passed", PROTO: "passed"})
    assert validate(tmp_path, FakeRunner({fault: plan})) == 0
    out = capsys.readouterr().out
    assert f"note: fault {fault} was caught only by tests that failed without a FAIL measurement" in out
    assert "failed: synthetic" in out
    _, page = outputs(tmp_path)
    assert "caught only by tests that failed without a FAIL measurement" in page


def test_a_crashing_run_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fault = one_fault()

    class Crashing(FakeRunner):
        def __call__(self, spec: RunSpec) -> RunOutcome:
            if spec.name == fault:
                raise OSError("no space left on device")
            return super().__call__(spec)

    assert validate(tmp_path, Crashing()) == 1
    assert f"fault {fault} not detected: the run crashed: OSError('no space left on device')" in capsys.readouterr().out
    rows, _ = outputs(tmp_path)
    assert [r["status"] for r in rows if r["run"] == fault] == ["INCOMPLETE"]


def test_subset_of_faults_and_workers_run_in_parallel(tmp_path: Path) -> None:
    names = list(FAULTS)[:2]
    runner = FakeRunner(delay_s=0.3)
    t0 = time.perf_counter()
    assert validate(tmp_path, runner, "--faults", ",".join(names), "--workers", "2") == 0
    assert time.perf_counter() - t0 < 3 * 0.3 * 0.9  # three runs, two at a time
    assert runner.max_running == 2
    assert sorted(s.name for s in runner.specs) == sorted(["clean", *names])
    rows, _ = outputs(tmp_path)
    assert [r["run"] for r in rows] == ["clean", *names]


def test_unknown_fault_is_a_usage_error_and_creates_nothing(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    runner = FakeRunner()
    assert validate(tmp_path, runner, "--faults", f"{one_fault()},no_such_fault") == 2
    assert "unknown fault(s) no_such_fault" in capsys.readouterr().out
    assert not runner.specs and not (tmp_path / "out").exists()


def test_outputs_never_overwrite(tmp_path: Path) -> None:
    first = new_output_dir(tmp_path, "20261124T000000Z")
    second = new_output_dir(tmp_path, "20261124T000000Z")
    assert first != second and first.is_dir() and second.is_dir() and second.name.endswith("-2")
    assert validate(tmp_path, FakeRunner()) == 0
    assert validate(tmp_path, FakeRunner()) == 0
    assert len(list((tmp_path / "out").iterdir())) == 2


# ---- parsing ---------------------------------------------------------------------------------------------
def test_parse_run_worst_outcome_per_test_and_truncated_record(tmp_path: Path) -> None:
    spec = RunSpec("f", "f", "d", tmp_path / "r", SUITE)
    write_run(spec.results_dir, "f", detected_by_frequency())
    (jsonl,) = spec.results_dir.glob("*/results.jsonl")
    extra = [  # a teardown error after a failed call stays FAIL; after a passed call it makes an ERROR
        {"kind": "test_result", "test": FREQ, "phase": "teardown", "outcome": "error", "message": "t"},
        {"kind": "test_result", "test": PHASE, "phase": "teardown", "outcome": "error", "message": "boom\nmore"},
    ]
    with jsonl.open("a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in extra)
        fh.write('{"kind": "measurement", "test": "cut sh')  # a run killed mid-write
    run = parse_run(spec, RunOutcome(1))
    assert run.outcomes == {FREQ: "failed", PHASE: "error", PROTO: "passed"}
    assert run.status is Status.DETECTED and run.caught_by == [FREQ]
    assert run.findings[FREQ].measurements == [FREQ_LINE]
    assert run.findings[PHASE].message == "boom\nmore" and run.seed == SEED


def test_measurement_line_matches_certify(tmp_path: Path) -> None:
    m = Measurement("output_after_refused_start", "mA", high=1.0)
    assert measurement_line({"measurement": asdict(m), "value": 7.9375, "verdict": "FAIL"}) == (
        "output_after_refused_start = 7.9375 mA, limits <= 1 mA: FAIL")
    assert "nan" in measurement_line({"measurement": asdict(FREQ_M), "value": None, "verdict": "FAIL"})


def test_wrong_bench_fault_is_incomplete(tmp_path: Path) -> None:
    """A fault run whose bench did not run that fault (e.g. a bench file with its own fault) proves nothing."""
    spec = RunSpec("clean", None, "d", tmp_path / "r", SUITE)
    write_run(spec.results_dir, one_fault(), Plan())
    run = parse_run(spec, RunOutcome(0))
    assert run.status is Status.INCOMPLETE and "expected None" in (run.incomplete_reason or "")


# ---- the real pieces ----------------------------------------------------------------------------------
def test_reduced_selection_keeps_channel_1_and_the_unparametrized_tests() -> None:
    assert reduced_selection(1) is None
    assert reduced_selection(4) == "not (-ch2 or [ch2 or -ch3 or [ch3 or -ch4 or [ch4)"
    channels = sim_channels()
    expr = reduced_selection(channels)
    assert expr is not None
    code = ("import json, sys; from pathlib import Path; from rig.validation import collect_test_ids; "
            "print(json.dumps([collect_test_ids(Path(sys.argv[1]), sel) for sel in (None, sys.argv[2])]))")
    run = subprocess.run([sys.executable, "-c", code, str(SUITE), expr], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    full, reduced = json.loads(run.stdout.strip().splitlines()[-1])
    assert full and reduced
    expected = [t for t in full if set(CHANNEL_ID.findall(t)) <= {"1"}]
    assert reduced == expected
    assert any("-ch1]" in t for t in reduced)
    assert any("test_bad_frame_refused_output_unchanged[" in t for t in reduced)  # "unchanged" holds "ch"
    assert {t.split("[")[0] for t in reduced} == {t.split("[")[0] for t in full}  # every test function stays


def test_subprocess_runner_stops_a_run_that_hangs(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho started\nexec sleep 30\n")
    fake_python.chmod(0o755)
    spec = RunSpec("clean", None, "d", tmp_path / "r", SUITE)
    t0 = time.perf_counter()
    outcome = SubprocessRunner(timeout_s=0.5, python=str(fake_python))(spec)
    assert time.perf_counter() - t0 < 10
    assert outcome.returncode == -signal.SIGINT and "timed out after 0.5 s" in outcome.note
    assert spec.log_path.read_text() == "started\n"
    run = parse_run(spec, outcome)
    assert run.status is Status.INCOMPLETE and "timed out" in (run.incomplete_reason or "")


# ---- end to end (slow) ------------------------------------------------------------------------------------
def run_cli(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "rig.cli_validate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout_s, env=env)


@pytest.mark.slow
def test_reduced_validation_detects_every_catalogued_fault(tmp_path: Path) -> None:
    run = run_cli("--reduced", "--workers", "2", "--out", str(tmp_path / "out"))
    rows, page = outputs(tmp_path)
    assert [r["run"] for r in rows] == ["clean", *FAULTS]
    clean = rows[0]
    assert clean["status"] == "PASSED", run.stdout
    assert int(clean["tests_run"]) > 0 and clean["selection"] == reduced_selection(sim_channels())
    (clean_jsonl,) = (tmp_path / "out").glob("*/runs/clean/*/results.jsonl")
    ran = {json.loads(line).get("test") for line in clean_jsonl.read_text().splitlines()} - {None}
    channels_run = {c for t in ran for c in CHANNEL_ID.findall(t)}
    assert channels_run == {"1"}, ran  # channel 1 only, and the tests without a channel
    assert any("test_bad_frame_refused_output_unchanged[" in t for t in ran)
    assert {r["seeds"] for r in rows} == {str(SEED)}
    undetected = {r["run"]: r["status"] for r in rows[1:] if r["status"] != "DETECTED"}
    for name in undetected:
        assert f"fault {name} " in run.stdout, run.stdout  # named on the console
    assert not undetected, f"not detected with --reduced: {undetected}\n{run.stdout}"
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VALIDATION PASSED" in run.stdout and SIMULATED_MARK in page
    for row in rows[1:]:
        assert row["failing_measurements"].count(": FAIL") >= 1, row  # a measurement caught it


@pytest.mark.slow
def test_ctrl_c_stops_every_run_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli_validate", "--faults", one_fault(), "--workers", "2",
                             "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finished_tests() -> int:
        return sum(p.read_text().count('"test_result"') for p in out.glob("*/runs/*/*/results.jsonl"))

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and finished_tests() < 6:
        time.sleep(0.2)
    assert proc.poll() is None, "the validation finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, stdout
    assert "VALIDATION INTERRUPTED" in stdout
    jsonls = list(out.glob("*/runs/*/*/results.jsonl"))
    assert len(jsonls) == 2
    for path in jsonls:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        (end,) = [r for r in records if r["kind"] == "run_end"]
        assert set(end["outputs_after_stop_mA"].values()) == {0.0}
        assert records[-1]["kind"] == "bundle_sealed" and records[-1]["status"] == "interrupted"
    rows, _ = outputs(tmp_path)
    assert {r["status"] for r in rows} == {"INCOMPLETE"}


def test_simulated_mark_is_the_plugins() -> None:
    from rig.pytest_plugin import SIMULATED_MARK as PLUGIN_MARK

    assert SIMULATED_MARK == PLUGIN_MARK
