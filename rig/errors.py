"""The rig's exception hierarchy.

Every error a user can cause or meet says what was wrong, where (file, field, instrument, port,
command) and what was expected, in one message. Tests that hit one end ERROR or FAIL, never PASS.
"""

from __future__ import annotations


class StimrigError(Exception):
    """Base of all errors raised deliberately by stimrig."""


class FixtureError(StimrigError):
    """A fixture file (device, program, bench) is missing or does not validate."""


class InstrumentError(StimrigError):
    """An instrument did not answer, answered wrongly, or reported an error.

    Carries the instrument's resource string and the SCPI command involved.
    """

    def __init__(self, instrument: str, command: str, problem: str, expected: str = "") -> None:
        self.instrument = instrument
        self.command = command
        self.problem = problem
        self.expected = expected
        text = f"{instrument}: {command!r}: {problem}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class DutError(StimrigError):
    """The device under test did not answer, or its link failed."""


class ProtocolError(DutError):
    """A frame could not be decoded: bad CRC, bad framing, bad schema."""


class DeviceRefused(DutError):
    """The device answered a command with an error reply."""

    def __init__(self, port: str, command: str, code: int, name: str, detail: str) -> None:
        self.port = port
        self.command = command
        self.code = code
        self.name = name
        self.detail = detail
        super().__init__(f"{port}: device refused {command}: {name} (code {code}): {detail}")


class LinkDown(DutError):
    """The controller bridge has no radio connection to the device: the command was not delivered."""

    def __init__(self, port: str, command: str, detail: str) -> None:
        self.port = port
        self.command = command
        self.detail = detail
        super().__init__(f"{port}: {command} not delivered: radio link to the device is down ({detail})")


class CeilingError(StimrigError):
    """The rig refused to command more than the bench's amplitude ceiling."""


class AnalysisError(StimrigError):
    """A capture does not hold what the measurement needs (no pulses, clipped, too coarse)."""
