"""Wall time of `stimrig validate-suite` (full suite, 2 workers) against its 10-minute budget.

The validation runs the certification suite once on clean simulated firmware and once per catalogued
fault (N + 1 runs), two at a time. As the in-run baseline it first times one clean `stimrig certify`
run, and prints validation / ((N + 1) x single run): about 1.0 would mean no gain from the second
worker, 0.5 a perfect two-fold parallel speed-up.
Exit status 1 if the validation does not pass or exceeds the budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 600.0
WORKERS = 2
REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "COLUMNS": "160"}
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    return time.perf_counter() - t0, run


def main() -> int:
    from simulator.faults import FAULTS

    runs = len(FAULTS) + 1
    with tempfile.TemporaryDirectory() as tmp:
        single_s, single = timed([sys.executable, "-m", "rig.cli", "certify", "--results-dir", f"{tmp}/single"])
        wall_s, val = timed([sys.executable, "-m", "rig.cli_validate", "--workers", str(WORKERS),
                             "--out", f"{tmp}/validation"])
    ratio = wall_s / (runs * single_s)
    print(f"validate-suite (full suite, simulated bench, {runs} runs, {WORKERS} workers): {wall_s:.1f} s wall, "
          f"ratio to the {BUDGET_S:.0f} s budget: {wall_s / BUDGET_S:.2f}")
    print(f"  baseline: one clean certify run {single_s:.1f} s wall; validation / ({runs} x single run) = "
          f"{ratio:.2f}, i.e. a parallel speed-up of {1 / ratio:.2f}x with {WORKERS} workers")
    status = 0
    if single.returncode != 0:
        print("the baseline certify run did not pass:\n" + single.stdout[-3000:])
        status = 1
    if val.returncode != 0:
        print(f"validate-suite exited {val.returncode}:\n" + val.stdout[-4000:] + val.stderr[-2000:])
        status = 1
    return status if wall_s <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
