"""Fleet scenario fixture (``stimrig.scenario/1``): a room, patients wearing stimulators, BLE controllers, traffic.

A scenario describes what ``stimrig fleet`` simulates (docs/fleet.md):

* ``link``: environment of fixtures/link/ble.yaml, PHY, TX power (default: the link fixture's), on-body loss;
* ``room``: width x depth in metres; every position and waypoint must lie inside it (x along the width);
* ``patients``: single patients (``id`` + ``position_m``, or ``path`` = waypoints + speed) and generated groups
  (``layout: grid | random`` + ``count``, optionally inside ``area_m``) so 10,000 devices need not be listed;
  1..10,000 devices in all, unique ids;
* ``controllers``: single (``id`` + ``position_m``) or generated (``layout`` + ``count``), each with a
  ``capacity`` (simultaneous connections) that the connection-event schedule must fit:
  capacity <= interval / event duration (events of one controller's links must not overlap);
* ``connection``: interval, peripheral latency, supervision timeout (BLE core-spec ranges, as
  rig.config.link.BleConnectionParams) and the controller's event duration; a controller may override it;
* ``traffic``: each controller sends a command to each connected device every ``command_period_s``; connection
  events without a command carry an empty keep-alive PDU;
* ``dropout_threshold_s``: a gap between successful exchanges at least this long counts as a dropout (one at
  least the supervision timeout is a link-loss cutoff).

``load_scenario()`` validates on load and fails with ONE FixtureError line naming the file, the field and what was
expected (the environment name is checked against the link fixture it refers to).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rig.config.link import (
    DEFAULT_LINK_FIXTURE,
    TX_POWER_MAX_DBM,
    TX_POWER_MIN_DBM,
    BleConnectionParams,
    LinkProfiles,
    PhyName,
    load_link_profiles,
)
from rig.config.loader import FIXTURES_DIR, describe_validation_error, load_yaml_model, resolve_fixture
from rig.errors import FixtureError

SCENARIOS_DIR = FIXTURES_DIR / "scenarios"

MAX_DEVICES = 10_000
MAX_CONTROLLERS = 2_000
MAX_DURATION_S = 24 * 3600.0
DEFAULT_EVENT_DURATION_S = 0.0025
DEFAULT_DROPOUT_THRESHOLD_S = 0.25

_EDGE_TOLERANCE_M = 1e-9
_SLOT_TOLERANCE = 1e-9

Point = tuple[float, float]


def generated_ids(prefix: str, count: int, width: int = 5) -> list[str]:
    """Ids of a generated group: ``<prefix>-00001`` ... (the layout expands groups with the same names)."""
    return [f"{prefix}-{k + 1:0{width}d}" for k in range(count)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkSpec(_Strict):
    fixture: str | None = Field(default=None, description="link fixture (default fixtures/link/ble.yaml)")
    environment: str = Field(min_length=1, description="an environment name of the link fixture")
    phy: PhyName = "LE_1M"
    tx_power_dBm: float | None = Field(
        default=None, ge=TX_POWER_MIN_DBM, le=TX_POWER_MAX_DBM, description="default: the link fixture's TX power"
    )
    on_body: bool = Field(default=False, description="add the fixture's on-body loss (antenna against the skin)")


class Room(_Strict):
    width_m: float = Field(gt=0, le=10_000, description="extent along x")
    depth_m: float = Field(gt=0, le=10_000, description="extent along y")

    def contains(self, p: Point) -> bool:
        x, y = p
        tol = _EDGE_TOLERANCE_M
        return -tol <= x <= self.width_m + tol and -tol <= y <= self.depth_m + tol


class Area(_Strict):
    """A rectangle inside the room: x from x_m[0] to x_m[1], y from y_m[0] to y_m[1]."""

    x_m: tuple[float, float]
    y_m: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> Area:
        if not (self.x_m[0] <= self.x_m[1] and self.y_m[0] <= self.y_m[1]):
            raise ValueError(f"area must be given as [low, high] in x and y, got x_m={self.x_m} y_m={self.y_m}")
        return self


class ConnectionSpec(_Strict):
    """BLE connection parameters (core-spec ranges) plus the controller's radio time per connection event."""

    interval_s: float
    peripheral_latency: int = 0
    supervision_timeout_s: float
    event_duration_s: float = Field(
        default=DEFAULT_EVENT_DURATION_S, gt=0, le=4.0, description="controller radio time of one connection event"
    )

    @model_validator(mode="after")
    def _spec(self) -> ConnectionSpec:
        # the BLE ranges and steps: reuse the link fixture's own validation (raises ValueError with its message)
        try:
            _ = self.params
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            got = "" if "got" in msg else f" (got {err.get('input')!r})"
            raise ValueError(f"{field + ': ' if field else ''}{msg}{got}") from None
        if self.event_duration_s > self.interval_s + _SLOT_TOLERANCE:
            raise ValueError(
                f"event_duration_s ({self.event_duration_s:g} s) must not exceed interval_s ({self.interval_s:g} s)"
            )
        return self

    @property
    def params(self) -> BleConnectionParams:
        return BleConnectionParams(
            interval_s=self.interval_s,
            peripheral_latency=self.peripheral_latency,
            supervision_timeout_s=self.supervision_timeout_s,
        )

    @property
    def listen_interval_s(self) -> float:
        return self.interval_s * (1 + self.peripheral_latency)

    @property
    def max_links(self) -> int:
        """How many links fit the schedule without overlapping events: floor(interval / event duration)."""
        return math.floor(self.interval_s / self.event_duration_s + _SLOT_TOLERANCE)


