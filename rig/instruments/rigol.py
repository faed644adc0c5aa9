"""Driver for Rigol DS1000Z oscilloscopes (DS1054Z, DS1074Z, DS1104Z, their Plus and MSO variants) over pyvisa.

Follows the MSO1000Z/DS1000Z Programming Guide and the way the ds1054z package reads deep memory:
edge trigger, :SINGle and :TRIGger:STATus? polled until STOP for one acquisition, then in the STOP
state :WAVeform:MODE RAW, :WAVeform:PREamble? and the memory read in chunks of at most 250 000 points
(:WAVeform:STARt / :STOP / :DATA?, each a "#9" block) in BYTE format.

The DS1000Z differs from an InfiniiVision in ways the rig's AcquisitionSetup has to be mapped onto:

* 12 horizontal divisions, the time reference at the screen centre (:TIMebase:MAIN:OFFSet is the time
  of the screen centre after the trigger): 'left' puts the trigger one division from the left edge,
  'right' one division from the right edge;
* :CHANnel<n>:OFFSet moves the trace up (the screen centre shows -offset): the setup's offset (the
  value at the screen centre) is sent negated;
* the record length is the memory depth (:ACQuire:MDEPth, from a fixed list per number of channels
  on): the driver picks the smallest depth with at least ``points`` points that the maximum sample
  rate can fill over the screen, so the record has at least the requested points (up to 10 times more);
* single-shot acquisitions always wait for a trigger (:SINGle sets the sweep to SINGle): an 'auto'
  sweep is emulated by forcing a trigger (:TFORce) when none came while the driver waited.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pyvisa.resources import MessageBasedResource

from rig.capture import Capture
from rig.errors import InstrumentError
from rig.instruments.blocks import read_definite_block
from rig.instruments.scope_session import ScpiScope, scpi_integer, validate_setup
from rig.instruments.visa import visa_errors
from rig.interfaces import AcquisitionSetup, Clock, InstrumentIdentity

FAMILY = "Rigol DS1000Z (DS1054Z/DS1074Z/DS1104Z, Plus, MSO1000Z)"
_MANUFACTURER = "RIGOL TECHNOLOGIES"
# DS1104Z, DS1054Z Plus, MSO1104Z, MSO1074Z-S: <series 1><bandwidth 2 digits><channels 4>Z
_MODEL = re.compile(r"^(?:DS|MSO)1\d{2}(?P<channels>4)Z(?:-S)?(?:\s+Plus)?$", re.IGNORECASE)
CHANNELS = 4

HORIZONTAL_DIVISIONS = 12  # DS1000Z User's Guide 4-6 (HDivs = 12)
SCREEN_POINTS = 1200  # :WAVeform:MODE NORMal
MAX_POINTS_PER_READ = 250_000  # :WAVeform:DATA? in BYTE format (ds1054z, Programming Guide)
CODE_RANGE = (0, 255)  # BYTE codes; the screen spans 25 codes per division around 127
# (max sample rate, :ACQuire:MDEPth choices) by number of channels on; standard 12 Mpts memory
# (DS1000Z User's Guide 4-6; depths for 2 and 3-4 channels as in fixtures/instruments/rigol_ds1104z.yaml)
CHANNEL_MODES: tuple[tuple[int, float, tuple[int, ...]], ...] = (
    (1, 1.0e9, (12_000, 120_000, 1_200_000, 12_000_000)),
    (2, 500.0e6, (6_000, 60_000, 600_000, 6_000_000)),
    (4, 250.0e6, (3_000, 30_000, 300_000, 3_000_000)),
)

_BYTE_FORMAT, _RAW_TYPE = 0, 2
_SWEEPS = {"normal": "NORMal", "auto": "AUTO"}
_SLOPES = {"positive": "POSitive", "negative": "NEGative"}
_REFERENCE_DIVISIONS_FROM_CENTRE = {"left": HORIZONTAL_DIVISIONS / 2 - 1, "center": 0.0,
                                    "right": -(HORIZONTAL_DIVISIONS / 2 - 1)}
_ARMED_STATES = ("WAIT", "TD", "RUN", "AUTO")
_STATUS_EXPECTED = "one of TD, WAIT, RUN, AUTO, STOP"
_PREAMBLE_FIELDS = 10
_PREAMBLE_EXPECTED = (
    "10 comma-separated fields: format,type,points,count,xincrement,xorigin,xreference,yincrement,yorigin,"
    "yreference (format, type, points, count, xreference, yorigin, yreference integers)"
)
_INTEGER_FIELDS = (0, 1, 2, 3, 6, 8, 9)
# auto sweep: status polls (each a wait of the scope) before a trigger is forced; the first poll
# after :SINGle only confirms the scope is armed
AUTO_POLLS_BEFORE_FORCE = 2
_ARM_POLLS = 50
_POLL_SLEEP_MAX_S = 0.02


def matches(identity: InstrumentIdentity) -> bool:
    """Whether ``*IDN?`` names a DS1000Z-family scope ("RIGOL TECHNOLOGIES,DS1104Z,...")."""
    return identity.manufacturer.strip().upper() == _MANUFACTURER and _MODEL.match(identity.model.strip()) is not None



def _num(value: float) -> str:
    return f"{value:.9g}"


def channel_mode(channels_on: int) -> tuple[float, tuple[int, ...]]:
    """(maximum sample rate, memory depth choices) with ``channels_on`` channels on."""
    for up_to, rate, depths in CHANNEL_MODES:
        if max(1, channels_on) <= up_to:
            return rate, depths
    raise ValueError(f"a DS1000Z has at most {CHANNEL_MODES[-1][0]} channels, not {channels_on}")


def memory_depth_for(points: int, channels_on: int, time_scale_s_per_div: float) -> int:
    """The :ACQuire:MDEPth for at least ``points`` points: the smallest depth offered that is not
    below ``points`` and that the maximum sample rate can still fill over the 12-division screen; else
    the deepest such depth (the record then has fewer points); at very fast timebases the smallest."""
    rate, depths = channel_mode(channels_on)
    fillable = [d for d in depths if d <= rate * HORIZONTAL_DIVISIONS * time_scale_s_per_div * (1 + 1e-9)]
    if not fillable:
        return depths[0]
    return next((d for d in fillable if d >= points), fillable[-1])


@dataclass(frozen=True)
class Preamble:
    """The 10 fields of the DS1000Z's ``:WAVeform:PREamble?``."""

    format: int
    type: int
    points: int
    count: int
    x_increment_s: float
    x_origin_s: float
    x_reference: int
    y_increment_V: float
    y_origin: int  # in codes
    y_reference: int  # in codes

    @classmethod
    def parse(cls, reply: str, *, instrument: str, command: str = ":WAVeform:PREamble?") -> Preamble:
        fields = [f.strip() for f in reply.strip().split(",")]
        if len(fields) != _PREAMBLE_FIELDS:
            raise InstrumentError(
                instrument, command, f"preamble has {len(fields)} fields: {reply!r}", _PREAMBLE_EXPECTED
            )
        try:
            values: list[int | float] = [
                scpi_integer(f) if k in _INTEGER_FIELDS else float(f) for k, f in enumerate(fields)
            ]
        except ValueError as exc:
            raise InstrumentError(
                instrument, command, f"unparsable preamble {reply!r} ({exc})", _PREAMBLE_EXPECTED
            ) from exc
        preamble = cls(*values)  # type: ignore[arg-type]
        problem = preamble._implausible()
        if problem:
            raise InstrumentError(instrument, command, f"{problem} in preamble {reply!r}", _PREAMBLE_EXPECTED)
        return preamble

    def _implausible(self) -> str:
        if not all(math.isfinite(v) for v in asdict(self).values()):
            return "non-finite value"
        if self.points < 1:
            return f"point count {self.points}"
        if not self.x_increment_s > 0:
            return f"x increment {self.x_increment_s} s is not positive"
        if self.y_increment_V == 0:
            return "zero y increment"
        return ""


