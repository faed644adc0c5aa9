"""The rig's RF attenuator driver against the emulated Mini-Circuits RCDAT-6000-90, over pyvisa-py TCP.

Everything runs over real loopback sockets: the emulator, and small fake instruments (silent, garbling,
refusing) built on the same socket server, so the driver code under test is the code that drives a real unit.
"""

from __future__ import annotations

import math
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.errors import FixtureError, InstrumentError
from rig.instruments.attenuator import (
    MiniCircuitsRcdat,
    model_range_dB,
    open_attenuator,
    resource_string,
    strip_telnet,
)
from rig.interfaces import RfAttenuator
from simulator.instruments.attenuator import AttenuatorServer, RcdatAttenuator, serve_attenuator
from simulator.instruments.attenuator_model import DEFAULT_MODEL_PATH, AttenuatorModel, load_attenuator_model
from simulator.instruments.socket_server import ScpiSocketServer

TIMEOUT_S = 1.0
SHORT_TIMEOUT_S = 0.2
UNRECOGNIZED = b"-99 Unrecognized Command. Model: RCDAT-6000-90 SN=11501150004\r\n"


@pytest.fixture(scope="module")
def model() -> AttenuatorModel:
    return load_attenuator_model()


@pytest.fixture
def changes() -> list[float]:
    return []


@pytest.fixture
def emulator(changes: list[float]) -> Iterator[AttenuatorServer]:
    server = serve_attenuator(DEFAULT_MODEL_PATH, on_change=changes.append)
    yield server
    server.stop()


@pytest.fixture
def attenuator(emulator: AttenuatorServer) -> Iterator[MiniCircuitsRcdat]:
    driver = open_attenuator(emulator.resource(), timeout_s=TIMEOUT_S)
    yield driver
    driver.close()


def ask(port: int, *lines: bytes) -> list[bytes]:
    """Send ``lines`` over a plain socket, one reply line read after each."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as conn, conn.makefile("rb") as stream:
        for line in lines:
            conn.sendall(line + b"\r\n")
            replies.append(stream.readline())
    return replies


# -- the emulator speaks the RCDAT command set -------------------------------------------------------


def test_identification_queries(emulator: AttenuatorServer) -> None:
    assert ask(emulator.port, b":MN?", b"MN?", b"mn?", b":SN?", b":FIRMWARE?") == [
        b"MN=RCDAT-6000-90\r\n",
        b"MN=RCDAT-6000-90\r\n",
        b"MN=RCDAT-6000-90\r\n",
        b"SN=11501150004\r\n",
        b"C9-2\r\n",
    ]


def test_set_replies_and_rounding(emulator: AttenuatorServer, changes: list[float]) -> None:
    assert emulator.attenuation_dB == 90.0  # power-on value of the fixture
    replies = ask(
        emulator.port,
        b":SETATT=10.1",
        b":ATT?",
        b":SETATT=10.13",
        b"ATT?",
        b":SETATT=95",
        b":ATT?",
        b":SETATT=-1",
        b":SETATT=abc",
        b":SETATT=1e999",
        b":ATT?",
        b":BOGUS",
    )
    assert replies == [b"1\r\n", b"10.0\r\n", b"1\r\n", b"10.25\r\n", b"2\r\n", b"90.0\r\n"] + [b"0\r\n"] * 3 + [
        b"90.0\r\n",
        UNRECOGNIZED,
    ]
    assert changes == [10.0, 10.25, 90.0]  # accepted sets only


# -- the rig driver, end to end through pyvisa-py -------------------------------------------------------


def test_identity_and_limits(attenuator: MiniCircuitsRcdat, emulator: AttenuatorServer) -> None:
    assert isinstance(attenuator, RfAttenuator)
    identity = attenuator.identify()
    assert (identity.manufacturer, identity.model, identity.serial, identity.firmware) == (
        "Mini-Circuits",
        "RCDAT-6000-90",
        "11501150004",
        "C9-2",
    )
    assert attenuator.range_dB == (0.0, 90.0)
    assert attenuator.step_dB == 0.25
    assert attenuator.resource == emulator.resource()
    assert resource_string("192.168.1.50") == "TCPIP0::192.168.1.50::23::SOCKET"
    assert model_range_dB("RCDAT-8000-60") == (0.0, 60.0)
    assert model_range_dB("ZX76-31R5A-PPS+") is None


@pytest.mark.parametrize(
    ("requested_dB", "expected_dB"),
    [(0.0, 0.0), (30.1, 30.0), (30.13, 30.25), (45.375, 45.5), (89.9, 90.0), (90.0, 90.0)],
)
def test_set_reads_back_rounded_value(
    attenuator: MiniCircuitsRcdat,
    emulator: AttenuatorServer,
    changes: list[float],
    requested_dB: float,
    expected_dB: float,
) -> None:
    assert attenuator.set_attenuation_dB(requested_dB) == expected_dB
    assert attenuator.attenuation_dB() == expected_dB
    assert emulator.attenuation_dB == expected_dB
    assert changes == [expected_dB]


@pytest.mark.parametrize("requested_dB", [-0.25, 90.01, 1e9, math.nan, math.inf, -math.inf])
def test_out_of_range_is_refused_before_anything_is_sent(
    attenuator: MiniCircuitsRcdat, emulator: AttenuatorServer, changes: list[float], requested_dB: float
) -> None:
    attenuator.set_attenuation_dB(42.0)
    sent_before = emulator.message_count
    with pytest.raises(InstrumentError) as err:
        attenuator.set_attenuation_dB(requested_dB)
    assert emulator.message_count == sent_before
    assert emulator.attenuation_dB == 42.0
    assert changes == [42.0]
    message = str(err.value)
    assert emulator.resource() in message
    assert ":SETATT=" in message
    assert "0 to 90 dB" in message


def test_closed_driver_refuses(attenuator: MiniCircuitsRcdat) -> None:
    attenuator.close()
    with pytest.raises(InstrumentError, match="closed"):
        attenuator.attenuation_dB()


# -- fake instruments on real sockets: failures become InstrumentErrors -----------------------------------


Reply = Callable[[str], "str | None"]


class FakeInstrument:
    """A socket-served instrument whose reply to each line is ``reply(line)`` (None: stay silent)."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    def handle(self, line: bytes) -> bytes:
        answer = self._reply(line.decode("latin-1").strip())
        return b"" if answer is None else answer.encode("latin-1") + b"\r\n"


