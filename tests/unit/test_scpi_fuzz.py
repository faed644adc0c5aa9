"""Fuzzing both ends of the waveform transfer with hypothesis.

(a) The emulator: the SCPI program-data helpers, and the emulated Keysight's per-connection session
    (``KeysightInfiniiVision(host, load_scope_model()).session()``, as simulator/instruments/serve.py
    builds it, on a bench with nothing wired) fed near-valid SCPI, mutated SCPI and arbitrary bytes,
    directly and through the real raw-socket server: it never raises, never hangs (each message
    runs in a worker thread with a time limit), and answers every query or pushes an error.
(b) The rig's block reader fed arbitrary byte streams, in pieces with pauses, from a fake server:
    it never hangs beyond its timeout, and either returns exactly the declared bytes of a
    well-formed block or raises an InstrumentError naming the instrument and the command.

Bounded for CI (the repository's hypothesis profile, see conftest.py; STIMRIG_HYPOTHESIS=thorough
runs more examples).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rig.errors import InstrumentError
from rig.instruments import open_resource, read_definite_block
from rig.instruments.blocks import READ_CHUNK_BYTES
from simulator.instruments.keysight import KeysightInfiniiVision, ScopeSession
from simulator.instruments.scope_model import load_scope_model
from simulator.instruments.scpi import (
    ErrorQueue,
    ScpiError,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
)
from simulator.instruments.socket_server import ScpiSocketServer

EXAMPLES = settings().max_examples  # from the active profile (conftest.py)
MESSAGE_LIMIT_S = 5.0  # one program message, however nasty, is handled within this (wall time)
MODEL = load_scope_model()
T = TypeVar("T")


def bounded(call: Callable[[], T], what: object, limit_s: float = MESSAGE_LIMIT_S) -> T:
    """``call()`` in a worker thread; fails the test (instead of hanging it) if it takes too long."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit_s)
    assert not worker.is_alive(), f"hung for more than {limit_s} s on {what!r:.300}"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


# ================================================================================================
# (a) the emulator


class QuietHost:
    """A bench with nothing wired (the minimal ScopeHost): acquisitions never trigger."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance_to(self, t_s: float) -> None:
        self.t = max(self.t, t_s)

    def signal(self, channel: int) -> None:
        return None

    def probe_attenuation(self, channel: int) -> float:
        return 10.0

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(stream.encode()))


class CountingQueue(ErrorQueue):
    """The scope's error queue, also remembering every error pushed (a *CLS empties the queue)."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[int] = []

    def push(self, code: int, message: str | None = None) -> None:
        self.pushed.append(code)
        super().push(code, message)


