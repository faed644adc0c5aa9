"""The emulated Rigol DS1000Z (DS1104Z fixture), driven the way the DS1000Z Programming Guide and
third-party code (the ds1054z package) drive a real one: pyvisa-py or a bare socket on a raw TCP
socket, against a small fake bench (a virtual clock, an analytic pulse generator, seeded streams)."""

from __future__ import annotations

import contextlib
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import pyvisa

from simulator.instruments.rigol import BLOCK_LENGTH_DIGITS, PROBE_RATIOS, RigolDS1000Z
from simulator.instruments.scope_model import DEFAULT_MODEL_PATH, RIGOL_DS1104Z_MODEL_PATH, load_scope_model
from simulator.instruments.serve import raw_socket_port, serve_scope
from simulator.instruments.socket_server import ScpiSocketServer

MODEL = load_scope_model(RIGOL_DS1104Z_MODEL_PATH)
PHYSICAL_PROBE = 10.0  # a 10:1 probe on every channel of the fake bench
PULSE_V, PERIOD_S, WIDTH_S, FIRST_EDGE_S = 5.0, 200e-6, 20e-6, 30e-6


@dataclass
class PulseTrain:
    """Rectangular pulses at the probe tip; records any request for the future."""

    host: FakeHost
    amplitude_V: float = PULSE_V

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        t = t0_s + np.arange(n) * dt_s
        if n and t[-1] > self.host.now() + 1e-12:
            self.host.future_renders.append((t[-1], self.host.now()))
        high = (np.mod(t - FIRST_EDGE_S, PERIOD_S) < WIDTH_S) & (t >= FIRST_EDGE_S)
        return np.where(high, self.amplitude_V, 0.0)


@dataclass
class FakeHost:
    """A ScopeHost: a virtual clock that moves only on advance_to, wiring, seeded streams."""

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
class Lab:
    host: FakeHost
    scope: RigolDS1000Z
    server: ScpiSocketServer
    opened: list[Any] = field(default_factory=list)

    def open(self) -> Any:
        inst: Any = pyvisa.ResourceManager("@py").open_resource(
            self.server.resource(), read_termination="\n", write_termination="\n"
        )
        inst.timeout = 10_000
        self.opened.append(inst)
        return inst

    def q(self, message: str) -> str:
        """One program message straight to the instrument (no socket); the reply without its newline."""
        return self.scope.execute(message + "\n").decode("latin-1").rstrip("\n")

    def close(self) -> None:
        for inst in self.opened:  # never rm.close(): pyvisa-py shares one session per library
            with contextlib.suppress(Exception):
                inst.close()
        self.server.stop()


def make_lab(seed: int = 1, **kwargs: Any) -> Lab:
    host = FakeHost(seed=seed)
    host.wiring[1] = PulseTrain(host)
    scope = RigolDS1000Z(host, MODEL, serial="DS1ZA123456789", **kwargs)
    return Lab(host, scope, ScpiSocketServer(scope.session, port=0).start())


@pytest.fixture
def lab() -> Iterator[Lab]:
    b = make_lab(search_horizon_s=0.5)
    yield b
    b.close()
    assert b.host.future_renders == [], "the scope rendered the future"


@pytest.fixture
def inst(lab: Lab) -> Any:
    return lab.open()


# 5 V pulses at 1 V/div, trace moved down 2.5 V (screen centre at +2.5 V), trigger 2.5 V rising,
# screen centre 5 divisions after the trigger (the trigger one division from the left edge)
PULSE_SETUP = (
    "*RST;:CHANnel1:PROBe 10;:CHANnel1:SCALe 1;:CHANnel1:OFFSet -2.5;"
    ":TIMebase:MAIN:SCALe 10e-6;:TIMebase:MAIN:OFFSet 50e-6;"
    ":TRIGger:MODE EDGE;:TRIGger:SWEep NORMal;:TRIGger:EDGe:SOURce CHANnel1;"
    ":TRIGger:EDGe:LEVel 2.5;:TRIGger:EDGe:SLOPe POSitive;:ACQuire:MDEPth 1200000"
)


def read_block(sock: socket.socket, buffer: bytearray) -> bytes:
    """A "#9" block and its newline from a bare socket, by length."""
    while len(buffer) < 11:
        buffer += sock.recv(65536)
    assert buffer[:2] == b"#9", bytes(buffer[:20])
    length = int(buffer[2:11])
    while len(buffer) < 11 + length + 1:
        buffer += sock.recv(1 << 20)
    data = bytes(buffer[11 : 11 + length])
    assert buffer[11 + length : 12 + length] == b"\n"
    del buffer[: 12 + length]
    return data


