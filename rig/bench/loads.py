"""Load boxes of a real bench. (The simulated one lives in simulator.loadbox.)"""

from __future__ import annotations

from rig.errors import StimrigError


class FixedLoad:
    """A bench without a switchable load box: one resistor hard-wired to one DUT channel.

    Asking for any other routing is an error, so a test never measures a load it thinks it has.
    """

    def __init__(self, loads_ohm: dict[str, float], load: str, dut_channel: int) -> None:
        self._loads = dict(loads_ohm)
        self._route = (dut_channel, load)

    def loads(self) -> dict[str, float]:
        return dict(self._loads)

    def connect(self, dut_channel: int, load: str) -> None:
        if (dut_channel, load) != self._route:
            wired_ch, wired_load = self._route
            raise StimrigError(
                f"fixed load: this bench has only {wired_load} ({self._loads[wired_load]:g} ohm) wired to DUT "
                f"channel {wired_ch}; a test asked for {load} on channel {dut_channel} "
                "(expected a bench with a switchable load box for that)"
            )

    def mark(self) -> float | None:
        raise StimrigError(
            "fixed load: this bench has no marker output, so event-to-cutoff latencies cannot be timed "
            "(expected a relay load box whose marker output is wired to the scope's marker channel)"
        )

    @property
    def connected(self) -> tuple[int, str] | None:
        return self._route

    def close(self) -> None:
        pass