class HandlerFailures(logging.Handler):
    """Collects 'SCPI handler failed' logs: a Python exception inside the emulator (a bug)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def handler_failures() -> Iterator[HandlerFailures]:
    collector = HandlerFailures()
    loggers = [logging.getLogger(f"simulator.instruments.{name}") for name in ("scpi", "socket_server", "keysight")]
    for logger in loggers:
        logger.addHandler(collector)
    yield collector
    for logger in loggers:
        logger.removeHandler(collector)


def emulated_scope() -> tuple[KeysightInfiniiVision, ScopeSession, CountingQueue]:
    """The scope and one connection's session, built as serve_keysight builds them (default
    trigger search: with nothing wired a NORMal-sweep acquisition stays pending, *OPC? waits)."""
    scope = KeysightInfiniiVision(QuietHost(), MODEL)  # type: ignore[arg-type]
    queue = CountingQueue()
    scope.errors = queue
    return scope, scope.session(), queue


# -- program data helpers -------------------------------------------------------------------------

latin1_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=40)
numberish = st.from_regex(
    r"\A[ +-]?[0-9\u00b2\u00b3\u00b9]{0,4}\.?[0-9]{0,3}([eE][+-]?[0-9\u00b9]{0,4})? ?[A-Za-z]{0,3}\Z"
)


@settings(max_examples=3 * EXAMPLES, deadline=1000)
@given(text=latin1_text | numberish)
def test_program_data_helpers_raise_only_scpi_errors(text: str) -> None:
    """Whatever a line decodes to (latin-1: every byte is one character), the helpers either
    return a value or raise ScpiError: no ValueError/OverflowError escaping as a -200."""
    for parse in (
        lambda: parse_number(text, unit="V"),
        lambda: parse_number(text, special={"MAXimum": 1.0}),
        lambda: parse_int(text),
        lambda: parse_bool(text),
        lambda: parse_choice(text, ("NORMal", "AUTO")),
    ):
        try:
            parse()
        except ScpiError as exc:
            assert exc.code < 0


# -- near-valid SCPI ------------------------------------------------------------------------------

HEADERS = [  # (header spec, takes a channel suffix, usual argument kind)
    ("*IDN", False, ""), ("*CLS", False, ""), ("*RST", False, ""), ("*OPC", False, ""), ("*ESR", False, ""),
    ("*STB", False, ""), ("*ESE", False, "int"), ("*SRE", False, "int"), ("*WAI", False, ""), ("*TST", False, ""),
    ("*OPT", False, ""), (":SYSTem:ERRor", False, ""), (":SYSTem:ERRor:NEXT", False, ""), (":RUN", False, ""),
    (":STOP", False, ""), (":SINGle", False, ""), (":DIGitize", False, "chan"), (":TER", False, ""),
    (":OPERegister:CONDition", False, ""), (":OPERegister:EVENt", False, ""), (":TRIGger:FORCe", False, ""),
    (":ACQuire:TYPE", False, "acq"), (":ACQuire:SRATe", False, ""), (":ACQuire:POINts", False, ""),
    (":CHANnel:SCALe", True, "volt"), (":CHANnel:OFFSet", True, "volt"), (":CHANnel:PROBe", True, "num"),
    (":CHANnel:DISPlay", True, "bool"), (":CHANnel:COUPling", True, "coupling"), (":CHANnel:BWLimit", True, "bool"),
    (":CHANnel:RANGe", True, "volt"), (":TIMebase:SCALe", False, "time"), (":TIMebase:RANGe", False, "time"),
    (":TIMebase:POSition", False, "time"), (":TIMebase:REFerence", False, "ref"), (":TIMebase:MODE", False, "tbmode"),
    (":TRIGger:MODE", False, "trigmode"), (":TRIGger:SWEep", False, "sweep"), (":TRIGger:EDGE:SOURce", False, "chan"),
    (":TRIGger:SOURce", False, "chan"), (":TRIGger:EDGE:LEVel", False, "volt"), (":TRIGger:LEVel", False, "volt"),
    (":TRIGger:EDGE:SLOPe", False, "slope"), (":WAVeform:SOURce", False, "chan"), (":WAVeform:FORMat", False, "fmt"),
    (":WAVeform:POINts", False, "points"), (":WAVeform:POINts:MODE", False, "pmode"),
    (":WAVeform:UNSigned", False, "bool"), (":WAVeform:BYTeorder", False, "order"), (":WAVeform:PREamble", False, ""),
    (":WAVeform:DATA", False, ""), (":WAVeform:COUNt", False, ""), (":WAVeform:TYPE", False, ""),
    (":WAVeform:XINCrement", False, ""), (":WAVeform:YREFerence", False, ""),
    (":BOGus:HEADer", False, ""), ("*BOG", False, ""),  # undefined on purpose
]
ARGUMENTS = {
    "": [""],
    "int": ["0", "1", "255", "256", "-1", "1.5"],
    "chan": ["CHAN1", "CHANnel2", "chan4", "CHAN5", "CHAN0", "CHAN", "CHAN99999999"],
    "acq": ["NORMal", "NORM", "PEAK", "AVER", "HRES", "BOGUS"],
    "volt": ["1", "0.5", "100mV", "2 V", "-3.3e-1", "1e999", "-1e999", "1 kV", "1mA", "MAX", "MIN", "NaN"],
    "num": ["1", "10", "0", "-10", "1e-30", "1e30", "1X"],
    "bool": ["ON", "OFF", "1", "0", "2", "-0.4", "on", "YES"],
    "coupling": ["DC", "AC", "GND", "X"],
    "time": ["1e-6", "1us", "100 ns", "5E-3S", "0", "-1", "1e-15", "1e15", "MAXimum"],
    "ref": ["LEFT", "CENTer", "CENT", "RIGHt", "RIGH", "UP"],
    "tbmode": ["MAIN", "WIND", "ROLL", "XY"],
    "trigmode": ["EDGE", "GLITch", "X"],
    "sweep": ["NORMal", "AUTO", "TRIG", "X"],
    "slope": ["POSitive", "NEGative", "EITH", "ALT", "X"],
    "fmt": ["BYTE", "WORD", "ASCii", "ASC", "FLOAT"],
    "points": ["100", "1000", "62500", "1000000", "8000000", "0", "-5", "1e12", "MAX", "1.5"],
    "pmode": ["NORMal", "MAXimum", "RAW", "X"],
    "order": ["MSBF", "LSBF", "X"],
}
TRICKY = ["", '"quoted, with; separators"', "'unterminated", '"', "#15abcde", "#9", "#0abc", "?", ",", "1,2,3",
          "\x00", "\xff\xfe", "  ", "\t1", "A" * 300, "9" * 300, "1e", ".", "+", "-", "E5", "0x1F"]


@st.composite
def header_text(draw: st.DrawFn, spec: str, suffixed: bool, relative: bool) -> str:
    """``spec`` in a random legal (and sometimes illegal) spelling."""
    if spec.startswith("*"):
        return draw(st.sampled_from([spec, spec.lower(), ":" + spec]))
    parts = spec.lstrip(":").split(":")
    words = []
    for k, part in enumerate(parts):
        short = "".join(c for c in part if c.isupper())
        word = draw(st.sampled_from([part.upper(), short, part.lower(), part, short.lower(), short[:-1] or short]))
        if suffixed and k == 0:
            word += draw(st.sampled_from(["", "1", "2", "3", "4", "0", "5", "01", "9999999"]))
        words.append(word)
    if relative and len(words) > 1 and draw(st.booleans()):
        return ":".join(words[1:])  # relative to the previous unit's node (maybe wrongly)
    return ":" * draw(st.sampled_from([1, 1, 1, 0, 2])) + ":".join(words)


@st.composite
def near_valid_unit(draw: st.DrawFn, relative: bool) -> tuple[str, bool]:
    """(one program message unit, whether it is a query)."""
    spec, suffixed, kind = draw(st.sampled_from(HEADERS))
    query = draw(st.booleans())
    header = draw(header_text(spec, suffixed, relative)) + ("?" if query else "")
    if query and draw(st.integers(0, 9)) > 0:
        return header, True
    values = ARGUMENTS[kind] + (TRICKY if draw(st.integers(0, 4)) == 0 else [])
    args = draw(st.lists(st.sampled_from(values), min_size=0 if kind == "" else 1, max_size=3))
    separator = draw(st.sampled_from([" ", "  ", "\t", ""]))
    return (header + separator + ",".join(args)).rstrip() if args else header, query


@st.composite
def near_valid_message(draw: st.DrawFn) -> tuple[str, int]:
    """(a program message of 1-6 units, the number of query units in it)."""
    units = [draw(near_valid_unit(relative=k > 0)) for k in range(draw(st.integers(1, 6)))]
    message = draw(st.sampled_from([";", "; ", ";:"])).join(u for u, _ in units)
    if message.startswith("::"):
        message = message[1:]
    return message + draw(st.sampled_from(["", ";", " ", "\r"])), sum(q for _, q in units)


def mutate(message: bytes, data: st.DataObject) -> bytes:
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        at = data.draw(st.integers(0, len(message)))
        if kind == "insert":
            message = message[:at] + data.draw(st.binary(min_size=1, max_size=8)) + message[at:]
        elif kind == "delete":
            message = message[:at] + message[at + data.draw(st.integers(1, 8)) :]
        elif kind == "replace" and at < len(message):
            message = message[:at] + bytes([data.draw(st.integers(0, 255))]) + message[at + 1 :]
        elif kind == "duplicate":
            message = message[:at] + message[at:] + message[at:]
        else:
            message = message[:at]
    return message


FUZZ = settings(max_examples=3 * EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture])


def check_reply(reply: object) -> bytes:
    assert isinstance(reply, bytes)
    assert reply == b"" or reply.endswith(b"\n"), reply[-80:]
    return reply


@FUZZ
@given(generated=near_valid_message())
def test_near_valid_scpi_answers_every_query_or_pushes_an_error(
    generated: tuple[str, int], handler_failures: HandlerFailures
) -> None:
    message, queries = generated
    scope, session, queue = emulated_scope()
    reply = check_reply(bounded(lambda: session.handle(message.encode("latin-1")), message))
    if queries:
        answered = bool(reply) or bool(queue.pushed) or scope.pending is not None  # *OPC? waits on an acquisition
        assert answered, f"{message!r}: {queries} queries, no reply, no error"
    event("reply" if reply else "error" if queue.pushed else "pending" if scope.pending else "no reply (no query)")
    assert handler_failures.messages == [], handler_failures.messages
    assert check_reply(bounded(lambda: session.handle(b"*IDN?"), "*IDN?")) == scope.idn.encode() + b"\n"


SAFE_QUERIES = [  # replies that contain no ';' or '\n': one reply field per query
    "*IDN?", "*ESR?", "*STB?", "*OPT?", ":SYSTem:ERRor?", ":SYST:ERR:NEXT?", ":TIMebase:SCALe?", ":TIM:POS?",
    ":TIM:REF?", ":TRIGger:MODE?", ":TRIG:SWE?", ":TRIG:EDGE:SOUR?", ":TRIG:LEV?", ":TRIG:SLOP?",
    ":WAVeform:POINts?", ":WAV:FORM?", ":WAV:POIN:MODE?", ":WAV:SOUR?", ":CHAN1:SCAL?", ":CHANnel2:OFFSet?",
    ":CHAN3:PROB?", ":CHAN4:DISP?", ":ACQ:TYPE?", ":ACQ:SRAT?", ":OPER:COND?", ":WAV:PRE?",
]


@FUZZ
@given(queries=st.lists(st.sampled_from(SAFE_QUERIES), min_size=1, max_size=8), spacing=st.sampled_from([";", "; "]))
def test_valid_queries_get_exactly_one_reply_each(queries: list[str], spacing: str) -> None:
    _scope, session, queue = emulated_scope()
    reply = check_reply(bounded(lambda: session.handle(spacing.join(queries).encode()), queries))
    assert reply.rstrip(b"\n").count(b";") == len(queries) - 1, (queries, reply)
    assert queue.pushed == []


@FUZZ
@given(generated=near_valid_message(), data=st.data())
def test_mutated_scpi_never_raises_or_hangs(
    generated: tuple[str, int], data: st.DataObject, handler_failures: HandlerFailures
) -> None:
    message = mutate(generated[0].encode("latin-1"), data)
    scope, session, _queue = emulated_scope()
    check_reply(bounded(lambda: session.handle(message), message))
    assert handler_failures.messages == [], handler_failures.messages
    assert check_reply(bounded(lambda: session.handle(b"*IDN?"), "*IDN?")) == scope.idn.encode() + b"\n"


@FUZZ
@given(message=st.binary(max_size=2000) | st.text(max_size=500).map(lambda t: t.encode("utf-8", "replace")))
def test_arbitrary_bytes_never_raise_or_hang(message: bytes, handler_failures: HandlerFailures) -> None:
    scope, session, _queue = emulated_scope()
    check_reply(bounded(lambda: session.handle(message), message))
    assert handler_failures.messages == [], handler_failures.messages
    assert check_reply(bounded(lambda: session.handle(b"*IDN?"), "*IDN?")) == scope.idn.encode() + b"\n"


def test_a_huge_program_message_is_bounded(handler_failures: HandlerFailures) -> None:
    """A 1 MiB line (the socket server's limit) of units and separators: handled in bounded time."""
    _scope, session, _queue = emulated_scope()
    for message in (b";" * (1 << 20), b":TIM:SCAL?;" * 90_000, b'"' + b"x;" * (1 << 19), b"*CLS " + b"1," * (1 << 19)):
        started = time.monotonic()
        check_reply(bounded(lambda m=message: session.handle(m), message[:40]))
        assert time.monotonic() - started < MESSAGE_LIMIT_S
    assert handler_failures.messages == []


@settings(max_examples=max(10, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=400) | near_valid_message().map(lambda m: m[0].encode("latin-1") + b"\n"),
                       min_size=1, max_size=5))
