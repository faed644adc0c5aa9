"""Emulated Mini-Circuits RCDAT programmable step attenuator, served on a raw TCP ("Telnet") socket.

The rig's driver (rig/instruments/attenuator.py) talks to it through pyvisa exactly as to a real unit.
Command set (see docs/attenuator.md and the fixture's sources): one command per line, ``\\r\\n`` or ``\\n``
terminated, case-insensitive, with or without the leading colon:

* ``:MN?`` -> ``MN=<model>``; ``:SN?`` -> ``SN=<serial>``; ``:FIRMWARE?`` -> ``<firmware>``
* ``:ATT?`` -> the attenuation in dB (``0.0``, ``30.25``, ``90.0``)
* ``:SETATT=<dB>`` -> ``1`` (set, rounded to the nearest step), ``2`` (above the maximum: set to the maximum),
  ``0`` (not a number, or below the minimum: nothing changed)
* anything else -> ``-99 Unrecognized Command. Model: <model> SN=<serial>``; an empty line -> no reply

Every reply ends with the model's reply termination. Nothing raises out of :meth:`RcdatAttenuator.handle`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path

from simulator.instruments.attenuator_model import AttenuatorModel, load_attenuator_model
from simulator.instruments.socket_server import ScpiSocketServer

log = logging.getLogger(__name__)

OnChange = Callable[[float], None]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
MAX_NUMBER_CHARS = 32


def format_dB(value_dB: float) -> str:
    """The ``:ATT?`` reply form: Python's shortest float text (``0.0``, ``10.0``, ``30.25``)."""
    return repr(float(value_dB))


class RcdatAttenuator:
    """The instrument: its attenuation (thread-safe) and its command parser.

    ``on_change(attenuation_dB)`` is called after every accepted ``SETATT`` (reply 1 or 2), outside the
    state lock, with the attenuation now set; an exception from it is logged, never sent to the client.
    """

    def __init__(self, model: AttenuatorModel, on_change: OnChange | None = None) -> None:
        self._model = model
        self._on_change = on_change
        self._lock = threading.Lock()
        self._attenuation_dB = model.attenuation.power_on_dB
        self._message_count = 0

    @property
    def model(self) -> AttenuatorModel:
        return self._model

    @property
    def attenuation_dB(self) -> float:
        with self._lock:
            return self._attenuation_dB

    @property
    def message_count(self) -> int:
        """Program messages received so far (empty lines included), over every connection."""
        with self._lock:
            return self._message_count

    def session(self) -> RcdatAttenuator:
        """Handler factory for :class:`ScpiSocketServer`: every connection shares the one instrument."""
        return self

    def handle(self, line: bytes) -> bytes:
        """Execute one line (terminator stripped); the reply with its termination, or b'' for an empty line."""
        try:
            reply = self.execute(line.decode("latin-1"))
        except Exception:  # never let a line take the connection down
            log.exception("attenuator emulator failed on %r", line[:200])
            reply = self._unrecognized()
        if reply is None:
            return b""
        return (reply + self._model.interface.reply_termination).encode("latin-1", "replace")

    def execute(self, text: str) -> str | None:
        """The reply text to one command line (no termination), or None for an empty line."""
        with self._lock:
            self._message_count += 1
        command = text.strip(" \t\r\n\x00")
        if not command:
            return None
        body = command[1:] if command.startswith(":") else command
        upper = body.upper()
        ident = self._model.identity
        replies = self._model.replies
        if upper == "MN?":
            return replies.model_prefix + ident.model
        if upper == "SN?":
            return replies.serial_prefix + ident.serial
        if upper == "FIRMWARE?":
            return ident.firmware
        if upper == "ATT?":
            return format_dB(self.attenuation_dB)
        if upper.startswith("SETATT="):
            return self._set(body[len("SETATT=") :])
        return self._unrecognized()

    def _unrecognized(self) -> str:
        ident = self._model.identity
        return self._model.replies.unrecognized.format(model=ident.model, serial=ident.serial)

    def _set(self, argument: str) -> str:
        replies = self._model.replies
        text = argument.strip(" \t")
        if len(text) > MAX_NUMBER_CHARS or _NUMBER.fullmatch(text) is None:
            return replies.set_failed
        requested_dB = float(text)
        if not math.isfinite(requested_dB):  # '1e999'
            return replies.set_failed
        lo_dB, hi_dB = self._model.range_dB
        if requested_dB > hi_dB:
            reply, new_dB = replies.set_clamped_to_max, hi_dB
        else:
            new_dB = self._model.quantize_dB(requested_dB)
            if new_dB < lo_dB:
                return replies.set_failed
            new_dB = min(new_dB, hi_dB)  # 89.9 rounds to 90.0, never beyond
            reply = replies.set_ok
        with self._lock:
            self._attenuation_dB = new_dB
        if self._on_change is not None:
            try:
                self._on_change(new_dB)
            except Exception:
                log.exception("attenuator on_change callback failed for %s dB", new_dB)
        return reply


class AttenuatorServer:
    """An emulated attenuator listening on a raw TCP socket: ``.port``, ``.resource()``, ``.attenuation_dB``."""

    def __init__(self, instrument: RcdatAttenuator, host: str = "127.0.0.1", port: int = 0) -> None:
        self._instrument = instrument
        self._server = ScpiSocketServer(instrument.session, host=host, port=port)

    def start(self) -> AttenuatorServer:
        self._server.start()
        return self

    @property
    def instrument(self) -> RcdatAttenuator:
        return self._instrument

    @property
    def model(self) -> AttenuatorModel:
        return self._instrument.model

    @property
    def port(self) -> int:
        return self._server.port

    def resource(self) -> str:
        """VISA resource string, e.g. ``TCPIP0::127.0.0.1::50123::SOCKET``."""
        return self._server.resource()

    @property
    def attenuation_dB(self) -> float:
        return self._instrument.attenuation_dB

    @property
    def message_count(self) -> int:
        return self._instrument.message_count

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> AttenuatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_attenuator(
    model_path: Path | str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    on_change: OnChange | None = None,
) -> AttenuatorServer:
    """Load the model (default: the RCDAT-6000-90 fixture) and serve it; ``port=0`` binds a free port."""
    instrument = RcdatAttenuator(load_attenuator_model(model_path), on_change=on_change)
    return AttenuatorServer(instrument, host=host, port=port).start()
