"""What every SCPI oscilloscope driver does the same way, whatever the family: refuse calls on a closed
or lost session, re-align replies after a timeout on a fresh ``*IDN?``, identify, and drain the error
queue. The family drivers (keysight, rigol) subclass it and add their command sets."""

from __future__ import annotations

from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError
from rig.instruments.visa import IDN_EXPECTED, ScpiSession, is_timeout, parse_identity
from rig.interfaces import InstrumentIdentity

RESYNC_MAX_LINES = 16  # stale reply lines read past while looking for the *IDN? reply
ERROR_QUEUE_MAX_READS = 32


def scpi_integer(text: str) -> int:
    """An integer field, tolerating the float form some scopes send ('1.000E+3')."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # ValueError for non-numbers
        if not value.is_integer():
            raise ValueError(f"{text!r} is not an integer") from None
        return int(value)


def error_code(instrument: str, reply: str) -> int:
    """The code of a ``:SYSTem:ERRor?`` entry ('<code>,"<message>"')."""
    try:
        return int(reply.split(",", 1)[0])
    except ValueError as exc:
        raise InstrumentError(
            instrument, ":SYSTem:ERRor?", f"unparsable error-queue entry {reply!r}", '<code>,"<message>"'
        ) from exc


class ScpiScope:
    """Session handling shared by the oscilloscope drivers (rig.interfaces.Oscilloscope)."""

    family = ""
    error_example = '0,"No error"'  # how the family writes an empty error queue, for messages

    def __init__(
        self, resource: MessageBasedResource, resource_name: str, *, identity: InstrumentIdentity | None = None
    ) -> None:
        self._session = ScpiSession(resource, resource_name)
        self._identity = identity
        self._unusable: str | None = None

    @property
    def resource(self) -> str:
        return self._session.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.resource!r})"

    def _guard(self, command: str) -> None:
        if self._session.closed:
            raise InstrumentError(self.resource, command, "the scope session is closed", "an open scope session")
        if self._unusable is not None:
            raise InstrumentError(
                self.resource,
                command,
                f"driver unusable after an earlier failure: {self._unusable}",
                "a freshly opened scope session (open_scope again)",
            )

    def _query(self, command: str, *, expected: str) -> str:
        try:
            return self._session.query(command, expected=expected)
        except InstrumentError as exc:
            if is_timeout(exc):
                self._resync(f"{command} timed out")  # a late reply must not answer the next query
            raise

    def _resync(self, reason: str) -> bool:
        """After a timeout or garbled reply: stop, clear, and re-align replies on a fresh ``*IDN?``.

        Returns whether it worked; if not, the driver refuses every later call.
        """
        try:
            self._session.device_clear()  # aborts an acquisition on VXI-11/USBTMC; drops input on sockets
            self._session.write(":STOP")
            self._session.write("*CLS")
            self._session.write("*IDN?")
            for _ in range(RESYNC_MAX_LINES):
                line = self._session.read_line(command="*IDN? (resynchronising)", expected="the *IDN? reply")
                if self._is_idn_reply(line):
                    return True
        except InstrumentError:
            pass
        self._unusable = f"{reason}, and the session could not be resynchronised"
        return False

    def _is_idn_reply(self, line: str) -> bool:
        try:
            identity = InstrumentIdentity.from_idn(line)
        except ValueError:
            return False
        return self._identity is None or identity == self._identity

    def identity(self) -> InstrumentIdentity:
        if self._identity is None:
            self._guard("*IDN?")
            self._identity = parse_identity(self.resource, self._query("*IDN?", expected=IDN_EXPECTED))
        return self._identity

    def _drain_errors(self) -> list[str]:
        """Read ``:SYSTem:ERRor?`` until it reports 0 (bounded); returns the errors it held."""
        errors: list[str] = []
        for _ in range(ERROR_QUEUE_MAX_READS):
            reply = self._query(":SYSTem:ERRor?", expected=f"an error-queue entry such as {self.error_example}")
            if error_code(self.resource, reply) == 0:
                return errors
            errors.append(reply)
        errors.append(f"(queue not empty after {ERROR_QUEUE_MAX_READS} reads)")
        return errors
