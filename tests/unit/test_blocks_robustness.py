"""Robustness of waveform transfers through real pyvisa-py over TCP: the block reader, the Keysight
preamble parser and the error-queue check after configuring.

Each misbehaving instrument is a tiny scripted TCP server that sends exactly the broken bytes
(with pauses, or closing the connection, where the case needs it). Every failure must be an
InstrumentError naming the instrument, the command and what was expected, and must leave the
session usable: the next query on the same resource gets its own reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import suppress

import numpy as np
import pytest
from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError
from rig.instruments import KeysightInfiniiVision, open_resource, read_definite_block
from rig.instruments.blocks import READ_CHUNK_BYTES
from rig.instruments.keysight import Preamble
from rig.instruments.visa import ScpiSession
from rig.interfaces import AcquisitionSetup, ChannelSetup, TriggerSetup
from tests.scripted_scpi import CLOSE, Script, ScriptedInstrument, Step

IDN = "KEYSIGHT TECHNOLOGIES,DSO-X 3034T,MY00000001,07.20.2017102614"
DATA = ":WAVeform:DATA?"
TIMEOUT_S = 0.3
Make = Callable[..., tuple["ScriptedInstrument", MessageBasedResource]]  # make(script, timeout_s=TIMEOUT_S)


def block(data: bytes, digits: int = 8) -> bytes:
    return b"#%d%0*d" % (digits, digits, len(data)) + data + b"\n"


def newline_rich(n: int, seed: int = 1) -> bytes:
    """``n`` random bytes, about a quarter of them 0x0A."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, n, dtype=np.uint8)
    codes[rng.random(n) < 0.25] = 10
    return codes.tobytes()


def answering(data_script: Script) -> Callable[[str], Script]:
    """'*IDN?' answered properly, ':WAVeform:DATA?' with ``data_script``, anything else silently."""

    def respond(command: str) -> Script:
        if command == "*IDN?":
            return [IDN.encode() + b"\n"]
        if command == DATA:
            return data_script
        return []

    return respond


@pytest.fixture
def instrument() -> Iterator[Make]:
    opened: list[tuple[ScriptedInstrument, MessageBasedResource]] = []

    def make(data_script: Script, timeout_s: float = TIMEOUT_S) -> tuple[ScriptedInstrument, MessageBasedResource]:
        server = ScriptedInstrument(answering(data_script))
        resource = open_resource(server.resource, timeout_s=timeout_s)
        opened.append((server, resource))
        return server, resource

    yield make
    for server, resource in opened:
        with suppress(Exception):  # maybe closed by the test
            resource.close()
        server.close()


def read_block(resource: MessageBasedResource, name: str) -> bytes:
    resource.write(DATA)
    return bytes(read_definite_block(resource, instrument=name, command=DATA))


def assert_named(exc: InstrumentError, resource: str, command: str = DATA) -> None:
    assert exc.instrument == resource and exc.command == command
    assert exc.expected, "the error must say what was expected"
    assert resource in str(exc) and command in str(exc) and "expected" in str(exc)


def assert_usable(resource: MessageBasedResource) -> None:
    """The next query on the same session gets its own reply, nothing left over from the bad one."""
    assert resource.query("*IDN?").strip() == IDN


SIX = bytes([0, 10, 128, 255, 10, 10])
BIG = newline_rich(3 * READ_CHUNK_BYTES + 12345)  # several reads, many 0x0A

# -- blocks that are read correctly --------------------------------------------------------------


@pytest.mark.parametrize("digits", [1, 4, 8, 9])
def test_small_block_every_length_digit_count(instrument: Make, digits: int) -> None:
    server, resource = instrument([block(SIX, digits)])
    assert read_block(resource, server.resource) == SIX
    assert_usable(resource)


@pytest.mark.parametrize("digits", [8, 9])
def test_multi_chunk_block_full_of_newlines(instrument: Make, digits: int) -> None:
    server, resource = instrument([block(BIG, digits)], 5.0)
    assert read_block(resource, server.resource) == BIG
    assert_usable(resource)


def test_empty_block(instrument: Make) -> None:
    server, resource = instrument([b"#10\n"])
    assert read_block(resource, server.resource) == b""
    assert_usable(resource)


