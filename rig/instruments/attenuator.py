"""Driver for Mini-Circuits RCDAT programmable step attenuators over their Ethernet Telnet port, via pyvisa.

The unit speaks one ASCII command per line on TCP port 23 (a raw socket to VISA:
``TCPIP0::<host>::23::SOCKET``): ``:MN?`` -> ``MN=RCDAT-6000-90``, ``:SN?`` -> ``SN=...``, ``:FIRMWARE?``,
``:ATT?`` -> ``30.25``, ``:SETATT=30.25`` -> ``1`` (``0`` failed, ``2`` above the maximum: set to the maximum).
See docs/attenuator.md for the sources.

Fail-safe: a setting outside the range is refused before anything is sent; every set is read back and
checked to half a step; a failure reply, a timeout or a garbled reply is an InstrumentError naming the
resource, the command and what was expected. After a timeout or a garbled reply the driver re-aligns
replies on ``:MN?``, or refuses every later call if it cannot.
"""

from __future__ import annotations

import math
import re
import time
from types import TracebackType
from typing import NoReturn, Protocol

from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError
from rig.instruments.visa import ScpiSession, discard_pending, is_timeout, open_resource
from rig.interfaces import InstrumentIdentity

FAMILY = "Mini-Circuits RCDAT programmable attenuators (Ethernet, Telnet ASCII commands)"
MANUFACTURER = "Mini-Circuits"
TELNET_PORT = 23
WRITE_TERMINATION = "\r\n"
READ_TERMINATION = "\n"  # replies end "\r\n"; the "\r" is stripped with the whitespace
STEP_dB = 0.25  # the whole RCDAT family: the USB protocol carries the fraction in quarter dB
DEFAULT_TIMEOUT_S = 2.0
GREETING_SETTLE_S = 0.05

MODEL_QUERY = ":MN?"
SERIAL_QUERY = ":SN?"
FIRMWARE_QUERY = ":FIRMWARE?"
ATTENUATION_QUERY = ":ATT?"
SET_PREFIX = ":SETATT="

SET_OK, SET_FAILED, SET_CLAMPED = "1", "0", "2"

# RCDAT-<max frequency MHz>-<max attenuation dB>, e.g. RCDAT-6000-90, RCDAT-8000-60, RCDAT-4000-120
_MODEL = re.compile(r"^RCDAT-(?P<frequency_MHz>\d{3,5})-(?P<max_dB>\d{2,3})$")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_RESYNC_MAX_LINES = 8
_MATCH_SLACK_dB = 1e-9

_MODEL_EXPECTED = "'MN=RCDAT-<MHz>-<max dB>', e.g. 'MN=RCDAT-6000-90'"
_SERIAL_EXPECTED = "'SN=<serial number>'"
_FIRMWARE_EXPECTED = "a firmware revision such as 'C9-2'"
_SET_EXPECTED = f"'{SET_OK}' (attenuation set)"


def resource_string(host: str, port: int = TELNET_PORT) -> str:
    """The VISA resource string of an RCDAT at ``host`` (raw socket on its Telnet port)."""
    return f"TCPIP0::{host}::{port}::SOCKET"


def model_range_dB(model: str) -> tuple[float, float] | None:
    """(0, maximum) from an RCDAT model name (RCDAT-6000-90 -> (0.0, 90.0)); None if it is not one."""
    found = _MODEL.match(model.strip())
    return (0.0, float(found.group("max_dB"))) if found else None


def quantize_dB(value_dB: float, step_dB: float = STEP_dB) -> float:
    """``value_dB`` rounded to the nearest multiple of ``step_dB`` (half a step rounds up)."""
    return math.floor(value_dB / step_dB + 0.5) * step_dB


