"""Driver for Keysight (Agilent) InfiniiVision 2000X / 3000X / 3000T oscilloscopes over pyvisa.

Follows the InfiniiVision programmer's guide: edge trigger, ``:DIGitize`` + ``*OPC?`` for one
acquisition, ``:WAVeform:PREamble?`` + ``:WAVeform:DATA?`` (BYTE, unsigned) for the record.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pyvisa.resources import MessageBasedResource

from rig.capture import Capture
from rig.errors import InstrumentError
from rig.instruments.blocks import read_definite_block
from rig.instruments.scope_session import ScpiScope, scpi_integer, validate_setup
from rig.instruments.visa import is_timeout, visa_errors
from rig.interfaces import AcquisitionSetup, Clock, InstrumentIdentity

FAMILY = "Keysight/Agilent InfiniiVision 2000X/3000X/3000T"
_MANUFACTURERS = ("KEYSIGHT", "AGILENT")
# DSOX3034T, DSO-X 2002A, MSOX3104T: <series><bandwidth 2 digits><channels><suffix>
_MODEL = re.compile(r"^[DM]SO-?X\s*(?P<series>[23])\d{2}(?P<channels>[24])[A-Z]*$", re.IGNORECASE)
_DEFAULT_CHANNELS = 4

_BYTE_FORMAT = 0
_ACQUIRE_TYPES = {0: "NORMal", 1: "PEAK", 2: "AVERage", 3: "HRESolution"}
_REFERENCES = {"left": "LEFT", "center": "CENTer", "right": "RIGHt"}
_SWEEPS = {"normal": "NORMal", "auto": "AUTO"}
_SLOPES = {"positive": "POSitive", "negative": "NEGative"}
_PREAMBLE_FIELDS = 10
_PREAMBLE_EXPECTED = (
    "10 comma-separated fields: format,type,points,count,xincrement,xorigin,xreference,yincrement,yorigin,yreference"
)


def matches(identity: InstrumentIdentity) -> bool:
    """Whether ``*IDN?`` names an InfiniiVision 2000X/3000X/3000T scope."""
    maker = identity.manufacturer.upper()
    return maker.startswith(_MANUFACTURERS) and _MODEL.match(identity.model.strip()) is not None


def channel_count(model: str) -> int:
    found = _MODEL.match(model.strip())
    return int(found.group("channels")) if found else _DEFAULT_CHANNELS


def _num(value: float) -> str:
    return f"{value:.9g}"


# NR1 / NR2 / NR3 numeric response data (ASCII digits only)
_PREAMBLE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Preamble:
    """The 10 fields of ``:WAVeform:PREamble?``."""

    format: int
    type: int
    points: int
    count: int
    x_increment_s: float
    x_origin_s: float
    x_reference: float
    y_increment_V: float
    y_origin_V: float
    y_reference: float

    @classmethod
    def parse(cls, reply: str, *, instrument: str, command: str = ":WAVeform:PREamble?") -> Preamble:
        """The preamble in ``reply``; InstrumentError (naming ``instrument`` and ``command``) for the
        wrong number of fields, a field that is not a decimal number (NR1/NR2/NR3: no '1_0', no
        non-ASCII digits, no 'nan'), a non-integer or out-of-range integer field, or an implausible
        value. A long garbage reply is shown abbreviated in the message."""
        shown = repr(reply) if len(reply) <= 200 else f"{reply[:200]!r}... ({len(reply)} characters)"
        fields = [f.strip() for f in reply.strip().split(",")]
        if len(fields) != _PREAMBLE_FIELDS:
            raise InstrumentError(
                instrument, command, f"preamble has {len(fields)} fields: {shown}", _PREAMBLE_EXPECTED
            )
        try:
            for f in fields:
                if not _PREAMBLE_NUMBER.fullmatch(f):
                    raise ValueError(f"{f[:40]!r} is not a decimal number")
            ints = [scpi_integer(f) for f in fields[:4]]
            floats = [float(f) for f in fields[4:]]
            preamble = cls(*ints, *floats)  # type: ignore[arg-type]
            problem = preamble._implausible()
        except (ValueError, OverflowError) as exc:  # OverflowError: an integer too large for a float
            raise InstrumentError(
                instrument, command, f"unparsable preamble {shown} ({exc})", _PREAMBLE_EXPECTED
            ) from exc
        if problem:
            raise InstrumentError(instrument, command, f"{problem} in preamble {shown}", _PREAMBLE_EXPECTED)
        return preamble

    def _implausible(self) -> str:
        if not all(math.isfinite(v) for v in asdict(self).values()):
            return "non-finite value"
        if self.points < 0:
            return f"negative point count {self.points}"
        if not self.x_increment_s > 0:
            return f"x increment {self.x_increment_s} s is not positive"
        if self.y_increment_V == 0:
            return "zero y increment"
        return ""


OPER_RUN_BIT = 0x08  # :OPERegister:CONDition? bit 3: the scope is running / acquiring


class KeysightInfiniiVision(ScpiScope):
    """rig.interfaces.Oscilloscope for InfiniiVision 2000X/3000X/3000T, over one pyvisa resource."""

    family = FAMILY
    error_example = '+0,"No error"'

    def __init__(
        self,
        resource: MessageBasedResource,
        resource_name: str,
        *,
        identity: InstrumentIdentity | None = None,
    ) -> None:
        super().__init__(resource, resource_name, identity=identity)

    # -- Oscilloscope --------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        """Number of analog inputs, from the model name (4 if it cannot be told)."""
        return channel_count(self.identity().model)

    def configure(self, setup: AcquisitionSetup) -> None:
        self._guard("configure")
        self._apply(setup, configure_commands(setup, channels=self.channels, instrument=self.resource))

    def single(self, timeout_s: float) -> None:
        command = ":DIGitize; *OPC?"
        self._guard(command)
        self._check_timeout(command, timeout_s)
        self._session.write(":DIGitize")
        try:
            with self._session.timeout(timeout_s):
                reply = self._session.query("*OPC?", expected="'1' once the acquisition completed")
        except InstrumentError as exc:
            if not is_timeout(exc):
                raise
            raise self._no_trigger(command, timeout_s) from exc
        if reply != "1":
            self._resync(f"*OPC? answered {reply!r}")
            raise InstrumentError(self.resource, command, f"*OPC? answered {reply!r}", "'1'")

    def arm(self) -> None:
        """Arm one acquisition (:SINGle) and return as soon as the scope confirms it is armed.

        :SINGle has no reply; the query after it is the synchronisation point (a SCPI instrument
        handles one program message after the other), so the rig never causes its event before
        the scope has armed, however busy the machine is."""
        command = ":SINGle;:OPERegister:CONDition?"
        self._guard(command)
        self._session.write(":SINGle")
        reply = self._query(":OPERegister:CONDition?", expected="an integer with bit 3 (running) set")
        try:
            armed = int(float(reply)) & OPER_RUN_BIT
        except ValueError:
            raise InstrumentError(self.resource, command, f"answered {reply!r}", "an integer") from None
        if not armed:
            raise InstrumentError(self.resource, command, f"not armed (condition register {reply})",
                                  "bit 3 (running) set after :SINGle")

    def wait_acquired(self, timeout_s: float, clock: Clock, poll_s: float = 0.01) -> None:
        """Poll until the armed acquisition has triggered and completed, letting ``clock`` run between
        polls (bench time on a virtual bench, wall time on a real one); InstrumentError on timeout."""
        command = ":OPERegister:CONDition?"
        self._guard(command)
        deadline = clock.now() + timeout_s
        while True:
            reply = self._query(command, expected="an integer (bit 3 = still acquiring)")
            try:
                running = int(float(reply)) & OPER_RUN_BIT
            except ValueError:
                raise InstrumentError(self.resource, command, f"answered {reply!r}", "an integer") from None
            if not running:
                return
            if clock.now() >= deadline:
                raise self._not_acquired(timeout_s)
            clock.wait(poll_s)

    def read_waveform(self, channel: int) -> Capture:
        source = f":WAVeform:SOURce CHANnel{channel}"
        self._guard(source)
        if not 1 <= channel <= self.channels:
            raise InstrumentError(self.resource, source, f"no channel {channel}", f"a channel 1-{self.channels}")
        self._session.write(source)
        preamble = Preamble.parse(
            self._query(":WAVeform:PREamble?", expected=_PREAMBLE_EXPECTED), instrument=self.resource
        )
        if preamble.format != _BYTE_FORMAT:
            raise InstrumentError(
                self.resource,
                ":WAVeform:PREamble?",
                f"waveform format {preamble.format}, not BYTE",
                "format 0 (BYTE), as configured with :WAVeform:FORMat BYTE",
            )
        data = self._read_block(":WAVeform:DATA?")
        if len(data) != preamble.points:
            raise InstrumentError(
                self.resource,
                ":WAVeform:DATA?",
                f"block holds {len(data)} bytes but the preamble says {preamble.points} points",
                "one BYTE per point of the preamble",
            )
        self._require_empty_error_queue(f"{source}; :WAVeform:PREamble?; :WAVeform:DATA?", "reading the waveform")
        return self._capture(channel, preamble, data)

    def _read_block(self, command: str) -> bytes | memoryview:
        self._session.write(command)
        try:
            with visa_errors(self.resource, command, "a definite-length block"):
                return read_definite_block(self._session.resource, instrument=self.resource, command=command)
        except InstrumentError as exc:
            self._resync(f"{command} failed: {exc.problem}")
            raise

    def _capture(self, channel: int, preamble: Preamble, data: bytes | memoryview) -> Capture:
        meta: dict[str, Any] = {
            "preamble": asdict(preamble),
            "format": "BYTE",
            "acquire_type": _ACQUIRE_TYPES.get(preamble.type, str(preamble.type)),
            "count": preamble.count,
        }
        if self._identity is not None:
            meta["identity"] = str(self._identity)
        return Capture(
            samples=np.frombuffer(data, dtype=np.uint8),
            x_increment_s=preamble.x_increment_s,
            x_origin_s=preamble.x_origin_s - preamble.x_reference * preamble.x_increment_s,
            y_increment_V=preamble.y_increment_V,
            y_origin_V=preamble.y_origin_V,
            y_reference=preamble.y_reference,
            channel=channel,
            instrument=self.resource,
            code_range=(1, 255),  # InfiniiVision BYTE: 0 = no data (hole), 1 = clipped low, 255 = clipped high
            meta=meta,
        )

    def close(self) -> None:
        self._session.close()


def configure_commands(setup: AcquisitionSetup, *, channels: int, instrument: str) -> list[str]:
    """The SCPI commands applying ``setup`` (validated first), in the order they are sent."""
    validate_setup(setup, channels=channels, instrument=instrument)
    commands = ["*CLS"]
    listed = {c.channel: c for c in setup.channels}
    for n in range(1, channels + 1):
        chan = listed.get(n)
        if chan is None:
            commands.append(f":CHANnel{n}:DISPlay OFF")
            continue
        commands += [
            f":CHANnel{n}:DISPlay ON",
            f":CHANnel{n}:PROBe {_num(chan.probe_attenuation)}",
            f":CHANnel{n}:SCALe {_num(chan.scale_V_per_div)}",
            f":CHANnel{n}:OFFSet {_num(chan.offset_V)}",
        ]
    trigger = setup.trigger
    commands += [
        f":TIMebase:SCALe {_num(setup.time_scale_s_per_div)}",
        f":TIMebase:REFerence {_REFERENCES[setup.time_reference]}",
        f":TIMebase:POSition {_num(setup.time_position_s)}",
        ":TRIGger:MODE EDGE",
        f":TRIGger:SWEep {_SWEEPS[trigger.sweep]}",
        f":TRIGger:EDGE:SOURce CHANnel{trigger.source_channel}",
        f":TRIGger:EDGE:LEVel {_num(trigger.level_V)}",
        f":TRIGger:EDGE:SLOPe {_SLOPES[trigger.slope]}",
        ":WAVeform:POINts:MODE RAW",
        f":WAVeform:POINts {setup.points}",
        ":WAVeform:FORMat BYTE",
        ":WAVeform:UNSigned ON",
    ]
    return commands