def test_the_socket_server_keeps_serving_whatever_arrives(
    chunks: list[bytes], handler_failures: HandlerFailures
) -> None:
    """End to end through the raw-socket server: after any bytes, '*IDN?' is answered (bounded)."""
    scope = KeysightInfiniiVision(QuietHost(), MODEL)  # type: ignore[arg-type]
    with ScpiSocketServer(scope.session, port=0) as server, socket.create_connection(server.address, timeout=5) as conn:
        for chunk in chunks:
            conn.sendall(chunk)
        conn.sendall(b"\n*IDN?\n")
        wanted = scope.idn.encode() + b"\n"
        received = b""
        deadline = time.monotonic() + MESSAGE_LIMIT_S
        while not received.endswith(wanted):  # earlier replies (maybe binary blocks) come first
            assert time.monotonic() < deadline, f"no *IDN? reply; got {received[-200:]!r}"
            piece = conn.recv(65536)
            assert piece, "the server closed the connection"
            received += piece
    assert handler_failures.messages == []


# ================================================================================================
# (b) the rig's block reader against arbitrary byte streams

READ_TIMEOUT_S = 0.15
PAUSES_S = [0.0, 0.0, 0.0, 0.005, 0.02]  # well under half the timeout: the stream keeps flowing


def block(data: bytes, digits: int) -> bytes:
    return b"#%d%0*d" % (digits, digits, len(data)) + data + b"\n"


