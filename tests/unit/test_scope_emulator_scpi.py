"""The generic SCPI layer of the scope emulator (parser, command tree, error queue, program data),
and fuzzing: arbitrary text and bytes must never raise and never hang, in the parser or in the
whole emulated instrument."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.instruments.keysight import KeysightInfiniiVision
from simulator.instruments.scope_model import load_scope_model
from simulator.instruments.scpi import (
    Call,
    CommandTree,
    ErrorQueue,
    ScpiError,
    ScpiExecutor,
    Unanswerable,
    definite_block,
    format_error,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
)

MODEL = load_scope_model()


class Recorder:
    """A small tree whose handlers record what they were called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = []
        self.errors: list[int] = []
        tree = CommandTree()
        for pattern in (
            ":CHANnel<1-4>:SCALe",
            ":CHANnel<1-4>:OFFSet",
            ":TRIGger[:EDGE]:LEVel",
            ":TRIGger:SWEep",
            ":WAVeform:SOURce",
            ":WAVeform:POINts",
            ":WAVeform:POINts:MODE",
            "*CLS",
        ):
            tree.add(pattern, self._recorder(pattern))
            tree.add(pattern + "?", self._recorder(pattern + "?"))
        tree.add(":WAVeform:DATA?", lambda c: definite_block(b"\n\x00\xff"))
        tree.add("*OPC?", self._opc)
        tree.add(":BOOM", self._boom)
        self.pending = False
        self.executor = ScpiExecutor(tree, self.errors.append)

    def _recorder(self, name: str):  # type: ignore[no-untyped-def]
        def handler(c: Call) -> str | None:
            self.calls.append((name, c.suffixes, c.args))
            return name if c.query else None

        return handler

    def _opc(self, c: Call) -> str:
        if self.pending:
            raise Unanswerable()
        return "1"

    def _boom(self, c: Call) -> None:
        raise RuntimeError("a bug in a handler")

    def run(self, message: str | bytes) -> bytes:
        return self.executor.execute(message)


def test_short_and_long_forms_any_case_with_suffixes() -> None:
    r = Recorder()
    assert r.run(":chan2:scal 1;:CHANNEL3:SCALE?;:Channel:Scale?") == b":CHANnel<1-4>:SCALe?;:CHANnel<1-4>:SCALe?\n"
    assert [(n, s) for n, s, _ in r.calls] == [
        (":CHANnel<1-4>:SCALe", (2,)),
        (":CHANnel<1-4>:SCALe?", (3,)),
        (":CHANnel<1-4>:SCALe?", (1,)),  # no suffix means 1
    ]
    assert r.errors == []


def test_relative_headers_follow_the_tree_traversal_rules() -> None:
    r = Recorder()
    r.run(":CHAN2:SCAL 1;OFFS 2;*CLS;OFFS 3;:TRIG:EDGE:LEV 1;LEV 2;:TRIG:LEV 3;SWE NORM")
    assert [(n, s, a) for n, s, a in r.calls] == [
        (":CHANnel<1-4>:SCALe", (2,), ("1",)),
        (":CHANnel<1-4>:OFFSet", (2,), ("2",)),
        ("*CLS", (), ()),
        (":CHANnel<1-4>:OFFSet", (2,), ("3",)),  # a common command leaves the path alone
        (":TRIGger[:EDGE]:LEVel", (), ("1",)),
        (":TRIGger[:EDGE]:LEVel", (), ("2",)),
        (":TRIGger[:EDGE]:LEVel", (), ("3",)),  # the optional node may be left out
        (":TRIGger:SWEep", (), ("NORM",)),
    ]
    r.run(":WAV:POIN:MODE RAW;POIN 10")  # relative to :WAVeform:POINts: -> undefined
    assert r.errors == [-113]
    r.run("CHAN1:SCAL 1")  # a new message starts at the root
    assert r.errors == [-113]


def test_errors_are_reported_not_raised() -> None:
    r = Recorder()
    out = r.run(":CHAN9:SCAL 1;:NOPE;:CHAN1:SCAL?X;*XYZ?;:WAV:DATA;:BOOM;:CHAN1:SCAL?;:abcdefghijklmn:x")
    assert out == b":CHANnel<1-4>:SCALe?\n"
    assert r.errors == [-114, -113, -102, -113, -113, -200, -112]


def test_block_replies_and_an_unanswerable_query_withholds_the_whole_reply() -> None:
    r = Recorder()
    assert r.run(":WAV:SOUR CHAN1;DATA?") == b"#800000003\n\x00\xff\n"
    r.pending = True
    assert r.run(":CHAN1:SCAL?;*OPC?;:CHAN2:SCAL 5") == b""
    assert [n for n, *_ in r.calls][-1] == ":CHANnel<1-4>:SCALe?"  # the rest of the message is abandoned


def test_quoted_strings_and_whitespace() -> None:
    r = Recorder()
    r.run("  :WAV:SOUR \"a;b,c\" , 'd'\r")
    assert r.calls[-1] == (":WAVeform:SOURce", (), ('"a;b,c"', "'d'"))


