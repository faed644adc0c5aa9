"""Everything both engines take from a scenario: the fleet, the command plan, one LinkModel per controller setting,
the fixed losses and the distance bins the link-holding statistics are kept in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from rig.config.link import LinkProfiles
from rig.config.scenario import ConnectionSpec, Scenario
from simulator.fleet.commands import CommandPlan
from simulator.fleet.layout import Fleet, InRange, build_fleet
from simulator.fleet.results import distance_bin_width_m
from simulator.fleet.rules import n_events
from simulator.link import LinkModel
from simulator.rng import SeededStreams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LinkGroup:
    """Connected links that share connection parameters and are all static or all moving (one array block)."""

    key: str
    devices: IntArray
    connection: ConnectionSpec
    moving: bool
    n_events: int

    @property
    def spacing_s(self) -> float:
        return self.connection.listen_interval_s


@dataclass(frozen=True)
class RunSetup:
    scenario: Scenario
    profiles: LinkProfiles
    fleet: Fleet
    plan: CommandPlan
    seed: int
    _models: dict[ConnectionSpec, LinkModel] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        scenario: Scenario,
        profiles: LinkProfiles,
        *,
        seed: int | None = None,
        max_devices: int | None = None,
        plan: CommandPlan | None = None,
    ) -> RunSetup:
        """The fleet and (unless given) the scenario's periodic command plan, all from ``seed``."""
        run_seed = scenario.seed if seed is None else seed
        fleet = build_fleet(scenario, run_seed, max_devices, in_range=_in_range(scenario, profiles))
        if plan is None:
            t = scenario.traffic
            plan = CommandPlan.periodic(fleet.n_devices, t.command_period_s, scenario.duration_s, t.channels,
                                        t.max_amplitude_mA, SeededStreams(run_seed)("commands"))
        if len(plan) and np.any(plan.issued_s < _latest_anchor(fleet)):
            raise ValueError("commands must not be issued before every link's first connection event")
        return cls(scenario, profiles, fleet, plan, run_seed)

    def link_model(self, connection: ConnectionSpec) -> LinkModel:
        model = self._models.get(connection)
        if model is None:
            link = self.scenario.link
            model = LinkModel.from_profiles(self.profiles, link.environment, link.phy, link.tx_power_dBm,
                                            connection_params=connection.params)
            self._models[connection] = model
        return model

    @property
    def extra_loss_dB(self) -> float:
        """Fixed extra loss of every link: the on-body loss when the scenario says the antenna is on the skin."""
        return self.profiles.body.on_body_loss_dB if self.scenario.link.on_body else 0.0

    @property
    def body_loss_dB(self) -> float:
        return self.profiles.environment(self.scenario.link.environment).body_loss_dB

    @property
    def payload_bytes(self) -> int:
        return self.scenario.traffic.command_payload_bytes

    @property
    def dropout_threshold_s(self) -> float:
        return self.scenario.dropout_threshold_s

    @cached_property
    def hold_bin_width_m(self) -> float:
        """Width of the distance bins the link-holding time is kept in."""
        return distance_bin_width_m(max(self.fleet.max_distance_m, 1.0))

    @cached_property
    def n_hold_bins(self) -> int:
        return math.ceil(max(self.fleet.max_distance_m, 1.0) / self.hold_bin_width_m) + 1

    def hold_bin(self, distance_m: float) -> int:
        return min(int(distance_m / self.hold_bin_width_m), self.n_hold_bins - 1)

    def groups(self) -> list[LinkGroup]:
        """Connected links grouped by connection parameters and static/moving, in a fixed order."""
        fleet = self.fleet
        out: list[LinkGroup] = []
        specs: list[ConnectionSpec] = []
        for c in fleet.controller_connection:
            if c not in specs:
                specs.append(c)
        for g, spec in enumerate(specs):
            spec_of = np.array([fleet.controller_connection[s] == spec for s in fleet.serving], dtype=bool)
            for moving in (False, True):
                devices = np.flatnonzero(fleet.connected & spec_of & (fleet.moving == moving))
                if devices.size:
                    out.append(LinkGroup(f"g{g}-{'moving' if moving else 'static'}", devices, spec, moving,
                                         n_events(self.scenario.duration_s, spec.listen_interval_s)))
        return out


def _in_range(scenario: Scenario, profiles: LinkProfiles) -> InRange:
    """A device hears a controller where its mean margin is >= 0 dB (mean path loss + body/on-body loss only)."""
    link = scenario.link
    model = LinkModel.from_profiles(profiles, link.environment, link.phy, link.tx_power_dBm)
    extra = profiles.body.on_body_loss_dB if link.on_body else 0.0

    def in_range(distance_m: FloatArray, body_in_path: BoolArray) -> BoolArray:
        margin = model.margin_dB(distance_m, body_in_path=body_in_path[:, None], extra_loss_dB=extra)
        return np.asarray(margin >= 0.0, dtype=bool)

    return in_range


def _latest_anchor(fleet: Fleet) -> float:
    return float(fleet.anchor_s.max()) if fleet.n_devices else 0.0
