"""Wall time of `stimrig certify` on the simulated bench, against the bench time it simulated.

Prints the wall time against the 60 s budget (issue 2) and, as the in-run baseline, the bench time
the run covered: virtual time lets the suite run many times faster than real time would.
Exit status 1 if the run fails or exceeds the budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 60.0
REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "rig.cli", "certify", "--results-dir", tmp],
            cwd=REPO, capture_output=True, text=True,
        )
        wall_s = time.perf_counter() - t0
        (run_dir,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    (end,) = [r for r in records if r["kind"] == "run_end"]
    tests = sum(n for outcome, n in end["counts"].items() if outcome != "marginal")
    bench_s = end.get("bench_time_s") or 0.0
    print(f"certify (simulated bench): {wall_s:.1f} s wall for {tests} tests, "
          f"ratio to the {BUDGET_S:.0f} s budget: {wall_s / BUDGET_S:.2f}")
    print(f"  baseline: {bench_s:.1f} s of bench time simulated in the same run, "
          f"{bench_s / wall_s:.1f}x faster than real time")
    if run.returncode != 0:
        print(run.stdout[-3000:])
        return 1
    return 0 if wall_s <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
