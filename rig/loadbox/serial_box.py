"""The relay load box over serial (USB-serial on a real bench, a pseudo-terminal on the virtual one).

Line-based ASCII, 115200 8N1, every command and reply one '\\n'-terminated line; specified in
docs/loadbox.md. The simulated box (simulator.loadbox_server) serves the same protocol.
"""

from __future__ import annotations

import contextlib
import math
import time
from enum import IntEnum

import serial

from rig.errors import InstrumentError
from rig.interfaces import InstrumentIdentity
from rig.serial_port import OPEN_ERRORS, open_serial

BAUDRATE = 115200
MAX_LINE_BYTES = 256  # longest command line the box accepts (without the '\n')
ENCODING = "ascii"

try:  # pyserial's POSIX backend lets termios.error (not an OSError) out of a vanished port
    import termios

    _IO_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    _IO_ERRORS = (serial.SerialException, OSError)


class ErrCode(IntEnum):
    """Codes of ``ERR <code> <text>`` replies."""

    UNKNOWN_COMMAND = 100
    BAD_ARGUMENT = 101
    NO_SUCH_CHANNEL = 102
    NO_SUCH_LOAD = 103
    RELAY_FAULT = 104  # relay-sense did not confirm the switch
    LINE_TOO_LONG = 105
    INTERNAL = 500


class LoadBoxError(InstrumentError):
    """The load box could not be reached, did not answer, or answered wrongly."""


class LoadBoxRefused(LoadBoxError):
    """The load box answered a command with ``ERR <code> <text>``."""

    def __init__(self, port: str, command: str, code: int, text: str, expected: str) -> None:
        self.code = code
        self.text = text
        super().__init__(port, command, f"load box refused it: ERR {code} {text}", expected)


def format_ohm(ohm: float) -> str:
    """A resistance as the box writes it in LOADs?: '500', '5400', 'inf'."""
    return "inf" if math.isinf(ohm) else f"{ohm:g}"


def parse_loads(reply: str) -> dict[str, float]:
    """``R500=500,OPEN=inf,...`` -> {'R500': 500.0, 'OPEN': inf, ...}; ValueError if malformed."""
    out: dict[str, float] = {}
    for item in reply.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name:
            raise ValueError(f"{item!r} is not NAME=OHM")
        out[name] = float(value)
    if not out:
        raise ValueError("no loads")
    return out


