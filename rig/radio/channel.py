"""The radio path between controller and DUT, set by distance through an RF attenuator.

attenuation = mean path loss(distance, environment) - the conducted path's fixed (cable) loss.
The same class drives a real attenuator on a hardware bench and the emulated one on the simulated
bench (served over TCP by the virtual bench, whose link model then sees attenuation + cable loss).
"""

from __future__ import annotations

import math

from rig.config.device import DeviceModel
from rig.config.link import Environment, LinkProfiles
from rig.errors import InstrumentError
from rig.interfaces import RfAttenuator
from rig.radio.path_loss import distance_for_path_loss_m, mean_path_loss_dB


def link_budget_dB(device: DeviceModel, profiles: LinkProfiles) -> float:
    """Largest path loss at which the device's link still has 0 dB margin: TX power - sensitivity."""
    return device.radio.tx_power_dBm - profiles.phy(device.radio.phy).sensitivity_dBm


class AttenuatedRadioChannel:
    """``RadioChannel`` over an ``RfAttenuator``: ``set_distance_m`` sets the attenuator so that the
    conducted path has the mean path loss of that distance in ``environment``."""

    def __init__(self, attenuator: RfAttenuator, environment_name: str, environment: Environment,
                 cable_loss_dB: float, resource: str = "") -> None:
        self.attenuator = attenuator
        self.environment_name = environment_name
        self.environment = environment
        self.cable_loss_dB = float(cable_loss_dB)
        self.resource = resource
        self._distance_m = math.nan

    @property
    def path_loss_range_dB(self) -> tuple[float, float]:
        lo, hi = self.attenuator.range_dB
        return lo + self.cable_loss_dB, hi + self.cable_loss_dB

    def distance_range_m(self) -> tuple[float, float]:
        """The distances this bench can emulate in its environment."""
        lo, hi = self.path_loss_range_dB
        return distance_for_path_loss_m(self.environment, lo), distance_for_path_loss_m(self.environment, hi)

    def set_distance_m(self, distance_m: float) -> float:
        if not distance_m > 0 or not math.isfinite(distance_m):
            raise ValueError(f"distance must be a positive finite number of metres, got {distance_m!r}")
        path_loss = float(mean_path_loss_dB(self.environment, distance_m))
        attenuation = path_loss - self.cable_loss_dB
        lo, hi = self.attenuator.range_dB
        if not lo <= attenuation <= hi:
            near, far = self.distance_range_m()
            raise InstrumentError(
                self.resource or "RF attenuator",
                f"distance {distance_m:g} m",
                f"needs {attenuation:.2f} dB of attenuation ({path_loss:.1f} dB path loss in "
                f"environment '{self.environment_name}' less "
                f"{self.cable_loss_dB:g} dB of cabling); nothing was set",
                f"{lo:g}..{hi:g} dB, i.e. distances {near:.3g}..{far:.4g} m on this bench (change radio.cable_loss_dB "
                "with a fixed pad to reach further)",
            )
        readback = self.attenuator.set_attenuation_dB(attenuation)
        self._distance_m = float(distance_m)
        return readback + self.cable_loss_dB

    def distance_m(self) -> float:
        return self._distance_m

    def distance_at_margin_m(self, budget_dB: float, margin_dB: float) -> float:
        """The distance at which the mean link margin is ``margin_dB`` (negative: below sensitivity),
        given the link budget (TX power - sensitivity); InstrumentError if this bench cannot reach it."""
        distance = float(distance_for_path_loss_m(self.environment, budget_dB - margin_dB))
        near, far = self.distance_range_m()
        if not near <= distance <= far:
            lo, hi = self.path_loss_range_dB
            raise InstrumentError(
                self.resource or "RF attenuator",
                f"distance for a {margin_dB:+g} dB link margin",
                f"that is {budget_dB - margin_dB:.1f} dB of path loss ({distance:.4g} m in environment "
                f"'{self.environment_name}'), outside what this bench can set",
                f"{lo:g}..{hi:g} dB of path loss (attenuator range + radio.cable_loss_dB {self.cable_loss_dB:g} dB)",
            )
        return distance
