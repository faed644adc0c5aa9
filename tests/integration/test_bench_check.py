"""`stimrig bench check`: the inventory a lab engineer runs first. Against the simulated bench it lists
every instrument and DUT with identity, firmware and calibration; against a bench with nothing
attached it lists each failure with its reason, and exits 1; a bad bench file gets one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rig.bench.serve_state import read_serve_state, remove_serve_state, write_serve_state

REPO = Path(__file__).resolve().parents[2]


def bench_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rig.cli", "bench", "check", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "250", **(env or {})})


def test_the_simulated_bench_lists_everything(tmp_path: Path) -> None:
    run = bench_check("--bench", "fixtures/benches/sim.yaml", env={"XDG_RUNTIME_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "a virtual bench started for this check" in out
    for line in ("OK   oscilloscope:", "KEYSIGHT TECHNOLOGIES DSO-X 3034T, serial MY00000001",
                 "OK   DUT (stimulator): /dev/pts/", "CS-4, serial SIM-CS4-000042", "firmware 1.4.2",
                 "OK   relay load box:", "OK   RF attenuator:", "Mini-Circuits RCDAT-6000-90",
                 "OK   bystander stimulator:", "SIM-CS4-000043",
                 "OK   DUT over BLE: bumble:tcp-client:127.0.0.1:", "advertising as 'CS-4 SIM-CS4-000042'",
                 "all 6 answered"):
        assert line in out, (line, out)


def test_a_bench_with_nothing_attached_lists_each_failure() -> None:
    run = bench_check("--bench", "fixtures/benches/lab-keysight-usbserial.yaml")
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "FAIL oscilloscope: TCPIP0::127.0.0.1::5025::SOCKET" in out and "Connection refused" in out
    assert "FAIL DUT (stimulator): /dev/ttyUSB0" in out and "cannot open serial port" in out
    assert "FAIL bystander stimulator: /dev/ttyUSB1" in out
    assert "calibration: in date: due 2027-03-02" in out or "calibration: OVERDUE" in out
    # no BLE device in reach (and, on a machine without BlueZ, no Bluetooth stack): one line, named
    assert "FAIL DUT over BLE: system" in out and "ble:CS-4 SIM-CS4-000042: scan on BLE adapter 'system'" in out
    assert "4 of 5 could not be reached" in out
    assert "Traceback" not in out + run.stderr


def test_a_bad_bench_file_gets_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bench.yaml"
    bad.write_text((REPO / "fixtures/benches/sim.yaml").read_text().replace("seed: 20261123", "seed: -1")
                   .replace("../", f"{REPO}/fixtures/"))
    run = bench_check("--bench", str(bad))
    assert run.returncode == 2
    assert "seed" in run.stdout and "Traceback" not in run.stdout + run.stderr


def test_serve_state_is_read_only_while_its_process_lives(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_serve_state("fixtures/benches/sim.yaml", {"scope_resource": "TCPIP0::127.0.0.1::5025::SOCKET"}, path)
    state = read_serve_state(path)
    assert state is not None and state.pid == os.getpid()
    path.write_text(path.read_text().replace(str(os.getpid()), "999999999"))
    assert read_serve_state(path) is None  # its process is gone: stale
    write_serve_state("b", {}, path)
    remove_serve_state(path)
    assert not path.exists()
