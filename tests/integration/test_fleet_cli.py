"""`stimrig fleet` end to end, as a user runs it: in a subprocess, on the shipped gym_20 (shortened)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import yaml

from rig.cli import main
from rig.evidence import SIMULATED_MARK

REPO = Path(__file__).resolve().parents[2]
GYM = REPO / "fixtures" / "scenarios" / "gym_20.yaml"


def fleet(cwd: Path, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rig.cli", "fleet", *args]
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env=env)


def short_gym(tmp_path: Path, duration_s: float = 8.0) -> Path:
    data = yaml.safe_load(GYM.read_text(encoding="utf-8"))
    data["duration_s"] = duration_s
    path = tmp_path / "gym_20_short.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def png_text(path: Path) -> dict[str, str]:
    """The text chunks of a PNG (tEXt, and iTXt uncompressed: matplotlib writes non-latin-1 text as iTXt)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = {}, 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            assert rest[0] == 0, "compressed iTXt"
            _language, _, rest = rest[2:].partition(b"\0")
            _translated, _, value = rest.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("utf-8")
        pos += 12 + length
    return out


def test_fleet_writes_a_simulated_report(tmp_path: Path) -> None:
    engine = "fast"
    scenario = short_gym(tmp_path)
    run = fleet(tmp_path, str(scenario), "--engine", engine, "--out", "out", "--seed", "42")
    assert run.returncode == 0, run.stdout + run.stderr
    (run_dir,) = (tmp_path / "out").iterdir()
    html = run_dir / "report.html"
    assert run.stdout.strip().splitlines()[-1] == f"report: {html.relative_to(tmp_path)}"
    assert "SIMULATED" in run.stdout

    page = html.read_text(encoding="utf-8")
    assert page.count(SIMULATED_MARK) >= 2 and "<title>SIMULATED" in page
    assert "seed" in page and "42" in page and engine in page
    assert 'src="data:image/png;base64,' in page and "<img" in page  # self-contained: plots embedded
    assert 'src="http' not in page and "<script" not in page

    with (run_dir / "devices.csv").open(encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == f"# {SIMULATED_MARK}" and "seed 42" in lines[1] and f"engine {engine}" in lines[1]
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 20 and {r["status"] for r in rows} == {"connected"}
    for key in ("mean_rssi_dBm", "per", "dropouts", "cutoffs", "time_disconnected_s", "latency_p50_s",
                "distance_mean_m", "commands_delivered"):
        assert key in rows[0]
    for name in ("latency_by_distance", "latency_by_fleet_size", "link_hold_by_distance", "dropouts"):
        assert (run_dir / f"{name}.csv").read_text(encoding="utf-8").startswith(f"# {SIMULATED_MARK}")

    pngs = sorted(run_dir.glob("*.png"))
    assert {p.stem for p in pngs} >= {"per_device", "latency_vs_distance", "latency_vs_fleet_size", "link_hold",
                                       "dropout_timeline", "distance_over_time"}
    for p in pngs:
        assert png_text(p).get("Description") == SIMULATED_MARK, p.name


def test_a_second_run_never_overwrites_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (same code path as the subprocess): two runs in the same second get two directories; the second
    uses the reference engine."""
    scenario = short_gym(tmp_path, 2.0)
    for engine in ("fast", "reference"):
        assert main(["fleet", str(scenario), "--engine", engine, "--out", str(tmp_path / "out"), "--devices", "3"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("report: ")]
    runs = sorted((tmp_path / "out").iterdir())
    assert len(runs) == 2 and len(set(printed)) == 2
    engines = set()
    for r in runs:
        lines = (r / "devices.csv").read_text().splitlines()
        assert lines[0] == f"# {SIMULATED_MARK}"
        engines.add(lines[1].split("engine ")[1].split(",")[0])
        assert len([line for line in lines if line and not line.startswith("#")]) == 1 + 3
        assert SIMULATED_MARK in (r / "report.html").read_text(encoding="utf-8")
    assert engines == {"fast", "reference"}


def test_bad_scenario_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    data = yaml.safe_load(GYM.read_text(encoding="utf-8"))
    data["controllers"][0]["capacity"] = 99
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    run = fleet(tmp_path, str(bad), "--out", "out")
    assert run.returncode == 2
    message = run.stderr.strip()
    assert "\n" not in message and "bad.yaml" in message and "capacity 99 exceeds" in message
    assert not (tmp_path / "out").exists()

    run = fleet(tmp_path, "no_such_scenario", "--out", "out")
    assert run.returncode == 2 and "file not found" in run.stderr and not (tmp_path / "out").exists()

    run = fleet(tmp_path, str(short_gym(tmp_path)), "--out", "out", "--devices", "21")
    assert run.returncode == 2 and "has 20 devices" in run.stderr and not (tmp_path / "out").exists()
