"""`stimrig certify --transport ble` end to end (a short selection, in a subprocess): the suite drives the
simulated device's GATT service with bleak; the bundle records that BLE was used (run.json, report), the
walk-away's dropout appears as link events rather than errors, and the bundle verifies. Under the seeded
fault link_loss_cutoff_late the same walk-away test fails over BLE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SELECTION = "walk_away_cutoff and ch1-max or unbonded"


def stimrig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "250"})


def test_the_suite_runs_over_ble_and_the_bundle_says_so(tmp_path: Path) -> None:
    run = stimrig("certify", "--transport", "ble", "--results-dir", str(tmp_path), "-k", SELECTION)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED (2 passed)" in run.stdout
    (bundle,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((bundle / "run.json").read_text())
    dut = summary["instruments"]["dut"]
    assert dut["transport"] == "ble" and dut["resource"] == "ble:CS-4 SIM-CS4-000042"
    assert dut["adapter"].startswith("bumble:tcp-client:") and dut["att_mtu"] == 247 and dut["paired"] is True
    report = (bundle / "report.html").read_text()
    assert "reached over\n<b>ble</b>" in report
    records = [json.loads(line) for line in (bundle / "results.jsonl").read_text().splitlines()]
    events = [str(r.get("event")) for r in records if r["kind"] == "link_event"]
    assert any("BLE connection to ble:CS-4 SIM-CS4-000042" in e and " lost at " in e for e in events), events
    assert any("re-established" in e for e in events), events
    assert stimrig("verify", str(bundle)).returncode == 0


def test_the_walk_away_over_ble_fails_with_the_late_cutoff_fault(tmp_path: Path) -> None:
    run = stimrig("certify", "--transport", "ble", "--fault", "link_loss_cutoff_late", "--results-dir", str(tmp_path),
                  "-k", "walk_away_cutoff and ch1-max")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "walk_away_cutoff_latency = 3.3" in run.stdout and "limits <= 1.6 s: FAIL" in run.stdout
