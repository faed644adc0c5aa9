"""A small generic SCPI / IEEE 488.2 parser: program messages, a command tree, an error queue.

What it implements (IEEE 488.2 ch. 7 and the SCPI tree-traversal rules, as the InfiniiVision
programmer's guides describe them):

* a program message is one line; ``;`` separates program message units;
* a header is ``[:]MNEMonic[<n>][:MNEMonic...][?]`` or a common command ``*XXX[?]``; mnemonics match
  in short or long form, case-insensitively; a numeric suffix defaults to 1;
* a header without a leading colon is resolved relative to the node the previous compound header
  of the same message ended in (``:WAVeform:SOURce CHAN1;DATA?`` reaches ``:WAVeform:DATA?``);
  common commands leave that node alone;
* optional nodes (``:TRIGger[:EDGE]:LEVel``) may be left out;
* the replies of all queries in one message are joined with ``;`` and terminated by ``\\n``.

Errors never escape as Python exceptions: they become SCPI error numbers reported through the
``report`` callback (which normally pushes to an :class:`ErrorQueue`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ERROR_MESSAGES: dict[int, str] = {
    0: "No error",
    -100: "Command error",
    -101: "Invalid character",
    -102: "Syntax error",
    -103: "Invalid separator",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -112: "Program mnemonic too long",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -120: "Numeric data error",
    -121: "Invalid character in number",
    -123: "Exponent too large",
    -124: "Too many digits",
    -131: "Invalid suffix",
    -138: "Suffix not allowed",
    -141: "Invalid character data",
    -144: "Character data too long",
    -151: "Invalid string data",
    -161: "Invalid block data",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
    -363: "Input buffer overrun",
    -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}

MAX_MNEMONIC_CHARS = 12  # IEEE 488.2 7.6.1.4 (suffix digits not counted)
MAX_ARGUMENT_CHARS = 4096


class ScpiError(Exception):
    """An SCPI error number (and the standard message for it)."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.message = ERROR_MESSAGES.get(code, "Unknown error")
        self.detail = detail
        super().__init__(f"{code},{self.message}" + (f" ({detail})" if detail else ""))


class Unanswerable(Exception):
    """Raised by a query handler that cannot answer yet (e.g. *OPC? while an acquisition is pending).

    The rest of the program message is abandoned and no reply is sent for it: the client waits,
    exactly as with a real instrument whose operation never completes.
    """


def format_error(code: int, message: str) -> str:
    """The :SYSTem:ERRor? reply form: ``+0,"No error"`` / ``-113,"Undefined header"``."""
    return f'{code:+d},"{message}"'


class ErrorQueue:
    """IEEE 488.2 / SCPI error queue: FIFO; when full, the last slot holds -350 and newer errors are lost."""

    def __init__(self, capacity: int = 30) -> None:
        if capacity < 2:
            raise ValueError("an error queue needs room for one error and the overflow marker")
        self.capacity = capacity
        self._items: list[tuple[int, str]] = []

    def push(self, code: int, message: str | None = None) -> None:
        text = message if message is not None else ERROR_MESSAGES.get(code, "Unknown error")
        if len(self._items) < self.capacity - 1:
            self._items.append((code, text))
        elif len(self._items) == self.capacity - 1:
            self._items.append((-350, ERROR_MESSAGES[-350]))

    def pop(self) -> tuple[int, str]:
        return self._items.pop(0) if self._items else (0, ERROR_MESSAGES[0])

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# IEEE 488.2 Standard Event Status Register bits.
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME = 0x01, 0x04, 0x08, 0x10, 0x20


def esr_bit_for(code: int) -> int:
    """The ESR bit an error number sets (command / execution / device-dependent / query error)."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -399 <= code <= -300 or code > 0:
        return ESR_DDE
    if -499 <= code <= -400:
        return ESR_QYE
    return 0


# --------------------------------------------------------------------------------------------
# Program message parsing


@dataclass(frozen=True)
class Call:
    """One program message unit, resolved to a handler."""

    header: str
    query: bool
    args: tuple[str, ...]
    suffixes: tuple[int, ...] = ()

    def expect_args(self, minimum: int, maximum: int | None = None) -> None:
        top = minimum if maximum is None else maximum
        if len(self.args) < minimum or any(not a for a in self.args[:minimum]):
            raise ScpiError(-109)
        if len(self.args) > top:
            raise ScpiError(-108)


Handler = Callable[[Call], "str | bytes | None"]


@dataclass(frozen=True)
class _Unit:
    text: str
    absolute: bool
    common: bool
    mnemonics: tuple[str, ...]
    query: bool
    args: tuple[str, ...]


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside "..." or '...' strings; an unterminated string keeps the rest whole."""
    parts: list[str] = []
    buf: list[str] = []
    quote = ""
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            buf.append(ch)
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _valid_mnemonic(m: str) -> bool:
    if not m or not (m[0].isascii() and m[0].isalpha()):
        return False
    return all(c.isascii() and (c.isalnum() or c == "_") for c in m)