class PathSpec(_Strict):
    waypoints_m: list[Point] = Field(min_length=2, description="the path, walked in order")
    speed_m_s: float = Field(gt=0, le=10, description="walking speed")
    start_s: float = Field(default=0.0, ge=0, description="waits at the first waypoint until then")
    repeat: Literal["once", "loop", "bounce"] = Field(
        default="once", description="once: stop at the end; loop: jump back to the start; bounce: walk back"
    )

    @model_validator(mode="after")
    def _has_length(self) -> PathSpec:
        length = sum(math.dist(a, b) for a, b in zip(self.waypoints_m, self.waypoints_m[1:], strict=False))
        if length <= 0:
            raise ValueError("path has zero length: waypoints_m must not all be the same point")
        return self


class PatientSpec(_Strict):
    """One patient (``id`` + ``position_m`` or ``path``) or a generated group (``layout`` + ``count``)."""

    id: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    position_m: Point | None = None
    path: PathSpec | None = None
    layout: Literal["grid", "random"] | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_DEVICES)
    area_m: Area | None = None
    id_prefix: str = Field(default="dev", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    body_in_path: bool | None = Field(default=None, description="default: drawn with body_in_path_probability")

    @model_validator(mode="after")
    def _one_kind(self) -> PatientSpec:
        if self.layout is not None:
            if self.count is None:
                raise ValueError("a generated group (layout) needs 'count'")
            if self.id is not None or self.position_m is not None or self.path is not None:
                raise ValueError("a generated group (layout) takes count/area_m/id_prefix, not id/position_m/path")
        else:
            if self.id is None:
                raise ValueError("a single patient needs 'id' (or give 'layout' and 'count' for a generated group)")
            if (self.position_m is None) == (self.path is None):
                raise ValueError(f"patient {self.id!r} needs exactly one of 'position_m' (static) or 'path' (moving)")
            if self.count is not None or self.area_m is not None:
                raise ValueError(f"patient {self.id!r}: 'count'/'area_m' belong to a generated group (layout)")
        return self

    @property
    def n_devices(self) -> int:
        return self.count if self.layout is not None and self.count is not None else 1


class ControllerSpec(_Strict):
    """One controller (``id`` + ``position_m``) or a generated set (``layout`` + ``count``)."""

    id: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    position_m: Point | None = None
    layout: Literal["grid", "random"] | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_CONTROLLERS)
    area_m: Area | None = None
    id_prefix: str = Field(default="ctl", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    capacity: int | None = Field(default=None, ge=1, le=10_000, description="default: interval / event duration")
    connection: ConnectionSpec | None = Field(default=None, description="default: the scenario's connection")

    @model_validator(mode="after")
    def _one_kind(self) -> ControllerSpec:
        if self.layout is not None:
            if self.count is None:
                raise ValueError("a generated controller set (layout) needs 'count'")
            if self.id is not None or self.position_m is not None:
                raise ValueError("a generated controller set (layout) takes count/area_m/id_prefix, not id/position_m")
        else:
            if self.id is None or self.position_m is None:
                raise ValueError("a controller needs 'id' and 'position_m' (or 'layout' and 'count')")
            if self.count is not None or self.area_m is not None:
                raise ValueError(f"controller {self.id!r}: 'count'/'area_m' belong to a generated set (layout)")
        return self

    @property
    def n_controllers(self) -> int:
        return self.count if self.layout is not None and self.count is not None else 1


class Traffic(_Strict):
    command_period_s: float = Field(gt=0, le=3600, description="each controller -> each connected device, every T s")
    command_payload_bytes: int = Field(default=27, ge=1, le=251, description="link-layer payload of one command")
    channels: int = Field(default=4, ge=1, le=16, description="stimulation channels per device (set-points)")
    max_amplitude_mA: float = Field(default=60.0, gt=0, le=200, description="commanded set-points are 0..this")


class Scenario(_Strict):
    schema_: Literal["stimrig.scenario/1"] = Field(alias="schema")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    seed: int = Field(ge=0, lt=2**63, description="every random draw derives from it (simulator.rng.SeededStreams)")
    duration_s: float = Field(gt=0, le=MAX_DURATION_S)
    link: LinkSpec
    room: Room
    body_in_path_probability: float = Field(default=0.0, ge=0, le=1)
    connection: ConnectionSpec
    traffic: Traffic
    dropout_threshold_s: float = Field(default=DEFAULT_DROPOUT_THRESHOLD_S, gt=0)
    controllers: list[ControllerSpec] = Field(min_length=1)
    patients: list[PatientSpec] = Field(min_length=1)

    @field_validator("patients")
    @classmethod
    def _device_count(cls, v: list[PatientSpec]) -> list[PatientSpec]:
        total = sum(p.n_devices for p in v)
        if not 1 <= total <= MAX_DEVICES:
            raise ValueError(f"patients add up to {total} devices; expected 1..{MAX_DEVICES}")
        return v

    @field_validator("controllers")
    @classmethod
    def _controller_count(cls, v: list[ControllerSpec]) -> list[ControllerSpec]:
        total = sum(c.n_controllers for c in v)
        if total > MAX_CONTROLLERS:
            raise ValueError(f"controllers add up to {total}; expected at most {MAX_CONTROLLERS}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        self._check_ids()
        self._check_inside_room()
        for i, c in enumerate(self.controllers):
            conn = self.connection_of(c)
            where = f"controllers[{i}]"
            if c.capacity is not None and c.capacity > conn.max_links:
                raise ValueError(
                    f"{where}: capacity {c.capacity} exceeds interval / event duration = {conn.interval_s:g} s / "
                    f"{conn.event_duration_s:g} s = {conn.max_links}: its connection events would overlap"
                )
            if conn.max_links < 1:  # pragma: no cover - event_duration <= interval is checked above
                raise ValueError(f"{where}: no connection event fits the interval")
            self._check_timing(where, conn)
        return self

    def _check_timing(self, where: str, conn: ConnectionSpec) -> None:
        listen = conn.listen_interval_s
        if self.duration_s < listen:
            raise ValueError(f"duration_s ({self.duration_s:g} s) is shorter than one connection event spacing "
                             f"({listen:g} s) of {where}")
        if self.traffic.command_period_s < listen:
            raise ValueError(
                f"traffic.command_period_s ({self.traffic.command_period_s:g} s) must be at least the listen interval "
                f"interval x (1 + peripheral_latency) = {listen:g} s of {where}"
            )
        if not listen < self.dropout_threshold_s <= conn.supervision_timeout_s:
            raise ValueError(
                f"dropout_threshold_s ({self.dropout_threshold_s:g} s) must exceed the listen interval ({listen:g} s) "
                f"and not exceed the supervision timeout ({conn.supervision_timeout_s:g} s) of {where}"
            )

    def _check_ids(self) -> None:
        seen: set[str] = set()
        for i, p in enumerate(self.patients):
            names = [p.id] if p.id is not None else generated_ids(p.id_prefix, p.n_devices)
            for name in names:
                if name in seen:
                    raise ValueError(f"patients[{i}]: duplicate device id {name!r}")
                seen.add(name)
        seen = set()
        for i, c in enumerate(self.controllers):
            names = [c.id] if c.id is not None else generated_ids(c.id_prefix, c.n_controllers, 4)
            for name in names:
                if name in seen:
                    raise ValueError(f"controllers[{i}]: duplicate controller id {name!r}")
                seen.add(name)

    def _check_inside_room(self) -> None:
        room = self.room

        def check(where: str, p: Point) -> None:
            if not room.contains(p):
                raise ValueError(
                    f"{where} ({p[0]:g}, {p[1]:g}) m lies outside the room "
                    f"(0..{room.width_m:g} x 0..{room.depth_m:g} m)"
                )

        for i, p in enumerate(self.patients):
            if p.position_m is not None:
                check(f"patients[{i}].position_m", p.position_m)
            if p.path is not None:
                for k, w in enumerate(p.path.waypoints_m):
                    check(f"patients[{i}].path.waypoints_m[{k}]", w)
            if p.area_m is not None:
                check(f"patients[{i}].area_m", (p.area_m.x_m[0], p.area_m.y_m[0]))
                check(f"patients[{i}].area_m", (p.area_m.x_m[1], p.area_m.y_m[1]))
        for i, c in enumerate(self.controllers):
            if c.position_m is not None:
                check(f"controllers[{i}].position_m", c.position_m)
            if c.area_m is not None:
                check(f"controllers[{i}].area_m", (c.area_m.x_m[0], c.area_m.y_m[0]))
                check(f"controllers[{i}].area_m", (c.area_m.x_m[1], c.area_m.y_m[1]))

    # ---- helpers ------------------------------------------------------------------------------------

    def connection_of(self, controller: ControllerSpec) -> ConnectionSpec:
        return controller.connection or self.connection

    def capacity_of(self, controller: ControllerSpec) -> int:
        conn = self.connection_of(controller)
        return controller.capacity if controller.capacity is not None else conn.max_links

    @property
    def n_devices(self) -> int:
        return sum(p.n_devices for p in self.patients)

    @property
    def n_controllers(self) -> int:
        return sum(c.n_controllers for c in self.controllers)

    @property
    def total_capacity(self) -> int:
        return sum(self.capacity_of(c) * c.n_controllers for c in self.controllers)


def link_fixture_path(scenario: Scenario, scenario_path: Path | None = None) -> Path:
    if scenario.link.fixture is None:
        return DEFAULT_LINK_FIXTURE
    return resolve_fixture(scenario.link.fixture, scenario_path)


def check_against_link(scenario: Scenario, profiles: LinkProfiles, where: Path | str) -> None:
    """What needs the link fixture: the environment must be one of its names (one-line FixtureError)."""
    if scenario.link.environment not in profiles.environments:
        known = ", ".join(sorted(profiles.environments))
        raise FixtureError(
            f"{where}: field 'link.environment': unknown environment {scenario.link.environment!r} "
            f"(expected one of: {known})"
        )


def load_scenario(path: Path | str) -> tuple[Scenario, LinkProfiles]:
    """Read and validate a scenario and the link fixture it uses; FixtureError (one line) otherwise.

    A bare name (``gym_20``) means fixtures/scenarios/gym_20.yaml.
    """
    p = Path(path)
    if p.suffix == "" and not p.exists() and (SCENARIOS_DIR / f"{p.name}.yaml").exists():
        p = SCENARIOS_DIR / f"{p.name}.yaml"
    elif not p.is_absolute() and not p.exists():
        p = resolve_fixture(p)
    scenario = load_yaml_model(p, Scenario)
    profiles = load_link_profiles(link_fixture_path(scenario, p))
    check_against_link(scenario, profiles, p)
    return scenario, profiles


def scenario_with(scenario: Scenario, where: Path | str = "scenario", **changes: object) -> Scenario:
    """A re-validated copy with top-level fields changed (e.g. seed, duration_s); FixtureError if invalid."""
    data = scenario.model_dump(by_alias=True)
    data.update(changes)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise FixtureError(describe_validation_error(where, exc)) from None


__all__ = [
    "DEFAULT_DROPOUT_THRESHOLD_S",
    "DEFAULT_EVENT_DURATION_S",
    "MAX_DEVICES",
    "SCENARIOS_DIR",
    "Area",
    "ConnectionSpec",
    "ControllerSpec",
    "LinkSpec",
    "PathSpec",
    "PatientSpec",
    "Room",
    "Scenario",
    "Traffic",
    "check_against_link",
    "generated_ids",
    "link_fixture_path",
    "load_scenario",
    "scenario_with",
]