def is_exact_block(stream: bytes) -> bool:
    """Whether ``stream`` is exactly one well-formed block and its '\\n', nothing more."""
    declared = well_formed_prefix(stream)
    return declared is not None and len(stream) == 2 + int(stream[1:2]) + len(declared) + 1


def well_formed_prefix(stream: bytes) -> bytes | None:
    """The data of the well-formed block (header, data, '\\n') ``stream`` starts with, or None."""
    if stream[:1] != b"#" or not b"1" <= stream[1:2] <= b"9":
        return None
    n = int(stream[1:2])
    digits = stream[2 : 2 + n]
    if len(digits) != n or not digits.isdigit():
        return None
    length = int(digits)
    end = 2 + n + length
    if len(stream) < end + 1 or stream[end : end + 1] != b"\n":
        return None
    return stream[2 + n : end]


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "block", "block", "mutated", "large"]))
    if kind == "random":
        return draw(st.binary(max_size=80)) + draw(st.sampled_from([b"", b"\n"]))
    if kind == "large":  # several reads' worth, many 0x0A; generated from a drawn seed (cheap)
        size = draw(st.integers(READ_CHUNK_BYTES - 2, READ_CHUNK_BYTES * 2 + 3))
        payload = np.random.default_rng(draw(st.integers(0, 2**32))).integers(0, 12, size, dtype=np.uint8).tobytes()
    else:
        payload = draw(st.binary(max_size=400))
    reply = block(payload, draw(st.integers(len(str(len(payload))), 9)))
    if kind in ("block", "large") and draw(st.integers(0, 3)) > 0:
        return reply
    return mutate(reply[:2000] if kind == "large" and draw(st.booleans()) else reply, draw(st.data()))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, list[tuple[bytes, float]], bool]:
    """(the stream, its pieces each with the pause before it, whether the server then hangs up)."""
    stream = draw(streams())
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    bounds = [0, *cuts, len(stream)]
    pieces = [(stream[a:b], draw(st.sampled_from(PAUSES_S))) for a, b in pairwise(bounds) if b > a]
    return stream, pieces, draw(st.integers(0, 4)) == 0


