"""BLE connection layer, stepwise: connection events, retransmission until acknowledged, supervision timeout.

Use from a simpy process (one per device)::

    conn = BleConnection(profiles.connection, rng, budget, burst=ge, interference_loss=q, start_s=env.now)
    while not conn.lost:
        yield env.timeout(conn.next_event_s - env.now)
        outcome = conn.event(path_loss_dB=mean_pl + shadowing.step(moved_m) + body_dB)

Rules (the same as simulator.link.timeline, which computes them for whole arrays):

* events every ``params.listen_interval_s`` (interval x (1 + peripheral latency)), the first at ``start_s``;
* each event carries one exchange: the oldest pending command's PDU, or an empty keep-alive PDU; it succeeds
  unless the packet is lost (Gilbert-Elliott state, PER of the margin for that payload, interference). A
  success delivers every pending command (the rest follow in the same event, "more data");
* a pending PDU is resent every event until acknowledged - BLE never drops it while the link is up;
* the supervision timer starts at ``start_s`` and restarts at each success; at the first event at which
  ``t - last_success_s >= supervision_timeout_s`` the link is LOST (``lost_at_s = last_success_s + timeout``)
  and pending commands are flushed (reported as dropped). ``reconnect(now_s)`` starts a new connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rig.config.link import BleConnectionParams
from simulator.link.budget import LinkBudget
from simulator.link.burst import GilbertElliott, GilbertElliottChain
from simulator.link.per import EMPTY_PDU_BYTES, packet_error_rate

DEFAULT_COMMAND_PAYLOAD_BYTES = 27
"""ASSUMED size of one command PDU: the largest default link-layer data payload (27 bytes)."""

_TIME_TOLERANCE_S = 1e-9


@dataclass(frozen=True)
class Delivery:
    """A command acknowledged at a connection event."""

    command_id: int
    submitted_s: float
    delivered_s: float
    attempts: int  # events it was sent at (retries + 1)

    @property
    def latency_s(self) -> float:
        """Wait for the first event + retries x listen interval."""
        return self.delivered_s - self.submitted_s


@dataclass(frozen=True)
class EventOutcome:
    """What happened at one connection event."""

    index: int
    time_s: float
    attempted: bool  # False once the link is lost: no exchange took place
    success: bool
    lost: bool  # the link is lost (at or before this event)
    margin_dB: float  # NaN when not attempted
    bad_state: bool  # Gilbert-Elliott state of this event
    delivered: tuple[Delivery, ...] = ()
    dropped: tuple[int, ...] = ()  # command ids flushed because the link was lost


_new_object = object.__new__


def _attempted(index: int, time_s: float, success: bool, margin_dB: float, bad_state: bool,
               delivered: tuple[Delivery, ...]) -> EventOutcome:
    """``EventOutcome(index, time_s, attempted=True, success=..., lost=False, ...)`` built without the frozen
    dataclass ``__init__`` (nine ``object.__setattr__`` calls: ~1 us, a tenth of the per-event engine's cost per
    event). The same object: equal, same repr and hash, still frozen (tests/unit/test_fleet_engines.py checks it)."""
    out = _new_object(EventOutcome)
    out.__dict__.update(index=index, time_s=time_s, attempted=True, success=success, lost=False, margin_dB=margin_dB,
                        bad_state=bad_state, delivered=delivered, dropped=())
    return out


@dataclass
class _Pending:
    command_id: int
    submitted_s: float
    first_index: int
    payload_bytes: int


class BleConnection:
    """One BLE connection, decided event by event from the path loss at that moment.

    ``params``: validated connection parameters (rig.config.link.BleConnectionParams);
    ``rng``: the numpy Generator every draw comes from (same seed -> same outcomes);
    ``budget``: TX power and sensitivity; ``burst``: Gilbert-Elliott chain (None = no burst state);
    ``interference_loss``: independent extra loss fraction per event.
    """

    def __init__(
        self,
        params: BleConnectionParams,
        rng: np.random.Generator,
        budget: LinkBudget,
        *,
        burst: GilbertElliott | None = None,
        interference_loss: float = 0.0,
        start_s: float = 0.0,
    ) -> None:
        if not 0.0 <= interference_loss < 1.0:
            raise ValueError(f"interference_loss must be within [0, 1), got {interference_loss!r}")
        self.params = params
        self.budget = budget
        self.interference_loss = float(interference_loss)
        self._rng = rng
        self._chain = GilbertElliottChain(burst or GilbertElliott(0.0, 1.0), rng)
        # per-event scalars (params and budget are frozen): the spacing, and the supervision rule of
        # simulator.link.timeline.supervision_expired as ``elapsed_events x spacing >= this``
        self._spacing_s = params.listen_interval_s
        self._expired_from_s = params.supervision_timeout_s - _TIME_TOLERANCE_S
        self._index = 0
        self._pending: list[_Pending] = []
        self._next_id = 0
        self._connect(start_s)

    def _connect(self, start_s: float) -> None:
        self._anchor_s = float(start_s)
        self._anchor_index = self._index
        self._last_success_index = self._index
        self._lost_at_s: float | None = None

    # ---- state ------------------------------------------------------------------------------------

    @property
    def spacing_s(self) -> float:
        """Time between the connection events the peripheral listens at."""
        return self.params.listen_interval_s

    def _time_of(self, index: int) -> float:
        return self._anchor_s + (index - self._anchor_index) * self._spacing_s

    @property
    def next_event_s(self) -> float:
        """Time of the next connection event (the one ``event()`` decides)."""
        return self._time_of(self._index)

    @property
    def last_success_s(self) -> float:
        """Time of the last successful exchange (the connection's start before any)."""
        return self._time_of(self._last_success_index)

    @property
    def lost(self) -> bool:
        return self._lost_at_s is not None

    @property
    def lost_at_s(self) -> float | None:
        """When the supervision timeout expired (None while connected)."""
        return self._lost_at_s

    @property
    def pending(self) -> int:
        """Commands waiting for acknowledgement."""
        return len(self._pending)

    # ---- actions ----------------------------------------------------------------------------------

    def submit(self, now_s: float, payload_bytes: int = DEFAULT_COMMAND_PAYLOAD_BYTES) -> int:
        """Queue a command PDU at ``now_s`` (<= next_event_s); returns its id. It goes out at the next event."""
        if self.lost:
            raise RuntimeError(f"link lost at {self._lost_at_s:.6f} s: reconnect() before submitting commands")
        if now_s > self.next_event_s + _TIME_TOLERANCE_S:
            raise ValueError(
                f"command at {now_s:.6f} s is after the next undecided event ({self.next_event_s:.6f} s): "
                "decide the connection events up to now first"
            )
        if payload_bytes < 0:
            raise ValueError(f"payload_bytes must be >= 0, got {payload_bytes}")
        cid = self._next_id
        self._next_id += 1
        self._pending.append(_Pending(cid, float(now_s), self._index, int(payload_bytes)))
        return cid

    def event(self, path_loss_dB: float) -> EventOutcome:
        """Decide the next connection event given the total loss (path + shadowing + body + extra) in dB."""
        k = self._index
        t = self._anchor_s + (k - self._anchor_index) * self._spacing_s
        self._index = k + 1
        if self._lost_at_s is not None:
            return EventOutcome(k, t, attempted=False, success=False, lost=True, margin_dB=math.nan, bad_state=False)
        # scalar form of supervision_expired (int x float >= float: the same IEEE operations as the array form)
        if (k - self._last_success_index) * self._spacing_s >= self._expired_from_s:
            self._lost_at_s = self.last_success_s + self.params.supervision_timeout_s
            dropped = tuple(p.command_id for p in self._pending)
            self._pending.clear()
            return EventOutcome(
                k, t, attempted=False, success=False, lost=True, margin_dB=math.nan, bad_state=False, dropped=dropped
            )
        if type(path_loss_dB) is float:  # scalar form of budget.margin_dB(loss): (TX - loss) - sensitivity
            margin = (self.budget.tx_power_dBm - path_loss_dB) - self.budget.sensitivity_dBm
        else:
            margin = float(self.budget.margin_dB(path_loss_dB))
        payload = self._pending[0].payload_bytes if self._pending else EMPTY_PDU_BYTES
        per = packet_error_rate(margin, payload)  # a float: the memoised scalar path of simulator.link.per
        lost_packet = self._chain.step(per, self.interference_loss)
        delivered: tuple[Delivery, ...] = ()
        if not lost_packet:
            self._last_success_index = k
            if self._pending:
                delivered = tuple(Delivery(p.command_id, p.submitted_s, t, k - p.first_index + 1)
                                  for p in self._pending)
                self._pending.clear()
        return _attempted(k, t, not lost_packet, margin, self._chain.bad, delivered)

    def reconnect(self, now_s: float) -> None:
        """Start a new connection at ``now_s`` (after a loss): the next event is at ``now_s``, timer restarted."""
        if now_s < self._time_of(self._index - 1) - _TIME_TOLERANCE_S:
            raise ValueError("reconnect time precedes the last decided event")
        self._pending.clear()
        self._connect(now_s)
