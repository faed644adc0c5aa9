"""A scenario expanded into a fleet: device and controller positions, paths, body flags and connection slots.

Deterministic given the seed: random layouts and body-in-path flags come from ``SeededStreams(seed)`` streams
named after the scenario entry, so both engines (and every run with that seed) see the same fleet.

Admission (connection slots): devices are taken in scenario order; each joins the NEAREST controller (at its
start position) that is IN RANGE (mean margin >= 0 dB there: mean path loss + body/on-body loss, no shadowing) and
still has a free slot. Otherwise it is REFUSED: over capacity (controllers in range, all full) or out of range; it
waits, unconnected, for the whole run (no slot frees up: a connected device keeps its slot through dropouts).
A controller's k-th link gets slot k: its connection events are anchored at ``k x event_duration_s`` within the
interval, so the events of one controller's links never overlap (capacity <= interval / event duration).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rig.config.scenario import Area, ConnectionSpec, Room, Scenario, generated_ids
from simulator.fleet.motion import Path, PathArrays
from simulator.rng import SeededStreams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_SLOT_TOLERANCE_S = 1e-9

InRange = Callable[[FloatArray, BoolArray], BoolArray]
"""(distances (n_devices, n_controllers), body_in_path (n_devices,)) -> True where a device can hear a controller."""


def grid_points(area: tuple[float, float, float, float], count: int) -> FloatArray:
    """``count`` points on a grid filling the area (cell centres, row by row), columns matched to the aspect."""
    x0, x1, y0, y1 = area
    w, h = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
    if w == 0 and h == 0:
        return np.tile([x0, y0], (count, 1)).astype(np.float64)
    cols = max(1, math.ceil(math.sqrt(count * w / h))) if h > 0 else count
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    k = np.arange(count)
    cx = x0 + (k % cols + 0.5) * (w / cols)
    cy = y0 + (k // cols + 0.5) * (h / rows)
    return np.column_stack([cx, cy]).astype(np.float64)


def random_points(area: tuple[float, float, float, float], count: int, rng: np.random.Generator) -> FloatArray:
    x0, x1, y0, y1 = area
    return np.column_stack([rng.uniform(x0, x1, count), rng.uniform(y0, y1, count)]).astype(np.float64)


def _area(area: Area | None, room: Room) -> tuple[float, float, float, float]:
    if area is None:
        return 0.0, room.width_m, 0.0, room.depth_m
    return area.x_m[0], area.x_m[1], area.y_m[0], area.y_m[1]


@dataclass(frozen=True)
class Fleet:
    """Every device and controller of a scenario, and which device holds which connection slot."""

    device_ids: tuple[str, ...]
    start_xy_m: FloatArray  # (n, 2)
    body_in_path: BoolArray  # (n,)
    paths: dict[int, Path]  # device index -> path, for moving devices
    controller_ids: tuple[str, ...]
    controller_xy_m: FloatArray  # (c, 2)
    controller_connection: tuple[ConnectionSpec, ...]
    controller_capacity: IntArray  # (c,)
    controller_of: IntArray  # (n,) index of the device's controller, -1 = refused
    in_range: BoolArray  # (n,) some controller is in range of the device (refused: over capacity, else out of range)
    serving: IntArray  # (n,) its controller, or the nearest one for a refused device (for its distance)
    slot: IntArray  # (n,) slot on its controller, -1 = refused
    anchor_s: FloatArray  # (n,) time of the link's first connection event (slot x event duration)
    _path_arrays: dict[tuple[()], PathArrays] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_devices(self) -> int:
        return len(self.device_ids)

    @property
    def connected(self) -> BoolArray:
        return np.asarray(self.controller_of >= 0)

    @property
    def refused_over_capacity(self) -> BoolArray:
        return np.asarray((self.controller_of < 0) & self.in_range)

    @property
    def refused_out_of_range(self) -> BoolArray:
        return np.asarray((self.controller_of < 0) & ~self.in_range)

    @property
    def moving(self) -> BoolArray:
        m = np.zeros(self.n_devices, dtype=bool)
        m[list(self.paths)] = True
        return m

    def connection_of(self, device: int) -> ConnectionSpec:
        return self.controller_connection[int(self.serving[device])]

    def path_arrays(self, devices: IntArray) -> PathArrays:
        """Vectorised paths of these (moving) devices, repeats allowed (the paths are built once per fleet)."""
        arrays = self._path_arrays.get(())
        if arrays is None:
            arrays = PathArrays([self.paths[d] for d in sorted(self.paths)])
            self._path_arrays[()] = arrays
        row_of = np.full(self.n_devices, -1, dtype=np.int64)
        row_of[sorted(self.paths)] = np.arange(len(self.paths))
        rows = row_of[np.asarray(devices, dtype=np.int64)]
        if np.any(rows < 0):
            raise ValueError("path_arrays: a device given does not move")
        return arrays.take(rows)

    def distance_m(self, devices: Any, t_s: Any) -> FloatArray:
        """(len(devices), n_times) distance from each device to its (serving) controller at times ``t_s``.

        ``t_s`` is (n_times,) for all devices or (len(devices), n_times).
        """
        dev = np.atleast_1d(np.asarray(devices, dtype=np.int64))
        t = np.asarray(t_s, dtype=np.float64)
        t2 = np.broadcast_to(t, (dev.size, t.shape[-1])) if t.ndim <= 1 else t
        ctrl = self.controller_xy_m[self.serving[dev]]  # (n, 2)
        xy = np.broadcast_to(self.start_xy_m[dev][:, None, :], (*t2.shape, 2)).copy()
        moving = self.moving[dev]
        if np.any(moving):
            rows = np.flatnonzero(moving)
            xy[rows] = self.path_arrays(dev[rows]).xy_m(t2[rows])
        return np.asarray(np.hypot(*(xy - ctrl[:, None, :]).transpose(2, 0, 1)), dtype=np.float64)

    def distance_at_m(self, device: int, t_s: float) -> float:
        """Scalar form (pure Python) for the per-event engine."""
        cx, cy = self.controller_xy_m[self.serving[device]]
        path = self.paths.get(device)
        x, y = path.xy_m(t_s) if path is not None else self.start_xy_m[device]
        return math.hypot(float(x) - float(cx), float(y) - float(cy))

    @property
    def max_distance_m(self) -> float:
        """An upper bound of any device-controller distance (the farthest waypoints/positions)."""
        pts = [self.start_xy_m] + [np.asarray(p.waypoints_m, dtype=np.float64) for p in self.paths.values()]
        allp = np.vstack(pts)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        clo, chi = self.controller_xy_m.min(axis=0), self.controller_xy_m.max(axis=0)
        return float(np.hypot(*np.maximum(np.abs(hi - clo), np.abs(chi - lo))))


def _controllers(
    scenario: Scenario, streams: SeededStreams
) -> tuple[list[str], FloatArray, list[ConnectionSpec], list[int]]:
    ids: list[str] = []
    xy: list[FloatArray] = []
    conns: list[ConnectionSpec] = []
    caps: list[int] = []
    for i, c in enumerate(scenario.controllers):
        n = c.n_controllers
        if c.layout is None:
            assert c.id is not None and c.position_m is not None
            ids.append(c.id)
            xy.append(np.array([c.position_m], dtype=np.float64))
        else:
            ids += generated_ids(c.id_prefix, n, 4)
            area = _area(c.area_m, scenario.room)
            pts = (grid_points(area, n) if c.layout == "grid"
                   else random_points(area, n, streams(f"layout/controllers[{i}]")))
            xy.append(pts)
        conns += [scenario.connection_of(c)] * n
        caps += [scenario.capacity_of(c)] * n
    return ids, np.vstack(xy), conns, caps


def _patients(
    scenario: Scenario, streams: SeededStreams
) -> tuple[list[str], FloatArray, list[bool | None], dict[int, Path]]:
    ids: list[str] = []
    xy: list[FloatArray] = []
    body: list[bool | None] = []
    paths: dict[int, Path] = {}
    for i, p in enumerate(scenario.patients):
        if p.layout is None:
            assert p.id is not None
            if p.path is not None:
                spec = p.path
                paths[len(ids)] = Path(tuple(spec.waypoints_m), spec.speed_m_s, spec.start_s, spec.repeat)
                start = spec.waypoints_m[0]
            else:
                assert p.position_m is not None
                start = p.position_m
            ids.append(p.id)
            xy.append(np.array([start], dtype=np.float64))
            body.append(p.body_in_path)
        else:
            n = p.n_devices
            ids += generated_ids(p.id_prefix, n)
            area = _area(p.area_m, scenario.room)
            pts = (grid_points(area, n) if p.layout == "grid"
                   else random_points(area, n, streams(f"layout/patients[{i}]")))
            xy.append(pts)
            body += [p.body_in_path] * n
    return ids, np.vstack(xy), body, paths


def admit(
    start_xy_m: FloatArray,
    controller_xy_m: FloatArray,
    capacity: IntArray,
    reachable: BoolArray | None = None,
) -> tuple[IntArray, IntArray, IntArray]:
    """(controller_of, slot, nearest): in device order, the nearest reachable controller with a free slot, else -1.

    ``reachable`` (n_devices, n_controllers): which controllers each device can hear (default: all).
    """
    n = start_xy_m.shape[0]
    d = np.hypot(*(start_xy_m[:, None, :] - controller_xy_m[None, :, :]).transpose(2, 0, 1))  # (n, c)
    order = np.argsort(d, axis=1, kind="stable")
    reach = np.ones(d.shape, dtype=bool) if reachable is None else np.asarray(reachable, dtype=bool)
    used = np.zeros(controller_xy_m.shape[0], dtype=np.int64)
    controller_of = np.full(n, -1, dtype=np.int64)
    slot = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        for c in order[i]:
            if reach[i, c] and used[c] < capacity[c]:
                controller_of[i], slot[i] = c, used[c]
                used[c] += 1
                break
    return controller_of, slot, np.asarray(order[:, 0], dtype=np.int64)


def build_fleet(
    scenario: Scenario, seed: int | None = None, max_devices: int | None = None, in_range: InRange | None = None
) -> Fleet:
    """Expand ``scenario`` (with ``seed``, default the scenario's) into a Fleet; ``max_devices`` keeps the first N;
    ``in_range`` says which controllers a device can hear (default: every one)."""
    streams = SeededStreams(scenario.seed if seed is None else seed)
    c_ids, c_xy, c_conn, c_cap = _controllers(scenario, streams)
    d_ids, d_xy, d_body, paths = _patients(scenario, streams)
    n_all = len(d_ids)
    u = streams("body_in_path").random(n_all)  # drawn for every device, so --devices N keeps the same flags
    body = np.array(
        [b if b is not None else bool(u[k] < scenario.body_in_path_probability) for k, b in enumerate(d_body)],
        dtype=bool,
    )
    n = n_all if max_devices is None else max_devices
    if not 1 <= n <= n_all:
        raise ValueError(f"the scenario has {n_all} devices; cannot keep {max_devices}")
    capacity = np.asarray(c_cap, dtype=np.int64)
    reach = None
    if in_range is not None:
        dist = np.hypot(*(d_xy[:n, None, :] - c_xy[None, :, :]).transpose(2, 0, 1))
        reach = in_range(dist, body[:n])
    controller_of, slot, nearest = admit(d_xy[:n], c_xy, capacity, reach)
    serving = np.where(controller_of >= 0, controller_of, nearest)
    event_s = np.array([c_conn[c].event_duration_s for c in serving], dtype=np.float64)
    anchor = np.where(slot >= 0, slot * event_s, 0.0)
    fleet = Fleet(
        device_ids=tuple(d_ids[:n]),
        start_xy_m=d_xy[:n].copy(),
        body_in_path=body[:n],
        paths={k: v for k, v in paths.items() if k < n},
        controller_ids=tuple(c_ids),
        controller_xy_m=c_xy,
        controller_connection=tuple(c_conn),
        controller_capacity=capacity,
        controller_of=controller_of,
        in_range=np.ones(n, dtype=bool) if reach is None else np.asarray(reach.any(axis=1), dtype=bool),
        serving=np.asarray(serving, dtype=np.int64),
        slot=slot,
        anchor_s=np.asarray(anchor, dtype=np.float64),
    )
    check_schedule(fleet)
    return fleet


def check_schedule(fleet: Fleet) -> None:
    """Assert that no two connection events of one controller overlap and all fit its interval."""
    for c in range(len(fleet.controller_ids)):
        links = np.flatnonzero(fleet.controller_of == c)
        if links.size == 0:
            continue
        conn = fleet.controller_connection[c]
        starts = np.sort(fleet.anchor_s[links])
        if links.size > fleet.controller_capacity[c]:
            raise AssertionError(f"controller {fleet.controller_ids[c]} holds {links.size} links > capacity")
        if np.any(np.diff(starts) < conn.event_duration_s - _SLOT_TOLERANCE_S):
            raise AssertionError(f"controller {fleet.controller_ids[c]}: connection events overlap")
        if starts[-1] + conn.event_duration_s > conn.interval_s + _SLOT_TOLERANCE_S:
            raise AssertionError(f"controller {fleet.controller_ids[c]}: connection events do not fit the interval")
