"""The Keysight InfiniiVision driver, the block reader and open_scope, through real pyvisa-py over TCP.

The instruments are small scripted SCPI servers on 127.0.0.1 (port 0), some of them misbehaving.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rig.config.bench import ScopeConfig
from rig.errors import InstrumentError
from rig.instruments import KeysightInfiniiVision, open_resource, open_scope, read_definite_block
from rig.instruments.keysight import Preamble, configure_commands
from rig.interfaces import AcquisitionSetup, ChannelSetup, InstrumentIdentity, Oscilloscope, TriggerSetup
from tests.scripted_scpi import CLOSE, Script, ScriptedInstrument

IDN = "KEYSIGHT TECHNOLOGIES,DSO-X 3034T,MY00000001,07.20.2017102614"
SHORT_TIMEOUT_S = 0.3

# A reply: bytes to send, None for silence, or a callable that does something to the connection.
Reply = bytes | Script | None  # None: no answer


def block(data: bytes, digits: int = 8) -> bytes:
    return b"#%d%0*d" % (digits, digits, len(data)) + data + b"\n"


class FakeScpiServer(ScriptedInstrument):
    """Records each '\\n'-terminated command and sends what ``reply_for`` returns (bytes, nothing, or a
    script); tests may swap ``reply_for`` while it runs."""

    def __init__(self, reply_for: Callable[[str], Reply]) -> None:
        self.reply_for = reply_for
        super().__init__(self._script)

    def _script(self, command: str) -> Script:
        reply = self.reply_for(command)
        return [] if reply is None else [reply] if isinstance(reply, bytes) else reply


class FakeKeysight:
    """Scripted answers of an InfiniiVision; tests change the attributes to make it misbehave."""

    def __init__(self) -> None:
        self.idn = IDN
        self.errors: list[str] = []
        self.codes = np.array([0, 10, 128, 255, 10, 10], dtype=np.uint8)  # 10 is b"\n"
        self.preamble: str | None = None  # None: derived from codes
        self.data_reply: Reply = None  # None: a correct block of codes
        self.opc_reply: Reply = b"1\n"
        self.late_opc = False  # answer a silent *OPC? when :STOP arrives (a late, stale reply)
        self._opc_pending = False

    def default_preamble(self) -> str:
        # format BYTE, type NORMal, points, count 1, 1 us/pt, x origin -5 us at point 0,
        # 20 mV per code, y origin 0.5 V at code 128
        return f"+0,+0,+{len(self.codes)},+1,+1.00000000E-06,-5.00000000E-06,+0,+2.0E-02,+5.0E-01,+128"

    def __call__(self, command: str) -> Reply:
        if command == "*IDN?":
            return f"{self.idn}\n".encode()
        if command == ":SYSTem:ERRor?":
            return (self.errors.pop(0) if self.errors else '+0,"No error"').encode() + b"\n"
        if command == "*OPC?":
            self._opc_pending = self.opc_reply is None
            return self.opc_reply
        if command == ":STOP" and self.late_opc and self._opc_pending:
            self._opc_pending = False
            return b"1\n"
        if command == ":WAVeform:PREamble?":
            return (self.preamble or self.default_preamble()).encode() + b"\n"
        if command == ":WAVeform:DATA?":
            return block(self.codes.tobytes()) if self.data_reply is None else self.data_reply
        return None


@pytest.fixture
def keysight() -> Iterator[tuple[FakeKeysight, FakeScpiServer]]:
    fake = FakeKeysight()
    server = FakeScpiServer(fake)
    yield fake, server
    server.close()


def _driver(server: FakeScpiServer, timeout_s: float = 2.0) -> KeysightInfiniiVision:
    resource = open_resource(server.resource, timeout_s=timeout_s)
    return KeysightInfiniiVision(resource, server.resource)


SETUP = AcquisitionSetup(
    channels=(ChannelSetup(channel=1, scale_V_per_div=0.5, offset_V=1.5, probe_attenuation=10.0),),
    time_scale_s_per_div=1e-5,
    trigger=TriggerSetup(source_channel=1, level_V=1.0, slope="negative", sweep="normal"),
    points=10_000,
    time_reference="center",
    time_position_s=2e-6,
)


def _assert_names(exc: InstrumentError, resource: str, command: str) -> None:
    assert exc.instrument == resource
    assert command in exc.command
    assert resource in str(exc) and command in str(exc)


# -- happy path --------------------------------------------------------------------------------


def test_identity_is_parsed_and_cached(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    _fake, server = keysight
    scope = _driver(server)
    try:
        assert isinstance(scope, Oscilloscope)
        assert scope.identity() == InstrumentIdentity(
            "KEYSIGHT TECHNOLOGIES", "DSO-X 3034T", "MY00000001", "07.20.2017102614"
        )
        assert scope.identity() is scope.identity()
        assert server.received.count("*IDN?") == 1
        assert scope.channels == 4
    finally:
        scope.close()


def test_configure_sends_the_setup_then_drains_the_error_queue(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    _fake, server = keysight
    scope = _driver(server)
    try:
        scope.configure(SETUP)
    finally:
        scope.close()
    assert server.received == [
        "*IDN?",
        "*CLS",
        ":CHANnel1:DISPlay ON",
        ":CHANnel1:PROBe 10",
        ":CHANnel1:SCALe 0.5",
        ":CHANnel1:OFFSet 1.5",
        ":CHANnel2:DISPlay OFF",
        ":CHANnel3:DISPlay OFF",
        ":CHANnel4:DISPlay OFF",
        ":TIMebase:SCALe 1e-05",
        ":TIMebase:REFerence CENTer",
        ":TIMebase:POSition 2e-06",
        ":TRIGger:MODE EDGE",
        ":TRIGger:SWEep NORMal",
        ":TRIGger:EDGE:SOURce CHANnel1",
        ":TRIGger:EDGE:LEVel 1",
        ":TRIGger:EDGE:SLOPe NEGative",
        ":WAVeform:POINts:MODE RAW",
        ":WAVeform:POINts 10000",
        ":WAVeform:FORMat BYTE",
        ":WAVeform:UNSigned ON",
        ":SYSTem:ERRor?",
    ]


def test_single_digitizes_and_waits_for_opc(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    _fake, server = keysight
    scope = _driver(server)
    try:
        scope.single(timeout_s=1.0)
    finally:
        scope.close()
    assert server.received[-2:] == [":DIGitize", "*OPC?"]


def test_read_waveform_scales_from_the_preamble(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    scope = _driver(server)
    try:
        capture = scope.read_waveform(2)
    finally:
        scope.close()
    assert server.received[-4:] == [
        ":WAVeform:SOURce CHANnel2",
        ":WAVeform:PREamble?",
        ":WAVeform:DATA?",
        ":SYSTem:ERRor?",
    ]
    assert capture.samples.dtype == np.uint8
    np.testing.assert_array_equal(capture.samples, fake.codes)
    np.testing.assert_allclose(capture.volts(), (fake.codes.astype(float) - 128) * 0.02 + 0.5)
    np.testing.assert_allclose(capture.times(), -5e-6 + np.arange(6) * 1e-6)
    assert capture.channel == 2 and capture.instrument == server.resource
    assert capture.code_range == (1, 255)  # 0 = hole, 1 and 255 = clipped
    assert capture.meta["preamble"]["points"] == 6 and capture.meta["acquire_type"] == "NORMal"


def test_x_reference_shifts_the_time_origin(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.preamble = "+0,+0,+6,+1,+1.0E-06,+0.0E+00,+2,+2.0E-02,+0.0E+00,+128"
    scope = _driver(server)
    try:
        capture = scope.read_waveform(1)
    finally:
        scope.close()
    assert capture.x_origin_s == pytest.approx(-2e-6)  # sample 2 sits at x origin
    assert capture.times()[2] == pytest.approx(0.0)


def test_a_block_full_of_newlines_and_every_byte_value_is_read_by_length(
    keysight: tuple[FakeKeysight, FakeScpiServer],
) -> None:
    fake, server = keysight
    fake.codes = np.concatenate([np.full(5000, 10, np.uint8), np.arange(256, dtype=np.uint8)])
    scope = _driver(server)
    try:
        np.testing.assert_array_equal(scope.read_waveform(1).samples, fake.codes)
        assert scope.identity().model == "DSO-X 3034T"  # nothing stale left behind
    finally:
        scope.close()


def test_close_is_idempotent_and_later_calls_raise(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    _fake, server = keysight
    scope = _driver(server)
    scope.close()
    scope.close()
    with pytest.raises(InstrumentError, match="closed") as info:
        scope.read_waveform(1)
    _assert_names(info.value, server.resource, ":WAVeform:SOURce")


def test_open_scope_picks_the_keysight_driver(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    _fake, server = keysight
    scope = open_scope(ScopeConfig(resource=server.resource, timeout_s=2))
    try:
        assert isinstance(scope, KeysightInfiniiVision)
        assert scope.identity().manufacturer == "KEYSIGHT TECHNOLOGIES"
        assert server.received == ["*IDN?"]
    finally:
        scope.close()


def test_open_scope_honours_a_forced_driver(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.idn = "ACME,SCOPE 9,1,1.0"
    scope = open_scope(ScopeConfig(resource=server.resource, timeout_s=2, driver="keysight_infiniivision"))
    try:
        assert isinstance(scope, KeysightInfiniiVision)
    finally:
        scope.close()


# -- bad cases: each ends in an InstrumentError naming the resource and the command -------------


def test_idn_matching_no_driver(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.idn = "TEKTRONIX,MSO44,C012345,CF:91.1CT FV:1.0"
    with pytest.raises(InstrumentError) as info:
        open_scope(ScopeConfig(resource=server.resource, timeout_s=2))
    _assert_names(info.value, server.resource, "*IDN?")
    assert "MSO44" in str(info.value) and "keysight_infiniivision" in str(info.value)
    assert "InfiniiVision" in str(info.value)


def test_unparsable_idn(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.idn = "just a scope"
    with pytest.raises(InstrumentError, match="unparsable") as info:
        open_scope(ScopeConfig(resource=server.resource, timeout_s=2))
    _assert_names(info.value, server.resource, "*IDN?")


def test_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    resource = f"TCPIP0::127.0.0.1::{port}::SOCKET"
    with pytest.raises(InstrumentError, match="refused") as info:
        open_scope(ScopeConfig(resource=resource, timeout_s=1))
    _assert_names(info.value, resource, "open")


@pytest.mark.parametrize("resource", ["TCPIP0::127.0.0.1::SOCKET::nonsense", "not a resource"])
def test_bad_resource_string(resource: str) -> None:
    with pytest.raises(InstrumentError) as info:
        open_resource(resource, timeout_s=1)
    _assert_names(info.value, resource, "open")


def test_unknown_host() -> None:
    resource = "TCPIP0::no-such-host.invalid::5025::SOCKET"
    with pytest.raises(InstrumentError, match="could not open") as info:
        open_resource(resource, timeout_s=1)
    _assert_names(info.value, resource, "open")


@pytest.mark.parametrize("library", ["/nonexistent/libvisa.so", "@nosuchbackend"])
def test_missing_visa_library(library: str) -> None:
    with pytest.raises(InstrumentError, match="could not be loaded") as info:
        open_resource("TCPIP0::127.0.0.1::5025::SOCKET", visa_library=library, timeout_s=1)
    _assert_names(info.value, "TCPIP0::127.0.0.1::5025::SOCKET", "open")
    assert library in str(info.value)


def test_auto_resource_is_refused() -> None:
    with pytest.raises(InstrumentError, match="not resolved"):
        open_scope(ScopeConfig(resource="auto"))


def test_a_server_that_never_answers_times_out() -> None:
    server = FakeScpiServer(lambda _command: None)
    try:
        with pytest.raises(InstrumentError, match=r"no reply within 0\.3 s") as info:
            open_scope(ScopeConfig(resource=server.resource, timeout_s=SHORT_TIMEOUT_S))
        _assert_names(info.value, server.resource, "*IDN?")
    finally:
        server.close()


def test_configure_with_errors_in_the_queue(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.errors = ['-113,"Undefined header"', '-222,"Data out of range"']
    scope = _driver(server)
    try:
        with pytest.raises(InstrumentError, match="2 error") as info:
            scope.configure(SETUP)
    finally:
        scope.close()
    _assert_names(info.value, server.resource, ":TIMebase:SCALe 1e-05")
    assert '-113,"Undefined header"' in str(info.value) and "-222" in str(info.value)
    assert server.received.count(":SYSTem:ERRor?") == 3


def test_an_error_queue_that_never_empties_is_bounded(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.errors = ['-100,"Command error"'] * 1000
    scope = _driver(server)
    try:
        with pytest.raises(InstrumentError, match="queue not empty after"):
            scope.configure(SETUP)
    finally:
        scope.close()


def test_configure_refuses_a_channel_the_scope_lacks(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.idn = "AGILENT TECHNOLOGIES,DSO-X 2002A,MY1,02.41"
    setup = AcquisitionSetup(
        channels=(ChannelSetup(channel=3, scale_V_per_div=1.0),),
        time_scale_s_per_div=1e-3,
        trigger=TriggerSetup(source_channel=3, level_V=0.5),
        points=1000,
    )
    scope = _driver(server)
    try:
        with pytest.raises(InstrumentError, match="no channel 3"):
            scope.configure(setup)
    finally:
        scope.close()


def test_single_timeout_stops_and_resynchronises(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.opc_reply = None
    fake.late_opc = True  # the scope answers the abandoned *OPC? once :STOP ends the acquisition
    scope = _driver(server)
    try:
        scope.configure(SETUP)
        with pytest.raises(InstrumentError, match=r"no trigger / acquisition did not complete within 0.2 s") as info:
            scope.single(timeout_s=0.2)
        _assert_names(info.value, server.resource, ":DIGitize")
        assert "CHANnel1 at level 1 V" in str(info.value) and "resynchronised" in str(info.value)
        assert ":STOP" in server.received
        fake.errors = ['-410,"Query INTERRUPTED"']
        with pytest.raises(InstrumentError, match="-410"):  # the next reply is the fresh one, not "1"
            scope.configure(SETUP)
        capture = scope.read_waveform(1)
        np.testing.assert_array_equal(capture.samples, fake.codes)
    finally:
        scope.close()


def test_single_timeout_on_a_dead_scope_makes_the_driver_unusable(
    keysight: tuple[FakeKeysight, FakeScpiServer],
) -> None:
    fake, server = keysight
    scope = _driver(server, timeout_s=SHORT_TIMEOUT_S)
    try:
        scope.identity()
        fake.opc_reply = None
        server.reply_for = lambda _command: None  # hangs for good
        with pytest.raises(InstrumentError, match="driver now unusable"):
            scope.single(timeout_s=0.2)
        server.reply_for = fake
        with pytest.raises(InstrumentError, match="unusable") as info:
            scope.read_waveform(1)
        _assert_names(info.value, server.resource, ":WAVeform:SOURce CHANnel1")
    finally:
        scope.close()


@pytest.mark.parametrize(
    ("preamble", "problem"),
    [
        ("+0,+0,+6,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01", "9 fields"),
        ("+0,+0,+6,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128,+0", "11 fields"),
        ("+0,+0,six,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "unparsable"),
        ("+0,+0,+6,+1,+0.0E+00,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "x increment"),
        ("+1,+0,+6,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "not BYTE"),
    ],
)
def test_bad_preamble(keysight: tuple[FakeKeysight, FakeScpiServer], preamble: str, problem: str) -> None:
    fake, server = keysight
    fake.preamble = preamble
    scope = _driver(server)
    try:
        with pytest.raises(InstrumentError, match=problem) as info:
            scope.read_waveform(1)
    finally:
        scope.close()
    _assert_names(info.value, server.resource, ":WAVeform:PREamble?")


def _stall_after(data: bytes) -> Script:
    return [data]  # and then nothing more


def _close_after(data: bytes) -> Script:
    return [data, CLOSE]


SIX = bytes([0, 10, 128, 255, 10, 10])


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (_stall_after(b"#8" + b"%08d" % 1000 + bytes(500)), "truncated block: got 500 of 1000 bytes"),
        (_close_after(b"#8" + b"%08d" % 1000 + bytes(500)), "truncated block: got 500 of 1000 bytes"),
        (_stall_after(b"#8000"), "truncated block header"),
        (b"#8" + b"%08d" % 4 + SIX + b"\n", "over-long block"),  # header says fewer bytes than sent
        (block(SIX) + b"1\n", "over-long block: 2 unexpected bytes after the terminator"),
        (b"1\n" + block(SIX), "stray bytes before the block header: received b'1\\n#8"),
        (b"ERROR" + block(SIX), "stray bytes before the block header: received b'ERROR#8"),
        (_stall_after(block(SIX)[:-1]), "missing terminator"),
        (b"#0" + SIX + b"\n", "indefinite-length block '#0' refused"),
        (b"#x" + SIX + b"\n", "non-digit count"),
        (b"#4 006" + SIX + b"\n", "non-digit length"),
    ],
)
def test_malformed_blocks(keysight: tuple[FakeKeysight, FakeScpiServer], reply: Reply, problem: str) -> None:
    fake, server = keysight
    fake.data_reply = reply
    scope = _driver(server, timeout_s=SHORT_TIMEOUT_S)
    try:
        with pytest.raises(InstrumentError) as info:
            scope.read_waveform(1)
    finally:
        scope.close()
    assert problem in str(info.value)
    _assert_names(info.value, server.resource, ":WAVeform:DATA?")


def test_block_length_disagreeing_with_the_preamble(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.data_reply = block(SIX[:4])
    scope = _driver(server)
    try:
        with pytest.raises(InstrumentError, match="block holds 4 bytes but the preamble says 6 points") as info:
            scope.read_waveform(1)
    finally:
        scope.close()
    _assert_names(info.value, server.resource, ":WAVeform:DATA?")


def test_session_is_clean_after_a_bad_block(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    fake.data_reply = b"#8" + b"%08d" % 4 + SIX + b"\n" + b"garbage\n"
    scope = _driver(server, timeout_s=SHORT_TIMEOUT_S)
    try:
        with pytest.raises(InstrumentError, match="over-long"):
            scope.read_waveform(1)
        fake.data_reply = None
        np.testing.assert_array_equal(scope.read_waveform(1).samples, fake.codes)
    finally:
        scope.close()


def test_errors_while_reading_the_waveform(keysight: tuple[FakeKeysight, FakeScpiServer]) -> None:
    fake, server = keysight
    scope = _driver(server)
    try:
        scope.identity()
        fake.errors = ['-221,"Settings conflict"']
        with pytest.raises(InstrumentError, match="-221") as info:
            scope.read_waveform(1)
    finally:
        scope.close()
    _assert_names(info.value, server.resource, ":WAVeform:SOURce CHANnel1")


def test_configure_commands_formats_numbers() -> None:
    commands = configure_commands(SETUP, channels=2, instrument="x")
    assert ":CHANnel2:DISPlay OFF" in commands and ":CHANnel3:DISPlay OFF" not in commands
    assert Preamble.parse("+0,+1,+1.000E+3,+1,1e-9,0,0,1,0,0", instrument="x").points == 1000


# -- block reader fuzz ---------------------------------------------------------------------------


def _mutate(reply: bytes, data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["cut", "cut_tail", "append", "prefix", "flip"]))
    if kind == "cut":
        return reply[: data.draw(st.integers(0, max(len(reply) - 1, 0)))]
    if kind == "cut_tail":  # lose the terminator and maybe the last data bytes
        return reply[: -data.draw(st.integers(1, min(4, len(reply))))]
    if kind == "append":
        return reply + data.draw(st.binary(min_size=1, max_size=20))
    if kind == "prefix":
        return data.draw(st.binary(min_size=1, max_size=5)) + reply
    index = data.draw(st.integers(0, len(reply) - 1))
    return reply[:index] + bytes([data.draw(st.integers(0, 255))]) + reply[index + 1 :]


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "block", "mutated"]))
    if kind == "random":
        return draw(st.binary(max_size=64)) + draw(st.sampled_from([b"", b"\n"]))
    payload = draw(st.binary(max_size=300))
    digits = draw(st.integers(len(str(len(payload))), 9))
    reply = block(payload, digits)
    if kind == "block":
        return reply
    return _mutate(reply, draw(st.data()))


def _declared(reply: bytes) -> bytes:
    """The data a well-formed single block reply carries; AssertionError if it is not one."""
    assert reply[:1] == b"#" and reply[1:2].isdigit() and reply[1:2] != b"0"
    n = int(reply[1:2])
    assert reply[2 : 2 + n].isdigit()
    length = int(reply[2 : 2 + n])
    assert len(reply) == 2 + n + length + 1 and reply[-1:] == b"\n"
    return reply[2 + n : 2 + n + length]


def test_block_reader_fuzz() -> None:
    current = {"reply": b""}
    server = FakeScpiServer(lambda command: current["reply"] if command == "DATA?" else None)

    @settings(deadline=3000, suppress_health_check=[HealthCheck.too_slow])
    @given(reply=_replies())
    def check(reply: bytes) -> None:
        current["reply"] = reply
        resource = open_resource(server.resource, timeout_s=0.05)
        started = time.monotonic()
        try:
            resource.write("DATA?")
            data = read_definite_block(resource, instrument=server.resource, command="DATA?")
        except InstrumentError as exc:
            assert exc.instrument == server.resource and exc.command == "DATA?"
            event(exc.problem.split(":")[0].split("(")[0].strip())
        else:
            assert bytes(data) == _declared(reply)
            event("returned the declared data")
        finally:
            resource.close()
        assert time.monotonic() - started < 2.0

    try:
        check()
    finally:
        server.close()
