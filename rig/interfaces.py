"""The narrow protocols the certification suite talks to.

Each is implemented by a real driver (pyvisa, pyserial, ...) and by the virtual bench. Tests only
ever see these; whether a bench is simulated is a property they may read, never a branch they need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from rig.capture import Capture


@dataclass(frozen=True)
class InstrumentIdentity:
    manufacturer: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def from_idn(cls, idn: str) -> InstrumentIdentity:
        parts = [p.strip() for p in idn.strip().split(",")]
        if len(parts) != 4 or not all(parts[:2]):
            raise ValueError(f"*IDN? reply {idn!r} is not 'manufacturer,model,serial,firmware'")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model} (s/n {self.serial}, fw {self.firmware})"


@dataclass(frozen=True)
class ChannelSetup:
    channel: int
    scale_V_per_div: float
    offset_V: float = 0.0
    probe_attenuation: float = 10.0


@dataclass(frozen=True)
class TriggerSetup:
    source_channel: int
    level_V: float
    slope: Literal["positive", "negative"] = "positive"
    sweep: Literal["normal", "auto"] = "normal"


@dataclass(frozen=True)
class AcquisitionSetup:
    """What to capture: vertical set-up per channel, timebase, trigger and record length.

    ``time_reference`` is where the trigger sits on screen (Keysight :TIMebase:REFerence);
    ``time_position_s`` delays the reference from the trigger (:TIMebase:POSition).
    """

    channels: tuple[ChannelSetup, ...]
    time_scale_s_per_div: float
    trigger: TriggerSetup
    points: int
    time_reference: Literal["left", "center", "right"] = "left"
    time_position_s: float = 0.0


@runtime_checkable
class Oscilloscope(Protocol):
    @property
    def resource(self) -> str: ...

    def identity(self) -> InstrumentIdentity: ...

    def configure(self, setup: AcquisitionSetup) -> None:
        """Apply the set-up, then drain the error queue; raise InstrumentError if it is not empty."""

    def single(self, timeout_s: float) -> None:
        """Arm one acquisition and wait until it has triggered and completed, or raise InstrumentError."""

    def arm(self) -> None:
        """Arm one acquisition with the configured set-up and return at once (for an event the rig
        causes next, e.g. a marker edge)."""

    def wait_acquired(self, timeout_s: float, clock: Clock, poll_s: float = 0.01) -> None:
        """Wait, letting ``clock`` run, until the armed acquisition completed; InstrumentError if not."""

    def read_waveform(self, channel: int) -> Capture: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceIdentity:
    model: str
    serial: str
    firmware_version: str
    protocol_version: int
    channels: int


@dataclass(frozen=True)
class ChannelStatus:
    channel: int
    state: str  # "idle" | "ramp_up" | "on" | "off_phase" | "ramp_down" | "stopped" | "fault"
    program: str | None
    amplitude_mA: float  # present output amplitude (envelope), not the set-point
    target_mA: float
    elapsed_s: float
    fault: str | None = None  # e.g. "electrode_off", "over_current", "watchdog", "low_battery"


@runtime_checkable
class DutLink(Protocol):
    """Command link to the stimulator (serial now; BLE later). Enforces the bench's amplitude ceiling."""

    @property
    def port(self) -> str: ...

    def identify(self) -> DeviceIdentity: ...

    def list_programs(self) -> list[str]: ...

    def start(self, program: str, channels: list[int], amplitude_mA: float, duration_s: float | None = None) -> None:
        """Start ``program``; ``duration_s`` sets the treatment time (default: the program's duration)."""
        ...

    def set_amplitude(self, channel: int, amplitude_mA: float) -> None: ...

    def stop(self, channels: list[int] | None = None) -> None: ...

    def emergency_stop(self) -> None: ...

    def status(self) -> list[ChannelStatus]: ...

    def close(self) -> None: ...


@runtime_checkable
class RfAttenuator(Protocol):
    """A programmable RF step attenuator in the conducted path between the controller's antenna port
    and the DUT's (the real bench's stand-in for distance)."""

    def identify(self) -> InstrumentIdentity: ...

    @property
    def range_dB(self) -> tuple[float, float]:
        """(lowest, highest) attenuation the instrument can set."""
        ...

    @property
    def step_dB(self) -> float:
        """Attenuation resolution: settings are rounded to a multiple of this."""
        ...

    def set_attenuation_dB(self, attenuation_dB: float) -> float:
        """Set the attenuation; returns the value the instrument reports back afterwards. Outside
        ``range_dB`` it raises InstrumentError and sends nothing."""
        ...

    def attenuation_dB(self) -> float: ...

    def close(self) -> None: ...


@runtime_checkable
class RadioChannel(Protocol):
    """The radio path between controller and DUT, set by distance: on a real bench an RF attenuator
    (attenuation = path loss(distance) - the cabling's fixed loss), on the simulated bench the same
    attenuator emulated, feeding the link model."""

    def set_distance_m(self, distance_m: float) -> float:
        """Put the patient ``distance_m`` from the controller; returns the path loss now set, in dB."""
        ...

    def distance_m(self) -> float: ...


@runtime_checkable
class LoadBox(Protocol):
    """Connects one DUT channel to a named measurement load that the scope probes."""

    def loads(self) -> dict[str, float]: ...

    def connect(self, dut_channel: int, load: str) -> None: ...

    def mark(self) -> float | None:
        """Pulse the marker output (scope CH2) to time-stamp an event the rig causes."""
        ...

    @property
    def connected(self) -> tuple[int, str] | None: ...

    def close(self) -> None: ...


class Periodic(Protocol):
    """A periodic callback on a bench clock (e.g. the controller's keep-alive heartbeat)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """The bench's notion of time: virtual on a simulated bench, wall-clock on a real one."""

    def now(self) -> float: ...

    def wait(self, seconds: float) -> None: ...

    def every(self, interval_s: float, callback: Callable[[], None]) -> Periodic:
        """Call ``callback`` every ``interval_s`` of bench time, whatever else the rig is waiting for."""
        ...


@runtime_checkable
class Bench(Protocol):
    @property
    def simulated(self) -> bool: ...

    @property
    def seed(self) -> int: ...

    @property
    def clock(self) -> Clock: ...

    def describe(self) -> dict[str, Any]: ...
