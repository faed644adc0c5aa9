"""What every SCPI oscilloscope driver does the same way, whatever the family: refuse calls on a closed
or lost session, re-align replies after a timeout on a fresh ``*IDN?``, identify, drain the error
queue, check an acquisition set-up, apply one, and say what trigger a timed-out acquisition expected.
The family drivers (keysight, rigol) subclass it and add their command sets."""

from __future__ import annotations

import math

from pyvisa.resources import MessageBasedResource

from rig.errors import InstrumentError
from rig.instruments.visa import IDN_EXPECTED, ScpiSession, is_timeout, parse_identity
from rig.interfaces import AcquisitionSetup, InstrumentIdentity

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


def validate_setup(setup: AcquisitionSetup, *, channels: int, instrument: str) -> None:
    """InstrumentError (operation ``configure``) for a set-up no scope of ``channels`` channels can take."""
    def bad(problem: str, expected: str) -> InstrumentError:
        return InstrumentError(instrument, "configure", problem, expected)

    numbers = [c.channel for c in setup.channels]
    if not numbers:
        raise bad("no channel to acquire", "at least one ChannelSetup")
    if len(set(numbers)) != len(numbers):
        raise bad(f"channels listed twice: {numbers}", "each channel at most once")
    for n in [*numbers, setup.trigger.source_channel]:
        if not 1 <= n <= channels:
            raise bad(f"no channel {n}", f"channels 1-{channels}")
    for chan in setup.channels:
        if not (chan.scale_V_per_div > 0 and math.isfinite(chan.scale_V_per_div)):
            raise bad(f"CHANnel{chan.channel} scale {chan.scale_V_per_div} V/div", "a positive V/div")
        if not (chan.probe_attenuation > 0 and math.isfinite(chan.probe_attenuation)):
            raise bad(f"CHANnel{chan.channel} probe {chan.probe_attenuation}", "a positive attenuation")
        if not math.isfinite(chan.offset_V):
            raise bad(f"CHANnel{chan.channel} offset {chan.offset_V} V", "a finite offset")
    if not (setup.time_scale_s_per_div > 0 and math.isfinite(setup.time_scale_s_per_div)):
        raise bad(f"time scale {setup.time_scale_s_per_div} s/div", "a positive s/div")
    if not math.isfinite(setup.time_position_s) or not math.isfinite(setup.trigger.level_V):
        raise bad("non-finite time position or trigger level", "finite values")
    if setup.points < 1:
        raise bad(f"{setup.points} points", "at least 1 point")


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
        self._setup: AcquisitionSetup | None = None  # the set-up configure() applied last

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

    def _require_empty_error_queue(self, commands: str, during: str) -> None:
        """InstrumentError naming ``commands`` if the error queue held anything (``during``: e.g.
        'after configuring')."""
        errors = self._drain_errors()
        if errors:
            raise InstrumentError(
                self.resource, commands, f"the scope reported {len(errors)} error(s) {during}: {'; '.join(errors)}",
                f"an empty error queue ({self.error_example})",
            )

    def _apply(self, setup: AcquisitionSetup, commands: list[str]) -> None:
        """Write a set-up's commands, require an empty error queue, and remember the set-up."""
        for command in commands:
            self._session.write(command)
        self._require_empty_error_queue("; ".join(commands), "after configuring")
        self._setup = setup

    def _check_timeout(self, command: str, timeout_s: float) -> None:
        if not timeout_s > 0 or not math.isfinite(timeout_s):
            raise InstrumentError(self.resource, command, f"invalid timeout {timeout_s!r} s", "a positive time")

    def _no_trigger(self, command: str, timeout_s: float) -> InstrumentError:
        """After an acquisition timed out: resynchronise, and the error saying whether that worked."""
        recovered = self._resync(f"no trigger within {timeout_s:g} s")
        after = "session resynchronised" if recovered else "session lost: driver now unusable, reopen the scope"
        return InstrumentError(self.resource, command,
                               f"no trigger / acquisition did not complete within {timeout_s:g} s ({after})",
                               self._trigger_expectation())

    def _not_acquired(self, timeout_s: float) -> InstrumentError:
        """wait_acquired's timeout (in bench time, after arm()): resynchronise, and the error."""
        self._resync(f"no trigger within {timeout_s:g} s")
        return InstrumentError(self.resource, ":SINGle", f"no trigger within {timeout_s:g} s of bench time after "
                               "arming", self._trigger_expectation())

    def _trigger_expectation(self) -> str:
        if self._setup is None:
            return "a trigger as currently set up on the scope"
        trigger = self._setup.trigger
        return (
            f"a trigger on CHANnel{trigger.source_channel} at level {trigger.level_V:g} V "
            f"({trigger.slope} edge, {trigger.sweep} sweep)"
        )
