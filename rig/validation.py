"""The certification suite's own validation record (``stimrig validate-suite``).

Evidence that the test tool works (ISO 13485 4.1.6 / 7.6): the certification suite passes clean
simulated firmware, and fails - on at least one test - every seeded defect of the fault catalogue
(``simulator.faults.FAULTS``). Each suite run is a separate ``stimrig certify`` process with its
own results directory (and its own virtual bench), up to ``workers`` of them at once.

The record is the detection matrix (fault x failing tests) as CSV and as a self-contained HTML page,
both marked SIMULATED, written to a new directory that never overwrites an earlier one, next to the
raw results of every run (``runs/<name>/<run-id>/results.jsonl`` and ``runs/<name>/certify.log``).

Verdicts, per run:
- clean run: PASSED (every test passed, none failed or errored) or FAILED;
- fault run: DETECTED (at least one test FAILED), ERRORED (no test failed but some errored: errored,
  not detected by a measurement - counts as not detected), or UNDETECTED;
- any run: INCOMPLETE when it did not finish normally (no results, no ``run_end`` record, timed out,
  interrupted, or the bench it ran on was not the one asked for) - counts as not passed / not detected.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import jinja2

from rig import __version__, output_dirs
from rig.measurements import MeasuredValue, Measurement, Verdict
from rig.output_dirs import utc_stamp
from rig.results import SIMULATED_MARK

CLEAN = "clean"
RUN_TIMEOUT_S = 300.0  # a full certify run takes about 30 s
STOP_GRACE_S = 30.0
CSV_NAME = "detection_matrix.csv"
HTML_NAME = "validation.html"


class Status(StrEnum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    DETECTED = "DETECTED"
    ERRORED = "ERRORED"
    UNDETECTED = "UNDETECTED"
    INCOMPLETE = "INCOMPLETE"


STATUS_TEXT = {
    Status.PASSED: "passed everything",
    Status.FAILED: "did not pass everything",
    Status.DETECTED: "detected",
    Status.ERRORED: "errored, not detected by a measurement",
    Status.UNDETECTED: "not detected",
    Status.INCOMPLETE: "run did not complete",
}

_RANK = {"failed": 4, "error": 3, "passed": 2, "skipped": 1}


# ---- what is run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One suite run: ``stimrig certify`` on the simulated bench, clean (fault None) or with a fault."""

    name: str
    fault: str | None
    description: str
    results_dir: Path  # certify's --results-dir; the run directory is created inside it
    suite: Path
    select: str | None = None

    @property
    def log_path(self) -> Path:
        return self.results_dir / "certify.log"

    def command(self, python: str = sys.executable) -> list[str]:
        cmd = [python, "-m", "rig.cli", "certify", "--results-dir", str(self.results_dir), "--suite", str(self.suite)]
        if self.fault is not None:
            cmd += ["--fault", self.fault]
        if self.select:
            cmd += ["-k", self.select]
        return cmd


@dataclass(frozen=True)
class RunOutcome:
    returncode: int | None  # None: the process never ran
    note: str = ""  # why a run ended abnormally (timed out, interrupted, could not start)


Runner = Callable[[RunSpec], RunOutcome]
Collector = Callable[[Path, str | None], list[str] | None]


