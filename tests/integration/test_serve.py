"""`stimrig serve` as an external tool sees it: a separate process, pyvisa over TCP, pyserial on the pty."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from rig.dut import SerialDutLink

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["--realtime", "--virtual"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "serve", "--port", "0", "--start", "tens_hf:1:25", request.param],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C" in line or not line:
            break
    text = "".join(lines)
    resource = re.search(r"(TCPIP0::\S+::SOCKET)", text)
    port = re.search(r"stimulator \S+ serial port \(controller radio bridge\): (\S+)", text)
    try:
        assert resource and port, text
        yield resource.group(1), port.group(1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        assert "all outputs off" in out


def test_external_pyvisa_client(served: tuple[str, str]) -> None:
    resource, dut_port = served
    rm = pyvisa.ResourceManager("@py")
    scope = rm.open_resource(resource, read_termination="\n", write_termination="\n")
    scope.timeout = 20_000
    try:
        idn = scope.query("*IDN?").split(",")
        assert idn[0] == "KEYSIGHT TECHNOLOGIES" and len(idn) == 4
        scope.write(":CHANnel1:PROBe 10")
        scope.write(":CHANnel1:SCALe 5")
        scope.write(":TIMebase:SCALe 50e-6")
        scope.write(":TRIGger:EDGE:SOURce CHANnel1")
        scope.write(":TRIGger:EDGE:LEVel 12.4")  # only full-amplitude pulses (after the ramp)
        scope.write(":TRIGger:SWEep NORMal")
        scope.write(":WAVeform:FORMat BYTE")
        scope.write(":WAVeform:POINts:MODE RAW")
        scope.write(":WAVeform:POINts 10000")
        scope.write(":DIGitize CHANnel1")
        assert scope.query("*OPC?").strip() == "1"
        pre = scope.query(":WAVeform:PREamble?").split(",")
        assert len(pre) == 10
        points, yinc, yorg, yref = int(pre[2]), float(pre[7]), float(pre[8]), float(pre[9])
        data = scope.query_binary_values(":WAVeform:DATA?", datatype="B", container=np.array)
        assert data.size == points
        volts = (data.astype(float) - yref) * yinc + yorg
        # 25 mA into 500 ohm = 12.5 V, both phases of the biphasic pulse
        assert volts.max() == pytest.approx(12.5, abs=0.5)
        assert volts.min() == pytest.approx(-12.5, abs=0.5)
        assert scope.query(":SYSTem:ERRor?").startswith("+0")
    finally:
        scope.close()
    link = SerialDutLink(dut_port, baudrate=115200, reply_timeout_s=5, ceiling_mA=110)
    try:
        assert link.identify().model == "CS-4"
        assert link.status()[0].program == "tens_hf"
    finally:
        link.close()
