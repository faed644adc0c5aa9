"""The emulated Keysight InfiniiVision, driven the way programming-guide code drives a real one:
real pyvisa-py over a raw TCP socket on an ephemeral port, against a small fake bench (a virtual
clock, an analytic pulse generator, seeded random streams)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import pyvisa

from simulator.instruments.keysight import KeysightInfiniiVision
from simulator.instruments.scope_model import load_scope_model
from simulator.instruments.socket_server import ScpiSocketServer

MODEL = load_scope_model()
PHYSICAL_PROBE = 10.0  # a 10:1 probe is wired on every channel of the fake bench


@dataclass
class PulseTrain:
    """Rectangular pulses at the probe tip: ``amplitude_V`` from ``first_edge_s`` on, every ``period_s``.

    Optional linear edges of ``edge_s`` (10 %..90 % is 0.8 * edge_s). Records any request for the future.
    """

    host: FakeHost
    amplitude_V: float
    period_s: float
    width_s: float
    first_edge_s: float
    base_V: float = 0.0
    edge_s: float = 0.0

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        t = t0_s + np.arange(n) * dt_s
        if n and t[-1] > self.host.now() + 1e-12:
            self.host.future_renders.append((t[-1], self.host.now()))
        phase = np.mod(t - self.first_edge_s, self.period_s)
        if self.edge_s > 0:
            rise = np.clip(phase / self.edge_s, 0.0, 1.0)
            fall = np.clip((phase - self.width_s) / self.edge_s, 0.0, 1.0)
            shape = rise - fall
        else:
            shape = (phase < self.width_s).astype(np.float64)
        shape[t < self.first_edge_s] = 0.0
        return self.base_V + self.amplitude_V * shape


@dataclass
class FakeHost:
    """A ScopeHost: virtual clock that moves only on advance_to, wiring, seeded streams."""

    seed: int = 1
    t: float = 0.0
    wiring: dict[int, PulseTrain] = field(default_factory=dict)
    future_renders: list[tuple[float, float]] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def advance_to(self, t_s: float) -> None:
        self.t = max(self.t, t_s)

    def signal(self, channel: int) -> PulseTrain | None:
        return self.wiring.get(channel)

    def probe_attenuation(self, channel: int) -> float:
        return PHYSICAL_PROBE

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(stream.encode())])


@dataclass
class Bench:
    host: FakeHost
    scope: KeysightInfiniiVision
    server: ScpiSocketServer
    rm: pyvisa.ResourceManager
    opened: list[Any] = field(default_factory=list)

    def open(self, timeout_ms: int = 10_000) -> pyvisa.resources.MessageBasedResource:
        inst: Any = self.rm.open_resource(
            f"TCPIP0::127.0.0.1::{self.server.port}::SOCKET",
            read_termination="\n",
            write_termination="\n",
        )
        inst.timeout = timeout_ms
        self.opened.append(inst)
        return inst

    def close_resources(self) -> None:
        """Close what this bench opened. Never rm.close(): pyvisa-py shares one session per library,
        so closing it would close every other resource in the process (e.g. another suite's scope)."""
        for inst in self.opened:
            with contextlib.suppress(Exception):
                inst.close()


def make_bench(seed: int = 1, **scope_kwargs: float) -> Bench:
    host = FakeHost(seed=seed)
    # 5 V pulses at the tip (0.5 V at the BNC through the 10:1 probe), 20 us wide, every 200 us
    host.wiring[1] = PulseTrain(host, amplitude_V=5.0, period_s=200e-6, width_s=20e-6, first_edge_s=30e-6)
    host.wiring[2] = PulseTrain(host, amplitude_V=-3.0, period_s=200e-6, width_s=50e-6, first_edge_s=30e-6)
    scope = KeysightInfiniiVision(host, MODEL, serial="MY12345678", **scope_kwargs)  # type: ignore[arg-type]
    server = ScpiSocketServer(scope.session, port=0).start()
    return Bench(host, scope, server, pyvisa.ResourceManager("@py"))


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = make_bench(search_horizon_s=0.5)
    yield b
    b.server.stop()
    b.close_resources()
    assert b.host.future_renders == [], "the scope rendered the future"


@pytest.fixture
def scope(bench: Bench) -> Iterator[pyvisa.resources.MessageBasedResource]:
    inst = bench.open()
    yield inst
    inst.close()


PULSE_SETUP = (
    "*RST;:CHANnel1:PROBe 10;:CHANnel1:SCALe 1;:CHANnel1:OFFSet 2.5;"
    ":TIMebase:SCALe 10e-6;:TIMebase:REFerence LEFT;:TIMebase:POSition 0;"
    ":TRIGger:MODE EDGE;:TRIGger:SWEep NORMal;:TRIGger:EDGE:SOURce CHANnel1;"
    ":TRIGger:EDGE:LEVel 2.5;:TRIGger:EDGE:SLOPe POSitive;"
    ":WAVeform:SOURce CHANnel1;:WAVeform:POINts:MODE RAW;:WAVeform:POINts 8000000"
)


def preamble(inst: pyvisa.resources.MessageBasedResource) -> list[str]:
    return inst.query(":WAVeform:PREamble?").split(",")


def binary(inst: Any, command: str, datatype: Any, big_endian: bool = False) -> np.ndarray:
    """The programming guide's block read, as third-party code does it with pyvisa."""
    return np.asarray(
        inst.query_binary_values(command, datatype=datatype, is_big_endian=big_endian, container=np.array)
    )


def read_volts(inst: pyvisa.resources.MessageBasedResource) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """BYTE, unsigned: the programming guide's recipe, scaled with the preamble."""
    pre = preamble(inst)
    codes = binary(inst, ":WAVeform:DATA?", "B")
    xinc, xorg, xref = float(pre[4]), float(pre[5]), int(pre[6])
    yinc, yorg, yref = float(pre[7]), float(pre[8]), int(pre[9])
    volts = (codes.astype(float) - yref) * yinc + yorg
    times = (np.arange(codes.size) - xref) * xinc + xorg
    return times, volts, pre


def crossings(times: np.ndarray, volts: np.ndarray, level: float, rising: bool = True) -> np.ndarray:
    above = volts >= level if rising else volts <= level
    idx = np.flatnonzero(~above[:-1] & above[1:])
    return times[idx + 1]


def test_idn_comes_from_the_fixture_with_the_serial_given(scope: pyvisa.resources.MessageBasedResource) -> None:
    assert scope.query("*IDN?") == "KEYSIGHT TECHNOLOGIES,DSO-X 3034T,MY12345678,07.20.2017102614"
    assert scope.query("*idn?") == scope.query(":*IDN?")


def test_preamble_has_the_ten_fields_of_the_programming_guide(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(PULSE_SETUP)
    assert scope.query(":DIGitize;*OPC?") == "1"
    for fmt, code in (("BYTE", 0), ("WORD", 1), ("ASCii", 4)):
        scope.write(f":WAVeform:FORMat {fmt}")
        pre = preamble(scope)
        assert len(pre) == 10
        ints = [int(pre[i]) for i in (0, 1, 2, 3, 6, 9)]  # format, type, points, count, xreference, yreference
        floats = [float(pre[i]) for i in (4, 5, 7, 8)]  # xincrement, xorigin, yincrement, yorigin
        assert all(p.startswith(("+", "-")) for p in pre)
        assert ints[0] == code and ints[1] == 0 and ints[3] == 1 and ints[4] == 0
        assert ints[2] > 0 and floats[0] > 0 and floats[2] > 0
        assert scope.query(":WAVeform:FORMat?") == {"BYTE": "BYTE", "WORD": "WORD", "ASCii": "ASC"}[fmt]
    assert scope.query(":WAVeform:XINCrement?") == pre[4] and scope.query(":WAVeform:YORigin?") == pre[8]
    assert scope.query(":SYSTem:ERRor?") == '+0,"No error"'


def test_byte_capture_reproduces_the_pulse_amplitude_and_timing(
    scope: pyvisa.resources.MessageBasedResource,
) -> None:
    scope.write(PULSE_SETUP)
    assert scope.query(":DIGitize CHANnel1;*OPC?") == "1"
    assert scope.query(":TER?") == "+1" and scope.query(":TER?") == "+0"  # read clears
    times, volts, pre = read_volts(scope)
    yinc, xinc = float(pre[7]), float(pre[4])
    assert xinc == pytest.approx(1 / float(scope.query(":ACQuire:SRATe?")))
    assert volts.size == int(scope.query(":ACQuire:POINts?")) == int(pre[2])
    assert times[0] == pytest.approx(-10e-6) and times[-1] == pytest.approx(90e-6 - xinc)  # LEFT: 1 div pre-trigger
    high = volts[(times > 1e-6) & (times < 19e-6)]
    low = volts[(times > 21e-6) & (times < 80e-6)]
    assert np.mean(high) == pytest.approx(5.0, abs=yinc)  # 5 V tip / 10:1 probe * :PROBe 10
    assert np.mean(low) == pytest.approx(0.0, abs=yinc)
    rise, fall = crossings(times, volts, 2.5), crossings(times, volts, 2.5, rising=False)
    assert rise[0] == pytest.approx(0.0, abs=4 * xinc)  # the trigger is at t = 0
    assert fall[0] - rise[0] == pytest.approx(20e-6, abs=3 * xinc)  # pulse width


@pytest.mark.parametrize(
    ("reference", "divisions", "position_s"),
    [("LEFT", 1, 0.0), ("CENTer", 5, 0.0), ("RIGHt", 9, 0.0), ("CENTer", 5, 12e-6), ("LEFT", 1, -5e-6)],
)
def test_the_trigger_sits_where_reference_and_position_put_it(
    scope: pyvisa.resources.MessageBasedResource, reference: str, divisions: int, position_s: float
) -> None:
    scope.write(PULSE_SETUP)
    scope.write(f":TIMebase:REFerence {reference};POSition {position_s}")
    assert scope.query(":TIMebase:REFerence?") == reference[:4].upper()
    assert scope.query(":DIGitize;*OPC?") == "1"
    times, volts, pre = read_volts(scope)
    xinc = float(pre[4])
    assert float(pre[5]) == pytest.approx(position_s - divisions * 10e-6)  # left edge, relative to trigger
    rise = crossings(times, volts, 2.5)
    assert np.min(np.abs(rise)) < 4 * xinc  # a rising crossing of the level at t = 0


def test_word_and_ascii_transfers_match_byte(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(PULSE_SETUP + ";:WAVeform:POINts:MODE NORMal;:WAVeform:POINts 1000")
    assert scope.query(":DIGitize;*OPC?") == "1"
    _t, byte_volts, _ = read_volts(scope)
    assert byte_volts.size <= 1000
    for order, big in (("MSBFirst", True), ("LSBFirst", False)):
        for unsigned, dtype in (("1", "H"), ("0", "h")):
            scope.write(f":WAVeform:FORMat WORD;:WAVeform:BYTeorder {order};:WAVeform:UNSigned {unsigned}")
            pre = preamble(scope)
            data = binary(scope, ":WAVeform:DATA?", dtype, big_endian=big)
            volts = (data.astype(float) - int(pre[9])) * float(pre[7]) + float(pre[8])
            np.testing.assert_allclose(volts, byte_volts, atol=1e-9)
    scope.write(":WAVeform:FORMat BYTE;:WAVeform:UNSigned 0")
    pre = preamble(scope)
    signed = binary(scope, ":WAVeform:DATA?", "b")
    assert int(pre[9]) == 0
    np.testing.assert_allclose(signed * float(pre[7]) + float(pre[8]), byte_volts, atol=1e-9)
    scope.write(":WAVeform:FORMat ASCii")
    raw = scope.query(":WAVeform:DATA?")
    assert raw.startswith("#8") and int(raw[2:10]) == len(raw) - 10  # InfiniiVision sends ASCii as a block
    ascii_volts = np.array([float(v) for v in raw[10:].split(",")])
    np.testing.assert_allclose(ascii_volts, byte_volts, rtol=1e-5, atol=1e-6)


def test_transfer_points_follow_points_and_mode(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(PULSE_SETUP)
    assert scope.query(":DIGitize;*OPC?") == "1"
    n_raw = int(scope.query(":ACQuire:POINts?"))
    assert n_raw == 500_000  # 100 us at 5 GSa/s (one channel of the pair: interleaved)
    assert int(scope.query(":WAVeform:POINts?")) == n_raw
    scope.write(":WAVeform:POINts:MODE NORMal")
    assert int(scope.query(":WAVeform:POINts?")) <= MODEL.acquisition.measurement_record_max_pts
    scope.write(":WAVeform:POINts:MODE RAW;:WAVeform:POINts 1000")
    pts = int(scope.query(":WAVeform:POINts?"))
    assert 0 < pts <= 1000 and int(preamble(scope)[2]) == pts
    assert float(preamble(scope)[4]) == pytest.approx(n_raw / 1000 / 5e9, rel=0.01)
    scope.write(":WAVeform:POINts MAX")
    assert scope.query(":WAVeform:POINts:MODE?") == "MAX" and int(scope.query(":WAVeform:POINts?")) == n_raw
    scope.write(":WAVeform:POINts 99;:WAVeform:POINts 100.5")
    assert scope.query(":SYSTem:ERRor?") == '-222,"Data out of range"'
    assert scope.query(":SYSTem:ERRor?") == '-222,"Data out of range"'
    scope.write(":CHANnel2:DISPlay 1")  # both channels of the pair on: half rate, half memory
    assert float(scope.query(":ACQuire:SRATe?")) == pytest.approx(2.5e9)


def test_same_seed_same_bytes_other_seed_other_noise() -> None:
    def capture(seed: int) -> bytes:
        b = make_bench(seed=seed, search_horizon_s=0.5)
        try:
            inst = b.open()
            inst.write(PULSE_SETUP + ";:CHANnel1:SCALe 0.02;:CHANnel1:OFFSet 0")  # noise visible at 20 mV/div
            inst.write(":TRIGger:EDGE:LEVel 0.01;:WAVeform:POINts 20000")
            assert inst.query(":DIGitize;*OPC?") == "1"
            data = binary(inst, ":WAVeform:DATA?", "B").astype(np.uint8).tobytes()
            inst.close()
            return bytes(data)
        finally:
            b.server.stop()
            b.close_resources()

    first, again, other = capture(7), capture(7), capture(8)
    assert first == again
    assert first != other
    a, c = np.frombuffer(first, np.uint8).astype(float), np.frombuffer(other, np.uint8).astype(float)
    assert abs(np.mean(a) - np.mean(c)) < 1.0  # same signal, different noise


def test_noise_is_visible_at_small_scales_and_hidden_by_quantisation_at_large_ones(
    bench: Bench, scope: pyvisa.resources.MessageBasedResource
) -> None:
    bench.host.wiring[1] = PulseTrain(bench.host, 0.0, 1.0, 0.5, 0.0)  # 0 V DC at the tip
    scope.write("*RST;:CHANnel1:PROBe 10;:TIMebase:SCALe 1e-6;:TRIGger:SWEep AUTO;:WAVeform:POINts:MODE RAW")
    scope.write(":WAVeform:POINts 8000000")

    def spread(scale: float) -> tuple[float, float]:
        scope.write(f":CHANnel1:SCALe {scale}")
        assert scope.query(":DIGitize;*OPC?") == "1"
        _t, volts, pre = read_volts(scope)
        return float(np.std(volts)), float(pre[7])

    small_sd, small_lsb = spread(0.02)  # 2 mV/div at the BNC: noise of ~0.2 mV is several LSB
    assert small_sd > 2 * small_lsb
    expected = 10 * np.hypot(MODEL.vertical.noise_floor_rms_V, MODEL.vertical.noise_fraction_of_full_scale * 8e-3 * 2)
    assert small_sd == pytest.approx(expected, rel=0.2)
    large_sd, large_lsb = spread(5.0)  # 0.5 V/div at the BNC: below half an LSB of noise
    assert large_sd < 0.5 * large_lsb


def test_a_wrong_probe_setting_gives_a_wrongly_scaled_reading(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(PULSE_SETUP)
    scope.write(":CHANnel1:PROBe 1;:CHANnel1:SCALe 0.1;:CHANnel1:OFFSet 0.25;:TRIGger:EDGE:LEVel 0.25")
    assert float(scope.query(":CHANnel1:PROBe?")) == 1.0
    assert scope.query(":DIGitize;*OPC?") == "1"
    times, volts, pre = read_volts(scope)
    high = volts[(times > 1e-6) & (times < 19e-6)]
    assert np.mean(high) == pytest.approx(0.5, abs=float(pre[7]))  # the BNC voltage, not the 5 V at the tip


def test_probe_setting_keeps_the_screen_sensitivity(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write("*RST;:CHANnel1:SCALe 0.5;:CHANnel1:OFFSet 0.1;:CHANnel1:PROBe 10")
    assert float(scope.query(":CHANnel1:SCALe?")) == pytest.approx(5.0)
    assert float(scope.query(":CHANnel1:OFFSet?")) == pytest.approx(1.0)


def test_the_bandwidth_limit_slows_the_edges(bench: Bench, scope: pyvisa.resources.MessageBasedResource) -> None:
    def rise_time(bwl: str) -> float:
        scope.write(PULSE_SETUP + f";:TIMebase:SCALe 10e-9;:TIMebase:REFerence CENTer;:CHANnel1:BWLimit {bwl}")
        assert scope.query(":DIGitize;*OPC?") == "1"
        times, volts, _ = read_volts(scope)
        t10 = crossings(times, volts, 0.5)
        t90 = crossings(times, volts, 4.5)
        return float(t90[t90 > t10[0]][0] - t10[0])

    full, limited = rise_time("OFF"), rise_time("ON")
    tau_full = 1 / (2 * np.pi * MODEL.vertical.bandwidth_Hz)
    tau_bwl = 1 / (2 * np.pi * MODEL.vertical.bw_limit_Hz)
    assert full == pytest.approx(np.log(9) * tau_full, abs=0.5e-9)  # ~1 ns at 350 MHz
    assert limited == pytest.approx(np.log(9) * tau_bwl, rel=0.1)  # ~17.5 ns at 20 MHz


def test_while_running_the_preamble_describes_the_data_that_follows(
    scope: pyvisa.resources.MessageBasedResource,
) -> None:
    scope.write(PULSE_SETUP + ";:TRIGger:SWEep AUTO;:RUN")
    _t, first, _ = read_volts(scope)
    scope.write(":CHANnel1:SCALe 2;:CHANnel1:OFFSet 5;:TIMebase:SCALe 20e-6")  # still running
    _times, volts, pre = read_volts(scope)  # preamble first, then a fresh acquisition
    assert float(pre[7]) == pytest.approx(2 / 32) and float(pre[5]) == pytest.approx(-20e-6)
    assert np.max(volts) == pytest.approx(5.0, abs=2 / 32) and np.max(first) == pytest.approx(5.0, abs=1 / 32)
    assert int(scope.query(":OPERegister:CONDition?")) & 0x08  # still running
    assert scope.query(":SYSTem:ERRor?") == '+0,"No error"'


def test_the_error_queue_behaves_like_the_instrument(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write("*CLS;:BOGus:HEADer 1;:CHANnel1:SCALe 1e6;:CHANnel5:SCALe 1;:TRIGger:SWEep SOMETIMES")
    scope.write(":CHANnel1:SCALe;:WAVeform:DATA")
    assert int(scope.query("*ESR?")) & 0x30 == 0x30  # command and execution errors flagged
    assert [scope.query(":SYSTem:ERRor?") for _ in range(7)] == [
        '-113,"Undefined header"',
        '-222,"Data out of range"',
        '-114,"Header suffix out of range"',
        '-224,"Illegal parameter value"',
        '-109,"Missing parameter"',
        '-113,"Undefined header"',  # a query-only header sent as a command
        '+0,"No error"',
    ]
    for _ in range(40):
        scope.write(":NOPE")
    errors = [scope.query(":SYST:ERR?") for _ in range(31)]
    assert errors[:29] == ['-113,"Undefined header"'] * 29
    assert errors[29] == '-350,"Queue overflow"' and errors[30] == '+0,"No error"'
    scope.write(":NOPE;*CLS")
    assert scope.query(":SYSTem:ERRor?") == '+0,"No error"' and scope.query("*ESR?") == "+0"


def test_headers_short_long_relative_and_multiple_queries(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(":chan2:scal 2;offs -1;:TIMEBASE:SCALE 2E-6;position 1e-6")
    assert [float(v) for v in scope.query(":CHANnel2:SCALe?;OFFSet?").split(";")] == [2.0, -1.0]
    replies = scope.query(":TIM:SCAL?;POS?;:TRIG:LEV 0.5;SLOP NEG;:TRIGger:LEVel?;EDGE:SLOPe?").split(";")
    assert [float(v) for v in replies[:3]] == [2e-6, 1e-6, 0.5] and replies[3] == "NEG"
    assert scope.query(":OPERegister:CONDition?;:OPER?") in ("+8;+0", "+8;+8")
    assert scope.query(":SYSTem:ERRor?") == '+0,"No error"'


def test_no_trigger_leaves_the_acquisition_pending_and_the_server_serving(bench: Bench) -> None:
    inst = bench.open(timeout_ms=1000)
    inst.write(PULSE_SETUP + ";:TRIGger:EDGE:LEVel 50")  # never reached
    t0 = bench.host.now()
    inst.write(":DIGitize")
    with pytest.raises(pyvisa.errors.VisaIOError) as info:
        inst.query("*OPC?")
    assert info.value.error_code == pyvisa.constants.StatusCode.error_timeout
    assert bench.host.now() - t0 >= 0.5  # it waited the search horizon of bench time
    assert inst.query(":TER?") == "+0"
    assert int(inst.query(":OPERegister:CONDition?")) & 0x28 == 0x28  # running, waiting for trigger
    assert inst.query("*IDN?").startswith("KEYSIGHT")  # no stale '1' in front of it
    inst.write(":STOP;*CLS")
    assert inst.query("*OPC?") == "1"
    assert int(inst.query(":OPERegister:CONDition?")) == 0
    inst.close()


def test_a_pending_acquisition_triggers_once_bench_time_brings_the_edge(bench: Bench) -> None:
    bench.host.wiring[1] = PulseTrain(bench.host, 5.0, 1.0, 1e-3, first_edge_s=2.0)  # first pulse at 2 s
    inst = bench.open(timeout_ms=800)
    inst.write(PULSE_SETUP)
    inst.write(":SINGle")
    assert inst.query(":TER?") == "+0"
    bench.host.advance_to(2.5)  # the rest of the bench moves time on
    assert inst.query(":TER?") == "+1"
    _times, volts, _ = read_volts(inst)
    assert np.max(volts) == pytest.approx(5.0, abs=0.1)
    assert bench.scope.acquisition is not None
    assert bench.scope.acquisition.trigger_time_s == pytest.approx(2.0, abs=1e-9)
    inst.close()


def test_auto_sweep_acquires_untriggered_after_the_timeout(scope: pyvisa.resources.MessageBasedResource) -> None:
    scope.write(PULSE_SETUP + ";:TRIGger:SWEep AUTO;:TRIGger:EDGE:LEVel 50")
    assert scope.query(":TRIGger:SWEep?") == "AUTO"
    assert scope.query(":DIGitize;*OPC?") == "1"
    assert scope.query(":TER?") == "+0"
    _t, volts, _ = read_volts(scope)
    assert volts.size == 500_000


def test_two_connections_share_one_instrument_without_interleaving(bench: Bench) -> None:
    a, b = bench.open(), bench.open()
    a.write(":CHANnel3:SCALe 0.25")
    assert a.query("*OPC?") == "1"  # the write is processed before the other connection asks
    scale_reply = b.query(":CHANnel3:SCALe?")
    assert float(scale_reply) == 0.25
    failures: list[str] = []

    def hammer(inst: pyvisa.resources.MessageBasedResource, command: str, expected: str) -> None:
        for _ in range(100):
            reply = inst.query(command)
            if reply != expected:
                failures.append(reply)

    threads = [
        threading.Thread(target=hammer, args=(a, "*IDN?", bench.scope.idn)),
        threading.Thread(target=hammer, args=(b, ":CHANnel3:SCALe?;:TIMebase:REFerence?", f"{scale_reply};CENT")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    a.close()
    b.close()


def test_a_client_vanishing_mid_command_does_not_kill_the_server(bench: Bench) -> None:
    for message in (PULSE_SETUP.encode() + b";:DIGitize;*OPC?\n", b":WAVeform:POINts:MODE RAW;:WAVeform:DATA?\n"):
        raw = socket.create_connection(("127.0.0.1", bench.server.port))
        raw.sendall(message)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()  # reset while the scope works on it
    time.sleep(0.2)
    inst = bench.open()
    assert inst.query("*IDN?") == bench.scope.idn
    inst.close()


def test_stop_closes_every_connection_promptly() -> None:
    b = make_bench()
    inst = b.open()
    assert inst.query("*OPC?") == "1"
    raw = socket.create_connection(("127.0.0.1", b.server.port))
    raw.settimeout(2.0)
    t0 = time.monotonic()
    b.server.stop()
    assert time.monotonic() - t0 < 1.0
    with contextlib.suppress(ConnectionResetError):
        assert raw.recv(10) == b""
    raw.close()
    inst.close()
    b.close_resources()


def test_stop_races_with_connections_being_accepted() -> None:
    for _ in range(20):
        b = make_bench()
        raws = [socket.create_connection(("127.0.0.1", b.server.port)) for _ in range(3)]
        b.server.stop()  # some of these are still in the accept backlog, some being registered
        for raw in raws:
            raw.settimeout(2.0)
            with contextlib.suppress(ConnectionResetError):
                assert raw.recv(10) == b""
            raw.close()
        b.close_resources()