class SubprocessRunner:
    """Runs each RunSpec as ``python -m rig.cli certify ...``; thread-safe, cancellable.

    Each child runs in its own session, so a Ctrl-C at the terminal reaches only this process, which
    forwards exactly one SIGINT to each child (certify then stops every output and records run_end).
    """

    def __init__(self, timeout_s: float = RUN_TIMEOUT_S, python: str = sys.executable) -> None:
        self.timeout_s = timeout_s
        self.python = python
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._cancelled = False

    def __call__(self, spec: RunSpec) -> RunOutcome:
        spec.results_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
        with self._lock:
            if self._cancelled:
                return RunOutcome(None, "not run: the validation was interrupted")
            log = spec.log_path.open("xb")
            try:
                proc = subprocess.Popen(spec.command(self.python), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            except OSError as exc:
                log.close()
                return RunOutcome(None, f"could not start {self.python}: {exc}")
            self._procs[spec.name] = proc
        note = ""
        try:
            try:
                proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                note = f"timed out after {self.timeout_s:g} s and was stopped"
                self._stop(proc)
        finally:
            log.close()
            with self._lock:
                self._procs.pop(spec.name, None)
                if self._cancelled and not note:
                    note = "interrupted"
        return RunOutcome(proc.returncode, note)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cancel(self) -> None:
        """No new runs start; every running one gets one SIGINT (a graceful stop)."""
        with self._lock:
            self._cancelled = True
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def collect_test_ids(suite: Path, select: str | None) -> list[str] | None:
    """The node ids a run of the suite would execute (in-process collection, about 1 s); None on error."""
    import pytest

    class _Items:
        ids: list[str] | None = None
        interrupted = False

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            self.ids = [item.nodeid for item in session.items]

        def pytest_keyboard_interrupt(self) -> None:
            self.interrupted = True

    items = _Items()
    args = [str(suite), "--collect-only", "-o", "addopts=", "-p", "no:terminal", "-p", "no:cacheprovider",
            "-p", "no:faulthandler"]
    if select:
        args += ["-k", select]
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = int(pytest.main(args, plugins=[items]))
    except Exception:  # only the progress bars depend on it
        return None
    if items.interrupted:  # pytest.main swallows Ctrl-C: pass it on
        raise KeyboardInterrupt
    return items.ids if code in (0, 5) else None


# ---- what a run showed --------------------------------------------------------------------------------
@dataclass
class Finding:
    """A test that failed or errored in a run, with the measurements it took out of limits."""

    test: str
    outcome: str  # "failed" | "error"
    message: str = ""
    measurements: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        return short_test(self.test)

    @property
    def headline(self) -> str:
        """Its first out-of-limits measurement, else the first line of its failure message."""
        if self.measurements:
            more = f" (+{len(self.measurements) - 1} more)" if len(self.measurements) > 1 else ""
            return self.measurements[0] + more
        lines = [ln.strip() for ln in self.message.strip().splitlines() if ln.strip()]
        return lines[0][:300] if lines else "no message"


@dataclass
class RunResult:
    name: str
    fault: str | None
    description: str
    returncode: int | None
    wall_s: float = 0.0
    note: str = ""
    run_dir: Path | None = None
    log_path: Path | None = None
    run_start: dict[str, Any] | None = None
    run_end: dict[str, Any] | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # test -> worst outcome, in execution order
    findings: dict[str, Finding] = field(default_factory=dict)  # failed and errored tests, in order

    @property
    def is_clean(self) -> bool:
        return self.fault is None

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.outcome == "failed"]

    @property
    def errored(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.outcome == "error"]

    @property
    def seed(self) -> Any:
        return (self.run_start or {}).get("seed")

    @property
    def incomplete_reason(self) -> str | None:
        """Why this run cannot count (None if it completed normally)."""
        where = f" (see {self.log_path})" if self.log_path else ""
        if self.note:
            return self.note + where
        if self.returncode is None:
            return "the run did not start" + where
        if self.run_dir is None or self.run_start is None:
            said = log_headline(self.log_path)
            return f"certify wrote no results (exit status {self.returncode}{'; ' + said if said else ''}){where}"
        if self.run_start.get("simulated") is not True:
            return "the run was not on a simulated bench"
        if self.run_start.get("fault") != self.fault:
            return f"the run's bench had fault {self.run_start.get('fault')!r}, expected {self.fault!r}"
        if self.run_end is None:
            return f"the run ended without its run_end record (exit status {self.returncode}){where}"
        if not self.outcomes:
            return f"no test ran (exit status {self.returncode}){where}"
        if self.returncode not in (0, 1):
            return f"certify exited with status {self.returncode}{where}"
        return None

    @property
    def status(self) -> Status:
        if self.incomplete_reason is not None:
            return Status.INCOMPLETE
        if self.is_clean:
            ok = self.returncode == 0 and not self.findings and self.counts["passed"] > 0
            return Status.PASSED if ok else Status.FAILED
        if self.failed:
            return Status.DETECTED
        return Status.ERRORED if self.errored else Status.UNDETECTED

    @property
    def ok(self) -> bool:
        """PASS of this row of the validation: clean run passed everything / fault detected."""
        return self.status in (Status.PASSED, Status.DETECTED)

    @property
    def caught_by(self) -> list[str]:
        return [f.test for f in self.failed]

    @property
    def first_catch(self) -> str | None:
        return self.caught_by[0] if self.caught_by else None