def test_a_slow_transfer_longer_than_the_timeout_is_not_cut_while_data_flows(instrument: Make) -> None:
    """The I/O timeout is an inactivity timeout: 1 s of steady trickle through a 0.3 s timeout."""
    reply = block(newline_rich(20_000, seed=3))
    pieces: list[Step] = []
    for k in range(0, len(reply), 1000):
        pieces += [reply[k : k + 1000], 0.05]
    server, resource = instrument(pieces)
    started = time.monotonic()
    assert read_block(resource, server.resource) == reply[10:-1]
    assert time.monotonic() - started > 2 * TIMEOUT_S
    assert_usable(resource)


def test_a_pause_mid_block_shorter_than_the_timeout(instrument: Make) -> None:
    """pyvisa-py hands back a short read after half the timeout of silence; the reader carries on
    (and preallocates its buffer only once a chunk's worth has arrived)."""
    reply = block(BIG, 9)
    server, resource = instrument([reply[:5000], 0.7, reply[5000 : 5000 + READ_CHUNK_BYTES], 0.7,
                                   reply[5000 + READ_CHUNK_BYTES :]], 1.0)
    assert read_block(resource, server.resource) == BIG
    assert_usable(resource)


def test_a_header_split_across_packets(instrument: Make) -> None:
    reply = block(SIX, 9)
    server, resource = instrument([reply[:1], 0.05, reply[1:3], 0.05, reply[3:8], 0.05, reply[8:]])
    assert read_block(resource, server.resource) == SIX


# -- malformed replies: an InstrumentError, and the session stays usable ---------------------------


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        pytest.param([b"#8" + b"%08d" % 1000 + bytes(500)],
                     "truncated block: got 500 of 1000 bytes (no reply within 0.3 s", id="timeout-mid-block"),
        pytest.param([b"#8" + b"%08d" % 1000 + SIX + b"\n"], "truncated block: got 7 of 1000 bytes",
                     id="header-declares-more-than-sent"),
        pytest.param([b"#8" + b"%08d" % 4 + SIX + b"\n"], "over-long block: 2 unexpected bytes after the terminator",
                     id="header-declares-fewer-than-sent"),  # byte 5 of SIX is 0x0A, taken for the terminator
        pytest.param([b"#8" + b"%08d" % 3 + SIX + b"\n"], "over-long block: more bytes than the 3 declared",
                     id="header-declares-fewer-than-sent-no-newline-there"),
        pytest.param([block(SIX) + b"+1\n"], "over-long block: 3 unexpected bytes after the terminator",
                     id="bytes-after-the-terminator"),
        pytest.param([b"1\n" + block(SIX)], "stray bytes before the block header: received b'1\\n#8",
                     id="stale-reply-before-the-block"),
        pytest.param([b" " + block(SIX)], "stray bytes before the block header: received b' #8",
                     id="space-before-hash"),
        pytest.param([b'-222,"Data out of range"\n'], "stray bytes before the block header",
                     id="text-instead-of-a-block"),
        pytest.param([block(SIX)[:-1]], "missing terminator: no '\\n' after the 6 data bytes (no reply within",
                     id="missing-terminator"),
        pytest.param([block(SIX)[:-1] + b"\r"], "over-long block", id="cr-instead-of-lf"),
        pytest.param([], "no reply within 0.3 s (VI_ERROR_TMO)", id="no-reply"),
        pytest.param([b"#8000"], "truncated block header: got b'#8000'", id="timeout-mid-header"),
        pytest.param([b"#"], "truncated block header: got b'#'", id="timeout-after-hash"),
        pytest.param([b"#0" + SIX + b"\n"], "indefinite-length block '#0' refused", id="indefinite-block"),
        pytest.param([b"#A" + SIX + b"\n"], "non-digit count in the block header", id="non-digit-count"),
        pytest.param([b"#3+06" + SIX + b"\n"], "non-digit length in the block header", id="signed-length"),
        pytest.param([b"#3 6\n" + SIX + b"\n"], "non-digit length in the block header", id="newline-in-length"),
    ],
)
def test_malformed_block_raises_and_the_session_stays_usable(instrument: Make, script: Script, problem: str) -> None:
    server, resource = instrument(script)
    started = time.monotonic()
    with pytest.raises(InstrumentError) as info:
        read_block(resource, server.resource)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 1.0
    assert problem in info.value.problem
    assert_named(info.value, server.resource)
    assert_usable(resource)


def test_a_truncated_multi_chunk_block(instrument: Make) -> None:
    reply = block(BIG)
    server, resource = instrument([reply[: 10 + READ_CHUNK_BYTES + 777]], 1.0)
    with pytest.raises(InstrumentError) as info:
        read_block(resource, server.resource)
    assert f"truncated block: got {READ_CHUNK_BYTES + 777} of {len(BIG)} bytes" in info.value.problem
    assert_named(info.value, server.resource)
    assert_usable(resource)