def _mnemonic_too_long(m: str) -> bool:
    return len(m.rstrip("0123456789")) > MAX_MNEMONIC_CHARS


def _parse_unit(text: str) -> _Unit | None:
    """Parse one program message unit; None for an empty unit; ScpiError for a malformed one."""
    s = text.strip(" \t\r\x00")
    if not s:
        return None
    i = 0
    while i < len(s) and s[i] not in " \t":
        i += 1
    header, rest = s[:i], s[i:].strip(" \t")
    query = header.endswith("?")
    if query:
        header = header[:-1]
    if "?" in header:
        raise ScpiError(-102)
    if header.startswith(":*"):  # tolerated: a colon before a common command
        header = header[1:]
    if header.startswith("*"):
        name = header[1:]
        if not name.isascii() or not name.isalpha():
            raise ScpiError(-102)
        if len(name) > MAX_MNEMONIC_CHARS:
            raise ScpiError(-112)
        mnemonics: tuple[str, ...] = ("*" + name.upper(),)
        absolute, common = False, True
    else:
        absolute = header.startswith(":")
        body = header[1:] if absolute else header
        parts = body.split(":")
        if not all(_valid_mnemonic(p) for p in parts):
            raise ScpiError(-102)
        if any(_mnemonic_too_long(p) for p in parts):
            raise ScpiError(-112)
        mnemonics = tuple(p.upper() for p in parts)
        common = False
    if len(rest) > MAX_ARGUMENT_CHARS:
        raise ScpiError(-363)
    args = tuple(a.strip(" \t") for a in _split_outside_quotes(rest, ",")) if rest else ()
    return _Unit(text=s, absolute=absolute, common=common, mnemonics=mnemonics, query=query, args=args)


# --------------------------------------------------------------------------------------------
# Command tree


def split_spec(spec: str) -> tuple[str, str]:
    """``"CHANnel"`` -> (short ``"CHAN"``, long ``"CHANNEL"``): the short form is the upper-case prefix."""
    short = ""
    for ch in spec:
        if ch.isupper() or ch.isdigit() or ch == "*":
            short += ch
        else:
            break
    return short or spec.upper(), spec.upper()


def matches(text: str, spec: str) -> bool:
    """Character data ``text`` names the mnemonic ``spec`` (short or long form, any case)."""
    short, long = split_spec(spec)
    return text.upper() in (short, long)


@dataclass
class _Node:
    short: str
    long: str
    suffix: tuple[int, int] | None
    children: dict[str, _Node] = field(default_factory=dict)
    handlers: dict[bool, Handler] = field(default_factory=dict)

    def match(self, mnemonic: str) -> tuple[bool, int | None]:
        """(matches, suffix value or None); ScpiError -114 if the suffix is out of range."""
        alpha = mnemonic.rstrip("0123456789")
        digits = mnemonic[len(alpha) :]
        if alpha not in (self.short, self.long):
            return False, None
        if self.suffix is None:
            return (not digits), None
        value = int(digits) if digits and len(digits) <= 6 else (1 if not digits else -1)
        lo, hi = self.suffix
        if not lo <= value <= hi:
            raise ScpiError(-114)
        return True, value


def _parse_pattern(pattern: str) -> list[tuple[str, tuple[int, int] | None, bool]]:
    """``":TRIGger[:EDGE]:LEVel"`` -> [(spec, suffix range, optional), ...]; ``CHANnel<1-4>`` has a suffix."""
    out: list[tuple[str, tuple[int, int] | None, bool]] = []
    s = pattern.strip()
    i = 0
    while i < len(s):
        optional = s[i] == "["
        if optional:
            end = s.index("]", i)
            token, i = s[i + 1 : end], end + 1
        else:
            end = i + 1
            while end < len(s) and s[end] not in ":[":
                end += 1
            token, i = s[i:end], end
        token = token.lstrip(":")
        if not token:
            continue
        suffix: tuple[int, int] | None = None
        if "<" in token:
            name, rng = token[:-1].split("<")
            lo, hi = rng.split("-")
            token, suffix = name, (int(lo), int(hi))
        out.append((token, suffix, optional))
    return out