def log_headline(log_path: Path | None) -> str:
    """The line of a certify log that says why a run went wrong (its first ERROR/FAILED group or message)."""
    if log_path is None or not log_path.is_file():
        return ""
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    for line in lines:
        text = line.strip()
        if re.match(r"\d+ test\(s\) (ERROR|FAILED):", text) or text.startswith("stimrig certify:"):
            return text[:300]
    return ""


def short_test(nodeid: str) -> str:
    """``tests/certification/test_x.py::test_y[p]`` -> ``test_x.py::test_y[p]``."""
    path, sep, rest = nodeid.partition("::")
    return f"{Path(path).name}{sep}{rest}" if sep else nodeid


def measurement_line(record: dict[str, Any]) -> str:
    """The failing-measurement line of a results.jsonl measurement record, as certify prints it."""
    m = record.get("measurement") or {}
    value = record.get("value")
    try:
        mv = MeasuredValue(Measurement(**m), float("nan") if value is None else float(value),
                           Verdict(record.get("verdict", "FAIL")))
        return mv.describe()
    except (TypeError, ValueError):
        return f"{m.get('name', '?')} = {value} {m.get('unit', '')}: {record.get('verdict', '?')}"


def read_records(path: Path) -> list[dict[str, Any]]:
    """results.jsonl records; a last line cut short (a killed run) is ignored, as are stray lines."""
    records = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                records.append(rec)
    return records


def find_run_dir(results_dir: Path) -> Path | None:
    runs = sorted(p.parent for p in results_dir.glob("*/results.jsonl"))
    return runs[-1] if runs else None


def parse_run(spec: RunSpec, outcome: RunOutcome, wall_s: float = 0.0) -> RunResult:
    """Read a finished run's results.jsonl into a RunResult (what failed, errored, and why)."""
    result = RunResult(
        name=spec.name, fault=spec.fault, description=spec.description, returncode=outcome.returncode,
        wall_s=wall_s, note=outcome.note, log_path=spec.log_path if spec.log_path.exists() else None,
    )
    run_dir = find_run_dir(spec.results_dir) if spec.results_dir.is_dir() else None
    if run_dir is None:
        return result
    result.run_dir = run_dir
    records = read_records(run_dir / "results.jsonl")
    messages: dict[str, str] = {}
    for rec in records:
        kind = rec.get("kind")
        if kind == "run_start" and result.run_start is None:
            result.run_start = rec
        elif kind == "run_end":
            result.run_end = rec
        elif kind == "test_result" and isinstance(rec.get("test"), str):
            test, out = rec["test"], str(rec.get("outcome", ""))
            prev = result.outcomes.get(test)
            if prev is None or _RANK.get(out, 0) > _RANK.get(prev, 0):
                result.outcomes[test] = out
                messages[test] = str(rec.get("message") or "")
    for test, out in result.outcomes.items():
        if out in ("failed", "error"):
            result.findings[test] = Finding(test, out, messages.get(test, ""))
    for rec in records:
        if rec.get("kind") == "measurement" and rec.get("verdict") == Verdict.FAIL.value:
            finding = result.findings.get(rec.get("test", ""))
            if finding is not None:
                finding.measurements.append(measurement_line(rec))
    return result