def test_a_block_longer_than_the_limit_is_refused_before_reading_it(instrument: Make) -> None:
    server, resource = instrument([block(bytes(1000))])
    resource.write(DATA)
    with pytest.raises(InstrumentError, match="block declares 1000 bytes, more than the 999-byte limit") as info:
        read_definite_block(resource, instrument=server.resource, command=DATA, max_bytes=999)
    assert_named(info.value, server.resource)
    assert_usable(resource)


def test_a_huge_declared_length_with_little_data_is_a_truncated_block(instrument: Make) -> None:
    """A corrupted header claiming ~1 GB: bounded time and memory, an error, and no stale bytes."""
    server, resource = instrument([b"#9999999999" + SIX + b"\n"])
    with pytest.raises(InstrumentError, match="truncated block: got 7 of 999999999 bytes") as info:
        read_block(resource, server.resource)
    assert_named(info.value, server.resource)
    assert_usable(resource)


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        pytest.param([b"#8" + b"%08d" % 1000 + bytes(500), CLOSE], "truncated block: got 500 of 1000 bytes",
                     id="closed-mid-block"),
        pytest.param([block(SIX)[:-1], CLOSE], "missing terminator", id="closed-before-terminator"),
        pytest.param([b"#80000", CLOSE], "truncated block header", id="closed-mid-header"),
        pytest.param([CLOSE], "no reply within", id="closed-before-reply"),
    ],
)
def test_connection_closed_mid_reply(instrument: Make, script: Script, problem: str) -> None:
    """The instrument hangs up: an InstrumentError within the timeout (bounded), never a hang; the
    next query on the dead session fails the same way, and a fresh session works."""
    server, resource = instrument(script)
    started = time.monotonic()
    with pytest.raises(InstrumentError) as info:
        read_block(resource, server.resource)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 1.0
    assert problem in info.value.problem
    assert_named(info.value, server.resource)
    with pytest.raises(InstrumentError):  # through the session layer the drivers use
        ScpiSession(resource, server.resource).query("*IDN?", expected="the identity")
    fresh = open_resource(server.resource, timeout_s=TIMEOUT_S)
    try:
        assert_usable(fresh)
    finally:
        fresh.close()


def test_reading_a_closed_session_is_an_instrument_error(instrument: Make) -> None:
    server, resource = instrument([block(SIX)])
    resource.close()
    with pytest.raises(InstrumentError) as info:
        read_definite_block(resource, instrument=server.resource, command=DATA)
    assert_named(info.value, server.resource)


def test_termination_settings_are_restored_after_an_error(instrument: Make) -> None:
    server, resource = instrument([b"junk\n"])
    with pytest.raises(InstrumentError):
        read_block(resource, server.resource)
    assert resource.read_termination == "\n"
    assert_usable(resource)  # reads stop at '\n' again: *IDN? is one line


# -- the Keysight driver: late bytes, preamble, error queue ---------------------------------------


class FakeScope:
    """A scripted InfiniiVision for the driver-level cases."""

    def __init__(self) -> None:
        self.codes = newline_rich(1000, seed=7)
        self.preamble = self.default_preamble()
        self.data_script: Script | None = None
        self.errors: list[str] = []

    def default_preamble(self) -> str:
        return f"+0,+0,+{len(self.codes)},+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128"

    def __call__(self, command: str) -> Script:
        if command == "*IDN?":
            return [IDN.encode() + b"\n"]
        if command == ":SYSTem:ERRor?":
            return [(self.errors.pop(0) if self.errors else '+0,"No error"').encode() + b"\n"]
        if command == ":WAVeform:PREamble?":
            return [self.preamble.encode() + b"\n"]
        if command == DATA:
            script, self.data_script = self.data_script, None  # misbehave once
            return script if script is not None else [block(self.codes)]
        return []


ScopeFixture = tuple[FakeScope, ScriptedInstrument, KeysightInfiniiVision]


@pytest.fixture
def scope() -> Iterator[ScopeFixture]:
    fake = FakeScope()
    server = ScriptedInstrument(fake)
    driver = KeysightInfiniiVision(open_resource(server.resource, timeout_s=TIMEOUT_S), server.resource)
    yield fake, server, driver
    driver.close()
    server.close()


