"""Ctrl-C on a running `stimrig certify`: the run stops, every output is stopped, the record is closed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _results(root: Path) -> list[dict]:
    runs = [p for p in root.iterdir() if p.is_dir()] if root.exists() else []
    if not runs or not (runs[0] / "results.jsonl").exists():
        return []
    return [json.loads(line) for line in (runs[0] / "results.jsonl").read_text().splitlines() if line.strip()]


def test_sigint_stops_outputs_and_closes_the_record(tmp_path: Path) -> None:
    root = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "certify", "--results-dir", str(root)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(r["kind"] == "test_result" for r in _results(root)) < 5:
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "INTERRUPTED (every output was stopped)" in out
    records = _results(root)
    (end,) = [r for r in records if r["kind"] == "run_end"]
    assert end["exit_status"] == 2
    assert records[-1]["kind"] == "bundle_sealed" and records[-1]["status"] == "interrupted"
    assert end["outputs_after_stop_mA"] == {"1": 0.0, "2": 0.0, "3": 0.0, "4": 0.0}
    assert 5 <= sum(r["kind"] == "test_result" for r in records) < 104