# ---- the whole validation -------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    clean: RunResult
    faults: list[RunResult]
    out_dir: Path
    started_utc: str
    selection: str | None
    workers: int
    wall_s: float = 0.0
    version: str = __version__
    commit: str | None = None
    interrupted: bool = False
    expected_tests: int | None = None

    @property
    def runs(self) -> list[RunResult]:
        return [self.clean, *self.faults]

    @property
    def seeds(self) -> list[str]:
        return sorted({str(r.seed) for r in self.runs if r.seed is not None})

    @property
    def detected(self) -> list[RunResult]:
        return [r for r in self.faults if r.status is Status.DETECTED]

    @property
    def not_detected(self) -> list[RunResult]:
        return [r for r in self.faults if r.status is not Status.DETECTED]

    @property
    def detection_pct(self) -> float | None:
        return 100.0 * len(self.detected) / len(self.faults) if self.faults else None

    @property
    def passed(self) -> bool:
        return not self.interrupted and self.clean.status is Status.PASSED and not self.not_detected

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 0 if self.passed else 1

    @property
    def detection_text(self) -> str:
        pct = self.detection_pct
        return f"{len(self.detected)}/{len(self.faults)} faults detected" + (f" ({pct:.0f} %)" if pct is not None
                                                                              else "")

    @property
    def matrix_tests(self) -> list[str]:
        """Every test that failed or errored in some run, in execution order (the clean run's first)."""
        order: dict[str, None] = {}
        for run in self.runs:
            for test in run.outcomes:
                order.setdefault(test, None)
        return [t for t in order if any(t in run.findings for run in self.runs)]

    def problems(self) -> list[str]:
        """One line per reason the validation did not pass, naming the run."""
        lines = []
        if self.interrupted:
            lines.append("the validation was interrupted: it is incomplete")
        clean = self.clean
        if clean.status is Status.INCOMPLETE:
            lines.append(f"clean run incomplete: {clean.incomplete_reason}")
        elif clean.status is Status.FAILED:
            bad = clean.failed + clean.errored
            if bad:
                text = f"clean run FAILED: {len(bad)} test(s) did not pass on clean firmware:"
                text += "".join(f"\n  {f.short} ({f.outcome.upper()}): {f.headline}" for f in bad[:10])
                if len(bad) > 10:
                    text += f"\n  ... and {len(bad) - 10} more"
                lines.append(text)
            else:
                lines.append(f"clean run FAILED: exit status {clean.returncode}, {clean.counts['passed']} passed")
        for run in self.faults:
            status = run.status
            if status is Status.UNDETECTED:
                lines.append(f"fault {run.name} went UNDETECTED: no test failed "
                             f"({run.counts['passed']} passed, {run.counts['skipped']} skipped)")
            elif status is Status.ERRORED:
                first = run.errored[0]
                lines.append(f"fault {run.name} errored, not detected by a measurement: {len(run.errored)} test(s) "
                             f"ERRORED and none FAILED, e.g. {first.short}: {first.headline}")
            elif status is Status.INCOMPLETE:
                lines.append(f"fault {run.name} not detected: {run.incomplete_reason}")
        return lines

    def warnings(self) -> list[str]:
        """Detections a reviewer should look at: every catching test failed without an out-of-limits measurement
        (e.g. an instrument error), so the fault was caught, but not by what the suite measures."""
        return [
            f"fault {run.name} was caught only by tests that failed without a FAIL measurement, "
            f"e.g. {run.failed[0].short}: {run.failed[0].headline}"
            for run in self.detected if not any(f.measurements for f in run.failed)
        ]


def git_commit(where: Path) -> str | None:
    """The checked-out commit of the repository holding ``where`` (+ a note if it has local changes)."""
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not sha:
        return None
    return sha + (" (with uncommitted changes)" if dirty else "")


def new_output_dir(out_root: Path, stamp: str | None = None) -> Path:
    """``<out_root>/validation-<UTC stamp>``, created new: never an existing directory."""
    return output_dirs.new_output_dir(out_root, "validation", stamp)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def catalogue() -> dict[str, str]:
    """Fault name -> description, from the simulator's catalogue (the only source of fault names)."""
    from simulator.faults import FAULTS

    return {name: " ".join((f.description or "").split()) for name, f in FAULTS.items()}


def reduced_selection(channels: int) -> str | None:
    """The ``-k`` expression of ``--reduced``: channel 1 only of every test parametrized by channel.

    Channel ids are ``chN`` (``test_pulse_frequency[tens_hf-ch2]``), so the other channels are excluded
    by ``-chN`` / ``[chN`` (pytest -k matches substrings; ``-ch2`` also covers ``-ch20``), and every test
    not parametrized by channel stays (``test_bad_frame_refused_output_unchanged[bad_crc]``). The
    plainer ``ch1 or not ch`` would drop those: "unchanged" and "no_such_channel" contain "ch".
    For CS-4 (4 channels): ``not (-ch2 or [ch2 or -ch3 or [ch3 or -ch4 or [ch4)``, 32 of 104 tests.
    """
    if channels < 2:
        return None
    return "not (" + " or ".join(f"-ch{c} or [ch{c}" for c in range(2, channels + 1)) + ")"


