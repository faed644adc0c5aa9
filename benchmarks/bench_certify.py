"""Wall time of `stimrig certify` on the simulated bench, over serial and over BLE: the README's two certify
commands (`stimrig certify`, `stimrig certify --transport ble`), run as a new user runs them.

Prints each run's wall time against the 60 s budget (issue 2) with, as the in-run baseline, the bench time
the run covered (virtual time lets the suite run many times faster than real time would), and the BLE run's
wall time as a ratio to the serial run's, measured here one after the other (issue 7: the same suite over
bleak, against the simulated device's GATT service through the emulated HCI controller).

Each bundle is checked with `stimrig verify`; its run.json must give the verdict PASS with every requirement
proven, and name the transport the DUT was reached over. Exit status 1 if any of that fails, or the serial run
exceeds the budget. CI runs this as its acceptance of both commands.
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


def stimrig_command() -> list[str]:
    """The console script beside this Python (as the README runs it), else the module."""
    script = Path(sys.executable).parent / "stimrig"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rig.cli"]


def certify(transport: str, tmp: str) -> tuple[float, dict, dict, int]:
    """(wall time, run_end record, run.json, exit status) of one certify run (serial: the bench's default)."""
    t0 = time.perf_counter()
    run = subprocess.run(
        [*stimrig_command(), "certify", *(["--transport", transport] if transport != "serial" else []),
         "--results-dir", tmp, "--operator", "CI benchmark"],
        cwd=REPO, capture_output=True, text=True,
    )
    wall_s = time.perf_counter() - t0
    (run_dir,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    (end,) = [r for r in records if r["kind"] == "run_end"]
    verify = subprocess.run([*stimrig_command(), "verify", str(run_dir)], cwd=REPO, capture_output=True, text=True)
    if run.returncode != 0 or verify.returncode != 0:
        print(run.stdout[-3000:], verify.stdout[-1000:])
    status = run.returncode or verify.returncode
    return wall_s, end, json.loads((run_dir / "run.json").read_text()), status


def main() -> int:
    walls: dict[str, float] = {}
    failed = False
    for transport in ("serial", "ble"):
        with tempfile.TemporaryDirectory() as tmp:
            wall_s, end, run_json, status = certify(transport, tmp)
        walls[transport] = wall_s
        tests = sum(n for outcome, n in end["counts"].items() if outcome != "marginal")
        bench_s = end.get("bench_time_s") or 0.0
        dut = run_json.get("instruments", {}).get("dut", {})
        print(f"certify --transport {transport} (simulated bench): {wall_s:.1f} s wall for {tests} tests, "
              f"verdict {run_json.get('verdict')}, bundle {'VERIFIED' if status == 0 else 'NOT VERIFIED'}; "
              f"ratio to the {BUDGET_S:.0f} s budget: {wall_s / BUDGET_S:.2f}")
        print(f"  baseline: {bench_s:.1f} s of bench time simulated in the same run, "
              f"{bench_s / wall_s:.1f}x faster than real time")
        print(f"  DUT reached over: {dut.get('transport')} ({dut.get('resource')}"
              + (f", adapter {dut.get('adapter')}, ATT MTU {dut.get('att_mtu')}" if transport == "ble" else "") + ")")
        proven = run_json.get("requirements_proven", {})
        print(f"  requirements proven: {proven.get('proven')} of {proven.get('of')}; tests {run_json.get('tests')}")
        failed |= (status != 0 or dut.get("transport") != transport or run_json.get("verdict") != "PASS"
                   or proven.get("proven") != proven.get("of"))
    print(f"BLE run / serial run wall time, measured here: {walls['ble'] / walls['serial']:.2f}")
    return 1 if failed or walls["serial"] > BUDGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