@pytest.fixture
def fake() -> Iterator[Callable[[Reply], ScpiSocketServer]]:
    servers: list[ScpiSocketServer] = []

    def start(reply: Reply) -> ScpiSocketServer:
        instrument = FakeInstrument(reply)
        server = ScpiSocketServer(lambda: instrument, port=0).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def rcdat(**overrides: str | None) -> Reply:
    """Replies of a well-behaved RCDAT-6000-90 at 20 dB, except for the commands in ``overrides``."""
    normal = {":MN?": "MN=RCDAT-6000-90", ":SN?": "SN=12208030133", ":FIRMWARE?": "C9-2", ":ATT?": "20.0"}

    def reply(line: str) -> str | None:
        key = ":SETATT=" if line.startswith(":SETATT=") else line
        if key in overrides:
            return overrides[key]
        return "1" if key == ":SETATT=" else normal.get(line, "-99 Unrecognized Command.")

    return reply


def test_no_reply_at_open(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    server = fake(lambda line: None)
    with pytest.raises(InstrumentError) as err:
        open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S)
    message = str(err.value)
    assert server.resource() in message
    assert "':MN?'" in message
    assert "no reply" in message
    assert "MN=RCDAT" in message  # what was expected


def test_garbage_reply_at_open(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    server = fake(lambda line: "#$%garbage")
    with pytest.raises(InstrumentError, match=r"':MN\?': unexpected reply '#\$%garbage' \(expected 'MN=RCDAT"):
        open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S)


def test_other_instrument_is_refused(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    server = fake(rcdat(**{":MN?": "MN=ZX76-31R5A-PPS+"}))
    with pytest.raises(InstrumentError, match="not a Mini-Circuits RCDAT"):
        open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S)


def test_nothing_listening() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and closed again before the driver connects
    resource = resource_string("127.0.0.1", port)
    with pytest.raises(InstrumentError, match="'open': connection failed") as err:
        open_attenuator(resource, timeout_s=SHORT_TIMEOUT_S)
    assert resource in str(err.value)


@pytest.mark.parametrize(
    ("set_reply", "problem"),
    [("0", "replied '0': setting failed"), ("2", "above its maximum"), ("OK", "unexpected reply 'OK'")],
)
def test_failure_replies_to_set(fake: Callable[[Reply], ScpiSocketServer], set_reply: str, problem: str) -> None:
    server = fake(rcdat(**{":SETATT=": set_reply}))
    with open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S) as driver, pytest.raises(InstrumentError) as err:
        driver.set_attenuation_dB(20.0)
    message = str(err.value)
    assert server.resource() in message
    assert "':SETATT=20.00'" in message
    assert problem in message
    assert "expected '1'" in message


def test_read_back_mismatch(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    server = fake(rcdat())  # accepts every set, but stays at 20 dB
    with open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S) as driver:
        assert driver.set_attenuation_dB(20.1) == 20.0  # within half a step
        with pytest.raises(InstrumentError, match=r"':ATT\?': read back 20 dB after :SETATT=20.50"):
            driver.set_attenuation_dB(20.5)


@pytest.mark.parametrize("att_reply", ["twenty", "", "95.0", "nan"])
def test_garbled_attenuation(fake: Callable[[Reply], ScpiSocketServer], att_reply: str) -> None:
    server = fake(rcdat(**{":ATT?": att_reply}))
    with open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S) as driver, pytest.raises(InstrumentError) as err:
        driver.attenuation_dB()
    assert "':ATT?'" in str(err.value)
    assert "a number from 0 to 90" in str(err.value)