def test_error_queue_is_fifo_and_overflows_like_scpi() -> None:
    q = ErrorQueue(capacity=4)
    for code in (-113, -222, -224, -102, -108):
        q.push(code)
    assert [q.pop() for _ in range(5)] == [
        (-113, "Undefined header"),
        (-222, "Data out of range"),
        (-224, "Illegal parameter value"),
        (-350, "Queue overflow"),
        (0, "No error"),
    ]
    assert format_error(0, "No error") == '+0,"No error"'
    assert format_error(-113, "Undefined header") == '-113,"Undefined header"'


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("1", "", 1.0),
        ("-2.5E-3", "V", -2.5e-3),
        ("100mV", "V", 0.1),
        ("5 us", "S", 5e-6),
        ("2 MHZ", "HZ", 2e6),
        (".5", "", 0.5),
        ("+1e3", "", 1000.0),
        ("3MAV", "V", 3e6),
    ],
)
def test_numbers_with_suffixes(text: str, unit: str, value: float) -> None:
    assert parse_number(text, unit=unit) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "code"),
    [("", -109), ("abc", -104), ("1.2.3", -131), ("1 xV", -131), ("5V", -138), ("--1", -121), ("1e999", -123)],
)
def test_bad_numbers(text: str, code: int) -> None:
    with pytest.raises(ScpiError) as info:
        parse_number(text, unit="V" if text != "5V" else "")
    assert info.value.code == code


def test_booleans_choices_integers() -> None:
    assert [parse_bool(t) for t in ("ON", "off", "1", "0", " 1 ")] == [True, False, True, False, True]
    assert parse_choice("norm", ("AUTO", "NORMal")) == "NORMal"
    assert parse_choice("NORMAL", ("AUTO", "NORMal")) == "NORMal"
    assert parse_int("100.0") == 100
    for call, code in (
        (lambda: parse_bool("maybe"), -224),
        (lambda: parse_choice("NOR", ("NORMal",)), -224),
        (lambda: parse_int("100.5"), -222),
        (lambda: parse_choice("12", ("AUTO",)), -104),
    ):
        with pytest.raises(ScpiError) as info:
            call()
        assert info.value.code == code


# ------------------------------------------------------------------------------------------------
# Fuzzing


class QuietHost:
    """A bench with nothing wired: acquisitions are cheap and never trigger."""

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


FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_the_parser_never_raises_on_anything(message: str | bytes) -> None:
    r = Recorder()
    out = r.run(message)
    assert isinstance(out, bytes)
    assert out == b"" or out.endswith(b"\n")


def _scope() -> KeysightInfiniiVision:
    scope = KeysightInfiniiVision(QuietHost(), MODEL, search_horizon_s=0.05)  # type: ignore[arg-type]
    scope.execute(":TIMebase:SCALe 1e-6")  # keep any acquisition the fuzzer provokes small
    return scope


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_the_instrument_never_raises_on_arbitrary_lines(message: str | bytes) -> None:
    scope = _scope()
    out = scope.execute(message)
    assert isinstance(out, bytes)
    assert out == b"" or out.endswith(b"\n")
    assert scope.execute("*IDN?") == scope.idn.encode() + b"\n"  # still serving


HEADERS = [
    "*IDN?",
    "*CLS",
    "*OPC",
    "*OPC?",
    "*ESR?",
    "*ESE",
    "*SRE?",
    "*STB?",
    "*WAI",
    "*TST?",
    ":CHAN1:SCAL",
    ":CHANnel2:OFFSet",
    ":CHAN3:PROB",
    ":CHAN4:DISP",
    ":CHAN1:COUP",
    ":CHAN1:BWL",
    ":CHAN2:RANG",
    ":TIM:POS",
    ":TIM:REF",
    ":TIM:MODE",
    ":TRIG:MODE",
    ":TRIG:SWE",
    ":TRIG:EDGE:SOUR",
    ":TRIG:LEV",
    ":TRIG:SLOP",
    ":RUN",
    ":STOP",
    ":SINGle",
    ":DIGitize",
    ":TER?",
    ":OPER:COND?",
    ":ACQ:TYPE",
    ":ACQ:SRAT?",
    ":ACQ:POIN?",
    ":WAV:SOUR",
    ":WAV:FORM",
    ":WAV:POIN",
    ":WAV:POIN:MODE",
    ":WAV:UNS",
    ":WAV:BYT",
    ":WAV:PRE?",
    ":WAV:DATA?",
    ":WAV:XINC?",
    ":WAV:YREF?",
    ":SYST:ERR?",
    ":TRIG:FORC",
    "POIN?",
    "SCAL?",
]
ARGS = [
    "",
    "1",
    "0",
    "ON",
    "-1",
    "1e9",
    "1e-7",
    "NORM",
    "AUTO",
    "CHAN1",
    "CHAN5",
    "BYTE",
    "WORD",
    "ASC",
    "RAW",
    "MAX",
    "LEFT",
    "RIGH",
    '"x"',
    "#15abcde",
    "100mV",
    "NaN",
    "1,2,3",
    "?",
    ";",
    "EDGE",
    "POS",
    "LSBF",
]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(HEADERS), st.sampled_from(ARGS), st.booleans()), min_size=1, max_size=8))
def test_the_instrument_survives_command_soup(units: list[tuple[str, str, bool]]) -> None:
    scope = _scope()
    message = ";".join(f"{h}{'?' if q and not h.endswith('?') else ''} {a}".strip() for h, a, q in units)
    out = scope.execute(message)
    assert isinstance(out, bytes)
    scope.execute(":STOP;*CLS")
    assert scope.execute("*OPC?") == b"1\n"