def sim_channels() -> int:
    """Channels of the device on the default simulated bench (validates its fixtures)."""
    from rig.bench.session import RigBench
    from rig.errors import StimrigError
    from rig.pytest_plugin import DEFAULT_SIM_BENCH

    try:
        return int(RigBench.from_files(DEFAULT_SIM_BENCH).device.channels)
    except StimrigError as exc:
        raise ValueError(str(exc)) from None


def check_faults(faults: Sequence[str] | None) -> list[str]:
    """The fault names to validate (all catalogued ones for None); ValueError naming any unknown one."""
    known = catalogue()
    names = list(known) if faults is None else list(dict.fromkeys(faults))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; the catalogue has: {', '.join(sorted(known))}")
    return names


def plan_runs(out_dir: Path, suite: Path, faults: Sequence[str] | None = None,
              select: str | None = None) -> list[RunSpec]:
    """The clean run, then one run per fault (every catalogued fault unless ``faults`` names a subset)."""
    known = catalogue()
    names = check_faults(faults)
    runs_dir = out_dir / "runs"
    specs = [RunSpec(CLEAN, None, "clean firmware: every test must pass", runs_dir / CLEAN, suite, select)]
    specs += [RunSpec(n, n, known[n], runs_dir / n, suite, select) for n in names]
    return specs


