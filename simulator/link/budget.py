"""Link budget: received power and margin above the receiver's sensitivity.

    RSSI   = TX - path loss - shadowing - body loss - extra loss     [dBm]
    margin = RSSI - sensitivity                                      [dB]

All terms are losses in dB (positive = weaker signal); shadowing is zero-mean, so either sign may occur.
Scalars give floats, numpy arrays give arrays (broadcast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.config.link import TX_POWER_MAX_DBM, TX_POWER_MIN_DBM, LinkProfiles, PhyName


def _out(x: Any) -> Any:
    a = np.asarray(x, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def rssi_dBm(
    tx_power_dBm: float,
    path_loss_dB: Any,
    shadowing_dB: Any = 0.0,
    body_loss_dB: Any = 0.0,
    extra_loss_dB: Any = 0.0,
) -> Any:
    """Received signal strength in dBm: TX - path loss - shadowing - body loss - extra loss."""
    return _out(
        tx_power_dBm
        - np.asarray(path_loss_dB, dtype=np.float64)
        - np.asarray(shadowing_dB, dtype=np.float64)
        - np.asarray(body_loss_dB, dtype=np.float64)
        - np.asarray(extra_loss_dB, dtype=np.float64)
    )


@dataclass(frozen=True)
class LinkBudget:
    """One transmitter/receiver pair: TX power and the receiver's sensitivity (of the PHY in use)."""

    tx_power_dBm: float
    sensitivity_dBm: float

    def __post_init__(self) -> None:
        if not TX_POWER_MIN_DBM <= self.tx_power_dBm <= TX_POWER_MAX_DBM:
            raise ValueError(
                f"tx_power_dBm must be within {TX_POWER_MIN_DBM:g}..{TX_POWER_MAX_DBM:g} dBm (BLE core spec), "
                f"got {self.tx_power_dBm:g}"
            )

    @classmethod
    def from_profiles(
        cls, profiles: LinkProfiles, phy: PhyName = "LE_1M", tx_power_dBm: float | None = None
    ) -> LinkBudget:
        """The fixture's TX power (or ``tx_power_dBm``) with the named PHY's sensitivity."""
        tx = profiles.radio.tx_power_dBm if tx_power_dBm is None else tx_power_dBm
        return cls(tx_power_dBm=tx, sensitivity_dBm=profiles.phy(phy).sensitivity_dBm)

    @property
    def max_path_loss_dB(self) -> float:
        """Total loss at which the margin is 0 dB (TX - sensitivity)."""
        return self.tx_power_dBm - self.sensitivity_dBm

    def rssi_dBm(
        self, path_loss_dB: Any, shadowing_dB: Any = 0.0, body_loss_dB: Any = 0.0, extra_loss_dB: Any = 0.0
    ) -> Any:
        """RSSI in dBm for the given losses (see the module docstring)."""
        return rssi_dBm(self.tx_power_dBm, path_loss_dB, shadowing_dB, body_loss_dB, extra_loss_dB)

    def margin_dB(
        self, path_loss_dB: Any, shadowing_dB: Any = 0.0, body_loss_dB: Any = 0.0, extra_loss_dB: Any = 0.0
    ) -> Any:
        """Margin above sensitivity in dB: RSSI - sensitivity (negative = below sensitivity)."""
        return _out(
            np.asarray(self.rssi_dBm(path_loss_dB, shadowing_dB, body_loss_dB, extra_loss_dB)) - self.sensitivity_dBm
        )
