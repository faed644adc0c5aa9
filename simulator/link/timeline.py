"""Connection-level results from per-event outcomes (numpy): dropouts, time connected, command latency.

Input is a boolean array ``ok`` of shape (n_devices, n_events) (a 1-D array is one device): True where the
connection event's exchange got through. Event k happens at ``start_s + k * spacing_s`` where ``spacing_s`` is
the connection's listen interval (interval x (1 + peripheral latency)). The rules match ``BleConnection``:

* the supervision timer starts at ``start_s`` (connection established) and restarts at every successful event;
* at event k the link is LOST if ``t_k - t_last_success >= supervision_timeout_s``; it is lost from
  ``t_last_success + supervision_timeout_s`` on;
* a dropout ends at the next event whose packet would get through (reconnection time is not modelled: an
  optimistic bound) or runs to the end of the record;
* a command issued at t is first sent at the first event at or after t and resent every event until one gets
  through: latency = wait for that event + retries x spacing. If the link is lost first the command is never
  delivered (NaN): BLE flushes pending PDUs when the connection is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_TIME_TOLERANCE_S = 1e-9


def supervision_expired(elapsed_events: Any, spacing_s: float, supervision_timeout_s: float) -> Any:
    """True where ``elapsed_events`` connection events since the last success reach the supervision timeout."""
    return np.asarray(elapsed_events) * spacing_s >= supervision_timeout_s - _TIME_TOLERANCE_S


def _check(spacing_s: float, supervision_timeout_s: float) -> None:
    if not spacing_s > 0:
        raise ValueError(f"spacing_s must be > 0, got {spacing_s!r}")
    if not supervision_timeout_s > spacing_s:
        raise ValueError(f"supervision_timeout_s ({supervision_timeout_s!r}) must exceed spacing_s ({spacing_s!r})")


def _as_2d(ok: Any) -> BoolArray:
    a = np.asarray(ok, dtype=bool)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"ok must be 1-D (one device) or 2-D (n_devices, n_events), got shape {a.shape}")
    return a


def _last_success_before(ok: BoolArray) -> IntArray:
    """Index of the last successful event strictly before each event (0 = the connection's establishment)."""
    n = ok.shape[1]
    k = np.arange(n, dtype=np.int64)
    last_incl = np.maximum.accumulate(np.where(ok, k, 0), axis=1)
    before = np.zeros(ok.shape, dtype=np.int64)
    before[:, 1:] = last_incl[:, :-1]
    return before


def _next_success_from(ok: BoolArray) -> IntArray:
    """Index of the first successful event at or after each event (n_events if none)."""
    n = ok.shape[1]
    k = np.arange(n, dtype=np.int64)
    nxt = np.where(ok, k, n)[:, ::-1]
    return np.asarray(np.minimum.accumulate(nxt, axis=1)[:, ::-1], dtype=np.int64)


def lost_mask(ok: Any, spacing_s: float, supervision_timeout_s: float) -> BoolArray:
    """(n_devices, n_events): True at events where the link is lost (supervision expired before the event).

    An event that is True here but ok is the reconnection event that ends a dropout.
    """
    _check(spacing_s, supervision_timeout_s)
    a = _as_2d(ok)
    k = np.arange(a.shape[1], dtype=np.int64)
    return np.asarray(
        supervision_expired(k[None, :] - _last_success_before(a), spacing_s, supervision_timeout_s), dtype=bool
    )


@dataclass(frozen=True)
class Dropouts:
    """Link losses found in an event record, one entry per dropout (all arrays of equal length).

    ``restored_at_s`` is NaN for a dropout still running at the end of the record; ``duration_s`` then runs to
    the end of the record.
    """

    device: IntArray
    lost_at_s: FloatArray
    restored_at_s: FloatArray
    duration_s: FloatArray

    def __len__(self) -> int:
        return int(self.device.size)


def link_dropouts(ok: Any, spacing_s: float, supervision_timeout_s: float, start_s: float = 0.0) -> Dropouts:
    """Every dropout (failures spanning >= the supervision timeout since the last success) in ``ok``."""
    a = _as_2d(ok)
    n = a.shape[1]
    expired = lost_mask(a, spacing_s, supervision_timeout_s)
    begins = expired.copy()
    begins[:, 1:] &= ~expired[:, :-1]
    dev, b = np.nonzero(begins)
    last = _last_success_before(a)[dev, b]
    restore = _next_success_from(a)[dev, b]
    lost_at = start_s + last * spacing_s + supervision_timeout_s
    restored = np.where(restore < n, start_s + restore * spacing_s, np.nan)
    end_s = start_s + n * spacing_s
    duration = np.where(np.isnan(restored), end_s, restored) - lost_at
    return Dropouts(
        device=dev.astype(np.int64),
        lost_at_s=lost_at.astype(np.float64),
        restored_at_s=restored.astype(np.float64),
        duration_s=duration.astype(np.float64),
    )


def time_connected_s(ok: Any, spacing_s: float, supervision_timeout_s: float) -> FloatArray:
    """Per device (shape (n_devices,)): record length n_events x spacing_s minus the time spent in dropouts."""
    a = _as_2d(ok)
    drops = link_dropouts(a, spacing_s, supervision_timeout_s)
    down = np.bincount(drops.device, weights=drops.duration_s, minlength=a.shape[0])
    return np.asarray(a.shape[1] * spacing_s - down, dtype=np.float64)


def command_latency_s(
    ok: Any,
    spacing_s: float,
    supervision_timeout_s: float,
    command_times_s: Any,
    start_s: float = 0.0,
) -> FloatArray:
    """Latency of commands issued at ``command_times_s``; shape (n_devices, n_commands), NaN = not delivered.

    ``command_times_s`` is (n_commands,) for every device or (n_devices, n_commands). Latency = time of the
    first successful event at or after the issue time - issue time (= wait for the next event + retries x
    spacing). Not delivered: the link was lost before that success, or the record ended first.
    """
    a = _as_2d(ok)
    n_dev, n = a.shape
    t = np.atleast_1d(np.asarray(command_times_s, dtype=np.float64))
    if t.ndim > 2:
        raise ValueError(f"command_times_s must be (n_commands,) or (n_devices, n_commands), got shape {t.shape}")
    t = np.broadcast_to(t, (n_dev, t.shape[-1]))
    if np.any(t < start_s):
        raise ValueError("command_times_s must not precede start_s")
    first = np.ceil((t - start_s) / spacing_s - _TIME_TOLERANCE_S / spacing_s).astype(np.int64)
    first = np.maximum(first, 0)
    inside = first < n
    nxt = _next_success_from(a)
    expired = lost_mask(a, spacing_s, supervision_timeout_s)
    rows = np.broadcast_to(np.arange(n_dev)[:, None], first.shape)
    s = np.where(inside, nxt[rows, np.minimum(first, n - 1)], n) if n > 0 else np.full(first.shape, n)
    delivered = s < n
    s_safe = np.minimum(s, max(n - 1, 0))
    if n > 0:
        delivered &= ~expired[rows, s_safe]
    latency = start_s + s * spacing_s - t
    return np.asarray(np.where(delivered, latency, np.nan), dtype=np.float64)
