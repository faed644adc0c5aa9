"""Simulated load box: routes one DUT channel onto a named measurement load that scope CH1 probes.

Every other channel drives its own 500 ohm dummy load (so it is never open-circuit).
"""

from __future__ import annotations

from rig.errors import StimrigError


class SimLoadBox:
    """The bench-side model (state only). The rig reaches it through the LoadBox protocol."""

    def __init__(self, loads_ohm: dict[str, float], channels: int) -> None:
        self._loads = dict(loads_ohm)
        self._channels = channels
        self.route: tuple[int, str] | None = None

    def loads(self) -> dict[str, float]:
        return dict(self._loads)

    def connect(self, dut_channel: int, load: str) -> None:
        if load not in self._loads:
            raise StimrigError(
                f"simulated load box: no load {load!r}; this bench has {sorted(self._loads)}"
            )
        if not 1 <= dut_channel <= self._channels:
            raise StimrigError(
                f"simulated load box: no DUT channel {dut_channel}; expected 1..{self._channels}"
            )
        self.route = (dut_channel, load)

    @property
    def connected(self) -> tuple[int, str] | None:
        return self.route

    def load_ohm(self) -> float | None:
        return None if self.route is None else self._loads[self.route[1]]

    def close(self) -> None:
        self.route = None
