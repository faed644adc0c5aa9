"""Wireless link fixture (``stimrig.link/1``): BLE environments, PHYs, radio and connection defaults.

Every numeric field names its source in ``sources`` (dotted key, e.g. ``environments.gym.path_loss_exponent``).
BLE connection parameters are held to the core-spec ranges (wireless.md):

* connection interval 7.5 ms - 4 s in 1.25 ms steps,
* peripheral latency 0 - 499,
* supervision timeout 100 ms - 32 s in 10 ms steps and > (1 + latency) x interval x 2,
* TX power -20 .. +20 dBm.

``load_link_profiles()`` reads fixtures/link/ble.yaml (or another file) and fails with ONE FixtureError line
naming the file, the field and what was expected. The model itself is described in docs/link-model.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rig.config.loader import FIXTURES_DIR, load_yaml_model, resolve_fixture
from rig.config.sources import require_sources

DEFAULT_LINK_FIXTURE = FIXTURES_DIR / "link" / "ble.yaml"

PhyName = Literal["LE_1M", "LE_2M", "LE_CODED_S2", "LE_CODED_S8"]
PHY_NAMES: tuple[PhyName, ...] = ("LE_1M", "LE_2M", "LE_CODED_S2", "LE_CODED_S8")

# BLE core-spec ranges (wireless.md)
INTERVAL_MIN_S = 0.0075
INTERVAL_MAX_S = 4.0
INTERVAL_STEP_S = 0.00125
LATENCY_MAX = 499
TIMEOUT_MIN_S = 0.1
TIMEOUT_MAX_S = 32.0
TIMEOUT_STEP_S = 0.01
TX_POWER_MIN_DBM = -20.0
TX_POWER_MAX_DBM = 20.0
SPEC_SENSITIVITY_DBM = -70.0  # spec minimum sensitivity at 0.1 % BER: a receiver must do at least this well

_STEP_TOLERANCE = 1e-6  # in units of one step


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _on_grid(value: float, step: float) -> bool:
    n = value / step
    return abs(n - round(n)) <= _STEP_TOLERANCE


class BleConnectionParams(_Strict):
    """BLE connection parameters, validated against the core-spec ranges.

    ``listen_interval_s`` = interval x (1 + peripheral latency): how often the peripheral (the stimulator)
    is guaranteed to listen, hence the spacing of the connection events the link model decides.
    """

    interval_s: float = Field(ge=INTERVAL_MIN_S, le=INTERVAL_MAX_S, description="connection interval")
    peripheral_latency: int = Field(ge=0, le=LATENCY_MAX, description="events the peripheral may skip")
    supervision_timeout_s: float = Field(
        ge=TIMEOUT_MIN_S, le=TIMEOUT_MAX_S, description="no packet for this long = link lost"
    )

    @field_validator("interval_s")
    @classmethod
    def _interval_step(cls, v: float) -> float:
        if not _on_grid(v, INTERVAL_STEP_S):
            raise ValueError(f"must be a multiple of 1.25 ms (BLE connection interval steps), got {v * 1e3:g} ms")
        return v

    @field_validator("supervision_timeout_s")
    @classmethod
    def _timeout_step(cls, v: float) -> float:
        if not _on_grid(v, TIMEOUT_STEP_S):
            raise ValueError(f"must be a multiple of 10 ms (BLE supervision timeout steps), got {v * 1e3:g} ms")
        return v

    @model_validator(mode="after")
    def _timeout_exceeds_latency_window(self) -> BleConnectionParams:
        floor_s = (1 + self.peripheral_latency) * self.interval_s * 2
        if not self.supervision_timeout_s > floor_s:
            raise ValueError(
                f"supervision_timeout_s ({self.supervision_timeout_s:g} s) must exceed (1 + peripheral_latency) x "
                f"interval_s x 2 = (1 + {self.peripheral_latency}) x {self.interval_s:g} s x 2 = {floor_s:g} s"
            )
        return self

    @property
    def listen_interval_s(self) -> float:
        """Spacing of the connection events at which the peripheral listens: interval x (1 + latency)."""
        return self.interval_s * (1 + self.peripheral_latency)


class Radio(_Strict):
    tx_power_dBm: float = Field(ge=TX_POWER_MIN_DBM, le=TX_POWER_MAX_DBM, description="core spec -20..+20 dBm")


class Phy(_Strict):
    sensitivity_dBm: float = Field(
        ge=-120.0, le=SPEC_SENSITIVITY_DBM, description="input level at 0.1 % BER (spec: -70 dBm or better)"
    )


class Phys(_Strict):
    LE_1M: Phy
    LE_2M: Phy
    LE_CODED_S2: Phy
    LE_CODED_S8: Phy


class Body(_Strict):
    on_body_loss_dB: float = Field(ge=0, le=40, description="extra loss of an antenna worn against the skin")


class GilbertElliottParams(_Strict):
    """Two-state burst-loss chain per connection event (Good/Bad)."""

    p_good_to_bad: float = Field(ge=0, le=1, description="P(Good -> Bad) per connection event")
    r_bad_to_good: float = Field(gt=0, le=1, description="P(Bad -> Good) per connection event; mean burst 1/r")
    bad_loss_probability: float = Field(default=1.0, gt=0, le=1, description="packet loss probability in Bad")


class Interference(_Strict):
    delivery_reduction: float = Field(ge=0, lt=1, description="extra independent loss fraction per event")


class Environment(_Strict):
    """Log-distance path loss with log-normal shadowing, body loss, burst loss and interference."""

    description: str = ""
    path_loss_exponent: float = Field(gt=0, le=8, description="n in PL(d) = PL(1 m) + 10 n log10(d / 1 m)")
    shadowing_sigma_dB: float = Field(ge=0, le=20, description="standard deviation of log-normal shadowing")
    pl_1m_dB: float = Field(gt=0, le=100, description="path loss at the 1 m reference distance")
    excess_loss_dB: float = Field(default=0.0, ge=0, le=60, description="fixed offset added to the path loss")
    decorrelation_distance_m: float = Field(gt=0, le=1000, description="shadowing correlation e^-1 distance")
    body_loss_dB: float = Field(ge=0, le=40, description="extra loss when a body is in the path")
    gilbert_elliott: GilbertElliottParams
    interference: Interference | None = None

    @property
    def interference_loss(self) -> float:
        """Extra independent loss fraction per connection event (0 without interference)."""
        return self.interference.delivery_reduction if self.interference is not None else 0.0


SOURCED_SECTIONS = ("radio", "phys", "connection", "body", "environments")


class LinkProfiles(_Strict):
    schema_: Literal["stimrig.link/1"] = Field(alias="schema")
    description: str = ""
    radio: Radio
    phys: Phys
    connection: BleConnectionParams
    body: Body
    environments: dict[str, Environment] = Field(min_length=1)
    sources: dict[str, str] = Field(description="for every numeric field: where the number comes from")

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, v: dict[str, Environment]) -> dict[str, Environment]:
        for name in v:
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"environment name {name!r} must be a lower-case identifier (e.g. 'open_hall')")
        return v

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> LinkProfiles:
        known = set(require_sources(self, self.sources, SOURCED_SECTIONS))
        for key in self.sources:
            if key not in known:
                raise ValueError(f"sources['{key}'] names no numeric field of this file (check the spelling)")
        return self

    def environment(self, name: str) -> Environment:
        """The named environment; KeyError listing the known names otherwise."""
        try:
            return self.environments[name]
        except KeyError:
            raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(self.environments))}") from None

    def phy(self, name: PhyName) -> Phy:
        if name not in PHY_NAMES:
            raise KeyError(f"unknown PHY {name!r}; known: {', '.join(PHY_NAMES)}")
        phy: Phy = getattr(self.phys, name)
        return phy

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "unsourced")


def load_link_profiles(path: Path | str | None = None) -> LinkProfiles:
    """Read and validate a link fixture (default: fixtures/link/ble.yaml); FixtureError (one line) otherwise.

    A relative ``path`` is resolved like the other fixture references: the working directory, then the repo root.
    """
    resolved = DEFAULT_LINK_FIXTURE if path is None else resolve_fixture(path)
    return load_yaml_model(resolved, LinkProfiles)