def test_driver_recovers_when_the_rest_of_a_stalled_block_arrives_late() -> None:
    """A stall longer than the timeout mid-block, then the rest of the block: the block reader
    cannot know it is coming (a raw socket has no device clear), so the driver resynchronises on a
    fresh *IDN? and the next read is clean. Timing: the reader gives up ~1.5 s after the first
    bytes (a short read after 0.5 s of silence, then a 1 s timeout); the rest comes at 2 s, while
    the resynchronisation waits for its *IDN? reply (until ~2.5 s)."""
    fake = FakeScope()
    # ASCII without 0x0A: the driver's resynchronisation reads the late rest as one text line (it
    # gives up on more than 16 lines, or on bytes that do not decode as ASCII)
    fake.codes = (bytes(range(11, 127)) * 9)[:1000]
    reply = block(fake.codes)
    fake.data_script = [reply[:400], 2.0, reply[400:]]
    server = ScriptedInstrument(fake)
    driver = KeysightInfiniiVision(open_resource(server.resource, timeout_s=1.0), server.resource)
    try:
        with pytest.raises(InstrumentError, match="truncated block: got 390 of 1000 bytes") as info:
            driver.read_waveform(1)
        assert_named(info.value, server.resource)
        assert bytes(driver.read_waveform(1).samples) == fake.codes
    finally:
        driver.close()
        server.close()


@pytest.mark.parametrize(
    ("preamble", "problem"),
    [
        pytest.param("+0,+0,+1000,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01", "preamble has 9 fields", id="9-fields"),
        pytest.param("+0,+0,+1000,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128,+0", "preamble has 11 fields",
                     id="11-fields"),
        pytest.param("+0,+0,+1000,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128,", "preamble has 11 fields",
                     id="trailing-comma"),
        pytest.param("", "preamble has 1 fields", id="empty"),
        pytest.param("+0;+0;+1000;+1;+1.0E-06;-5.0E-06;+0;+2.0E-02;+5.0E-01;+128", "preamble has 1 fields",
                     id="wrong-separator"),
        pytest.param("+0,+0,1_000,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "unparsable preamble",
                     id="underscore-digits"),
        pytest.param("+0,+0,+1000,+1,nan,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "unparsable preamble", id="nan"),
        pytest.param("+0,+0,+1" + "0" * 400 + ",+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128",
                     "unparsable preamble", id="integer-too-large-for-a-float"),
        pytest.param("+0,+0,+1000,+1,+1.0E+999,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "non-finite value",
                     id="float-overflow"),
        pytest.param("+0,+0,+1000.5,+1,+1.0E-06,-5.0E-06,+0,+2.0E-02,+5.0E-01,+128", "not an integer",
                     id="fractional-points"),
    ],
)
def test_bad_preamble(scope: ScopeFixture, preamble: str, problem: str) -> None:
    fake, server, driver = scope
    fake.preamble = preamble
    with pytest.raises(InstrumentError) as info:
        driver.read_waveform(1)
    assert problem in info.value.problem
    assert_named(info.value, server.resource, ":WAVeform:PREamble?")
    assert "10 comma-separated fields" in info.value.expected
    fake.preamble = fake.default_preamble()
    assert bytes(driver.read_waveform(1).samples) == fake.codes  # the session is still usable


def test_a_garbage_preamble_is_shown_abbreviated() -> None:
    with pytest.raises(InstrumentError) as info:
        Preamble.parse("x" * 100_000, instrument="scope")
    assert "(100000 characters)" in info.value.problem and len(str(info.value)) < 1000


SETUP = AcquisitionSetup(
    channels=(ChannelSetup(channel=1, scale_V_per_div=0.5, offset_V=1.5, probe_attenuation=10.0),),
    time_scale_s_per_div=1e-5,
    trigger=TriggerSetup(source_channel=1, level_V=1.0, slope="negative", sweep="normal"),
    points=1000,
)


def test_errors_queued_after_configuring_are_reported_and_the_session_stays_usable(scope: ScopeFixture) -> None:
    fake, server, driver = scope
    fake.errors = ['-224,"Illegal parameter value"']
    with pytest.raises(InstrumentError) as info:
        driver.configure(SETUP)
    assert "the scope reported 1 error(s) after configuring" in info.value.problem
    assert '-224,"Illegal parameter value"' in info.value.problem
    assert info.value.instrument == server.resource and ":WAVeform:FORMat BYTE" in info.value.command
    assert "empty error queue" in info.value.expected
    assert server.received.count(":SYSTem:ERRor?") == 2  # drained until +0
    driver.configure(SETUP)  # the queue is empty now: configuring succeeds on the same session
    assert bytes(driver.read_waveform(1).samples) == fake.codes