class BareScpi:
    """A third-party client: newline-terminated commands on a bare TCP socket (as tools for port 5555 do)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = bytearray()

    def write(self, command: str) -> None:
        self.sock.sendall(command.encode() + b"\n")

    def query(self, command: str) -> str:
        self.write(command)
        while b"\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        return line.decode()

    def query_raw(self, command: str) -> bytes:
        self.write(command)
        return read_block(self.sock, self.buffer)

    def close(self) -> None:
        self.sock.close()


def single(lab: Lab) -> None:
    """:SINGle, then poll :TRIGger:STATus? until STOP, as Rigol drivers wait."""
    assert lab.q(":SINGle") == ""
    for _ in range(50):
        if lab.q(":TRIGger:STATus?") == "STOP":
            return
    raise AssertionError("the single acquisition never completed")


def raw_volts(lab: Lab) -> tuple[np.ndarray, np.ndarray, list[str]]:
    pre = lab.q(":WAVeform:SOURce CHANnel1;:WAVeform:MODE RAW;:WAVeform:FORMat BYTE;:WAVeform:PREamble?").split(",")
    n = int(pre[2])
    parts = []
    for first in range(1, n + 1, 250_000):
        lab.q(f":WAVeform:STARt {first};:WAVeform:STOP {min(n, first + 249_999)}")
        reply = lab.scope.execute(":WAVeform:DATA?\n")
        parts.append(reply[11:-1])
    codes = np.frombuffer(b"".join(parts), dtype=np.uint8).astype(np.float64)
    volts = (codes - int(pre[8]) - int(pre[9])) * float(pre[7])
    times = float(pre[5]) + (np.arange(n) - int(pre[6])) * float(pre[4])
    return times, volts, pre


# ------------------------------------------------------------------------------------------------ identity


def test_identity_and_fixture() -> None:
    assert MODEL.identity.manufacturer == "RIGOL TECHNOLOGIES"
    assert MODEL.horizontal.divisions == 12 and MODEL.vertical.divisions == 8
    assert raw_socket_port(MODEL) == 5555 and raw_socket_port(load_scope_model()) == 5025
    assert load_scope_model().channel_modes is None  # the Keysight fixture loads as before


def test_idn_over_pyvisa(inst: Any) -> None:
    assert inst.query("*IDN?") == "RIGOL TECHNOLOGIES,DS1104Z,DS1ZA123456789,00.04.04.SP4"


def test_serve_scope_picks_the_emulator_from_the_fixture() -> None:
    host = FakeHost()
    fixtures = ((RIGOL_DS1104Z_MODEL_PATH, "RIGOL TECHNOLOGIES"), (DEFAULT_MODEL_PATH, "KEYSIGHT TECHNOLOGIES"))
    for path, maker in fixtures:
        server = serve_scope(host, path, "127.0.0.1", 0)
        try:
            client = BareScpi(server.port)
            assert client.query("*IDN?").startswith(maker + ",")
            client.close()
        finally:
            server.stop()


# ------------------------------------------------------------------------------------------------ preamble, blocks


def test_preamble_has_ten_fields_with_the_guides_types(lab: Lab) -> None:
    lab.q(PULSE_SETUP)
    pre = lab.q(":WAVeform:PREamble?").split(",")
    assert len(pre) == 10
    for k in (0, 1, 2, 3, 6, 8, 9):  # format, type, points, count, xreference, yorigin, yreference
        assert pre[k].lstrip("-").isdigit(), (k, pre[k])
    for k in (4, 5, 7):
        assert "e" in pre[k] and float(pre[k]) == float(f"{float(pre[k]):.6e}")
    # NORMal: the 1200 screen points over 12 divisions, from 6 divisions before the screen centre
    assert pre[:4] == ["0", "0", "1200", "1"]
    assert float(pre[4]) == pytest.approx(10e-6 / 100)
    assert float(pre[5]) == pytest.approx(50e-6 - 60e-6)
    assert float(pre[7]) == pytest.approx(1.0 / 25) and pre[8] == "-62" and pre[9] == "127"
    for name, k in (("XINCrement", 4), ("XORigin", 5), ("XREFerence", 6), ("YINCrement", 7), ("YORigin", 8),
                    ("YREFerence", 9)):
        assert lab.q(f":WAVeform:{name}?") == pre[k]
    lab.q(":WAVeform:FORMat WORD;:WAVeform:MODE RAW")
    assert lab.q(":WAVeform:PREamble?").split(",")[:2] == ["1", "2"]
    lab.q(":WAVeform:FORMat ASCii;:WAVeform:MODE MAXimum")
    assert lab.q(":WAVeform:PREamble?").split(",")[:2] == ["2", "1"]


def test_data_is_a_nine_digit_block_followed_by_a_newline(lab: Lab, inst: Any) -> None:
    lab.q(PULSE_SETUP)
    single(lab)
    inst.write(":WAVeform:MODE NORMal;:WAVeform:STARt 1;:WAVeform:STOP 1200;:WAVeform:DATA?")
    reply = inst.read_bytes(11 + 1200 + 1)
    assert reply[:11] == b"#9000001200" and reply[-1:] == b"\n"
    values = inst.query_binary_values(":WAVeform:DATA?", datatype="B", container=np.array)
    assert len(values) == 1200 and np.array_equal(values, np.frombuffer(reply[11:-1], dtype=np.uint8))
    assert inst.query(":SYSTem:ERRor?") == '0,"No error"'


def test_raw_reads_are_limited_per_format_and_need_the_stop_state(lab: Lab) -> None:
    lab.q(PULSE_SETUP + ";:WAVeform:MODE RAW")
    empty = b"#" + b"9" + b"0" * BLOCK_LENGTH_DIGITS + b"\n"
    assert lab.scope.execute(":WAVeform:DATA?\n") == empty  # running: the memory is not readable
    assert lab.q(":SYSTem:ERRor?") == '-221,"Settings conflict"'
    single(lab)
    assert lab.q(":WAVeform:POINts?") == "1200000"
    for fmt, limit in (("BYTE", 250_000), ("WORD", 125_000), ("ASCii", 15_625)):
        lab.q(f":WAVeform:FORMat {fmt};:WAVeform:STARt 1;:WAVeform:STOP {limit}")
        reply = lab.scope.execute(":WAVeform:DATA?\n")
        assert reply.startswith(b"#9") and int(reply[2:11]) > 0 and reply.endswith(b"\n")
        assert lab.q(":SYSTem:ERRor?") == '0,"No error"'
        lab.q(f":WAVeform:STOP {limit + 1}")
        assert lab.scope.execute(":WAVeform:DATA?\n") == empty
        assert lab.q(":SYSTem:ERRor?") == '-222,"Data out of range"'
    lab.q(":WAVeform:FORMat WORD;:WAVeform:STARt 11;:WAVeform:STOP 20")
    word = np.frombuffer(lab.scope.execute(":WAVeform:DATA?\n")[11:-1], dtype="<u2")
    lab.q(":WAVeform:FORMat BYTE")
    byte = np.frombuffer(lab.scope.execute(":WAVeform:DATA?\n")[11:-1], dtype=np.uint8)
    assert np.array_equal(word, byte)  # WORD: the code in the low byte, the high byte 0
    lab.q(":WAVeform:FORMat ASCii")
    ascii_volts = np.array([float(x) for x in lab.scope.execute(":WAVeform:DATA?\n")[11:-1].split(b",")])
    pre = lab.q(":WAVeform:PREamble?").split(",")
    assert ascii_volts == pytest.approx((byte.astype(float) - int(pre[8]) - int(pre[9])) * float(pre[7]), abs=1e-6)


def test_start_and_stop_stay_inside_the_record(lab: Lab) -> None:
    lab.q(PULSE_SETUP)
    single(lab)
    lab.q(":WAVeform:MODE RAW;:WAVeform:STOP 25000000")
    assert lab.q(":WAVeform:STOP?") == "1200000"  # the scope clips, as clients setting "max" expect
    lab.q(":WAVeform:MODE NORMal;:WAVeform:STARt 5000")
    assert lab.q(":WAVeform:STARt?") == "1200"
    lab.q(":WAVeform:STARt 0")
    assert lab.q(":SYSTem:ERRor?") == '-222,"Data out of range"'


# ------------------------------------------------------------------------------------------------ captures


def test_raw_capture_reproduces_the_pulses_and_puts_the_trigger_at_zero(lab: Lab) -> None:
    lab.q(PULSE_SETUP)
    single(lab)
    times, volts, pre = raw_volts(lab)
    assert pre[:3] == ["0", "2", "1200000"]
    assert float(pre[4]) == pytest.approx(1e-9)  # 1.2 M points over the 120 us screen: 10 GSa/s, capped at 1 G
    # the record (1.2 ms at 1 GSa/s) is centred on the screen centre, 50 us after the trigger
    assert times[0] == pytest.approx(50e-6 - 0.6e-3) and times[-1] == pytest.approx(50e-6 + 0.6e-3 - 1e-9)
    assert np.median(volts[volts > 2.5]) == pytest.approx(PULSE_V, abs=0.05)
    assert np.median(volts[volts < 2.5]) == pytest.approx(0.0, abs=0.05)
    rising = times[np.flatnonzero((volts[:-1] < 2.5) & (volts[1:] >= 2.5)) + 1]
    assert np.min(np.abs(rising)) < 5e-9
    assert np.diff(rising) == pytest.approx(PERIOD_S, abs=5e-9)


def test_auto_memory_depth_is_the_screen_at_the_rate_the_memory_allows(lab: Lab) -> None:
    lab.q(PULSE_SETUP + ";:ACQuire:MDEPth AUTO;:TIMebase:MAIN:SCALe 10e-3")
    assert lab.q(":ACQuire:MDEPth?") == "AUTO"
    assert float(lab.q(":ACQuire:SRATe?")) == 100e6  # 12 Mpts over 120 ms
    lab.q(":TIMebase:MAIN:SCALe 1e-4;:TIMebase:MAIN:OFFSet 5e-4")
    srate = float(lab.q(":ACQuire:SRATe?"))
    assert srate == 1e9  # the maximum rate: 1.2 Mpts fill the 1.2 ms screen
    single(lab)
    lab.q(":WAVeform:MODE RAW")
    # the ds1054z package's memory depth in AUTO: 12 divisions x scale x sample rate
    assert int(lab.q(":WAVeform:PREamble?").split(",")[2]) == round(12 * 1e-4 * srate)
    lab.q(":CHANnel2:DISPlay ON")
    assert float(lab.q(":ACQuire:SRATe?")) == 1e9  # stopped: the rate of the record held
    assert lab.q(":RUN") == ""
    assert float(lab.q(":ACQuire:SRATe?")) == 500e6  # two channels on share the ADC


def test_memory_depth_choices_follow_the_channels_on(lab: Lab) -> None:
    lab.q(PULSE_SETUP + ";:ACQuire:MDEPth 12000000")
    assert lab.q(":ACQuire:MDEPth?") == "12000000"
    lab.q(":CHANnel2:DISPlay ON")
    assert lab.q(":ACQuire:MDEPth?") == "6000000"  # the same step for two channels
    lab.q(":ACQuire:MDEPth 12000000")
    assert lab.q(":SYSTem:ERRor?") == '-224,"Illegal parameter value"'
    lab.q(":CHANnel3:DISPlay ON;:ACQuire:MDEPth 30000")
    assert lab.q(":ACQuire:MDEPth?") == "30000" and lab.q(":SYSTem:ERRor?") == '0,"No error"'


def test_same_seed_same_bytes_other_seed_other_noise() -> None:
    def capture(seed: int) -> bytes:
        b = make_lab(seed=seed, search_horizon_s=0.5)
        try:
            b.q(PULSE_SETUP + ";:ACQuire:MDEPth 120000")
            single(b)
            b.q(":WAVeform:MODE RAW;:WAVeform:STARt 1;:WAVeform:STOP 120000")
            return b.scope.execute(":WAVeform:DATA?\n")
        finally:
            b.close()

    assert capture(1) == capture(1)
    assert capture(1) != capture(2)


def test_offset_moves_the_trace_and_yorigin_carries_it(lab: Lab) -> None:
    lab.q(PULSE_SETUP + ";:CHANnel1:OFFSet 0")
    single(lab)
    _, v0, pre0 = raw_volts(lab)
    lab.q(":CHANnel1:OFFSet -2")  # stopped: the record keeps the settings it was taken with
    assert lab.q(":WAVeform:YORigin?") == pre0[8] == "0"
    single(lab)
    _, v1, pre1 = raw_volts(lab)
    assert pre1[8] == "-50"  # -2 V / 40 mV per code
    assert np.median(v1[v1 > 2.5]) == pytest.approx(np.median(v0[v0 > 2.5]), abs=0.05)


def test_channel_setting_ranges(lab: Lab) -> None:
    lab.q("*RST")
    assert lab.q(":CHANnel1:PROBe?") == "1.000000e+01"
    lab.q(":CHANnel1:PROBe 1")
    assert float(lab.q(":CHANnel1:SCALe?")) == pytest.approx(0.1)  # the screen keeps its BNC sensitivity
    for bad, code in ((":CHANnel1:PROBe 3", -224), (":CHANnel1:SCALe 20", -222), (":CHANnel1:OFFSet 3", -222),
                      (":CHANnel1:BWLimit ON", -224), (":TIMebase:MAIN:SCALe 1e-9", -222),
                      (":TIMebase:MAIN:OFFSet -1", -222), (":TRIGger:EDGe:LEVel 1", -222)):
        lab.q(bad)
        assert lab.q(":SYSTem:ERRor?").startswith(f"{code},"), bad
    lab.q(":CHANnel1:BWLimit 20M;:CHANnel1:COUPling AC")
    assert lab.q(":CHANnel1:BWLimit?;:CHANnel1:COUPling?") == "20M;AC"
    assert sorted(PROBE_RATIOS) == list(PROBE_RATIOS) and len(PROBE_RATIOS) == 16


# ------------------------------------------------------------------------------------------------ trigger status


def test_trigger_status_sequence_with_the_clients_clock(lab: Lab) -> None:
    """The rig arms, lets bench time pass itself and polls: WAIT, TD once triggered, STOP when full."""
    lab.q("*RST")
    assert lab.q(":TRIGger:STATus?") == "RUN"  # running, AUTO sweep, nothing acquired yet
    lab.q(":TRIGger:SWEep NORMal")
    assert lab.q(":TRIGger:STATus?") == "WAIT"
    lab.q(PULSE_SETUP + ";:TIMebase:MAIN:SCALe 1e-4;:TIMebase:MAIN:OFFSet 5e-4;:ACQuire:MDEPth 12000")
    lab.host.advance_to(1e-3)
    assert lab.q(":SINGle;:TRIGger:SWEep?") == "SING"
    assert lab.q(":TRIGger:STATus?") == "WAIT"
    first_edge = FIRST_EDGE_S + PERIOD_S * np.ceil((1e-3 + 1e-4 - FIRST_EDGE_S) / PERIOD_S)  # after the pre-trigger
    lab.host.advance_to(first_edge + 1e-6)
    assert lab.q(":TRIGger:STATus?") == "TD"  # triggered, the post-trigger part is filling
    lab.host.advance_to(first_edge + 1.0e-3)
    assert lab.q(":TRIGger:STATus?") == "TD"
    lab.host.advance_to(first_edge + 1.1e-3)
    assert lab.q(":TRIGger:STATus?") == "STOP"
    assert lab.q(":RUN;:TRIGger:SWEep?") == "NORM"


def test_a_polling_client_is_a_waiting_client(lab: Lab) -> None:
    """Without the client moving bench time, repeated polls let the scope wait (bounded by the horizon)."""
    lab.q(PULSE_SETUP)
    assert lab.q(":SINGle;:TRIGger:STATus?") == "WAIT" and lab.host.t == 0.0  # the first poll answers at once
    assert lab.q(":TRIGger:STATus?") == "STOP"
    assert lab.host.t < 0.05
    lab.q(":CHANnel1:OFFSet -3;:TRIGger:EDGe:LEVel 6")  # above the pulses: never
    lab.q(":SINGle")
    statuses = {lab.q(":TRIGger:STATus?") for _ in range(20)}
    assert statuses == {"WAIT"}
    assert lab.host.t < 0.05 + 0.5 + 0.2  # the search horizon (0.5 s here) bounds the bench time it uses
    lab.q(":TFORce")  # forced: acquires untriggered
    assert lab.q(":TRIGger:STATus?") in ("TD", "STOP")
    assert lab.q(":TRIGger:STATus?") == "STOP"


def test_running_scope_reads_the_screen_and_stop_keeps_the_last_frame(lab: Lab) -> None:
    lab.q(PULSE_SETUP + ";:TRIGger:SWEep AUTO;:RUN;:WAVeform:MODE NORMal")
    screen = lab.scope.execute(":WAVeform:DATA?\n")
    assert screen[:11] == b"#9000001200"
    assert lab.q(":TRIGger:STATus?") == "TD"
    lab.q(":STOP")
    assert lab.q(":TRIGger:STATus?") == "STOP"
    lab.q(":WAVeform:MODE RAW")
    assert lab.q(":WAVeform:POINts?") == "1200000"
    lab.q(":CHANnel1:OFFSet -3;:TRIGger:EDGe:LEVel 7;:RUN;:WAVeform:MODE NORMal")  # a level never reached
    assert lab.scope.execute(":WAVeform:DATA?\n")[:11] == b"#9000001200"  # AUTO sweep: acquired untriggered
    assert lab.q(":TRIGger:STATus?") == "AUTO"


# ------------------------------------------------------------------------------------------------ error queue


def test_the_error_queue_behaves_like_the_instrument(lab: Lab) -> None:
    assert lab.q(":SYSTem:ERRor?") == '0,"No error"'
    lab.q(":BOGus:COMMand")
    lab.q(":CHANnel9:SCALe 1")
    lab.q(":TRIGger:SWEep SOMETIMES")
    assert lab.q(":SYSTem:ERRor:NEXT?") == '-113,"Undefined header"'
    assert lab.q(":SYSTem:ERRor?") == '-114,"Header suffix out of range"'
    assert lab.q(":SYSTem:ERRor?") == '-224,"Illegal parameter value"'
    assert lab.q(":SYSTem:ERRor?") == '0,"No error"'
    lab.q(":BOGus")
    lab.q("*CLS")
    assert lab.q(":SYSTem:ERRor?") == '0,"No error"'


# ------------------------------------------------------------------------------------------------ third-party flow


def test_the_ds1054z_package_read_sequence_over_a_bare_socket(lab: Lab) -> None:
    """ds1054z's get_waveform_samples: the screen in NORMal mode, the memory in RAW mode after :STOP,
    250 000 points per read, samples = (val - yorigin - yreference) * yincrement."""
    lab.q(PULSE_SETUP + ";:TRIGger:SWEep AUTO")
    scope = BareScpi(lab.server.port)
    try:
        assert scope.query("*IDN?").startswith("RIGOL TECHNOLOGIES,DS1104Z,")

        def preamble() -> tuple[Any, ...]:
            values = scope.query(":WAVeform:PREamble?").split(",")
            assert len(values) == 10
            fmt, typ, pnts, cnt, xref, yorig, yref = (int(v) for v in values[:4] + values[6:7] + values[8:10])
            xinc, xorig, yinc = (float(v) for v in values[4:6] + values[7:8])
            return fmt, typ, pnts, cnt, xinc, xorig, xref, yinc, yorig, yref

        # screen ("NORMal"): source, format, mode, preamble, STARt/STOP 1..1200, DATA?
        scope.write(":WAVeform:SOURce CHAN1")
        scope.write(":WAVeform:FORMat BYTE")
        scope.write(":WAVeform:MODE NORMal")
        pnts = preamble()[2]
        assert pnts == 1200
        scope.write(":WAVeform:STARt 1")
        scope.write(":WAVeform:STOP 1200")
        assert len(scope.query_raw(":WAVeform:DATA?")) == pnts
        # internal memory ("RAW"): stop if running, then read in 250000-point chunks
        assert scope.query(":TRIGger:STATus?") in ("TD", "WAIT", "RUN", "AUTO")
        scope.write(":STOP")
        scope.write(":WAVeform:SOURce CHAN1")
        scope.write(":WAVeform:FORMat BYTE")
        scope.write(":WAVeform:MODE RAW")
        fmt, typ, pnts, cnt, xinc, _xorig, xref, yinc, yorig, yref = preamble()
        assert (fmt, typ, pnts, cnt, xref) == (0, 2, 1_200_000, 1, 0) and xinc == 1e-9
        buff = b""
        pos, chunks = 1, 0
        while len(buff) < pnts:
            scope.write(f":WAVeform:STARt {pos}")
            scope.write(f":WAVeform:STOP {min(pnts, pos + 250000 - 1)}")
            buff += scope.query_raw(":WAVeform:DATA?")
            pos += 250000
            chunks += 1
        assert len(buff) == pnts and chunks == 5
        samples = (np.frombuffer(buff, dtype=np.uint8).astype(int) - yorig - yref) * yinc
        assert np.max(samples) == pytest.approx(PULSE_V, abs=0.1)
        assert scope.query(":SYSTem:ERRor?") == '0,"No error"'
        # ds1054z's memory_depth: in AUTO, 12 x :TIMebase:MAIN:SCALe? x :ACQuire:SRATe?
        scope.write(":ACQuire:MDEPth AUTO")
        assert scope.query(":ACQuire:MDEPth?") == "AUTO"
    finally:
        scope.close()
