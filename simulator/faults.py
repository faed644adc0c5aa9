"""Catalogue of seeded firmware defects, selectable by name on the simulated bench (--fault NAME).

Each fault is a small subclass of the firmware model that overrides one seam; reading its few lines
tells a reviewer exactly what is defective. The suite must catch each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rig.config.program import Program
from rig.errors import FixtureError
from simulator.stimulator.firmware import Firmware


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


@dataclass(frozen=True)
class Fault:
    name: str
    firmware: type[Firmware]
    description: str


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("frequency_off_5pct", FrequencyOff5pct, FrequencyOff5pct.__doc__ or ""),
        Fault("phase_duration_off_10pct", PhaseDurationOff10pct, PhaseDurationOff10pct.__doc__ or ""),
        Fault("charge_imbalance", ChargeImbalance, ChargeImbalance.__doc__ or ""),
        Fault("amplitude_clamp_missing", AmplitudeClampMissing, AmplitudeClampMissing.__doc__ or ""),
        Fault("link_loss_cutoff_late", LinkLossCutoffLate, LinkLossCutoffLate.__doc__ or ""),
        Fault("link_loss_cutoff_missing", LinkLossCutoffMissing, LinkLossCutoffMissing.__doc__ or ""),
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