class SerialLoadBox:
    """A relay load box on a serial port; implements rig.interfaces.LoadBox, plus ``mark()``.

    Opening it checks that something answering like a load box is on the port (``*IDN?``) and reads
    its load catalogue (``LOADs?``) and channel count (``CHANnels?``). A routing the box cannot make is
    refused before anything is sent.
    """

    def __init__(self, port: str, *, baudrate: int = BAUDRATE, timeout_s: float = 2.0) -> None:
        self._port = port
        self.timeout_s = timeout_s
        try:
            self._ser = open_serial(port, baudrate=baudrate)
        except OPEN_ERRORS as exc:
            raise LoadBoxError(
                port, "open", f"cannot open serial port: {exc}",
                "the load box's USB-serial port, e.g. /dev/ttyUSB1, and permission to open it",
            ) from None
        try:
            self._identity = self._parse_idn(self.query("*IDN?"))
            self._loads = self._query_loads()
            self._channels = self._query_channels()
        except BaseException:
            self._ser.close()
            raise

    # ---- the LoadBox protocol -----------------------------------------------------------------
    @property
    def port(self) -> str:
        return self._port

    def loads(self) -> dict[str, float]:
        """Name -> nominal impedance in ohm (inf: open, 0: short), as the box reported at connection."""
        return dict(self._loads)

    def connect(self, dut_channel: int, load: str) -> None:
        command = f"ROUTe {dut_channel},{load}"
        if load not in self._loads:
            raise LoadBoxError(
                self._port, command, f"no load {load!r}; this box has {sorted(self._loads)}",
                "one of the box's load names; nothing was sent",
            )
        if isinstance(dut_channel, bool) or not isinstance(dut_channel, int) or not 1 <= dut_channel <= self._channels:
            raise LoadBoxError(
                self._port, command, f"no DUT channel {dut_channel!r}; this box switches channels 1..{self._channels}",
                "a channel the box is wired to; nothing was sent",
            )
        self.command(command)

    @property
    def connected(self) -> tuple[int, str] | None:
        reply = self.query("ROUTe?")
        if reply == "NONE":
            return None
        channel, sep, load = reply.partition(",")
        try:
            if not sep or load not in self._loads:
                raise ValueError
            return int(channel), load
        except ValueError:
            raise LoadBoxError(
                self._port, "ROUTe?", f"unexpected reply {reply!r}", "'<dut_channel>,<load>' or 'NONE'"
            ) from None

    def close(self) -> None:
        """Release the measurement relay (every channel back on its dummy), then close the port."""
        if not self._ser.is_open:
            return
        with contextlib.suppress(LoadBoxError):
            self.command("ROUTe:CLEar")
        with contextlib.suppress(*_IO_ERRORS):
            self._ser.close()

    # ---- more of the box ----------------------------------------------------------------------
    def identity(self) -> InstrumentIdentity:
        return self._identity

    @property
    def channels(self) -> int:
        return self._channels

    def clear(self) -> None:
        """Release the measurement relay: nothing routed, every channel on its dummy."""
        self.command("ROUTe:CLEar")

    def mark(self) -> None:
        """Pulse the marker output (scope CH2) now."""
        self.command("MARK")

    def sense(self) -> bool:
        """The relay-sense line: True while a measurement relay is closed and confirmed."""
        reply = self.query("SENSe?")
        if reply not in ("0", "1"):
            raise LoadBoxError(self._port, "SENSe?", f"unexpected reply {reply!r}", "'0' or '1'")
        return reply == "1"

    def marks(self) -> int:
        """Marker pulses since power-up or *RST (relay switches and MARKs)."""
        reply = self.query("MARK?")
        try:
            return int(reply)
        except ValueError:
            raise LoadBoxError(self._port, "MARK?", f"unexpected reply {reply!r}", "a count") from None

    def reset(self) -> None:
        self.command("*RST")

    # ---- line I/O -----------------------------------------------------------------------------
    def command(self, command: str) -> None:
        """Send a command that answers ``OK``."""
        reply = self._exchange(command, "OK")
        if reply != "OK":
            raise LoadBoxError(self._port, command, f"unexpected reply {reply!r}", "OK")

    def query(self, command: str) -> str:
        """Send a query and return its one-line reply."""
        return self._exchange(command, "a reply line")

    def _exchange(self, command: str, expected: str) -> str:
        line = command.encode(ENCODING, errors="replace")
        if b"\n" in line or len(line) > MAX_LINE_BYTES:
            shown = command if len(command) <= 40 else command[:40] + "..."
            raise LoadBoxError(self._port, shown, f"not a single command line ({len(line)} bytes)",
                               f"one line of at most {MAX_LINE_BYTES} bytes; nothing was sent")
        try:
            self._ser.reset_input_buffer()  # nothing stale (a late reply to a timed-out command) is taken
            self._ser.write(line + b"\n")
            self._ser.flush()
            reply = self._read_line(command, expected)
        except _IO_ERRORS as exc:
            raise LoadBoxError(self._port, command, f"serial I/O failed: {exc}", expected) from None
        if reply.startswith("ERR"):
            code, _, text = reply[3:].strip().partition(" ")
            try:
                number = int(code)
            except ValueError:
                number = -1
                text = reply[3:].strip()
            raise LoadBoxRefused(self._port, command, number, text.strip(), expected)
        return reply

    def _read_line(self, command: str, expected: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        buf = bytearray()
        while True:
            nl = buf.find(b"\n")
            if nl >= 0:
                text = bytes(buf[:nl]).decode(ENCODING, errors="replace").strip()
                del buf[: nl + 1]
                if text:  # a blank line is noise, not a reply
                    return text
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = f" (got {bytes(buf)!r} without a line end)" if buf else ""
                raise LoadBoxError(
                    self._port, command, f"no reply within {self.timeout_s:g} s{got}",
                    f"{expected}, '\\n'-terminated: is the load box powered, on this port, at {BAUDRATE} baud?",
                )
            self._ser.timeout = min(remaining, 0.05)
            chunk = self._ser.read(max(1, self._ser.in_waiting))
            buf += chunk

    # ---- helpers ------------------------------------------------------------------------------
    def _parse_idn(self, reply: str) -> InstrumentIdentity:
        try:
            return InstrumentIdentity.from_idn(reply)
        except ValueError:
            raise LoadBoxError(
                self._port, "*IDN?", f"reply {reply!r} is not an identity",
                "'manufacturer,model,serial,firmware' from a load box",
            ) from None

    def _query_loads(self) -> dict[str, float]:
        reply = self.query("LOADs?")
        try:
            return parse_loads(reply)
        except ValueError as exc:
            raise LoadBoxError(self._port, "LOADs?", f"unexpected reply {reply!r}: {exc}",
                               "'NAME=OHM,NAME=OHM,...'") from None

    def _query_channels(self) -> int:
        reply = self.query("CHANnels?")
        try:
            n = int(reply)
            if n < 1:
                raise ValueError
            return n
        except ValueError:
            raise LoadBoxError(self._port, "CHANnels?", f"unexpected reply {reply!r}",
                               "the number of DUT channels, at least 1") from None
