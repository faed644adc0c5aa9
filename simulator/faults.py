"""Catalogue of seeded firmware defects, selectable by name on the simulated bench (--fault NAME).

Each fault is a small subclass of the firmware model that overrides one seam; reading its few lines
tells a reviewer exactly what is defective. The suite must catch each of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from rig.config.program import Program
from rig.errors import FixtureError
from simulator.stimulator.firmware import ChannelRuntime, Firmware, Sense


class FrequencyOff5pct(Firmware):
    """Pulse timer computed with a wrong prescaler: every pulse train runs 5 % fast."""

    def pulse_period_s(self, program: Program) -> float:
        return super().pulse_period_s(program) / 1.05


class PhaseDurationOff10pct(Firmware):
    """Phase timer off by 10 %: both phases (and so the pulse width) are 10 % long."""

    def phase_timing_s(self, program: Program) -> tuple[float, float, float]:
        p1, gap, p2 = super().phase_timing_s(program)
        return p1 * 1.10, gap, p2 * 1.10


class ChargeImbalance(Firmware):
    """Second (charge-balancing) phase shortened by 20 % while its amplitude stays: net DC per pulse."""

    def phase_timing_s(self, program: Program) -> tuple[float, float, float]:
        p1, gap, p2 = super().phase_timing_s(program)
        return p1, gap, p2 * 0.80


class AmplitudeClampMissing(Firmware):
    """The maximum-amplitude check was lost: any non-negative request is accepted and delivered."""

    def check_amplitude(self, amplitude_mA: float) -> float:
        if amplitude_mA < 0:
            return super().check_amplitude(amplitude_mA)
        return amplitude_mA


class LinkLossCutoffLate(Firmware):
    """Supervision timer loaded with the wrong constant: the link-loss cutoff comes 3x late."""

    def supervision_timeout_s(self) -> float:
        return 3.0 * super().supervision_timeout_s()


class LinkLossCutoffMissing(Firmware):
    """The link-loss handler was never registered: stimulation carries on without a controller."""

    def on_link_lost(self) -> None:
        return None


class RampMissing(Firmware):
    """The start-up ramp was dropped: every ON period starts at the full set-point on its first pulse."""

    def ramp_up_s(self, program: Program) -> float:
        return 0.0


class EstopIgnoredDuringRamp(Firmware):
    """EMERGENCY_STOP skips channels that are ramping (up or down): they carry on to the end of the ramp
    and beyond; channels that are on, pausing or idle still stop."""

    def estop_halts(self, ch: ChannelRuntime) -> bool:
        return ch.state not in ("ramp_up", "ramp_down")


class Crosstalk(Firmware):
    """Channel decoding off by one bit: START and SET_AMPLITUDE for channel n also act on channel n+1
    (the last channel wraps to channel 1)."""

    def channels_affected(self, requested: list[int]) -> list[int]:
        out = list(requested)
        for n in requested:
            neighbour = n % len(self.channels) + 1
            if neighbour not in out:
                out.append(neighbour)
        return out


class SessionTimerNeverStops(Firmware):
    """The session timer is never loaded: a program runs on past its duration until STOP."""

    def session_duration_s(self, program: Program, requested_s: float | None) -> float:
        return math.inf


class SlewLimitMissing(Firmware):
    """The amplitude slew limiter was removed: SET_AMPLITUDE jumps to the new value in a single step,
    however large."""

    def slew_pulses(self, a0_mA: float, a1_mA: float) -> int:
        return 1


class WatchdogDisabled(Firmware):
    """The hardware watchdog is never enabled: a hung main loop leaves the output running as it was."""

    def on_watchdog_expired(self) -> None:
        return None


class LowBatteryShutdownMissing(Firmware):
    """The low-battery handler was never registered: stimulation carries on as the battery runs down
    (START is still refused while the battery is low)."""

    def on_low_battery(self) -> None:
        return None


class UnattendedRestartAfterLinkLoss(Firmware):
    """The reconnection handler ignores the fixture's policy: when the controller is heard again after
    a link-loss cutoff, every channel it cut jumps straight back to its set amplitude, with no ramp and
    no operator."""

    def on_reconnect(self) -> None:
        for ch in self.channels.values():
            resume, ch.resume = ch.resume, None
            if resume is None or ch.state != "link_lost":
                continue
            program, target_mA, left_s = resume
            ch.program, ch.target_mA, ch.started_at_s, ch.session_s = program, target_mA, self.env.now, left_s
            ch.state = "on"
            self._open(ch, self._segment(ch, self.env.now, target_mA, target_mA, 0.0))


class OvercurrentCutoffMissing(Firmware):
    """Short circuit and over-current are detected but the cutoff was never wired: output carries on."""

    def overcurrent_cutoff(self, ch: ChannelRuntime, condition: str) -> None:
        return None


class ElectrodeOffDetectionMissing(Firmware):
    """The open-circuit comparator is never read: an electrode coming off is not detected."""

    def open_circuit(self, sense: Sense) -> bool:
        return False


class StuckDac(Firmware):
    """The DAC latch fails after its first set-point: a channel follows its first start-up ramp to the
    START amplitude, then stays there; later SET_AMPLITUDE, ramp-downs and restarts (even STOP/START)
    do not change the amplitude. Output on/off (pulses, OFF periods, stops) still works. A healthy
    over-current supervision sees the output above the commanded current and trips."""

    def dac_levels(self, ch: ChannelRuntime, a0_mA: float, a1_mA: float) -> tuple[float, float]:
        stuck: dict[int, float] = self.__dict__.setdefault("_stuck_mA", {})
        if ch.number not in stuck:
            if a1_mA > 0:
                stuck[ch.number] = a1_mA
            return a0_mA, a1_mA
        return stuck[ch.number], stuck[ch.number]


class CurrentSenseReadsZero(Firmware):
    """The current-sense amplifier reads zero (open feedback): over-current can never be seen. The
    impedance measurement (electrode off, short circuit) is unaffected."""

    def read_sense(self, channel: int) -> Sense:
        return replace(super().read_sense(channel), current_gain=0.0)


class AddressFilterMissing(Firmware):
    """The receive path's address filter was dropped: the device acts on every request it hears,
    including those the controller addressed to another device (the next patient's)."""

    def addressed_to_me(self, destination: str) -> bool:
        return True


class ControlPointOpen(Firmware):
    """GATT table built without the security level on the control point: any central that connects may
    write commands (start stimulation, raise the amplitude) without bonding."""

    def control_point_requires_bonding(self) -> bool:
        return False


@dataclass(frozen=True)
class Fault:
    name: str
    firmware: type[Firmware]

    @property
    def description(self) -> str:
        """What is defective: the fault class's docstring."""
        return self.firmware.__doc__ or ""


# The catalogue: faults selectable by name on the simulated bench (--fault NAME), each caught by the
# certification suite (stimrig validate-suite shows which tests catch it).
FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("frequency_off_5pct", FrequencyOff5pct),
        Fault("phase_duration_off_10pct", PhaseDurationOff10pct),
        Fault("charge_imbalance", ChargeImbalance),
        Fault("amplitude_clamp_missing", AmplitudeClampMissing),
        Fault("link_loss_cutoff_late", LinkLossCutoffLate),
        Fault("link_loss_cutoff_missing", LinkLossCutoffMissing),
        Fault("ramp_missing", RampMissing),
        Fault("estop_ignored_during_ramp", EstopIgnoredDuringRamp),
        Fault("crosstalk", Crosstalk),
        Fault("session_timer_never_stops", SessionTimerNeverStops),
        Fault("slew_limit_missing", SlewLimitMissing),
        Fault("watchdog_disabled", WatchdogDisabled),
        Fault("overcurrent_cutoff_missing", OvercurrentCutoffMissing),
        Fault("electrode_off_detection_missing", ElectrodeOffDetectionMissing),
        Fault("stuck_dac", StuckDac),
        Fault("low_battery_shutdown_missing", LowBatteryShutdownMissing),
        Fault("unattended_restart_after_link_loss", UnattendedRestartAfterLinkLoss),
        Fault("current_sense_reads_zero", CurrentSenseReadsZero),
        Fault("address_filter_missing", AddressFilterMissing),
        Fault("ble_control_point_open", ControlPointOpen),
    )
}


def firmware_class(fault: str | None) -> type[Firmware]:
    if fault is None:
        return Firmware
    try:
        return FAULTS[fault].firmware
    except KeyError:
        raise FixtureError(
            f"unknown fault {fault!r} (--fault / simulator.fault); expected one of: {', '.join(sorted(FAULTS))}"
        ) from None