class CommandTree:
    """Headers -> handlers. ``add(":CHANnel<1-4>:SCALe", h)`` / ``add(":CHANnel<1-4>:SCALe?", h)``."""

    def __init__(self) -> None:
        self._root = _Node("", "", None)
        self._common: dict[str, dict[bool, Handler]] = {}

    def add(self, pattern: str, handler: Handler) -> None:
        query = pattern.endswith("?")
        pattern = pattern[:-1] if query else pattern
        if pattern.startswith("*"):
            self._common.setdefault(pattern.upper(), {})[query] = handler
            return
        tokens = _parse_pattern(pattern)
        optional_idx = [k for k, t in enumerate(tokens) if t[2]]
        for mask in range(1 << len(optional_idx)):
            skipped = {optional_idx[b] for b in range(len(optional_idx)) if mask >> b & 1}
            node = self._root
            for k, (spec, suffix, _opt) in enumerate(tokens):
                if k in skipped:
                    continue
                short, long = split_spec(spec)
                child = node.children.get(long)
                if child is None:
                    child = node.children[long] = _Node(short, long, suffix)
                node = child
            node.handlers[query] = handler

    def common(self, name: str) -> dict[bool, Handler] | None:
        return self._common.get(name)

    @property
    def root(self) -> _Node:
        return self._root


@dataclass(frozen=True)
class _Path:
    node: _Node
    suffixes: tuple[int, ...]


def _resolve(tree: CommandTree, unit: _Unit, path: _Path | None) -> tuple[_Node, tuple[int, ...], _Path]:
    start = _Path(tree.root, ()) if unit.absolute or path is None else path
    node, suffixes = start.node, start.suffixes
    parent = start
    for k, m in enumerate(unit.mnemonics):
        found = None
        for child in node.children.values():
            ok, value = child.match(m)
            if ok:
                found = (child, value)
                break
        if found is None:
            raise ScpiError(-113)
        if k == len(unit.mnemonics) - 1:
            parent = _Path(node, suffixes)
        node = found[0]
        if found[1] is not None:
            suffixes = (*suffixes, found[1])
    return node, suffixes, parent


class ScpiExecutor:
    """Runs program messages against a :class:`CommandTree`; never raises."""

    def __init__(self, tree: CommandTree, report: Callable[[int], None]) -> None:
        self._tree = tree
        self._report = report

    def execute(self, message: bytes | str) -> bytes:
        """Execute one or more newline-terminated program messages; return the reply bytes (maybe empty)."""
        try:
            text = message.decode("latin-1") if isinstance(message, bytes | bytearray) else str(message)
        except Exception:  # pragma: no cover - latin-1 decodes every byte
            return b""
        out = b""
        for line in text.split("\n"):
            out += self._execute_line(line)
        return out

    def _execute_line(self, line: str) -> bytes:
        replies: list[bytes] = []
        path: _Path | None = None
        for raw in _split_outside_quotes(line, ";"):
            try:
                unit = _parse_unit(raw)
                if unit is None:
                    continue
                if unit.common:
                    handlers = self._tree.common(unit.mnemonics[0])
                    if handlers is None:
                        raise ScpiError(-113)
                    suffixes: tuple[int, ...] = ()
                else:
                    node, suffixes, path = _resolve(self._tree, unit, path)
                    handlers = node.handlers
                handler = handlers.get(unit.query)
                if handler is None:
                    raise ScpiError(-113)
                reply = handler(Call(header=unit.text, query=unit.query, args=unit.args, suffixes=suffixes))
                if unit.query and reply is not None:
                    replies.append(reply if isinstance(reply, bytes) else reply.encode("latin-1", "replace"))
            except ScpiError as exc:
                self._report(exc.code)
            except Unanswerable:
                return b""
            except Exception:
                log.exception("SCPI handler failed on %r", raw)
                self._report(-200)
        return b";".join(replies) + b"\n" if replies else b""


# --------------------------------------------------------------------------------------------
# Program data helpers (raise ScpiError; handlers call them)

