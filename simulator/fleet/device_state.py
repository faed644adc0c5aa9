"""Per-device stimulator state: amplitude set-points per channel, changed only by commands addressed to it.

Every command carries its target device; ``apply`` / ``apply_many`` ASSERT that the device a command reached is
the device it was addressed to (``AddressingError`` otherwise, raised before anything changes). A link-loss cutoff
stops the device's output; like the CS-4 (``safety.on_reconnect: resume_at_zero``) it then resumes at zero, so the
set-points return to 0 until the next command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.fleet.commands import Command

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class AddressingError(AssertionError):
    """A command reached a device other than the one it was addressed to."""


class DeviceStates:
    def __init__(self, device_ids: Sequence[str], channels: int) -> None:
        self.device_ids = tuple(device_ids)
        n = len(self.device_ids)
        self.channels = channels
        self.setpoints_mA = np.zeros((n, channels), dtype=np.float64)
        self.applied = np.zeros(n, dtype=np.int64)
        self.cutoffs = np.zeros(n, dtype=np.int64)

    @property
    def stimulating(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.setpoints_mA.max(axis=1, initial=0.0) > 0)

    def _name(self, index: int) -> str:
        return self.device_ids[index] if 0 <= index < len(self.device_ids) else f"#{index}"

    def apply(self, receiver: int, command: Command) -> None:
        """Device ``receiver`` acts on ``command``; AddressingError if it was addressed to another device."""
        if command.target != receiver:
            raise AddressingError(
                f"command {command.command_id} addressed to {self._name(command.target)} reached "
                f"{self._name(receiver)}"
            )
        self.setpoints_mA[receiver, command.channel] = command.amplitude_mA
        self.applied[receiver] += 1

    def apply_many(self, receivers: Any, targets: Any, channels: Any, amplitudes_mA: Any) -> None:
        """Apply commands in the given order (a later one wins); all are checked before any is applied."""
        rec = np.asarray(receivers, dtype=np.int64)
        tgt = np.asarray(targets, dtype=np.int64)
        if rec.shape != tgt.shape:
            raise ValueError("receivers and targets must have the same shape")
        wrong = np.flatnonzero(rec != tgt)
        if wrong.size:
            k = int(wrong[0])
            raise AddressingError(
                f"{wrong.size} command(s) reached the wrong device, e.g. one addressed to {self._name(int(tgt[k]))} "
                f"reached {self._name(int(rec[k]))}"
            )
        if rec.size == 0:
            return
        ch = np.asarray(channels, dtype=np.int64)
        amp = np.asarray(amplitudes_mA, dtype=np.float64)
        key = rec * self.channels + ch
        _, first_in_reversed = np.unique(key[::-1], return_index=True)
        last = rec.size - 1 - first_in_reversed  # the last command for each (device, channel)
        self.setpoints_mA[rec[last], ch[last]] = amp[last]
        self.applied += np.bincount(rec, minlength=self.applied.size)

    def cut_off(self, devices: Any) -> None:
        """Link-loss cutoff of these devices (repeats allowed): output stops, set-points back to 0."""
        dev = np.asarray(devices, dtype=np.int64)
        self.setpoints_mA[dev] = 0.0
        np.add.at(self.cutoffs, dev, 1)
