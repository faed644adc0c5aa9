"""The load box over a real pseudo-terminal, driven with pyserial through SerialLoadBox.

The simulated box (SimLoadBox served by PtyLoadBoxServer) routes every catalogued load, refuses what
it cannot do with ``ERR <code> <text>``, and records every relay switch and MARK in bench time, from
which the marker output (scope CH2) is rendered. A missing port, a silent box and a box that answers
nonsense fail loudly, naming the port and the command.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import serial

from rig.errors import InstrumentError, StimrigError
from rig.interfaces import LoadBox
from rig.loadbox import ErrCode, LoadBoxError, LoadBoxRefused, SerialLoadBox
from simulator.clock import SimClock
from simulator.loadbox import DUMMY_LOAD, MARKER_HIGH_V, SimLoadBox
from simulator.loadbox_server import IDENTITY, PtyLoadBoxServer
from simulator.loads import ElectrodeSkin, Resistive, load_catalogue

CHANNELS = 4
CATALOGUE = load_catalogue().models()
LOAD_NAMES = list(CATALOGUE)


@dataclass
class Box:
    clock: SimClock
    state: SimLoadBox
    server: PtyLoadBoxServer
    box: SerialLoadBox
    changes: list[tuple[float, int, str]]


@pytest.fixture
def sim() -> Iterator[Box]:
    clock = SimClock()
    changes: list[tuple[float, int, str]] = []
    state = SimLoadBox(CATALOGUE, CHANNELS, clock=clock,
                       on_change=lambda ch, load: changes.append((clock.now(), ch, load)))
    server = PtyLoadBoxServer(clock, state)
    port = server.start()
    box = SerialLoadBox(port, timeout_s=2.0)
    try:
        yield Box(clock, state, server, box, changes)
    finally:
        box.close()
        server.stop()
        clock.close()


@contextlib.contextmanager
def raw_line(port: str) -> Iterator[Callable[[bytes], str]]:
    """Talk to the box with plain pyserial: send bytes, get the next reply line."""
    ser = serial.Serial(port, baudrate=115200, timeout=2.0)
    try:
        def ask(data: bytes) -> str:
            ser.write(data)
            return ser.readline().decode("ascii").rstrip("\n")

        yield ask
    finally:
        ser.close()


# ---- identity and routing --------------------------------------------------------------------------


def test_the_box_identifies_itself_and_lists_its_loads_and_channels(sim: Box) -> None:
    assert isinstance(sim.box, LoadBox) and isinstance(sim.state, LoadBox)
    assert str(sim.box.identity()) == "stimrig SIM-LB6 simulated load box (s/n SIM-LB-0001, fw 1.0.0)"
    assert sim.box.identity().model == IDENTITY.split(",")[1]
    assert sim.box.channels == CHANNELS
    assert sim.box.loads() == {
        "R500": 500.0, "R2k": 2000.0, "R10k": 10_000.0, "OPEN": math.inf, "SHORT": 0.0, "SKIN": 5400.0,
            "SHUNT10": 10.0,
    }
    assert sim.box.loads() == sim.state.loads()
    assert sim.box.connected is None and not sim.box.sense()


@pytest.mark.parametrize("load", LOAD_NAMES)
def test_every_load_is_routed_and_read_back(sim: Box, load: str) -> None:
    channel = 1 + LOAD_NAMES.index(load) % CHANNELS
    sim.box.connect(channel, load)
    assert sim.box.connected == (channel, load)
    assert sim.state.route == (channel, load)
    assert sim.state.load_model() is CATALOGUE[load]
    assert sim.state.load_of(channel) == load
    assert all(sim.state.load_of(ch) == DUMMY_LOAD for ch in range(1, CHANNELS + 1) if ch != channel)
    assert sim.box.sense()
    assert sim.changes == [(0.0, channel, load)]


def test_route_changes_notify_every_channel_whose_load_changed(sim: Box) -> None:
    sim.box.connect(1, "R500")
    sim.box.connect(1, "SKIN")  # same channel, other load
    sim.box.connect(3, "R2k")  # channel 1 falls back on its dummy
    sim.box.connect(3, "R2k")  # nothing switches: no notification, no marker
    sim.box.clear()
    assert [(ch, load) for _, ch, load in sim.changes] == [
        (1, "R500"), (1, "SKIN"), (1, DUMMY_LOAD), (3, "R2k"), (3, DUMMY_LOAD),
    ]
    assert [e.kind for e in sim.state.events] == ["route", "route", "route", "clear"]
    assert sim.box.connected is None and not sim.box.sense()
    assert sim.box.marks() == 4


def test_switches_and_marks_are_stamped_in_bench_time_and_drive_the_marker(sim: Box) -> None:
    sim.clock.advance_to(0.100)
    sim.box.connect(2, "R500")
    sim.clock.advance_to(0.350)
    sim.box.mark()
    sim.clock.advance_to(0.600)
    sim.box.connect(2, "OPEN")
    sim.clock.advance_to(1.0)
    sim.box.clear()
    st = sim.state
    assert [(e.t_s, e.kind, e.route) for e in st.events] == [
        (0.100, "route", (2, "R500")), (0.350, "mark", (2, "R500")),
        (0.600, "route", (2, "OPEN")), (1.0, "clear", None),
    ]
    assert st.marker_times() == [0.100, 0.350, 0.600, 1.0]
    assert [t for t, _, _ in sim.changes] == [0.100, 0.600, 1.0]
    # history: which load channel 2 drove when
    assert st.route_at(0.05) is None
    assert st.route_at(0.100) == (2, "R500")
    assert st.load_of(2, 0.599) == "R500" and st.load_of(2, 0.6) == "OPEN" and st.load_of(2, 1.5) == DUMMY_LOAD
    assert st.route_changes(0.2, 0.8) == [(0.2, (2, "R500")), (0.600, (2, "OPEN"))]
    # the marker (CH2): 0 V, then 5 V for marker_width_s after each event
    dt = 1e-4
    v = st.marker_V(0.0, dt, 12_000)
    assert set(np.unique(v)) == {0.0, MARKER_HIGH_V}
    rising = np.flatnonzero(np.diff(v) > 0) + 1
    np.testing.assert_allclose(rising * dt, [0.100, 0.350, 0.600, 1.0], atol=dt / 2)
    width = np.flatnonzero(np.diff(v) < 0)[0] + 1 - rising[0]
    assert width * dt == pytest.approx(st.marker_width_s, abs=dt)


def test_rst_releases_the_route_and_restarts_the_marker_count(sim: Box) -> None:
    sim.box.connect(4, "R10k")
    sim.box.mark()
    assert sim.box.marks() == 2
    sim.box.reset()
    assert sim.box.connected is None
    assert sim.box.marks() == 0
    assert sim.state.events[-1].kind == "clear"  # *RST switched a relay: that edge came before the reset


def test_close_releases_the_measurement_relay(sim: Box) -> None:
    sim.box.connect(1, "R500")
    sim.box.close()
    assert sim.state.route is None
    assert sim.changes[-1][1:] == (1, DUMMY_LOAD)
    sim.box.close()  # twice is harmless


# ---- refusals ----------------------------------------------------------------------------------------


def test_a_load_the_box_does_not_have_is_refused_before_anything_is_sent(sim: Box) -> None:
    handled = sim.server.lines_handled
    with pytest.raises(LoadBoxError) as info:
        sim.box.connect(1, "R1k")
    message = str(info.value)
    assert message.startswith(f"{sim.server.port}: 'ROUTe 1,R1k': no load 'R1k'; this box has [")
    assert "'R500'" in message and "'SKIN'" in message and "nothing was sent" in message
    with pytest.raises(LoadBoxError, match=r"no DUT channel 5; this box switches channels 1\.\.4"):
        sim.box.connect(5, "R500")
    assert sim.server.lines_handled == handled
    assert sim.state.events == []


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        (b"FOO\n", ErrCode.UNKNOWN_COMMAND, "unknown command 'FOO'"),
        (b"ROUTe\n", ErrCode.BAD_ARGUMENT, "ROUTe needs <dut_channel>,<load>"),
        (b"ROUTe 1\n", ErrCode.BAD_ARGUMENT, "ROUTe needs <dut_channel>,<load>"),
        (b"ROUTe one,R500\n", ErrCode.BAD_ARGUMENT, "dut_channel 'one' is not an integer"),
        (b"ROUTe 9,R500\n", ErrCode.NO_SUCH_CHANNEL, "no DUT channel 9; this box has 1..4"),
        (b"ROUTe 1,R1k\n", ErrCode.NO_SUCH_LOAD, "no load 'R1k'; this box has R500,R2k,R10k,OPEN,SHORT,SKIN"),
        (b"MARK now\n", ErrCode.BAD_ARGUMENT, "MARK takes no argument"),
        (b"X" * 300 + b"\n", ErrCode.LINE_TOO_LONG, "line longer than 256 bytes"),
        (b"\xff\xfe?\n", ErrCode.UNKNOWN_COMMAND, "unknown command"),
    ],
    ids=["unknown", "no-args", "no-load", "bad-channel", "channel-range", "unknown-load", "extra-arg",
         "too-long", "binary"],
)
def test_bad_commands_get_err_code_and_text_and_change_nothing(sim: Box, line: bytes, code: int, text: str) -> None:
    sim.box.connect(2, "R500")
    before = list(sim.state.events)
    with raw_line(sim.server.port) as ask:
        reply = ask(line)
        assert reply.startswith(f"ERR {int(code)} ")
        assert text in reply
        assert ask(b"ROUTe?\n") == "2,R500"  # still answering, still routed
    assert sim.state.events == before


def test_an_err_reply_raises_load_box_refused_naming_port_command_and_code(sim: Box) -> None:
    with pytest.raises(LoadBoxRefused) as info:
        sim.box.query("ROUTe:BOGus?")
    assert info.value.code == ErrCode.UNKNOWN_COMMAND
    assert str(info.value).startswith(f"{sim.server.port}: 'ROUTe:BOGus?': load box refused it: ERR 100 ")
    assert isinstance(info.value, InstrumentError)


def test_short_and_long_forms_any_case_and_crlf_are_accepted_blank_lines_ignored(sim: Box) -> None:
    with raw_line(sim.server.port) as ask:
        assert ask(b"\n\r\n  \nrout 3,SKIN\r\n") == "OK"
        assert ask(b"route?\n") == "3,SKIN"
        assert ask(b"SENS?\n") == "1"
        assert ask(b"Load?\n") == sim.server.handle("LOADs?")
        assert ask(b"chan?\n") == "4"
        assert ask(b"rout:cle\n") == "OK"
        assert ask(b"ROUTE:CLEAR\n") == "OK"  # nothing routed: nothing switches
        assert ask(b"*idn?\n") == IDENTITY
    assert [e.kind for e in sim.state.events] == ["route", "clear"]


# ---- the port itself -----------------------------------------------------------------------------------


def test_a_missing_port_is_named_with_what_was_expected() -> None:
    with pytest.raises(LoadBoxError) as info:
        SerialLoadBox("/dev/ttyUSB-no-such-loadbox", timeout_s=0.2)
    message = str(info.value)
    assert message.startswith("/dev/ttyUSB-no-such-loadbox: 'open': cannot open serial port:")
    assert "expected the load box's USB-serial port" in message


class FakeBox:
    """A pty pair whose master side answers each line with ``answer(line)`` (None: silent)."""

    def __init__(self, answer: Callable[[str], str | None]) -> None:
        self.answer = answer
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.decode()
                self.received.append(line)
                out = self.answer(line)
                if out is not None:
                    os.write(self.master, out.encode() + b"\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def fake_box(answer: Callable[[str], str | None]) -> Iterator[FakeBox]:
    box = FakeBox(answer)
    try:
        yield box
    finally:
        box.close()


def healthy(line: str) -> str | None:
    return {"*IDN?": "acme,LB-6,0001,2.1", "LOADs?": "R500=500,OPEN=inf", "CHANnels?": "2"}.get(line, "OK")


def test_a_silent_box_is_reported_within_the_timeout_naming_port_and_command() -> None:
    with fake_box(lambda line: None) as fake:
        t0 = time.monotonic()
        with pytest.raises(LoadBoxError) as info:
            SerialLoadBox(fake.port, timeout_s=0.3)
        elapsed = time.monotonic() - t0
    message = str(info.value)
    assert message.startswith(f"{fake.port}: '*IDN?': no reply within 0.3 s")
    assert "is the load box powered, on this port, at 115200 baud?" in message
    assert 0.3 <= elapsed < 1.0
    assert fake.received == ["*IDN?"]


@pytest.mark.parametrize(
    ("replies", "command", "problem"),
    [
        ({"*IDN?": "hello"}, "*IDN?", "reply 'hello' is not an identity"),
        ({"LOADs?": "R500"}, "LOADs?", "unexpected reply 'R500'"),
        ({"CHANnels?": "four"}, "CHANnels?", "unexpected reply 'four'"),
    ],
    ids=["idn", "loads", "channels"],
)
def test_nonsense_at_connection_is_refused_naming_the_query(
    replies: dict[str, str], command: str, problem: str
) -> None:
    with fake_box(lambda line: replies.get(line) or healthy(line)) as fake:
        with pytest.raises(LoadBoxError) as info:
            SerialLoadBox(fake.port, timeout_s=0.5)
        assert str(info.value).startswith(f"{fake.port}: '{command}': {problem}")


def test_a_late_reply_is_never_taken_for_the_next_answer() -> None:
    def answer(line: str) -> str | None:
        if line == "ROUTe?":
            time.sleep(0.5)  # answers after the rig gave up
            return "1,R500"
        return "0" if line == "SENSe?" else healthy(line)

    with fake_box(answer) as fake:
        box = SerialLoadBox(fake.port, timeout_s=0.3)
        with pytest.raises(LoadBoxError, match=r"'ROUTe\?': no reply within 0\.3 s"):
            _ = box.connected
        time.sleep(0.4)  # the stale '1,R500' is in the input buffer now
        assert box.sense() is False
        box.close()


def test_a_box_that_goes_away_mid_session_is_reported(sim: Box) -> None:
    port = sim.server.port
    sim.box.timeout_s = 0.3
    sim.server.stop()
    with pytest.raises(LoadBoxError) as info:
        sim.box.mark()
    assert str(info.value).startswith(f"{port}: 'MARK': ")
    assert "serial I/O failed" in str(info.value) or "no reply within 0.3 s" in str(info.value)


# ---- the state object alone (what the bench uses in-process) ----------------------------------------


def test_sim_loadbox_keeps_its_original_behaviour_with_plain_resistances() -> None:
    box = SimLoadBox({"R500": 500, "R2k": 2000}, 4)
    assert box.loads() == {"R500": 500.0, "R2k": 2000.0}
    assert box.connected is None and box.load_ohm() is None
    box.connect(3, "R2k")
    assert box.connected == (3, "R2k") == box.route
    assert box.load_ohm() == 2000.0
    assert box.load_model() == Resistive(2000.0)
    with pytest.raises(StimrigError, match=r"simulated load box: no load 'R1k'; this bench has \['R2k', 'R500'\]"):
        box.connect(1, "R1k")
    with pytest.raises(StimrigError, match=r"no DUT channel 0; expected 1\.\.4"):
        box.connect(0, "R500")
    box.route = (1, "R500")
    assert box.connected == (1, "R500")
    box.close()
    assert box.route is None
    assert all(math.isnan(e.t_s) for e in box.events)  # no clock given: events are not timed


def test_sim_loadbox_models_and_dummies() -> None:
    skin = ElectrodeSkin(400, 5000, 100e-9)
    box = SimLoadBox({"SKIN": skin, "OPEN": math.inf}, 2)
    assert box.loads() == {"SKIN": 5400.0, "OPEN": math.inf}
    assert box.model("SKIN") is skin
    assert box.model(DUMMY_LOAD) == Resistive(500.0)
    with pytest.raises(StimrigError, match="reserved"):
        SimLoadBox({DUMMY_LOAD: 500}, 2)
