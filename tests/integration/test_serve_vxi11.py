"""VXI-11 and the second scope family as an external tool sees them: `stimrig serve` in its own process,
plain pyvisa-py on `TCPIP0::127.0.0.1::inst0::INSTR` (portmapper on the port serve prints), the Rigol
raw socket, `stimrig bench check` finding a running serve, and the certification suite over VXI-11."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyvisa

from rig.instruments.vxi11_port import portmapper_port_set_to

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "rig.cli", "serve", "--virtual", "--port", "0",
                             "--portmapper-port", "0", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C" in line or not line:
            break
    try:
        yield "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_prints_every_resource_and_answers_on_vxi11(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    with serve(env=env) as text:
        socket_res = re.search(r"raw SCPI socket: (TCPIP0::\S+::SOCKET)", text)
        vxi = re.search(r"VXI-11 \(portmapper on TCP (\d+)\): (TCPIP0::127\.0\.0\.1::inst0::INSTR)", text)
        assert socket_res and vxi, text
        for what in ("serial port (controller radio bridge): /dev/pts/", "RF attenuator", "relay load box",
                     "bystander stimulator serial port", "rpc.PMAP_PORT =", "over BLE, advertising as 'CS-4 ",
                     "emulated Bluetooth controller at bumble:tcp-client:127.0.0.1:"):
            assert what in text, (what, text)
        with portmapper_port_set_to(int(vxi.group(1))):
            rm = pyvisa.ResourceManager("@py")
            scope = rm.open_resource(vxi.group(2))
            try:
                assert scope.query("*IDN?").startswith("KEYSIGHT TECHNOLOGIES,DSO-X 3034T")
            finally:
                scope.close()
        check = subprocess.run([sys.executable, "-m", "rig.cli", "bench", "check"], cwd=REPO, capture_output=True,
                               text=True, timeout=120, env={**os.environ, **env, "COLUMNS": "250"})
        assert check.returncode == 0, check.stdout
        assert "addresses from stimrig serve" in check.stdout and "all 6 answered" in check.stdout


def test_the_rigol_answers_on_its_raw_socket() -> None:
    with serve("--bench", "fixtures/benches/sim-rigol.yaml") as text:
        res = re.search(r"raw SCPI socket: (TCPIP0::\S+::SOCKET)", text)
        assert res, text
        scope = pyvisa.ResourceManager("@py").open_resource(res.group(1), read_termination="\n")
        try:
            assert scope.query("*IDN?").startswith("RIGOL TECHNOLOGIES,DS1104Z")
            assert scope.query(":TRIGger:STATus?").strip() in ("RUN", "WAIT", "TD", "AUTO", "STOP")
        finally:
            scope.close()


def test_the_certification_suite_runs_over_vxi11(tmp_path: Path) -> None:
    text = (REPO / "fixtures/benches/sim.yaml").read_text().replace("../", f"{REPO}/fixtures/")
    bench = tmp_path / "sim-vxi11.yaml"
    bench.write_text(text.replace("  realtime: false", "  realtime: false\n  scope_transport: vxi11"))
    run = subprocess.run([sys.executable, "-m", "rig.cli", "certify", "--bench", str(bench), "--results-dir",
                          str(tmp_path / "results"), "-k", "output_accuracy and tens_hf and ch1 or watchdog and ch1"],
                         cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "250"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED (6 passed)" in run.stdout, run.stdout
    (bundle,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert "::inst0::INSTR" in (bundle / "run.json").read_text()
