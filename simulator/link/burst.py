"""Gilbert-Elliott burst loss per connection event, plus independent interference loss.

A two-state Markov chain steps once per connection event: Good -> Bad with probability p, Bad -> Good with r.
In Bad a packet is lost with ``bad_loss_probability`` (1 = classic Gilbert); in Good with the PER of the
current margin (simulator.link.per). Interference adds an independent loss with probability ``interference_loss``.

    stationary P(Bad) = p / (p + r)    mean burst = 1 / r events    mean gap = 1 / p events

(with bad_loss_probability = 1 and a loss-free Good state the mean loss is p / (p + r)). No BLE values are
published: the fixture's p and r are placeholders to be fitted from captures (docs/link-model.md).

Two forms with the same distribution:

* ``GilbertElliottChain`` - stepwise, one event per call (simpy engine, BleConnection);
* ``sample_bad_states`` / ``sample_event_losses`` - whole (n_devices, n_events) arrays at once, built from
  geometric sojourn times (numpy, no per-event Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rig.config.link import GilbertElliottParams

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class GilbertElliott:
    """Chain parameters per connection event: p = P(G->B), r = P(B->G), loss probability in Bad."""

    p_good_to_bad: float
    r_bad_to_good: float
    bad_loss_probability: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_good_to_bad <= 1.0:
            raise ValueError(f"p_good_to_bad must be within 0..1, got {self.p_good_to_bad!r}")
        if not 0.0 < self.r_bad_to_good <= 1.0:
            raise ValueError(f"r_bad_to_good must be within (0, 1], got {self.r_bad_to_good!r}")
        if not 0.0 < self.bad_loss_probability <= 1.0:
            raise ValueError(f"bad_loss_probability must be within (0, 1], got {self.bad_loss_probability!r}")

    @classmethod
    def from_params(cls, params: GilbertElliottParams) -> GilbertElliott:
        """From the fixture block (rig.config.link.GilbertElliottParams)."""
        return cls(params.p_good_to_bad, params.r_bad_to_good, params.bad_loss_probability)

    @property
    def stationary_bad(self) -> float:
        """Long-run fraction of events in Bad: p / (p + r)."""
        return self.p_good_to_bad / (self.p_good_to_bad + self.r_bad_to_good)

    @property
    def mean_loss(self) -> float:
        """Long-run loss fraction from the Bad state alone: p / (p + r) x bad_loss_probability."""
        return self.stationary_bad * self.bad_loss_probability

    @property
    def mean_burst_events(self) -> float:
        """Mean number of consecutive events in Bad: 1 / r."""
        return 1.0 / self.r_bad_to_good

    @property
    def mean_gap_events(self) -> float:
        """Mean number of consecutive events in Good: 1 / p (inf if p = 0)."""
        return float("inf") if self.p_good_to_bad == 0 else 1.0 / self.p_good_to_bad


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, float):  # scalar fast path (per-event engine), same rule: NaN and inf fail the comparison
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within 0..1")
        return
    v = np.asarray(value, dtype=np.float64)
    if np.any(~np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise ValueError(f"{name} must be within 0..1")


class GilbertElliottChain:
    """Stepwise chain: ``step(per_good)`` advances to the next event and says whether its packet is lost.

    The first event's state is a stationary draw, or a transition from ``previous_bad`` when given.
    ``bad`` is the state of the last stepped event.
    """

    def __init__(self, model: GilbertElliott, rng: np.random.Generator, previous_bad: bool | None = None) -> None:
        self.model = model
        self._rng = rng
        self._previous: bool | None = previous_bad
        self.bad = False

    def next_state(self) -> bool:
        """Advance the chain by one event and return its state (True = Bad)."""
        u = float(self._rng.random())
        if self._previous is None:
            bad = u < self.model.stationary_bad
        elif self._previous:
            bad = not (u < self.model.r_bad_to_good)
        else:
            bad = u < self.model.p_good_to_bad
        self._previous = bad
        self.bad = bad
        return bad

    def step(self, per_good: float, interference_loss: float = 0.0) -> bool:
        """Advance one event; True if its packet is lost (Bad-state loss, Good-state PER, or interference)."""
        _check_fraction("per_good", per_good)
        _check_fraction("interference_loss", interference_loss)
        bad = self.next_state()
        u = float(self._rng.random())
        lost = u < (self.model.bad_loss_probability if bad else per_good)
        if interference_loss > 0.0 and float(self._rng.random()) < interference_loss:
            lost = True
        return lost


def _geometric(rng: np.random.Generator, prob: float, size: tuple[int, int], never: int) -> npt.NDArray[np.int64]:
    """Sojourn lengths (>= 1 event) for a per-event leaving probability; ``never`` when prob = 0."""
    if prob <= 0.0:
        return np.full(size, never, dtype=np.int64)
    return rng.geometric(prob, size=size).astype(np.int64)


def sample_bad_states(
    model: GilbertElliott,
    rng: np.random.Generator,
    n_devices: int,
    n_events: int,
    previous_bad: Any = None,
) -> BoolArray:
    """Chain states, shape (n_devices, n_events), True = Bad; vectorised over devices and events.

    Event 0 is a stationary draw per device, or a transition from ``previous_bad`` (shape (n_devices,)) - pass
    the last column of a previous call to continue. Runs alternate with geometric lengths (mean 1/p in Good,
    1/r in Bad); the state array is the running parity of the run boundaries.
    """
    if n_devices < 0 or n_events < 0:
        raise ValueError("n_devices and n_events must be >= 0")
    p, r = model.p_good_to_bad, model.r_bad_to_good
    if n_devices == 0 or n_events == 0:
        return np.zeros((n_devices, n_events), dtype=bool)
    u0 = rng.random(n_devices)
    if previous_bad is None:
        first_bad = u0 < model.stationary_bad
    else:
        prev = np.broadcast_to(np.asarray(previous_bad, dtype=bool), (n_devices,))
        first_bad = np.where(prev, u0 >= r, u0 < p)
    # enough runs to cover n_events on average twice over, topped up below for the rare row that falls short
    pair_events = (1.0 / p if p > 0 else float(n_events)) + 1.0 / r
    n_runs = int(2 * np.ceil(2.0 * n_events / pair_events)) + 8
    never = n_events + 1
    lengths = np.empty((n_devices, 0), dtype=np.int64)
    ends = np.zeros(n_devices, dtype=np.int64)
    while True:
        offset = lengths.shape[1]
        idx = np.arange(offset, offset + n_runs)
        run_bad = first_bad[:, None] ^ (idx % 2 == 1)[None, :]
        good_len = _geometric(rng, p, (n_devices, n_runs), never)
        bad_len = _geometric(rng, r, (n_devices, n_runs), never)
        lengths = np.concatenate([lengths, np.where(run_bad, bad_len, good_len)], axis=1)
        ends = np.cumsum(lengths, axis=1)
        if np.all(ends[:, -1] >= n_events):
            break
    toggles = np.zeros((n_devices, n_events), dtype=bool)
    rows, cols = np.nonzero(ends < n_events)
    toggles[rows, ends[rows, cols]] = True  # run boundaries are distinct within a row
    flips = np.logical_xor.accumulate(toggles, axis=1)
    return np.asarray(flips ^ first_bad[:, None], dtype=bool)


def sample_event_losses(
    model: GilbertElliott,
    rng: np.random.Generator,
    bad: BoolArray,
    per_good: Any,
    interference_loss: float = 0.0,
) -> BoolArray:
    """Lost packets (True = lost) for chain states ``bad``: Bad loses with bad_loss_probability, Good with
    ``per_good`` (broadcast to ``bad``'s shape, e.g. packet_error_rate(margin) per device and event), and
    interference removes a further independent fraction ``interference_loss``."""
    _check_fraction("per_good", per_good)
    _check_fraction("interference_loss", interference_loss)
    states = np.asarray(bad, dtype=bool)
    u = rng.random(states.shape)
    threshold = np.where(states, model.bad_loss_probability, np.broadcast_to(per_good, states.shape))
    lost = u < threshold
    if interference_loss > 0.0:
        lost |= rng.random(states.shape) < interference_loss
    return np.asarray(lost, dtype=bool)
