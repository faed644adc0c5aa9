"""The IEEE 488.2 pieces every emulated instrument serves the same way: the status registers (error queue,
ESR, ESE, SRE) and the common commands that read and set them, executing one program message at a time,
the per-connection session, and two handler helpers. The families (keysight, rigol) add *IDN?, *RST,
*CLS, *OPC and their command trees."""

from __future__ import annotations

import threading
from collections.abc import Callable

from simulator.instruments.scpi import (
    Call,
    CommandTree,
    ErrorQueue,
    ScpiError,
    ScpiExecutor,
    esr_bit_for,
    format_error,
    parse_int,
)


def no_args(c: Call) -> None:
    if c.args:
        raise ScpiError(-108)


def query(reply: Callable[[Call], str]) -> Callable[[Call], str]:
    """A query handler that takes no parameters."""

    def handler(c: Call) -> str:
        no_args(c)
        return reply(c)

    return handler


class EmulatedInstrument:
    """What every emulated instrument keeps and does the same way: the IEEE 488.2 status model (the error
    queue and the event status (ESR), its enable (ESE) and the service request enable (SRE)), one program
    message at a time under ``lock``, and a session per connection. A family sets ``_executor`` (its
    command tree) and defines ``_stb`` (its status byte) and ``_service`` (catching up with bench time)."""

    _executor: ScpiExecutor

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.errors = ErrorQueue()
        self._esr = 0
        self._ese = 0
        self._sre = 0

    def _report(self, code: int) -> None:
        """An error: into the queue, and its bit into the event status register."""
        self.errors.push(code)
        self._esr |= esr_bit_for(code)

    def _stb(self) -> int:
        raise NotImplementedError

    def _service(self) -> None:
        """Before each program message: let the instrument catch up (e.g. a pending acquisition)."""

    def execute(self, message: bytes | str) -> bytes:
        """Run one newline-terminated program message; the reply (with its ``\\n``) or b''."""
        with self.lock:
            try:
                self._service()
            except Exception:  # the bench misbehaved; keep serving
                self._report(-200)
            return self._executor.execute(message)

    def session(self) -> InstrumentSession:
        """A per-connection handler (the ``handler_factory`` for the SCPI socket and VXI-11 servers)."""
        return InstrumentSession(self)


def status_commands(instrument: EmulatedInstrument, t: CommandTree, *, integer: Callable[[int], str] = str,
                    error: Callable[[int, str], str] = format_error) -> None:
    """*ESR?, *ESE(?), *SRE(?), *STB?, *TST? and :SYSTem:ERRor?; ``integer`` and ``error`` format the replies
    as the family does (e.g. InfiniiVision's explicit sign)."""

    def esr_q(c: Call) -> str:
        no_args(c)
        value, instrument._esr = instrument._esr, 0
        return integer(value)

    def register(key: str, name: str) -> None:
        def setter(c: Call) -> None:
            c.expect_args(1)
            value = parse_int(c.args[0])
            if not 0 <= value <= 255:
                raise ScpiError(-222)
            setattr(instrument, name, value)

        t.add(key, setter)
        t.add(key + "?", query(lambda c: integer(getattr(instrument, name))))

    def syst_err(c: Call) -> str:
        no_args(c)
        return error(*instrument.errors.pop())

    t.add("*ESR?", esr_q)
    register("*ESE", "_ese")
    register("*SRE", "_sre")
    t.add("*STB?", query(lambda c: integer(instrument._stb())))
    t.add("*TST?", query(lambda c: integer(0)))
    t.add(":SYSTem:ERRor[:NEXT]?", syst_err)


class InstrumentSession:
    """One connection's view of the shared instrument (the ``handler_factory`` product for the servers)."""

    def __init__(self, instrument: EmulatedInstrument) -> None:
        self.instrument = instrument

    def handle(self, line: bytes) -> bytes:
        return self.instrument.execute(line)

    def status_byte(self) -> int:
        """The instrument's status byte (*STB?), for a VXI-11 device_readstb."""
        with self.instrument.lock:
            return self.instrument._stb()

    def close(self) -> None:
        """Nothing to release: state belongs to the instrument."""
