"""Where a patient is: static, or walking a path of waypoints at constant speed.

``Path`` is the scalar form (one device, pure Python: the per-event engine); ``PathArrays`` evaluates many paths at
many times at once (numpy: the fast engine). Same rules:

* the walker waits at the first waypoint until ``start_s``, then walks at ``speed_m_s``;
* ``once``: stops at the last waypoint; ``loop``: walks on from the last waypoint straight back to the first and
  round again; ``bounce``: walks the path back and forth;
* ``travelled_m(t)`` is the distance walked so far (what the shadowing decorrelates over);
  ``xy_m(t)`` the position.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

REPEAT_CODES = {"once": 0, "loop": 1, "bounce": 2}


@dataclass(frozen=True)
class Path:
    waypoints_m: tuple[tuple[float, float], ...]
    speed_m_s: float
    start_s: float = 0.0
    repeat: str = "once"

    def __post_init__(self) -> None:
        if len(self.waypoints_m) < 2 or self.speed_m_s <= 0 or self.repeat not in REPEAT_CODES:
            raise ValueError("a path needs >= 2 waypoints, a positive speed and repeat once|loop|bounce")

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        """The polyline walked: the waypoints, closed back to the first for ``loop``."""
        pts = tuple((float(x), float(y)) for x, y in self.waypoints_m)
        return (*pts, pts[0]) if self.repeat == "loop" else pts

    @property
    def cumulative_m(self) -> tuple[float, ...]:
        pts = self.points
        cum = [0.0]
        for a, b in itertools.pairwise(pts):
            cum.append(cum[-1] + math.dist(a, b))
        return tuple(cum)

    @property
    def length_m(self) -> float:
        return self.cumulative_m[-1]

    def travelled_m(self, t_s: float) -> float:
        """Distance walked by ``t_s`` (0 before start; capped at the length for ``once``)."""
        walked = self.speed_m_s * max(t_s - self.start_s, 0.0)
        return min(walked, self.length_m) if self.repeat == "once" else walked

    def arc_m(self, t_s: float) -> float:
        """Position along the polyline (0..length)."""
        walked, length = self.travelled_m(t_s), self.length_m
        if self.repeat == "loop":
            return walked % length
        if self.repeat == "bounce":
            return length - abs(walked % (2.0 * length) - length)
        return walked

    def xy_m(self, t_s: float) -> tuple[float, float]:
        s, cum, pts = self.arc_m(t_s), self.cumulative_m, self.points
        seg = min(max(bisect.bisect_right(cum, s) - 1, 0), len(pts) - 2)
        span = cum[seg + 1] - cum[seg]
        f = 0.0 if span <= 0 else (s - cum[seg]) / span
        (x0, y0), (x1, y1) = pts[seg], pts[seg + 1]
        return x0 + f * (x1 - x0), y0 + f * (y1 - y0)


class PathArrays:
    """Many paths, padded to the longest polyline, evaluated at (n_paths, n_times) times."""

    def __init__(self, paths: Sequence[Path]) -> None:
        n = len(paths)
        polylines = [p.points for p in paths]
        w = max((len(p) for p in polylines), default=2)
        self.points = np.zeros((n, w, 2))
        self.cum = np.zeros((n, w))
        for i, (pts, p) in enumerate(zip(polylines, paths, strict=True)):
            cum = p.cumulative_m
            self.points[i, : len(pts)] = pts
            self.points[i, len(pts) :] = pts[-1]
            self.cum[i, : len(cum)] = cum
            self.cum[i, len(cum) :] = cum[-1] + np.arange(1, w - len(cum) + 1)  # padding beyond the end, never hit
        self.length = np.array([p.length_m for p in paths], dtype=np.float64)
        self.speed = np.array([p.speed_m_s for p in paths], dtype=np.float64)
        self.start = np.array([p.start_s for p in paths], dtype=np.float64)
        self.repeat = np.array([REPEAT_CODES[p.repeat] for p in paths], dtype=np.int64)
        self.n_points = np.array([len(pts) for pts in polylines], dtype=np.int64)

    def __len__(self) -> int:
        return int(self.length.size)

    def take(self, rows: npt.NDArray[np.int64]) -> PathArrays:
        """The paths of these rows (repeats allowed), without rebuilding them."""
        out = PathArrays.__new__(PathArrays)
        for name in ("points", "cum", "length", "speed", "start", "repeat", "n_points"):
            setattr(out, name, getattr(self, name)[rows])
        return out

    def travelled_m(self, t_s: Any) -> FloatArray:
        """(n_paths, n_times): distance walked by each time."""
        t = np.asarray(t_s, dtype=np.float64)
        walked = self.speed[:, None] * np.maximum(t - self.start[:, None], 0.0)
        once = (self.repeat == 0)[:, None]
        return np.asarray(np.where(once, np.minimum(walked, self.length[:, None]), walked), dtype=np.float64)

    def arc_m(self, t_s: Any) -> FloatArray:
        walked = self.travelled_m(t_s)
        length = self.length[:, None]
        rep = self.repeat[:, None]
        looped = np.mod(walked, length)
        bounced = length - np.abs(np.mod(walked, 2.0 * length) - length)
        return np.asarray(np.where(rep == 1, looped, np.where(rep == 2, bounced, walked)), dtype=np.float64)

    def xy_m(self, t_s: Any) -> FloatArray:
        """(n_paths, n_times, 2): positions."""
        s = self.arc_m(t_s)
        n = len(self)
        # segment index: last waypoint with cumulative length <= s, within 0..n_points - 2
        seg = (self.cum[:, None, :] <= s[:, :, None]).sum(axis=2) - 1
        seg = np.clip(seg, 0, (self.n_points - 2)[:, None])
        rows = np.arange(n)[:, None]
        c0, c1 = self.cum[rows, seg], self.cum[rows, seg + 1]
        span = c1 - c0
        f = np.where(span > 0, (s - c0) / np.where(span > 0, span, 1.0), 0.0)
        p0, p1 = self.points[rows, seg], self.points[rows, seg + 1]
        return np.asarray(p0 + f[..., None] * (p1 - p0), dtype=np.float64)
