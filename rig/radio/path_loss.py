"""Log-distance mean path loss and the bench attenuator setting that reproduces a distance.

    PL(d) = PL(1 m) + excess + 10 n log10(d / 1 m)                      [dB]

``PL(1 m)`` is the free-space loss at the reference distance (40.2 dB at 2440 MHz), ``n`` the environment's
path-loss exponent and ``excess`` a fixed offset (0 except where fitted to a measured series). Shadowing,
body loss and burst loss are random and live in the simulator (simulator/link); the rig needs only the mean.

Distances below the 1 m reference are CLAMPED to 1 m: the log-distance law is fitted from 1 m outwards and is
not meant for the near field (a device closer than 1 m sees at least PL(1 m)). Negative or non-finite distances
raise ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, overload

import numpy as np
import numpy.typing as npt

REFERENCE_DISTANCE_M = 1.0

FloatArray = npt.NDArray[np.float64]


class PathLossEnvironment(Protocol):
    """What the path-loss law needs of an environment (rig.config.link.Environment satisfies it)."""

    @property
    def pl_1m_dB(self) -> float: ...

    @property
    def path_loss_exponent(self) -> float: ...

    @property
    def excess_loss_dB(self) -> float: ...


def _distances(distance_m: Any) -> FloatArray:
    d = np.asarray(distance_m, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        bad = d[~(np.isfinite(d) & (d >= 0))].ravel()[0]
        raise ValueError(f"distance_m must be finite and >= 0 m, got {bad!r}")
    return np.maximum(d, REFERENCE_DISTANCE_M)


def _out(values: FloatArray) -> Any:
    return float(values) if values.ndim == 0 else values


@overload
def mean_path_loss_dB(environment: PathLossEnvironment, distance_m: float) -> float: ...


@overload
def mean_path_loss_dB(
    environment: PathLossEnvironment, distance_m: npt.NDArray[Any] | Sequence[float]
) -> FloatArray: ...


def mean_path_loss_dB(environment: PathLossEnvironment, distance_m: Any) -> Any:
    """Mean path loss in dB at ``distance_m`` (scalar -> float, array -> array of the same shape).

    PL(1 m) + excess_loss + 10 n log10(d / 1 m), with d clamped to >= 1 m (see the module docstring).
    """
    d = _distances(distance_m)
    pl = (
        environment.pl_1m_dB
        + environment.excess_loss_dB
        + 10.0 * environment.path_loss_exponent * np.log10(d / REFERENCE_DISTANCE_M)
    )
    return _out(np.asarray(pl, dtype=np.float64))


@overload
def attenuation_for_distance_dB(environment: PathLossEnvironment, distance_m: float, cable_loss_dB: float) -> float: ...


@overload
def attenuation_for_distance_dB(
    environment: PathLossEnvironment, distance_m: npt.NDArray[Any] | Sequence[float], cable_loss_dB: float
) -> FloatArray: ...


def attenuation_for_distance_dB(environment: PathLossEnvironment, distance_m: Any, cable_loss_dB: float) -> Any:
    """Programmable-attenuator setting (dB) that makes a cabled bench link look like ``distance_m``.

    = mean path loss at that distance - the fixed loss of cables, splitters and couplers already in the path.
    Raises ValueError if the cabling alone already exceeds the wanted path loss (the attenuator cannot go
    negative): use shorter cables or a longer distance.
    """
    if not np.isfinite(cable_loss_dB) or cable_loss_dB < 0:
        raise ValueError(f"cable_loss_dB must be finite and >= 0 dB, got {cable_loss_dB!r}")
    pl = np.asarray(mean_path_loss_dB(environment, np.asarray(distance_m, dtype=np.float64)))
    att = pl - cable_loss_dB
    if np.any(att < 0):
        worst = float(np.min(pl))
        raise ValueError(
            f"cable_loss_dB ({cable_loss_dB:g} dB) exceeds the mean path loss ({worst:.2f} dB) at the requested "
            f"distance: the attenuator would have to be negative (expected cable loss <= path loss)"
        )
    return _out(att)


@overload
def distance_for_path_loss_m(environment: PathLossEnvironment, path_loss_dB: float) -> float: ...


@overload
def distance_for_path_loss_m(
    environment: PathLossEnvironment, path_loss_dB: npt.NDArray[Any] | Sequence[float]
) -> FloatArray: ...


def distance_for_path_loss_m(environment: PathLossEnvironment, path_loss_dB: Any) -> Any:
    """Inverse of ``mean_path_loss_dB``: the distance (>= 1 m) whose mean path loss is ``path_loss_dB``.

    Losses below PL(1 m) + excess map to the 1 m reference (the clamp of the forward law).
    """
    pl = np.asarray(path_loss_dB, dtype=np.float64)
    if not np.all(np.isfinite(pl)):
        raise ValueError("path_loss_dB must be finite")
    above = np.maximum(pl - environment.pl_1m_dB - environment.excess_loss_dB, 0.0)
    d = REFERENCE_DISTANCE_M * 10.0 ** (above / (10.0 * environment.path_loss_exponent))
    return _out(np.asarray(d, dtype=np.float64))
