"""The evidence bundle a reviewer gets, end to end: `stimrig certify` (a short selection, in a subprocess)
writes a bundle whose report shows the SIMULATED mark, the traceability matrix, the output
specification table and the waveform tracings, and `stimrig verify` passes on it; a byte flipped in it
fails verification naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def stimrig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "250"})


def test_a_certify_run_leaves_a_report_a_reviewer_can_read_and_check(tmp_path: Path) -> None:
    run = stimrig("certify", "--results-dir", str(tmp_path), "--operator", "QA tester", "-k",
                  "output_specification and tens_hf or watchdog")
    assert run.returncode == 0, run.stdout + run.stderr
    (bundle,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = (bundle / "report.html").read_text()
    mark = "SIMULATED — not evidence for a real device"
    assert report.count(mark) >= 2  # the banner, and the running head of every printed page
    for section in ("4. Traceability matrix", "5. Output specification", "6. Waveform tracings"):
        assert section in report
    assert report.count("data:image/png;base64,") == 5  # tens_hf: 500 ohm train, 3 single pulses, open circuit
    assert "SAFE-WATCHDOG" in report and "OUT-SPEC-TABLE" in report and "QA tester" in report
    assert "NOT COVERED" in report  # a selection proves only some requirements, and the report says so
    summary = json.loads((bundle / "run.json").read_text())
    assert summary["verdict"] == "NOT COVERED" and summary["mark"] == mark
    assert summary["instruments"]["scope"]["model"] == "DSO-X 3034T"
    assert summary["dut"]["serial"] == "SIM-CS4-000042"
    spec = (bundle / "output_specification.csv").read_text().splitlines()
    assert spec[0] == f"# {mark}" and spec[2].startswith("tens_hf,")
    audit = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in audit] == ["run_start", "run_end"]

    verified = stimrig("verify", str(bundle))
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout

    png = sorted((bundle / "captures").glob("*.png"))[0]
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0x10
    png.write_bytes(bytes(data))
    tampered = stimrig("verify", str(bundle))
    assert tampered.returncode == 1 and f"captures/{png.name}: altered" in tampered.stdout, tampered.stdout


def test_an_unknown_requirement_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_x.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.requirement('SAFE-NO-SUCH-THING')\n"
        "def test_x(dut, measure):\n    raise AssertionError('must not run')\n"
    )
    run = stimrig("certify", "--suite", str(suite), "--results-dir", str(tmp_path / "results"))
    assert run.returncode == 4, run.stdout + run.stderr
    assert "requirement 'SAFE-NO-SUCH-THING' is not in fixtures/requirements.yaml" in run.stdout + run.stderr
    assert not (tmp_path / "results").exists() or not any(p.is_dir() for p in (tmp_path / "results").iterdir())