class _Tail:
    """Counts the tests a running run has finished, reading its results.jsonl as it grows."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = results_dir
        self.path: Path | None = None
        self.offset = 0
        self.tests: set[str] = set()

    def count(self) -> int:
        if self.path is None:
            run_dir = find_run_dir(self.results_dir) if self.results_dir.is_dir() else None
            if run_dir is None:
                return 0
            self.path = run_dir / "results.jsonl"
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return len(self.tests)
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            if b'"test_result"' in line:
                with contextlib.suppress(ValueError):
                    self.tests.add(str(json.loads(line).get("test")))
        return len(self.tests)


def _done_text(result: RunResult) -> str:
    status = result.status
    style = "green" if result.ok else "red"
    if status is Status.DETECTED:
        detail = f"{len(result.failed)} test(s) failed"
    elif status is Status.PASSED:
        detail = f"{result.counts['passed']} passed"
    elif status is Status.INCOMPLETE:
        detail = result.incomplete_reason or ""
    else:
        detail = f"{len(result.failed)} failed, {len(result.errored)} errored, {result.counts['passed']} passed"
    from rich.markup import escape

    return f"[{style}]{status.value}[/] {escape(result.name)}: {escape(detail)} ({result.wall_s:.1f} s)"


def run_validation(
    *,
    out_root: Path,
    suite: Path,
    faults: Sequence[str] | None = None,
    reduced: bool = False,
    workers: int | None = None,
    console: Any = None,
    runner: Runner | None = None,
    collect: Collector | None = collect_test_ids,
    stamp: str | None = None,
) -> ValidationReport:
    """Run the clean suite and every (selected) fault, in parallel; return the report (files not yet written).

    ``console`` (a rich Console) shows progress; ``runner`` runs one RunSpec (default: a certify subprocess);
    ``collect`` counts the selected tests for the progress bars (None: no totals).
    Raises ValueError for an unknown fault name, before anything is run or created.
    """
    started = datetime.now(UTC)
    check_faults(faults)
    select = reduced_selection(sim_channels()) if reduced else None
    suite = suite.resolve()
    out_dir = new_output_dir(out_root, stamp or utc_stamp(started)).resolve()
    specs = plan_runs(out_dir, suite, faults, select)
    n_workers = max(1, min(workers or default_workers(), len(specs)))
    run = runner or SubprocessRunner()
    t0 = time.perf_counter()
    results: dict[str, RunResult] = {}
    starts: dict[str, float] = {}
    interrupted = False

    def one(spec: RunSpec) -> RunResult:
        starts[spec.name] = time.perf_counter()
        outcome = run(spec)
        return parse_run(spec, outcome, time.perf_counter() - starts[spec.name])

    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="validate")
    futures: dict[Future[RunResult], RunSpec] = {pool.submit(one, s): s for s in specs}
    expected: int | None = None
    try:
        ids = collect(suite, select) if collect is not None else None
        expected = len(ids) if ids is not None else None
        _wait_with_progress(futures, results, starts, expected, console, n_workers)
    except KeyboardInterrupt:
        interrupted = True
        for fut in futures:
            fut.cancel()
        cancel = getattr(run, "cancel", None)
        if cancel is not None:
            cancel()
        if console is not None:
            console.print("[red]interrupted: stopping the runs (each stops its outputs) ...")
        try:
            wait([fut for fut in futures if not fut.cancelled()])
        except KeyboardInterrupt:
            kill = getattr(run, "kill", None)
            if kill is not None:
                kill()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for fut, spec in futures.items():
        if spec.name in results:
            continue
        error = None if fut.cancelled() or not fut.done() else fut.exception()
        if fut.done() and not fut.cancelled() and error is None:
            results[spec.name] = fut.result()
        else:
            note = f"the run crashed: {error!r}" if error is not None else "not run: the validation was interrupted"
            results[spec.name] = parse_run(spec, RunOutcome(None, note))
    ordered = [results[s.name] for s in specs]
    return ValidationReport(
        clean=ordered[0], faults=ordered[1:], out_dir=out_dir, started_utc=started.isoformat(timespec="seconds"),
        selection=select, workers=n_workers, wall_s=time.perf_counter() - t0, commit=git_commit(suite),
        interrupted=interrupted, expected_tests=expected,
    )


def _wait_with_progress(futures: dict[Future[RunResult], RunSpec], results: dict[str, RunResult],
                        starts: dict[str, float], expected: int | None, console: Any, workers: int) -> None:
    pending = set(futures)
    if console is None:
        wait(pending)
        return
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    specs = list(futures.values())
    tails = {s.name: _Tail(s.results_dir) for s in specs}
    with Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        overall = progress.add_task("", total=len(specs), label=f"validate ({workers} workers)")
        tasks = {s.name: progress.add_task("queued", total=expected, label=escape(s.name[:28]), start=False)
                 for s in specs}
        started: set[str] = set()
        while pending:
            done, pending = wait(pending, timeout=0.3, return_when=FIRST_COMPLETED)
            for fut in done:
                name = futures[fut].name
                progress.update(tasks[name], visible=False)
                progress.advance(overall)
                if fut.exception() is None:  # a crashed run is recorded as such by run_validation
                    results[name] = fut.result()
                    progress.console.print(_done_text(results[name]), highlight=False)
                else:
                    progress.console.print(f"[red]{escape(name)}: the run crashed: {escape(repr(fut.exception()))}")
            for spec in specs:
                if spec.name in starts and spec.name not in results:
                    task = tasks[spec.name]
                    if spec.name not in started:
                        started.add(spec.name)
                        progress.start_task(task)
                    progress.update(task, completed=tails[spec.name].count(), description="running",
                                    total=expected)


# ---- the record: CSV and HTML ------------------------------------------------------------------------------
def _cell(run: RunResult, test: str) -> str:
    out = run.outcomes.get(test)
    return {"failed": "FAIL", "error": "ERROR", "passed": "pass", "skipped": "skip"}.get(out or "", out or "")


def write_csv(report: ValidationReport, path: Path) -> Path:
    """The detection matrix: one row per run (clean, then each fault), one column per test that failed or
    errored in any run (FAIL / ERROR / pass / skip; empty = not run), after the run's verdict and evidence."""
    tests = report.matrix_tests
    head = ["bench", "run", "fault", "description", "validation", "status", "status_text", "tests_run",
            "tests_failed", "tests_errored", "first_catching_test", "caught_by", "failing_measurements", "note",
            "stimrig_version", "git_commit", "seeds", "validated_utc", "selection"]
    with path.open("x", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head + tests)
        for run in report.runs:
            evidence = []
            for f in run.findings.values():
                lines = f.measurements or ([f.message.splitlines()[0]] if f.message.strip() else [])
                evidence += [f"{f.test}: {line}" for line in lines]
            w.writerow([
                SIMULATED_MARK, run.name, run.fault or "", run.description, "PASS" if run.ok else "FAIL",
                run.status.value, STATUS_TEXT[run.status], len(run.outcomes), len(run.failed), len(run.errored),
                run.first_catch or "", "; ".join(run.caught_by), "\n".join(evidence), run.incomplete_reason or "",
                report.version, report.commit or "not available", " ".join(report.seeds), report.started_utc,
                report.selection or "full suite",
            ] + [_cell(run, t) for t in tests])
    return path


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SIMULATED - stimrig certification suite validation {{ report.started_utc }}</title>
<style>
  @page { size: A4; margin: 14mm; }
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 10.5pt; color: #111;
         max-width: 1100px; margin: 1.5em auto; padding: 0 1em; line-height: 1.35; }
  h1 { font-size: 17pt; margin: 0.2em 0; } h2 { font-size: 13pt; margin-top: 1.4em; border-bottom: 1px solid #999; }
  h3 { font-size: 11pt; margin: 1em 0 0.3em; }
  .sim { border: 3px solid #000; padding: 0.4em 0.7em; font-weight: bold; font-size: 12pt; text-align: center;
         letter-spacing: 0.05em; margin: 0.6em 0; }
  table { border-collapse: collapse; margin: 0.4em 0; }
  th, td { border: 1px solid #888; padding: 2px 6px; text-align: left; vertical-align: top; }
  th { background: #eee; }
  table.meta th { width: 13em; }
  .PASS, .PASSED, .DETECTED { color: #064; font-weight: bold; }
  .FAIL, .FAILED, .UNDETECTED, .ERRORED, .INCOMPLETE { color: #a00; font-weight: bold; }
  .matrix { font-size: 9pt; } .matrix td.c { text-align: center; font-family: monospace; }
  td.mono { overflow-wrap: anywhere; }
  .mono, code, pre { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; }
  pre { margin: 0.2em 0 0.4em 1.2em; white-space: pre-wrap; }
  .fault { break-inside: avoid-page; } li.problem { white-space: pre-wrap; }
  .verdict { font-size: 13pt; font-weight: bold; padding: 0.3em 0; }
  @media print { th { -webkit-print-color-adjust: exact; print-color-adjust: exact; } a { color: inherit; } }
</style>
</head>
<body>
<div class="sim">{{ mark }}</div>
<h1>Validation of the stimrig certification suite</h1>
<p>The suite was run on clean simulated firmware, where every test must pass, and once per seeded firmware
defect of the fault catalogue, where at least one test must FAIL. A fault that only makes tests ERROR is
not detected by a measurement and counts as not detected.</p>
<div class="verdict {{ 'PASS' if report.passed else 'FAIL' }}">Validation {{ 'PASSED' if report.passed else
'NOT PASSED' }}: clean run {{ report.clean.status.value }}; {{ report.detection_text }}</div>
{% if problems %}<ul>{% for p in problems %}<li class="mono problem">{{ p }}</li>{% endfor %}</ul>{% endif %}
{% if warnings %}<p>Note for the reviewer:</p>
<ul>{% for w in warnings %}<li class="mono problem">{{ w }}</li>{% endfor %}</ul>{% endif %}

<h2>Record</h2>
<table class="meta">
<tr><th>Bench</th><td>{{ mark }}</td></tr>
<tr><th>stimrig version</th><td>{{ report.version }}</td></tr>
<tr><th>Git commit</th><td class="mono">{{ report.commit or "not available" }}</td></tr>
<tr><th>Seed(s)</th><td>{{ report.seeds | join(", ") or "not recorded" }}</td></tr>
<tr><th>Date (UTC)</th><td>{{ report.started_utc }}</td></tr>
<tr><th>Selection</th><td>{% if report.selection %}reduced: <code>-k "{{ report.selection }}"</code>
  {% else %}full suite{% endif %}{% if report.expected_tests %} ({{ report.expected_tests }} tests per run){% endif %}
  </td></tr>
<tr><th>Runs</th><td>{{ report.runs | length }} ({{ report.workers }} in parallel),
  {{ "%.1f" | format(report.wall_s) }} s wall</td></tr>
<tr><th>Clean run</th><td><span class="{{ report.clean.status.value }}">{{ report.clean.status.value }}</span>
  ({{ counts_text(report.clean) }}){% if report.clean.incomplete_reason %}: {{ report.clean.incomplete_reason }}
  {% endif %}</td></tr>
</table>

<h2>Faults</h2>
<table>
<tr><th>#</th><th>Fault</th><th>Description</th><th>Detection</th><th>Tests caught</th><th>First catching test</th></tr>
{% for run in report.faults %}
<tr><td>F{{ loop.index }}</td><td class="mono">{{ run.name }}</td><td>{{ run.description }}</td>
<td><span class="{{ 'PASS' if run.ok else 'FAIL' }}">{{ 'PASS' if run.ok else 'FAIL' }}</span><br>
  <span class="{{ run.status.value }}">{{ status_text[run.status] }}</span></td>
<td>{{ run.failed | length }}</td><td class="mono">{{ short(run.first_catch) if run.first_catch else "-" }}</td></tr>
{% endfor %}
</table>

<h2>Detection matrix</h2>
{% if tests %}
<p>Tests that failed (FAIL) or errored (ERROR) in at least one run; &middot; = passed, skip = skipped,
blank = not run.</p>
<table class="matrix">
<tr><th>Test</th><th>clean</th>{% for run in report.faults %}<th title="{{ run.name }}">F{{ loop.index }}</th>
{% endfor %}</tr>
{% for t in tests %}
<tr><td class="mono">{{ short(t) }}</td>{% for run in report.runs %}{% set c = cell(run, t) %}
<td class="c {{ c }}">{{ "&middot;" | safe if c == "pass" else c }}</td>{% endfor %}</tr>
{% endfor %}
<tr><th>tests failed</th>{% for run in report.runs %}<th class="c">{{ run.failed | length }}</th>{% endfor %}</tr>
</table>
{% else %}<p>No test failed or errored in any run.</p>{% endif %}

<h2>Per fault</h2>
{% for run in report.faults %}
<div class="fault">
<h3>F{{ loop.index }} <span class="mono">{{ run.name }}</span>:
  <span class="{{ run.status.value }}">{{ run.status.value }}</span> ({{ status_text[run.status] }})</h3>
<p>{{ run.description }}<br>{{ counts_text(run) }}; {{ "%.1f" | format(run.wall_s) }} s.
{% if run.run_dir %}Results: <a href="{{ rel(run.run_dir) }}/results.jsonl" class="mono">{{ rel(run.run_dir)
}}/results.jsonl</a>{% endif %}</p>
{% if run.incomplete_reason %}<p class="FAIL">{{ run.incomplete_reason }}</p>{% endif %}
{% if run.failed %}<p>Caught by {{ run.failed | length }} test(s):</p>
{% for f in run.failed %}<div class="mono">{{ f.short }}</div>
<pre>{% if f.measurements %}{{ f.measurements | join("\\n") }}{% else %}{{ f.message }}{% endif %}</pre>
{% endfor %}{% endif %}
{% if run.errored %}<p class="ERRORED">{{ run.errored | length }} test(s) errored (not a measurement):</p>
{% for f in run.errored %}<div class="mono">{{ f.short }}</div><pre>{{ f.message }}</pre>{% endfor %}{% endif %}
</div>
{% endfor %}

{% if report.clean.findings %}
<h2>Clean run: tests that did not pass</h2>
{% for f in report.clean.findings.values() %}<div class="mono">{{ f.short }} ({{ f.outcome.upper() }})</div>
<pre>{% if f.measurements %}{{ f.measurements | join("\\n") }}{% else %}{{ f.message }}{% endif %}</pre>{% endfor %}
{% endif %}

<div class="sim">{{ mark }}</div>
<p class="mono">stimrig {{ report.version }} validate-suite &middot; {{ report.started_utc }}</p>
</body>
</html>
"""


def counts_text(run: RunResult) -> str:
    c = run.counts
    parts = [f"{c[k]} {k}" for k in ("passed", "failed", "error", "skipped") if c[k]]
    return ", ".join(parts) if parts else "no test ran"


def render_html(report: ValidationReport) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(HTML_TEMPLATE)

    def rel(p: Path) -> str:
        try:
            return p.relative_to(report.out_dir).as_posix()
        except ValueError:
            return p.as_posix()

    return template.render(
        report=report, mark=SIMULATED_MARK, problems=report.problems(), warnings=report.warnings(),
        tests=report.matrix_tests,
        status_text=STATUS_TEXT, cell=_cell, short=short_test, counts_text=counts_text, rel=rel,
    )


def write_outputs(report: ValidationReport) -> tuple[Path, Path]:
    """Write the CSV and the HTML page into the report's (new) directory; never overwrites a file."""
    csv_path = write_csv(report, report.out_dir / CSV_NAME)
    html_path = report.out_dir / HTML_NAME
    with html_path.open("x", encoding="utf-8") as fh:
        fh.write(render_html(report))
    return csv_path, html_path
