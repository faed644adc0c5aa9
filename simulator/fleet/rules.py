"""Rules both fleet engines share: the connection-event grid, when a command is first sent, command outcomes.

Each link's record starts at its anchor (the controller's slot offset, ``slot x event_duration_s``) and holds
``n_events = round(duration_s / spacing_s)`` connection events, ``spacing_s`` = the listen interval
(interval x (1 + peripheral latency)). Event k is at ``anchor + k x spacing``. A command issued at t is first sent
at the first event at or after t (``first_event_index``, the rule of ``simulator.link.command_latency_s``).
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.link.timeline import supervision_expired

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

TIME_TOLERANCE_S = 1e-9
"""The link model's time tolerance (simulator.link.timeline): a command at an event's time goes at that event."""

NEVER = np.iinfo(np.int64).max // 4
"""Event index standing for "no such event" (padding of per-device command tables)."""


class CommandStatus(IntEnum):
    """What became of one command."""

    DELIVERED = 0  # acknowledged at a connection event
    LOST = 1  # flushed by a link-loss (supervision timeout) or issued while the link was lost
    PENDING_AT_END = 2  # still waiting for its first successful event when the record ended (censored)
    NOT_SENT = 3  # the device has no connection (refused: over the controllers' capacity)


def n_events(duration_s: float, spacing_s: float) -> int:
    """Connection events in each link's record: round(duration / spacing), at least 1."""
    return max(1, round(duration_s / spacing_s))


def first_event_index(issued_s: Any, anchor_s: Any, spacing_s: float) -> IntArray:
    """Index of the first connection event at or after ``issued_s`` (same rule as ``command_latency_s``)."""
    rel = (np.asarray(issued_s, dtype=np.float64) - np.asarray(anchor_s, dtype=np.float64)) / spacing_s
    first = np.ceil(rel - TIME_TOLERANCE_S / spacing_s).astype(np.int64)
    return np.asarray(np.maximum(first, 0), dtype=np.int64)


def expiry_events(spacing_s: float, supervision_timeout_s: float) -> int:
    """Events after the last success at which the supervision timeout has expired (smallest such count)."""
    x = max(1, math.floor(supervision_timeout_s / spacing_s) - 1)
    while not bool(supervision_expired(x, spacing_s, supervision_timeout_s)):
        x += 1
    return x


def percentile(values: Any, q: float) -> float:
    """The q-th percentile (0..100) of the finite values, NaN if there are none (inverted-CDF: an observed value)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(np.percentile(v, q, method="inverted_cdf"))
