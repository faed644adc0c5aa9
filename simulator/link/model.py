"""One link configuration bundled from the fixture: environment + PHY + TX power + connection parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.config.link import BleConnectionParams, Environment, LinkProfiles, PhyName
from rig.radio.path_loss import mean_path_loss_dB
from simulator.link.budget import LinkBudget
from simulator.link.burst import GilbertElliott
from simulator.link.connection import BleConnection
from simulator.link.shadowing import ShadowingProcess


@dataclass(frozen=True)
class LinkModel:
    """Everything one device's link needs; build with ``LinkModel.from_profiles(load_link_profiles(), "gym")``."""

    environment: Environment
    budget: LinkBudget
    connection_params: BleConnectionParams
    burst: GilbertElliott
    interference_loss: float

    @classmethod
    def from_profiles(
        cls,
        profiles: LinkProfiles,
        environment: str,
        phy: PhyName = "LE_1M",
        tx_power_dBm: float | None = None,
        *,
        interference: bool = True,
        connection_params: BleConnectionParams | None = None,
    ) -> LinkModel:
        """The named environment and PHY; ``interference=False`` ignores the environment's interference."""
        env = profiles.environment(environment)
        return cls(
            environment=env,
            budget=LinkBudget.from_profiles(profiles, phy, tx_power_dBm),
            connection_params=connection_params or profiles.connection,
            burst=GilbertElliott.from_params(env.gilbert_elliott),
            interference_loss=env.interference_loss if interference else 0.0,
        )

    def mean_path_loss_dB(self, distance_m: Any) -> Any:
        """Log-distance mean path loss (rig.radio.mean_path_loss_dB)."""
        return mean_path_loss_dB(self.environment, distance_m)

    def margin_dB(
        self, distance_m: Any, shadowing_dB: Any = 0.0, body_in_path: Any = False, extra_loss_dB: Any = 0.0
    ) -> Any:
        """Margin above sensitivity; ``body_in_path`` (bool or bool array) applies the environment's body loss."""
        body = np.asarray(body_in_path, dtype=bool) * self.environment.body_loss_dB
        return self.budget.margin_dB(self.mean_path_loss_dB(distance_m), shadowing_dB, body, extra_loss_dB)

    def shadowing(self, rng: np.random.Generator, initial_dB: Any = None) -> ShadowingProcess:
        """A stepwise shadowing process with the environment's sigma and decorrelation distance."""
        env = self.environment
        return ShadowingProcess(env.shadowing_sigma_dB, env.decorrelation_distance_m, rng, initial_dB)

    def connection(self, rng: np.random.Generator, start_s: float = 0.0) -> BleConnection:
        """A stepwise BLE connection with this budget, burst chain and interference."""
        return BleConnection(
            self.connection_params,
            rng,
            self.budget,
            burst=self.burst,
            interference_loss=self.interference_loss,
            start_s=start_s,
        )