class RigolDS1000Z(ScpiScope):
    """rig.interfaces.Oscilloscope for the Rigol DS1000Z family, over one pyvisa resource."""

    family = FAMILY
    error_example = '0,"No error"'

    def __init__(
        self,
        resource: MessageBasedResource,
        resource_name: str,
        *,
        identity: InstrumentIdentity | None = None,
        chunk_points: int = MAX_POINTS_PER_READ,
    ) -> None:
        if not 1 <= chunk_points <= MAX_POINTS_PER_READ:
            raise ValueError(f"chunk_points must be 1..{MAX_POINTS_PER_READ}, not {chunk_points}")
        super().__init__(resource, resource_name, identity=identity)
        self._depth: int | None = None
        self.chunk_points = chunk_points

    # -- Oscilloscope --------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return CHANNELS

    def configure(self, setup: AcquisitionSetup) -> None:
        self._guard("configure")
        self._apply(setup, configure_commands(setup, instrument=self.resource))
        self._depth = memory_depth_for(setup.points, len(setup.channels), setup.time_scale_s_per_div)

    def _status(self, command: str) -> str:
        reply = self._query(":TRIGger:STATus?", expected=_STATUS_EXPECTED).upper()
        if reply not in (*_ARMED_STATES, "STOP"):
            self._resync(f":TRIGger:STATus? answered {reply!r}")
            raise InstrumentError(self.resource, command, f":TRIGger:STATus? answered {reply!r}", _STATUS_EXPECTED)
        return reply

    def _arm_single(self, command: str) -> str:
        """:SINGle, then poll until the scope reports it is armed (it may take a moment to leave
        STOP); returns the status it reported."""
        self._session.write(":SINGle")
        for k in range(_ARM_POLLS):
            status = self._status(command)
            if status != "STOP":
                return status
            time.sleep(min(_POLL_SLEEP_MAX_S, 0.001 * (k + 1)))
        raise InstrumentError(self.resource, command, "still STOP after :SINGle",
                              "the scope armed (WAIT/TD) after :SINGle")

    def single(self, timeout_s: float) -> None:
        command = ":SINGle; :TRIGger:STATus? until STOP"
        self._guard(command)
        self._check_timeout(command, timeout_s)
        deadline = time.monotonic() + timeout_s
        auto = self._setup is not None and self._setup.trigger.sweep == "auto"
        status = self._arm_single(command)
        polls = 0
        while status != "STOP":
            if auto and status == "WAIT" and polls >= AUTO_POLLS_BEFORE_FORCE and polls % AUTO_POLLS_BEFORE_FORCE == 0:
                self._session.write(":TFORce")  # auto sweep: no trigger came while we waited (again if ignored)
            if time.monotonic() >= deadline:
                raise self._no_trigger(command, timeout_s)
            if polls >= 8:  # back off: a real scope needs wall time, an emulated one answers at once
                time.sleep(min(_POLL_SLEEP_MAX_S, 0.001 * (polls - 7)))
            status = self._status(command)
            polls += 1

    def arm(self) -> None:
        """Arm one acquisition (:SINGle) and return as soon as the scope reports it armed."""
        command = ":SINGle; :TRIGger:STATus?"
        self._guard(command)
        self._arm_single(command)

    def wait_acquired(self, timeout_s: float, clock: Clock, poll_s: float = 0.01) -> None:
        """Poll :TRIGger:STATus? until STOP, letting ``clock`` run between polls; InstrumentError on timeout."""
        command = ":TRIGger:STATus?"
        self._guard(command)
        deadline = clock.now() + timeout_s
        while True:
            if self._status(command) == "STOP":
                return
            if clock.now() >= deadline:
                raise self._not_acquired(timeout_s)
            clock.wait(poll_s)

    def read_waveform(self, channel: int) -> Capture:
        source = f":WAVeform:SOURce CHANnel{channel}"
        self._guard(source)
        if not 1 <= channel <= self.channels:
            raise InstrumentError(self.resource, source, f"no channel {channel}", f"a channel 1-{self.channels}")
        for command in (source, ":WAVeform:MODE RAW", ":WAVeform:FORMat BYTE"):
            self._session.write(command)
        preamble = Preamble.parse(
            self._query(":WAVeform:PREamble?", expected=_PREAMBLE_EXPECTED), instrument=self.resource
        )
        if preamble.format != _BYTE_FORMAT or preamble.type != _RAW_TYPE:
            raise InstrumentError(
                self.resource,
                ":WAVeform:PREamble?",
                f"waveform format {preamble.format}, type {preamble.type}",
                "format 0 (BYTE) and type 2 (RAW), as set with :WAVeform:FORMat BYTE and :WAVeform:MODE RAW",
            )
        if self._depth is not None and preamble.points != self._depth:
            raise InstrumentError(
                self.resource,
                ":WAVeform:PREamble?",
                f"the record holds {preamble.points} points",
                f"the {self._depth} points of the memory depth configured (:ACQuire:MDEPth {self._depth})",
            )
        samples = self._read_memory(preamble.points)
        self._require_empty_error_queue(f"{source}; :WAVeform:PREamble?; :WAVeform:STARt/STOP/DATA?",
                                        "reading the waveform")
        return self._capture(channel, preamble, samples)

    def _read_memory(self, points: int) -> np.ndarray:
        """The internal memory, points 1..``points``, read ``chunk_points`` at a time."""
        samples = np.empty(points, dtype=np.uint8)
        for first in range(1, points + 1, self.chunk_points):
            last = min(points, first + self.chunk_points - 1)
            self._session.write(f":WAVeform:STARt {first}")
            self._session.write(f":WAVeform:STOP {last}")
            data = self._read_block(f":WAVeform:DATA? (points {first}-{last})")
            if len(data) != last - first + 1:
                raise InstrumentError(
                    self.resource,
                    f":WAVeform:STARt {first}; :WAVeform:STOP {last}; :WAVeform:DATA?",
                    f"block holds {len(data)} bytes",
                    f"{last - first + 1} bytes, one per point {first}-{last}",
                )
            samples[first - 1 : last] = np.frombuffer(data, dtype=np.uint8)
        return samples

    def _read_block(self, label: str) -> bytes | memoryview:
        command = ":WAVeform:DATA?"
        self._session.write(command)
        try:
            with visa_errors(self.resource, label, "a definite-length block"):
                return read_definite_block(self._session.resource, instrument=self.resource, command=label)
        except InstrumentError as exc:
            self._resync(f"{label} failed: {exc.problem}")
            raise

    def _capture(self, channel: int, preamble: Preamble, samples: np.ndarray) -> Capture:
        meta: dict[str, Any] = {"preamble": asdict(preamble), "format": "BYTE", "mode": "RAW",
                                "count": preamble.count}
        if self._identity is not None:
            meta["identity"] = str(self._identity)
        return Capture(
            samples=samples,
            x_increment_s=preamble.x_increment_s,
            x_origin_s=preamble.x_origin_s - preamble.x_reference * preamble.x_increment_s,
            y_increment_V=preamble.y_increment_V,
            y_origin_V=0.0,
            y_reference=float(preamble.y_origin + preamble.y_reference),  # volts = (code - yorigin - yref) * yinc
            channel=channel,
            instrument=self.resource,
            code_range=CODE_RANGE,
            meta=meta,
        )

    def close(self) -> None:
        self._session.close()


