"""The rig's Keysight driver against the emulated InfiniiVision (simulator.instruments), over pyvisa-py TCP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from rig.config.bench import ScopeConfig
from rig.errors import InstrumentError
from rig.instruments import KeysightInfiniiVision, open_scope
from rig.interfaces import AcquisitionSetup, ChannelSetup, Oscilloscope, TriggerSetup

emulator = pytest.importorskip("simulator.instruments.keysight")
socket_server = pytest.importorskip("simulator.instruments.socket_server")

PULSE_V = 3.0
PERIOD_S = 1e-3
WIDTH_S = 2e-4
FIRST_EDGE_S = 0.5e-3


@dataclass
class Pulses:
    """Rectangular pulses at the probe tip: PULSE_V high for WIDTH_S every PERIOD_S from FIRST_EDGE_S."""

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        t = t0_s + np.arange(n) * dt_s
        high = (np.mod(t - FIRST_EDGE_S, PERIOD_S) < WIDTH_S) & (t >= FIRST_EDGE_S)
        return np.where(high, PULSE_V, 0.0)


@dataclass
class Bench:
    """A ScopeHost: a virtual clock that moves only when asked, pulses wired to channel 1, 10:1 probes."""

    t_s: float = 0.0

    def now(self) -> float:
        return self.t_s

    def advance_to(self, t_s: float) -> None:
        self.t_s = max(self.t_s, t_s)

    def signal(self, channel: int) -> Pulses | None:
        return Pulses() if channel == 1 else None

    def probe_attenuation(self, channel: int) -> float:
        return 10.0

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng(sum(stream.encode()))


@pytest.fixture
def emulated_scope() -> Iterator[Oscilloscope]:
    instrument = emulator.KeysightInfiniiVision(Bench(), search_horizon_s=0.05)
    server = socket_server.ScpiSocketServer(instrument.session, port=0).start()
    scope = open_scope(ScopeConfig(resource=server.resource(), timeout_s=5))
    yield scope
    scope.close()
    server.stop()


def _setup(level_V: float, points: int = 20_000) -> AcquisitionSetup:
    return AcquisitionSetup(
        channels=(ChannelSetup(channel=1, scale_V_per_div=0.5, offset_V=1.5, probe_attenuation=10.0),),
        time_scale_s_per_div=1e-4,
        trigger=TriggerSetup(source_channel=1, level_V=level_V, slope="positive"),
        points=points,
        time_reference="center",
    )


def test_capture_of_the_emulated_pulses(emulated_scope: Oscilloscope) -> None:
    assert isinstance(emulated_scope, KeysightInfiniiVision)
    assert emulated_scope.identity().model == "DSO-X 3034T"
    emulated_scope.configure(_setup(level_V=1.5))
    emulated_scope.single(timeout_s=5)
    capture = emulated_scope.read_waveform(1)
    volts, times = capture.volts(), capture.times()
    assert capture.n > 1000 and capture.clipped_fraction() == 0
    assert np.median(volts[volts > 1.5]) == pytest.approx(PULSE_V, abs=0.1)
    assert np.median(volts[volts < 1.5]) == pytest.approx(0.0, abs=0.1)
    rising = np.flatnonzero((volts[:-1] < 1.5) & (volts[1:] >= 1.5))
    assert np.min(np.abs(times[rising])) < 5 * capture.x_increment_s  # the trigger edge sits at t = 0


def test_no_trigger_times_out_and_the_session_recovers(emulated_scope: Oscilloscope) -> None:
    emulated_scope.configure(_setup(level_V=10.0))  # never reached
    with pytest.raises(InstrumentError, match=r"no trigger / acquisition did not complete within 0\.3 s") as info:
        emulated_scope.single(timeout_s=0.3)
    assert "CHANnel1 at level 10 V" in str(info.value)
    emulated_scope.configure(_setup(level_V=1.5))
    emulated_scope.single(timeout_s=5)
    assert emulated_scope.read_waveform(1).n > 1000