def strip_telnet(text: str) -> str:
    """Drop Telnet option negotiation (IAC sequences, RFC 854/855) a Telnet server may interleave."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] != "\xff":
            out.append(text[i])
            i += 1
            continue
        command = text[i + 1] if i + 1 < n else ""
        if command == "\xff":  # escaped data byte 255: not ASCII, left for the parsers to refuse
            out.append(command)
            i += 2
        elif command in ("\xfb", "\xfc", "\xfd", "\xfe"):  # WILL / WONT / DO / DONT <option>
            i += 3
        elif command == "\xfa":  # SB ... IAC SE
            end = text.find("\xff\xf0", i + 2)
            i = n if end < 0 else end + 2
        else:
            i += 2
    return "".join(out)


def _format_request(value_dB: float) -> str:
    return f"{value_dB:g}" if math.isfinite(value_dB) else repr(value_dB)


def _format_set(value_dB: float) -> str:
    return f"{value_dB:.2f}"


class MiniCircuitsRcdat:
    """rig.interfaces.RfAttenuator for one Mini-Circuits RCDAT over an opened pyvisa resource."""

    family = FAMILY

    def __init__(self, resource: MessageBasedResource, resource_name: str, *, identity: InstrumentIdentity) -> None:
        found = model_range_dB(identity.model)
        if found is None:
            raise InstrumentError(
                resource_name, MODEL_QUERY, f"model {identity.model!r} is not an RCDAT", _MODEL_EXPECTED
            )
        self._session = ScpiSession(resource, resource_name)
        self._identity = identity
        self._range_dB = found
        self._unusable: str | None = None

    @property
    def resource(self) -> str:
        return self._session.name

    def __repr__(self) -> str:
        return f"MiniCircuitsRcdat({self.resource!r}, {self._identity.model})"

    def __enter__(self) -> MiniCircuitsRcdat:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- RfAttenuator ------------------------------------------------------------------------------

    @property
    def range_dB(self) -> tuple[float, float]:
        return self._range_dB

    @property
    def step_dB(self) -> float:
        return STEP_dB

    def identify(self) -> InstrumentIdentity:
        """Ask the unit again; InstrumentError if it is no longer the one opened (e.g. an address reassigned)."""
        self._guard(MODEL_QUERY)
        try:
            now = read_identity(self._session, ask=self._query)
        except InstrumentError as exc:
            if not is_timeout(exc):  # a timeout has re-aligned already
                self._resync(f"garbled identification: {exc.problem}")
            raise
        if now != self._identity:
            raise InstrumentError(
                self.resource, MODEL_QUERY, f"the attenuator now identifies as {now}", f"{self._identity} as opened"
            )
        return now

    def attenuation_dB(self) -> float:
        self._guard(ATTENUATION_QUERY)
        reply = self._query(ATTENUATION_QUERY, expected=self._attenuation_expected())
        return self._parse_attenuation(reply)

    def set_attenuation_dB(self, attenuation_dB: float) -> float:
        lo_dB, hi_dB = self._range_dB
        try:
            requested = float(attenuation_dB)
        except (TypeError, ValueError):
            requested = math.nan
        if not (math.isfinite(requested) and lo_dB <= requested <= hi_dB):
            raise InstrumentError(
                self.resource,
                SET_PREFIX + _format_request(requested),
                f"{_format_request(requested)} dB is outside the attenuator's range; nothing was sent",
                f"an attenuation from {lo_dB:g} to {hi_dB:g} dB ({self._identity.model})",
            )
        target_dB = min(max(quantize_dB(requested), lo_dB), hi_dB)
        command = SET_PREFIX + _format_set(target_dB)
        self._guard(command)
        reply = self._query(command, expected=_SET_EXPECTED)
        if reply != SET_OK:
            self._refused(command, reply)
        actual_dB = self.attenuation_dB()
        if abs(actual_dB - requested) > STEP_dB / 2 + _MATCH_SLACK_dB:
            raise InstrumentError(
                self.resource,
                ATTENUATION_QUERY,
                f"read back {actual_dB:g} dB after {command} (requested {requested:g} dB)",
                f"{target_dB:g} dB, within half a step ({STEP_dB / 2:g} dB) of the request",
            )
        return actual_dB

    def close(self) -> None:
        self._session.close()

    # -- internals ---------------------------------------------------------------------------------

    def _guard(self, command: str) -> None:
        if self._session.closed:
            raise InstrumentError(self.resource, command, "the attenuator session is closed", "an open session")
        if self._unusable is not None:
            raise InstrumentError(
                self.resource,
                command,
                f"driver unusable after an earlier failure: {self._unusable}",
                "a freshly opened attenuator session (open_attenuator again)",
            )

    def _query(self, command: str, *, expected: str) -> str:
        try:
            return strip_telnet(self._session.query(command, expected=expected)).strip()
        except InstrumentError as exc:
            if is_timeout(exc):
                self._resync(f"{command} timed out")  # a late reply must not answer the next command
            raise

    def _garbled(self, command: str, reply: str, expected: str) -> InstrumentError:
        self._resync(f"garbled reply {reply!r} to {command}")
        return InstrumentError(self.resource, command, f"unexpected reply {reply!r}", expected)

    def _refused(self, command: str, reply: str) -> NoReturn:
        if reply == SET_FAILED:
            raise InstrumentError(
                self.resource, command, f"the attenuator replied {reply!r}: setting failed", _SET_EXPECTED
            )
        if reply == SET_CLAMPED:
            raise InstrumentError(
                self.resource,
                command,
                f"the attenuator replied {reply!r}: above its maximum, it set its maximum instead",
                f"{_SET_EXPECTED}; its range is not the {self._range_dB[1]:g} dB of {self._identity.model}",
            )
        raise self._garbled(command, reply, _SET_EXPECTED)

    def _attenuation_expected(self) -> str:
        lo_dB, hi_dB = self._range_dB
        return f"the attenuation in dB, a number from {lo_dB:g} to {hi_dB:g}"

    def _parse_attenuation(self, reply: str) -> float:
        lo_dB, hi_dB = self._range_dB
        if _NUMBER.fullmatch(reply) is None:
            raise self._garbled(ATTENUATION_QUERY, reply, self._attenuation_expected())
        value_dB = float(reply)
        if not lo_dB - _MATCH_SLACK_dB <= value_dB <= hi_dB + _MATCH_SLACK_dB:
            raise InstrumentError(
                self.resource, ATTENUATION_QUERY, f"implausible attenuation {reply!r} dB", self._attenuation_expected()
            )
        return value_dB

    def _resync(self, reason: str) -> None:
        """Drop stale input and re-align replies on ``:MN?``; if that fails, refuse every later call."""
        expected_line = "MN=" + self._identity.model
        try:
            discard_pending(self._session.resource)
            self._session.write(MODEL_QUERY)
            for _ in range(_RESYNC_MAX_LINES):
                line = self._session.read_line(command=f"{MODEL_QUERY} (resynchronising)", expected=expected_line)
                if strip_telnet(line).strip() == expected_line:
                    return
        except InstrumentError:
            pass
        self._unusable = f"{reason}, and replies could not be re-aligned"


class Ask(Protocol):
    """Sends one query and returns its reply line (Telnet negotiation stripped, whitespace trimmed)."""

    def __call__(self, command: str, *, expected: str) -> str: ...


def _asker(session: ScpiSession) -> Ask:
    def ask(command: str, *, expected: str) -> str:
        return strip_telnet(session.query(command, expected=expected)).strip()

    return ask


def _is_text(reply: str) -> bool:
    return reply.isascii() and reply.isprintable()


def _prefixed(name: str, command: str, reply: str, prefix: str, expected: str) -> str:
    if not (reply.startswith(prefix) and reply[len(prefix) :].strip() and _is_text(reply)):
        raise InstrumentError(name, command, f"unexpected reply {reply!r}", expected)
    return reply[len(prefix) :].strip()


def read_identity(session: ScpiSession, *, ask: Ask | None = None) -> InstrumentIdentity:
    """``:MN?``, ``:SN?``, ``:FIRMWARE?`` as an InstrumentIdentity (manufacturer: Mini-Circuits)."""
    ask = ask if ask is not None else _asker(session)
    name = session.name
    model = _prefixed(name, MODEL_QUERY, ask(MODEL_QUERY, expected=_MODEL_EXPECTED), "MN=", _MODEL_EXPECTED)
    serial = _prefixed(name, SERIAL_QUERY, ask(SERIAL_QUERY, expected=_SERIAL_EXPECTED), "SN=", _SERIAL_EXPECTED)
    firmware_reply = ask(FIRMWARE_QUERY, expected=_FIRMWARE_EXPECTED)
    firmware = firmware_reply.removeprefix("FIRMWARE=").strip()
    if not firmware or not _is_text(firmware_reply) or firmware.startswith("-99"):
        raise InstrumentError(name, FIRMWARE_QUERY, f"unexpected reply {firmware_reply!r}", _FIRMWARE_EXPECTED)
    return InstrumentIdentity(MANUFACTURER, model, serial, firmware)


def open_attenuator(
    resource: str,
    visa_library: str = "@py",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    settle_s: float = GREETING_SETTLE_S,
) -> MiniCircuitsRcdat:
    """Open ``resource`` (e.g. ``TCPIP0::192.168.1.50::23::SOCKET``), check it is an RCDAT, return its driver.

    Input the unit sends on connect (Telnet negotiation, a banner) is allowed ``settle_s`` to arrive and is
    dropped before the first command. InstrumentError (resource closed) if nothing answers there, or the
    answer is not an RCDAT's.
    """
    opened = open_resource(
        resource,
        visa_library=visa_library,
        timeout_s=timeout_s,
        read_termination=READ_TERMINATION,
        write_termination=WRITE_TERMINATION,
    )
    session = ScpiSession(opened, resource)
    try:
        opened.encoding = "latin-1"  # Telnet negotiation bytes must not break decoding; parsers refuse them
        if settle_s > 0:
            time.sleep(settle_s)
        discard_pending(opened)
        identity = read_identity(session)
        if model_range_dB(identity.model) is None:
            raise InstrumentError(
                resource,
                MODEL_QUERY,
                f"not a Mini-Circuits RCDAT attenuator: model {identity.model!r}",
                _MODEL_EXPECTED,
            )
        return MiniCircuitsRcdat(opened, resource, identity=identity)
    except BaseException:
        session.close()
        raise
