"""Log-normal shadowing (Gaussian in dB), spatially correlated along a device's path.

Gudmundson-style exponential autocorrelation over the distance moved:

    corr(X(s), X(s + ds)) = exp(-|ds| / D)          D = decorrelation distance

sampled exactly as an AR(1) chain with a step-dependent coefficient:

    X_k = rho_k X_{k-1} + sigma sqrt(1 - rho_k^2) e_k,   rho_k = exp(-ds_k / D),   e_k ~ N(0, 1)

so every sample is N(0, sigma^2) whatever the steps. A device that does not move (ds = 0) keeps its draw for
ever; a jump of many D gives a fresh, independent draw. ``ShadowingProcess`` is the stepwise form (for a simpy
process); ``correlated_shadowing_dB`` draws whole tracks for many devices at once (numpy, no per-step loop:
the recursion is solved in closed form block by block).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_MAX_DECAY = 40.0  # a step of more than 40 D is a fresh draw (rho < 4e-18): clamp to keep exp() finite
_BLOCK_DECAY = 200.0  # closed-form blocks span at most this much decay (e^200 is far from overflow)


def _check(sigma_dB: float, decorrelation_distance_m: float) -> None:
    if not sigma_dB >= 0:
        raise ValueError(f"sigma_dB must be >= 0, got {sigma_dB!r}")
    if not decorrelation_distance_m > 0:
        raise ValueError(f"decorrelation_distance_m must be > 0, got {decorrelation_distance_m!r}")


class ShadowingProcess:
    """Stepwise correlated shadowing for one device (or an array of devices moving in lock-step).

    ``value_dB`` is the current shadowing loss; ``step(moved_m)`` advances by the distance moved since the last
    sample and returns the new value. Without ``initial_dB`` the first value is a fresh N(0, sigma^2) draw.
    """

    def __init__(
        self,
        sigma_dB: float,
        decorrelation_distance_m: float,
        rng: np.random.Generator,
        initial_dB: Any = None,
        shape: tuple[int, ...] = (),
    ) -> None:
        _check(sigma_dB, decorrelation_distance_m)
        self.sigma_dB = float(sigma_dB)
        self.decorrelation_distance_m = float(decorrelation_distance_m)
        self._rng = rng
        if initial_dB is None:
            self._value = np.asarray(rng.normal(0.0, self.sigma_dB, size=shape), dtype=np.float64)
        else:
            self._value = np.array(initial_dB, dtype=np.float64)

    @property
    def value_dB(self) -> Any:
        """Current shadowing loss in dB (float for a single device)."""
        return float(self._value) if self._value.ndim == 0 else self._value.copy()

    def step(self, moved_m: Any) -> Any:
        """Advance by ``moved_m`` (>= 0; 0 = static, keeps the value) and return the new shadowing in dB."""
        ds = np.asarray(moved_m, dtype=np.float64)
        if np.any(ds < 0) or not np.all(np.isfinite(ds)):
            raise ValueError("moved_m must be finite and >= 0")
        decay = np.minimum(ds / self.decorrelation_distance_m, _MAX_DECAY)
        rho = np.exp(-decay)
        noise_sd = self.sigma_dB * np.sqrt(-np.expm1(-2.0 * decay))
        shape = np.broadcast_shapes(self._value.shape, ds.shape)
        e = self._rng.standard_normal(size=shape)
        self._value = np.asarray(rho * self._value + noise_sd * e, dtype=np.float64)
        return self.value_dB


def correlated_shadowing_dB(
    rng: np.random.Generator,
    sigma_dB: float,
    decorrelation_distance_m: float,
    moved_m: Any,
    initial_dB: Any = None,
) -> FloatArray:
    """Shadowing tracks in dB for many devices: ``moved_m`` is (..., n_steps), the distance moved before each sample.

    Sample k follows the value before it (``initial_dB``, shape ``moved_m.shape[:-1]``, or a fresh N(0, sigma^2)
    draw per device when None) after moving ``moved_m[..., k]``. Pass the last column as ``initial_dB`` to
    continue a track. A row of zeros is a static device: one draw, repeated. Same distribution as
    ``ShadowingProcess`` stepped through the same distances.
    """
    _check(sigma_dB, decorrelation_distance_m)
    ds = np.asarray(moved_m, dtype=np.float64)
    if ds.ndim == 0:
        ds = ds.reshape(1)
    if np.any(ds < 0) or not np.all(np.isfinite(ds)):
        raise ValueError("moved_m must be finite and >= 0")
    lead, n = ds.shape[:-1], ds.shape[-1]
    prev = (
        rng.normal(0.0, sigma_dB, size=lead) if initial_dB is None else np.broadcast_to(initial_dB, lead).astype(float)
    )
    prev = np.asarray(prev, dtype=np.float64)
    decay = np.minimum(ds / decorrelation_distance_m, _MAX_DECAY)
    w = sigma_dB * np.sqrt(-np.expm1(-2.0 * decay)) * rng.standard_normal(size=ds.shape)
    out = np.empty(ds.shape, dtype=np.float64)
    if n == 0:
        return out
    # Closed form of X_k = rho_k X_{k-1} + w_k with L_k = -sum(decay): X_k = e^{L_k} (X_start + sum w_j e^{-L_j}),
    # within blocks short enough that e^{-L} stays finite.
    flat_decay = decay.reshape(-1, n).max(axis=0) if decay.ndim > 1 else decay
    bound = np.cumsum(flat_decay)
    start = 0
    while start < n:
        base = bound[start - 1] if start > 0 else 0.0
        stop = int(np.searchsorted(bound, base + _BLOCK_DECAY, side="right"))
        stop = max(stop, start + 1)
        cum = np.cumsum(decay[..., start:stop], axis=-1)  # >= 0, at most _BLOCK_DECAY
        s = prev[..., None] + np.cumsum(w[..., start:stop] * np.exp(cum), axis=-1)
        out[..., start:stop] = np.exp(-cum) * s
        prev = out[..., stop - 1]
        start = stop
    return out
