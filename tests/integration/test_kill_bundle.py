"""A run killed at any moment (SIGKILL: no handler, no cleanup) leaves a bundle that `stimrig verify`
reads: incomplete, with every record written so far verifying; and a byte changed in it afterwards
is caught and named. Real `stimrig certify` processes, killed at seeded random moments."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KILLS = 6
SEED = 20261124


def verify(bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", "verify", str(bundle)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_bundles_that_verify_as_incomplete(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    incomplete = 0
    for n in range(KILLS):
        root = tmp_path / f"kill{n}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "rig.cli", "certify", "--results-dir", str(root)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(2.5, 20.0))  # start-up takes ~3 s; the whole suite ~30 s more
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        bundles = [p for p in root.iterdir() if p.is_dir()] if root.exists() else []
        assert len(bundles) <= 1
        if not bundles:
            continue  # killed before its first record: nothing to verify
        result = verify(bundles[0])
        if finished:
            assert result.returncode == 0, result.stdout
            continue
        assert result.returncode == 3, result.stdout + result.stderr
        assert "INCOMPLETE" in result.stdout and "Traceback" not in result.stdout + result.stderr
        assert ("records written verify" in result.stdout or "before its first record" in result.stdout
                or "empty" in result.stdout), result.stdout
        incomplete += 1
        # then a byte of an earlier record changed: caught and named
        results = bundles[0] / "results.jsonl"
        lines = results.read_bytes().split(b"\n")
        if len(lines) > 3:
            data = bytearray(results.read_bytes())
            data[rng.randrange(len(lines[0]) + 1, len(lines[0]) + len(lines[1]))] ^= 0x04
            results.write_bytes(bytes(data))
            tampered = verify(bundles[0])
            assert tampered.returncode == 1 and "results.jsonl line" in tampered.stdout, tampered.stdout
    assert incomplete >= KILLS // 2, f"only {incomplete} of {KILLS} kills landed mid-run"