class StreamServer:
    """Answers 'DATA?' with the current delivery: pieces with pauses, then maybe a hang-up."""

    def __init__(self) -> None:
        self.delivery: tuple[list[tuple[bytes, float]], bool] = ([], False)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.resource = f"TCPIP0::127.0.0.1::{self._listener.getsockname()[1]}::SOCKET"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                pending = b""
                while b"DATA?\n" not in pending:
                    piece = conn.recv(4096)
                    if not piece:
                        return
                    pending += piece
                pieces, hang_up = self.delivery
                for data, pause in pieces:
                    if pause:
                        time.sleep(pause)
                    conn.sendall(data)
                if hang_up:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                conn.settimeout(0.5)
                while conn.recv(4096):  # keep the connection open until the client closes it
                    pass
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture(scope="module")
def stream_server() -> Iterator[StreamServer]:
    server = StreamServer()
    yield server
    server.close()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(delivery=deliveries())
def test_block_reader_returns_the_declared_bytes_or_raises(
    delivery: tuple[bytes, list[tuple[bytes, float]], bool], stream_server: StreamServer
) -> None:
    stream, pieces, hang_up = delivery
    event("multi-chunk stream" if len(stream) > READ_CHUNK_BYTES else "small stream")
    stream_server.delivery = (pieces, hang_up)
    resource = open_resource(stream_server.resource, timeout_s=READ_TIMEOUT_S)
    started = time.monotonic()
    try:
        resource.write("DATA?")
        data = bounded(
            lambda: read_definite_block(resource, instrument=stream_server.resource, command="DATA?"), stream[:80]
        )
    except InstrumentError as exc:
        assert exc.instrument == stream_server.resource and exc.command == "DATA?" and exc.expected
        assert not is_exact_block(stream), f"a well-formed block, delivered steadily, was refused: {exc}"
        event(exc.problem.split(":")[0].split("(")[0].strip())
    else:
        declared = well_formed_prefix(stream)
        assert declared is not None, f"returned {len(data)} bytes of a stream that is no block"
        assert bytes(data) == declared
        event("returned the declared data")
    finally:
        resource.close()
    elapsed = time.monotonic() - started
    delivery_s = sum(pause for _, pause in pieces)
    assert elapsed < delivery_s + 4 * READ_TIMEOUT_S + 1.0, f"took {elapsed:.2f} s"