_DIGITS = frozenset("0123456789")
_MULTIPLIERS = {"": 1.0, "P": 1e-12, "N": 1e-9, "U": 1e-6, "M": 1e-3, "K": 1e3, "MA": 1e6, "G": 1e9, "T": 1e12}


def _scan_decimal(text: str) -> int:
    """Length of the longest decimal-numeric prefix of ``text`` (0 if none).

    ASCII digits only: ``str.isdigit`` also accepts '¹²³' (every latin-1 byte decodes to a
    character), which ``float`` then refuses."""
    i, n = 0, len(text)
    if i < n and text[i] in "+-":
        i += 1
    digits = 0
    while i < n and text[i] in _DIGITS:
        i, digits = i + 1, digits + 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i] in _DIGITS:
            i, digits = i + 1, digits + 1
    if digits == 0:
        return 0
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        k = j
        while k < n and text[k] in _DIGITS:
            k += 1
        if k > j:
            i = k
    return i


def parse_number(text: str, *, unit: str = "", special: dict[str, float] | None = None) -> float:
    """Decimal numeric program data with an optional suffix (``100mV``, ``2.5E-3 S``, ``MAXimum``)."""
    t = text.strip()
    if not t:
        raise ScpiError(-109)
    if special:
        for spec, value in special.items():
            if matches(t, spec):
                return value
    n = _scan_decimal(t)
    if n == 0:
        raise ScpiError(-104 if t[0].isalpha() or t[0] in "\"'#" else -121)
    if n > 255:
        raise ScpiError(-124)
    try:
        value = float(t[:n])
    except ValueError:
        raise ScpiError(-121) from None
    suffix = t[n:].strip().upper()
    if suffix:
        mult = _suffix_multiplier(suffix, unit.upper())
        if mult is None:
            raise ScpiError(-131 if unit else -138)
        value *= mult
    if not math.isfinite(value):
        raise ScpiError(-123)
    return value


def _suffix_multiplier(suffix: str, unit: str) -> float | None:
    if not unit or not suffix.endswith(unit):
        return None
    prefix = suffix[: len(suffix) - len(unit)]
    if unit == "HZ" and prefix == "M":
        return 1e6  # SCPI: MHZ is megahertz
    return _MULTIPLIERS.get(prefix)


def parse_int(text: str, *, special: dict[str, float] | None = None) -> int:
    """An integer value; a number with a fractional part is -222 (as InfiniiVision does for POINts)."""
    value = parse_number(text, special=special)
    if value != math.floor(value) or abs(value) > 2**53:
        raise ScpiError(-222)
    return int(value)


def parse_bool(text: str) -> bool:
    """``{0 | OFF | 1 | ON}`` (any number: non-zero is ON, as IEEE 488.2 allows)."""
    t = text.strip().upper()
    if not t:
        raise ScpiError(-109)
    if t == "ON":
        return True
    if t == "OFF":
        return False
    if _scan_decimal(t) == len(t):
        value = float(t)
        if not math.isfinite(value):  # '1E400': round() would raise OverflowError
            raise ScpiError(-123)
        return round(value) != 0
    raise ScpiError(-224)


def parse_choice(text: str, choices: Sequence[str]) -> str:
    """Character program data: the spec (e.g. ``"NORMal"``) in ``choices`` it names; -224 if none."""
    t = text.strip()
    if not t:
        raise ScpiError(-109)
    if len(t) > MAX_MNEMONIC_CHARS + 6:
        raise ScpiError(-144)
    for spec in choices:
        if matches(t, spec):
            return spec
    if not t[0].isalpha():
        raise ScpiError(-104)
    raise ScpiError(-224)


def nr1(value: int) -> str:
    """NR1 response data with an explicit sign, as InfiniiVision sends integers (``+1000``)."""
    return f"{int(value):+d}"


def nr3(value: float) -> str:
    """NR3 response data (``+1.0000000000E-03``): 11 significant digits, enough to carry a WORD-format
    y-increment (scale / 8192) and sub-picosecond x-origins exactly."""
    return f"{float(value):+.10E}"


def definite_block(payload: bytes, length_digits: int = 8) -> bytes:
    """IEEE 488.2 definite-length arbitrary block: ``#<digits><length><payload>`` (InfiniiVision: ``#8``)."""
    return b"#%d%0*d" % (length_digits, length_digits, len(payload)) + payload
