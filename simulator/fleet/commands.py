"""Commands the controllers send: every command carries the id of the device it is addressed to.

A ``CommandPlan`` is the whole run's command stream, in issue order: issue time, target device, channel and
amplitude set-point. ``CommandPlan.periodic`` is the scenario's traffic (each controller sends each connected
device one command every ``command_period_s``, channels in turn, amplitudes drawn from the seed); tests may build
any stream. A command addressed to a refused (unconnected) device is never sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TIME_TOLERANCE_S = 1e-9


@dataclass(frozen=True)
class Command:
    command_id: int
    target: int  # index of the device it is addressed to
    channel: int
    amplitude_mA: float
    issued_s: float


@dataclass(frozen=True)
class CommandPlan:
    issued_s: FloatArray  # (k,) non-decreasing
    target: IntArray  # (k,)
    channel: IntArray  # (k,)
    amplitude_mA: FloatArray  # (k,)

    def __post_init__(self) -> None:
        k = self.issued_s.size
        if not (self.target.size == self.channel.size == self.amplitude_mA.size == k):
            raise ValueError("command plan arrays must have equal lengths")
        if k and np.any(np.diff(self.issued_s) < 0):
            raise ValueError("commands must be in issue order (issued_s non-decreasing)")

    def __len__(self) -> int:
        return int(self.issued_s.size)

    def command(self, k: int) -> Command:
        return Command(k, int(self.target[k]), int(self.channel[k]), float(self.amplitude_mA[k]),
                       float(self.issued_s[k]))

    @classmethod
    def from_commands(cls, commands: list[tuple[float, int, int, float]]) -> CommandPlan:
        """From (issued_s, target, channel, amplitude_mA) tuples, sorted by issue time (stable)."""
        rows = sorted(commands, key=lambda c: c[0])
        return cls(
            issued_s=np.array([r[0] for r in rows], dtype=np.float64),
            target=np.array([r[1] for r in rows], dtype=np.int64),
            channel=np.array([r[2] for r in rows], dtype=np.int64),
            amplitude_mA=np.array([r[3] for r in rows], dtype=np.float64),
        )

    @classmethod
    def periodic(
        cls,
        n_devices: int,
        period_s: float,
        duration_s: float,
        channels: int,
        max_amplitude_mA: float,
        rng: np.random.Generator,
    ) -> CommandPlan:
        """One command per device at T, 2T, ... (< duration_s); channel j mod channels; amplitude 0..max in 0.5 mA."""
        rounds = max(0, int(np.ceil(duration_s / period_s - _TIME_TOLERANCE_S)) - 1)
        j = np.repeat(np.arange(1, rounds + 1, dtype=np.int64), n_devices)
        target = np.tile(np.arange(n_devices, dtype=np.int64), rounds)
        amp = np.round(rng.uniform(0.0, max_amplitude_mA, size=j.size) * 2.0) / 2.0
        return cls(
            issued_s=(j * period_s).astype(np.float64),
            target=target,
            channel=(j - 1) % channels,
            amplitude_mA=amp.astype(np.float64),
        )

    def per_device(self, n_devices: int) -> IntArray:
        """(n_devices, max commands per device): plan indices of each device's commands in issue order, -1 padded."""
        if np.any((self.target < 0) | (self.target >= n_devices)):
            raise ValueError(f"a command targets a device outside 0..{n_devices - 1}")
        order = np.lexsort((np.arange(len(self)), self.target))  # by target, then issue order
        counts = np.bincount(self.target, minlength=n_devices)
        width = int(counts.max()) if counts.size else 0
        out = np.full((n_devices, width), -1, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos = np.arange(len(self)) - np.repeat(starts, counts)
        out[self.target[order], pos] = order
        return out
