"""Serves the simulated load box's line protocol (docs/loadbox.md) on a pseudo-terminal.

The rig opens the slave side with pyserial (rig.loadbox.SerialLoadBox) exactly as it opens the real
relay box's USB-serial port. Commands act on a SimLoadBox, whose events carry the bench time at which
the command was handled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from rig.errors import StimrigError
from rig.loadbox.serial_box import ENCODING, MAX_LINE_BYTES, ErrCode, format_ohm
from simulator.clock import SimClock
from simulator.loadbox import SimLoadBox
from simulator.pty_server import PtyServer

log = logging.getLogger(__name__)

IDENTITY = "stimrig,SIM-LB6 simulated load box,SIM-LB-0001,1.0.0"


class _Refusal(Exception):
    def __init__(self, code: ErrCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _forms(mnemonic: str) -> set[str]:
    """SCPI-style short and long form of ``ROUTe:CLEar`` -> {'ROUT:CLE', 'ROUTE:CLEAR', ...}."""
    options: list[set[str]] = []
    for p in mnemonic.split(":"):
        short = "".join(c for c in p if not c.islower())
        options.append({short.upper(), p.upper()})
    out = {""}
    for opts in options:
        out = {f"{prefix}:{o}" if prefix else o for prefix in out for o in opts}
    return out


class PtyLoadBoxServer(PtyServer):
    thread_name = "loadbox-pty"

    def __init__(self, clock: SimClock, loadbox_state: SimLoadBox, *, identity: str = IDENTITY) -> None:
        super().__init__()
        self.clock = clock
        self.state = loadbox_state
        self.identity = identity
        self._buf = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes up to its '\n'
        self.lines_handled = 0
        self._marks_base = 0  # marker count at the last *RST
        self._commands: dict[str, Callable[[str], str]] = {}
        for mnemonic, handler in (
            ("*IDN?", self._idn),
            ("*RST", self._rst),
            ("LOADs?", self._loads),
            ("CHANnels?", self._channels),
            ("ROUTe", self._route),
            ("ROUTe?", self._route_q),
            ("ROUTe:CLEar", self._clear),
            ("MARK", self._mark),
            ("MARK?", self._mark_q),
            ("SENSe?", self._sense_q),
        ):
            for form in _forms(mnemonic.rstrip("?")):
                self._commands[form + ("?" if mnemonic.endswith("?") else "")] = handler

    def on_bytes(self, data: bytes) -> Iterator[bytes]:
        buf = self._buf
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE_BYTES:
                    if not self._discarding:
                        yield self._line(self._err(ErrCode.LINE_TOO_LONG, f"line longer than {MAX_LINE_BYTES} bytes"))
                    self._discarding = True
                    buf.clear()
                return
            raw = bytes(buf[:nl])
            del buf[: nl + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(raw.rstrip(b"\r")) > MAX_LINE_BYTES:
                yield self._line(self._err(ErrCode.LINE_TOO_LONG, f"line longer than {MAX_LINE_BYTES} bytes"))
                continue
            reply = self.handle(raw.decode(ENCODING, errors="replace"))
            if reply is not None:
                yield self._line(reply)

    @staticmethod
    def _line(reply: str) -> bytes:
        return reply.encode(ENCODING, errors="replace") + b"\n"

    # ---- the protocol -------------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        """The reply line to one command line (None for a blank line, which is ignored)."""
        text = line.strip()
        if not text:
            return None
        head, _, args = text.partition(" ")
        handler = self._commands.get(head.upper())
        self.lines_handled += 1
        if handler is None:
            return self._err(ErrCode.UNKNOWN_COMMAND, f"unknown command {head!r}")
        try:
            with self.clock.lock:
                return handler(args.strip())
        except _Refusal as r:
            return self._err(r.code, r.text)
        except StimrigError as exc:
            return self._err(ErrCode.BAD_ARGUMENT, str(exc))
        except Exception as exc:  # a model defect must not silence the box
            log.exception("simulated load box failed to handle %r", text)
            return self._err(ErrCode.INTERNAL, f"internal error: {type(exc).__name__}")

    @staticmethod
    def _err(code: ErrCode, text: str) -> str:
        return f"ERR {int(code)} {text}"

    @staticmethod
    def _no_args(args: str, name: str) -> None:
        if args:
            raise _Refusal(ErrCode.BAD_ARGUMENT, f"{name} takes no argument (got {args!r})")

    def _idn(self, args: str) -> str:
        self._no_args(args, "*IDN?")
        return self.identity

    def _rst(self, args: str) -> str:
        self._no_args(args, "*RST")
        self.state.clear()
        self._marks_base = len(self.state.marker_times())
        return "OK"

    def _loads(self, args: str) -> str:
        self._no_args(args, "LOADs?")
        return ",".join(f"{name}={format_ohm(ohm)}" for name, ohm in self.state.loads().items())

    def _channels(self, args: str) -> str:
        self._no_args(args, "CHANnels?")
        return str(self.state.channels)

    def _route(self, args: str) -> str:
        channel_text, sep, load = args.partition(",")
        channel_text, load = channel_text.strip(), load.strip()
        if not sep or not channel_text or not load:
            raise _Refusal(ErrCode.BAD_ARGUMENT, f"ROUTe needs <dut_channel>,<load> (got {args!r})")
        try:
            channel = int(channel_text)
        except ValueError:
            raise _Refusal(ErrCode.BAD_ARGUMENT, f"dut_channel {channel_text!r} is not an integer") from None
        if not 1 <= channel <= self.state.channels:
            raise _Refusal(ErrCode.NO_SUCH_CHANNEL, f"no DUT channel {channel}; this box has 1..{self.state.channels}")
        names = list(self.state.loads())
        if load not in names:
            raise _Refusal(ErrCode.NO_SUCH_LOAD, f"no load {load!r}; this box has {','.join(names)}")
        self.state.connect(channel, load)
        return "OK"

    def _route_q(self, args: str) -> str:
        self._no_args(args, "ROUTe?")
        route = self.state.connected
        return "NONE" if route is None else f"{route[0]},{route[1]}"

    def _clear(self, args: str) -> str:
        self._no_args(args, "ROUTe:CLEar")
        self.state.clear()
        return "OK"

    def _mark(self, args: str) -> str:
        self._no_args(args, "MARK")
        self.state.mark()
        return "OK"

    def _mark_q(self, args: str) -> str:
        self._no_args(args, "MARK?")
        return str(len(self.state.marker_times()) - self._marks_base)

    def _sense_q(self, args: str) -> str:
        self._no_args(args, "SENSe?")
        return "1" if self.state.sense else "0"