def configure_commands(setup: AcquisitionSetup, *, instrument: str) -> list[str]:
    """The SCPI commands applying ``setup`` (validated first), in the order they are sent."""
    validate_setup(setup, channels=CHANNELS, instrument=instrument)
    commands = ["*CLS", ":RUN"]  # memory depth is changed with the scope running, as from the front panel
    listed = {c.channel: c for c in setup.channels}
    for n in range(1, CHANNELS + 1):
        chan = listed.get(n)
        if chan is None:
            commands.append(f":CHANnel{n}:DISPlay OFF")
            continue
        commands += [
            f":CHANnel{n}:DISPlay ON",
            f":CHANnel{n}:PROBe {_num(chan.probe_attenuation)}",
            f":CHANnel{n}:SCALe {_num(chan.scale_V_per_div)}",
            f":CHANnel{n}:OFFSet {_num(-chan.offset_V + 0.0)}",  # Rigol: the screen centre shows -offset
        ]
    trigger = setup.trigger
    centre_divisions = _REFERENCE_DIVISIONS_FROM_CENTRE[setup.time_reference]
    centre_s = setup.time_position_s + centre_divisions * setup.time_scale_s_per_div
    depth = memory_depth_for(setup.points, len(setup.channels), setup.time_scale_s_per_div)
    commands += [
        f":TIMebase:MAIN:SCALe {_num(setup.time_scale_s_per_div)}",
        f":TIMebase:MAIN:OFFSet {_num(centre_s)}",
        ":TRIGger:MODE EDGE",
        f":TRIGger:SWEep {_SWEEPS[trigger.sweep]}",
        f":TRIGger:EDGe:SOURce CHANnel{trigger.source_channel}",
        f":TRIGger:EDGe:SLOPe {_SLOPES[trigger.slope]}",
        f":TRIGger:EDGe:LEVel {_num(trigger.level_V)}",
        f":ACQuire:MDEPth {depth}",
        ":WAVeform:MODE RAW",
        ":WAVeform:FORMat BYTE",
    ]
    return commands


