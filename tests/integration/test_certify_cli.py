"""`stimrig certify` end to end, as a user runs it: in a subprocess, on the shipped fixtures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HW_BENCH = REPO / "fixtures" / "benches" / "lab-keysight-usbserial.yaml"


def certify(tmp_path: Path, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rig.cli", "certify", "--results-dir", str(tmp_path / "results"), *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, env=env)


def records(tmp_path: Path) -> list[dict]:
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def outcomes(recs: list[dict]) -> dict[str, str]:
    return {r["test"]: r["outcome"] for r in recs if r["kind"] == "test_result"}


def test_frequency_fault_fails_every_frequency_test_and_only_those(tmp_path: Path) -> None:
    clean = certify(tmp_path / "clean", "-k", "pulse_frequency")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    clean_out = outcomes(records(tmp_path / "clean"))
    assert clean_out and set(clean_out.values()) == {"passed"}

    faulty = certify(tmp_path / "faulty", "--fault", "frequency_off_5pct", "-k", "pulse_frequency")
    assert faulty.returncode == 1, faulty.stdout + faulty.stderr
    faulty_out = outcomes(records(tmp_path / "faulty"))
    assert faulty_out.keys() == clean_out.keys()
    assert set(faulty_out.values()) == {"failed"}
    # The message says what was measured against what limit, e.g. 94.5 Hz against [88.2, 91.8] Hz.
    assert re.search(r"pulse_frequency = 94\.\d+ Hz, limits \[88\.2, 91\.8\] Hz: FAIL", faulty.stdout), faulty.stdout
    measured = [r for r in records(tmp_path / "faulty")
                if r["kind"] == "measurement" and r["measurement"]["name"] == "pulse_frequency"]
    assert measured
    for m in measured:
        nominal = m["measurement"]["nominal"]
        assert m["value"] == pytest.approx(nominal * 1.05, rel=1e-3)


def test_hw_bench_without_hardware_passes_nothing(tmp_path: Path) -> None:
    run = certify(tmp_path, "--target", "hw", "--bench", str(HW_BENCH), timeout_s=600)
    assert run.returncode != 0
    recs = records(tmp_path)
    assert recs[0]["simulated"] is False
    results = outcomes(recs)
    assert results, "no test ran"
    assert "passed" not in results.values()
    messages = {r["message"] for r in recs if r["kind"] == "test_result"}
    # Each failure names what could not be reached and what was expected.
    assert any("/dev/ttyUSB0: cannot open serial port" in m for m in messages), messages
    assert "/dev/ttyUSB0" in run.stdout


def test_same_seed_same_measurements(tmp_path: Path) -> None:
    a = certify(tmp_path / "a", "-k", "tens_hf and ch1 and not protocol")
    b = certify(tmp_path / "b", "-k", "tens_hf and ch1 and not protocol")
    assert a.returncode == 0 and b.returncode == 0, a.stdout + b.stdout
    values_a = [(r["test"], r["value"]) for r in records(tmp_path / "a") if r["kind"] == "measurement"]
    values_b = [(r["test"], r["value"]) for r in records(tmp_path / "b") if r["kind"] == "measurement"]
    assert values_a and values_a == values_b


def test_invalid_bench_one_line_nothing_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bench.yaml"
    text = HW_BENCH.read_text().replace("baudrate: 115200", "baudrate: fast")
    bad.write_text(text.replace("device: ../devices/cs4.yaml", f"device: {REPO / 'fixtures/devices/cs4.yaml'}"))
    run = certify(tmp_path, "--bench", str(bad))
    assert run.returncode == 4
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if "baudrate" in ln]
    assert len(lines) == 1 and "field 'dut.baudrate'" in lines[0] and str(bad) in lines[0]
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