def test_timeout_on_set_then_realigned(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    server = fake(rcdat(**{":SETATT=": None}))
    with open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S) as driver:
        with pytest.raises(InstrumentError, match=r"':SETATT=30.00': no reply within 0.2 s"):
            driver.set_attenuation_dB(30.0)
        assert driver.attenuation_dB() == 20.0  # replies were re-aligned on :MN?


def test_unusable_after_instrument_goes_silent(fake: Callable[[Reply], ScpiSocketServer]) -> None:
    silent = threading.Event()
    answers = rcdat()
    server = fake(lambda line: None if silent.is_set() else answers(line))
    with open_attenuator(server.resource(), timeout_s=SHORT_TIMEOUT_S) as driver:
        silent.set()
        with pytest.raises(InstrumentError, match="no reply"):
            driver.attenuation_dB()
        silent.clear()
        with pytest.raises(InstrumentError, match="unusable after an earlier failure"):
            driver.attenuation_dB()


class GreetingServer:
    """A Telnet-style server: Telnet option negotiation and a blank line on connect, then the emulator."""

    GREETING = bytes([255, 251, 1, 255, 253, 3, 255, 250, 24, 1, 255, 240]) + b"\r\n"

    def __init__(self, instrument: RcdatAttenuator) -> None:
        self._instrument = instrument
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn, conn.makefile("rb") as stream:
            conn.sendall(self.GREETING)
            for line in stream:
                conn.sendall(self._instrument.handle(line.rstrip(b"\r\n")))

    def stop(self) -> None:
        self._listener.close()
        self._thread.join(1.0)


def test_telnet_greeting_is_dropped(model: AttenuatorModel) -> None:
    server = GreetingServer(RcdatAttenuator(model))
    try:
        with open_attenuator(resource_string("127.0.0.1", server.port), timeout_s=TIMEOUT_S) as driver:
            assert driver.identify().model == "RCDAT-6000-90"
            assert driver.set_attenuation_dB(12.0) == 12.0
    finally:
        server.stop()


def test_strip_telnet() -> None:
    assert strip_telnet("\xff\xfb\x0112.5\xff\xfa\x18\x01\xff\xf0") == "12.5"
    assert strip_telnet("MN=RCDAT-6000-90") == "MN=RCDAT-6000-90"


# -- the emulator's parser never crashes or hangs ------------------------------------------------------------

_command_like = st.builds(
    lambda prefix, head, tail: (prefix + head + tail).encode("latin-1"),
    st.sampled_from(["", ":", "*:", " "]),
    st.sampled_from(["SETATT=", "setatt=", "ATT?", "MN?", "SN?", "FIRMWARE?", "SETATT", ""]),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=40),
)


@settings(max_examples=400, deadline=200, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.one_of(st.binary(max_size=200), _command_like))
def test_parser_never_crashes(model: AttenuatorModel, line: bytes) -> None:
    instrument = RcdatAttenuator(model)
    reply = instrument.handle(line)
    assert isinstance(reply, bytes)
    assert reply == b"" or (reply.endswith(b"\r\n") and reply.count(b"\n") == 1)
    value_dB = instrument.attenuation_dB
    lo_dB, hi_dB = model.range_dB
    assert lo_dB <= value_dB <= hi_dB
    assert (value_dB / model.attenuation.step_dB).is_integer()


def test_server_survives_junk(emulator: AttenuatorServer) -> None:
    junk = [b"\x00\xff\xfe", b"\r", b"", "é?".encode(), b":SETATT=" + b"9" * 5000, b"x" * (2 << 20)]
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=TIMEOUT_S) as conn, conn.makefile("rb") as rd:
        conn.sendall(b"\n".join(junk) + b"\n:MN?\r\n")
        for _ in range(16):
            if rd.readline() == b"MN=RCDAT-6000-90\r\n":
                break
        else:
            pytest.fail("no reply to :MN? after the junk")
    assert emulator.attenuation_dB == 90.0


# -- the model fixture ---------------------------------------------------------------------------------------


def test_fixture_names_every_source(model: AttenuatorModel) -> None:
    assert model.identity.model == "RCDAT-6000-90"
    assert (model.attenuation.min_dB, model.attenuation.max_dB, model.attenuation.step_dB) == (0.0, 90.0, 0.25)
    assert model.interface.telnet_port == 23


@pytest.mark.parametrize(
    ("section", "field", "value", "problem"),
    [
        ("attenuation", "step_dB", 0.7, "whole number of 0.7 dB steps"),
        ("attenuation", "power_on_dB", 95.0, "outside"),
        ("interface", "telnet_port", "23", "valid integer"),
    ],
)
def test_bad_fixture_is_one_clear_line(tmp_path: Path, section: str, field: str, value: object, problem: str) -> None:
    data = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    data[section][field] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FixtureError, match=problem) as err:
        load_attenuator_model(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_missing_source_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    del data["sources"]["attenuation.step_dB"]
    path = tmp_path / "unsourced.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FixtureError, match=r"sources\['attenuation.step_dB'\] is missing"):
        load_attenuator_model(path)
