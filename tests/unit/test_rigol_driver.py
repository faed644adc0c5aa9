"""The rig's Rigol DS1000Z driver against the emulated DS1104Z (simulator.instruments.rigol) over pyvisa-py
on a raw TCP socket: selection by *IDN?, configuration and its error-queue check, single-shot and
armed acquisitions, the chunked RAW read, and the preamble validation."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rig.config.bench import ScopeConfig
from rig.errors import InstrumentError
from rig.instruments import open_scope
from rig.instruments import rigol as driver
from rig.instruments.select import SCOPE_FAMILIES, family_for
from rig.interfaces import AcquisitionSetup, ChannelSetup, InstrumentIdentity, Oscilloscope, TriggerSetup
from simulator.instruments.rigol import RigolDS1000Z
from simulator.instruments.socket_server import ScpiSocketServer

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
class Host:
    """A ScopeHost and a rig Clock at once: a virtual clock that moves only when asked."""

    t_s: float = 0.0
    marker_at_s: float | None = None

    def now(self) -> float:
        return self.t_s

    def advance_to(self, t_s: float) -> None:
        self.t_s = max(self.t_s, t_s)

    def wait(self, seconds: float) -> None:
        self.advance_to(self.t_s + seconds)

    def every(self, interval_s: float, callback: Any) -> Any:
        raise NotImplementedError

    def signal(self, channel: int) -> Any:
        if channel == 1:
            return Pulses()
        if channel == 2:
            return Marker(self)
        return None

    def probe_attenuation(self, channel: int) -> float:
        return 10.0 if channel == 1 else 1.0

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng(zlib.crc32(stream.encode()))


@dataclass
class Marker:
    """A 5 V logic edge at ``host.marker_at_s`` (the load box marker)."""

    host: Host

    def render(self, t0_s: float, dt_s: float, n: int) -> np.ndarray:
        t = t0_s + np.arange(n) * dt_s
        at = self.host.marker_at_s
        return np.where(t >= at, 5.0, 0.0) if at is not None else np.zeros(n)


@dataclass
class Rig:
    host: Host
    instrument: RigolDS1000Z
    server: ScpiSocketServer
    scope: Oscilloscope
    reads: list[tuple[int, int]] = field(default_factory=list)  # (STARt, STOP) of every :WAVeform:DATA?


@pytest.fixture
def rig() -> Iterator[Rig]:
    host = Host()
    instrument = RigolDS1000Z(host, search_horizon_s=0.05)
    reads: list[tuple[int, int]] = []
    execute = instrument.execute

    def spying(message: bytes | str) -> bytes:
        text = message.decode() if isinstance(message, bytes) else message
        if "DATA?" in text.upper():
            reads.append((instrument.settings.wav_start, instrument.settings.wav_stop))
        return execute(message)

    instrument.execute = spying  # type: ignore[method-assign]
    server = ScpiSocketServer(instrument.session, port=0).start()
    scope = open_scope(ScopeConfig(resource=server.resource(), timeout_s=5))
    yield Rig(host, instrument, server, scope, reads)
    scope.close()
    server.stop()


def setup(level_V: float = 1.5, points: int = 20_000, *, reference: str = "center",
          sweep: str = "normal", channels: tuple[ChannelSetup, ...] | None = None,
          trigger_channel: int = 1, scale_s: float = 1e-4) -> AcquisitionSetup:
    return AcquisitionSetup(
        channels=channels or (ChannelSetup(channel=1, scale_V_per_div=0.5, offset_V=1.5, probe_attenuation=10.0),),
        time_scale_s_per_div=scale_s,
        trigger=TriggerSetup(source_channel=trigger_channel, level_V=level_V, slope="positive", sweep=sweep),  # type: ignore[arg-type]
        points=points,
        time_reference=reference,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------------------------------------ selection


def test_idn_matching_and_registration() -> None:
    def idn(text: str) -> InstrumentIdentity:
        return InstrumentIdentity.from_idn(text)

    for good in ("RIGOL TECHNOLOGIES,DS1104Z,DS1ZA1,00.04.04.SP4", "RIGOL TECHNOLOGIES,DS1054Z,DS1ZA1,00.04.03",
                 "RIGOL TECHNOLOGIES,DS1104Z Plus,DS1ZC1,00.04.05", "RIGOL TECHNOLOGIES,MSO1104Z-S,DS1ZE1,1"):
        assert driver.matches(idn(good)), good
    for bad in ("RIGOL TECHNOLOGIES,DS1202Z-E,DS1ZD1,1", "RIGOL TECHNOLOGIES,DS2072A,DS2A1,1",
                "KEYSIGHT TECHNOLOGIES,DSO-X 3034T,MY1,07.20", "RIGOL TECHNOLOGIES,DG1022Z,DG1,1"):
        assert not driver.matches(idn(bad)), bad
    assert "rigol_ds1000z" in {f.key for f in SCOPE_FAMILIES}
    identity = idn("RIGOL TECHNOLOGIES,DS1104Z,DS1ZA1,00.04.04.SP4")
    assert family_for(ScopeConfig(resource="x"), identity, "", "x").key == "rigol_ds1000z"
    assert family_for(ScopeConfig(resource="x", driver="rigol_ds1000z"), identity, "", "x").key == "rigol_ds1000z"


def test_open_scope_picks_the_rigol_driver_from_idn(rig: Rig) -> None:
    assert isinstance(rig.scope, driver.RigolDS1000Z)
    assert rig.scope.identity().model == "DS1104Z"


def test_memory_depth_choice() -> None:
    # at least the points asked for, the sample rate within the maximum for the channels on
    assert driver.memory_depth_for(200_000, 1, 200e-6) == 1_200_000  # 500 MSa/s over 2.4 ms
    assert driver.memory_depth_for(2_000_000, 1, 0.5) == 12_000_000
    assert driver.memory_depth_for(500_000, 2, 0.2) == 600_000
    assert driver.memory_depth_for(100_000, 4, 1e-6) == 3_000  # 250 MSa/s x 12 us: only 3 k is fillable
    assert driver.memory_depth_for(20_000, 1, 1e-6) == 12_000


# ------------------------------------------------------------------------------------------------ captures


def test_capture_of_the_emulated_pulses(rig: Rig) -> None:
    rig.scope.configure(setup())
    rig.scope.single(timeout_s=5)
    capture = rig.scope.read_waveform(1)
    volts, times = capture.volts(), capture.times()
    assert capture.n == 120_000 and capture.code_range == (0, 255) and capture.clipped_fraction() == 0
    assert capture.x_increment_s == pytest.approx(1e-8)  # 120 k points over the 1.2 ms screen
    assert np.median(volts[volts > 1.5]) == pytest.approx(PULSE_V, abs=0.05)
    assert np.median(volts[volts < 1.5]) == pytest.approx(0.0, abs=0.05)
    rising = times[np.flatnonzero((volts[:-1] < 1.5) & (volts[1:] >= 1.5)) + 1]
    assert np.min(np.abs(rising)) < 2 * capture.x_increment_s  # the trigger edge sits at t = 0
    assert times[0] == pytest.approx(-6e-4)  # 'center': the trigger mid-screen
    pre = capture.meta["preamble"]
    assert capture.y_reference == pre["y_origin"] + pre["y_reference"] and pre["y_reference"] == 127


def test_left_reference_puts_the_trigger_one_division_from_the_left_edge(rig: Rig) -> None:
    rig.scope.configure(setup(reference="left"))
    rig.scope.single(timeout_s=5)
    capture = rig.scope.read_waveform(1)
    assert capture.times()[0] == pytest.approx(-1e-4)
    assert rig.instrument.settings.time_offset_s == pytest.approx(5e-4)
    assert rig.instrument.settings.channels[1].offset_V == pytest.approx(-1.5)  # Rigol sense, negated


def test_a_long_capture_is_read_in_chunks_of_at_most_250000_points(rig: Rig) -> None:
    rig.scope.configure(setup(points=1_000_000))
    rig.scope.single(timeout_s=5)
    capture = rig.scope.read_waveform(1)
    assert capture.n == 1_200_000
    assert rig.reads == [(1, 250_000), (250_001, 500_000), (500_001, 750_000), (750_001, 1_000_000),
                         (1_000_001, 1_200_000)]
    # the chunks join seamlessly: every pulse of the 1.2 ms record is there, each as wide as it is
    volts = capture.volts()
    high = volts > 1.5
    edges = np.flatnonzero(high[1:] != high[:-1])
    assert len(edges) == 2 * math.floor(1.2e-3 / PERIOD_S) or len(edges) == 2 * math.ceil(1.2e-3 / PERIOD_S)
    assert np.sum(high) * capture.x_increment_s == pytest.approx(WIDTH_S * len(edges) / 2, rel=0.01)


def test_smaller_chunks_read_the_same_record(rig: Rig) -> None:
    assert isinstance(rig.scope, driver.RigolDS1000Z)
    rig.scope.configure(setup())
    rig.scope.single(timeout_s=5)
    whole = rig.scope.read_waveform(1).samples
    rig.scope.chunk_points = 7_000
    rig.reads.clear()
    assert np.array_equal(rig.scope.read_waveform(1).samples, whole)
    assert len(rig.reads) == math.ceil(120_000 / 7_000) and max(b - a + 1 for a, b in rig.reads) == 7_000
    with pytest.raises(ValueError):
        driver.RigolDS1000Z(None, "x", chunk_points=250_001)  # type: ignore[arg-type]


def test_auto_sweep_completes_without_a_trigger(rig: Rig) -> None:
    rig.scope.configure(setup(level_V=1.5, sweep="auto", trigger_channel=3,
                              channels=(ChannelSetup(1, 0.5, 1.5, 10.0), ChannelSetup(3, 0.5, 0.0, 10.0))))
    rig.scope.single(timeout_s=5)  # nothing on CH3 ever triggers: forced after the auto wait
    assert rig.instrument.acquisition is not None and not rig.instrument.acquisition.triggered
    assert rig.scope.read_waveform(1).n == 60_000  # two channels on: the 60 k step is the first >= 20 k


def test_no_trigger_times_out_and_the_session_recovers(rig: Rig) -> None:
    rig.scope.configure(setup(level_V=3.5))  # never reached
    with pytest.raises(InstrumentError, match=r"no trigger / acquisition did not complete within 0\.3 s") as info:
        rig.scope.single(timeout_s=0.3)
    assert "CHANnel1 at level 3.5 V" in str(info.value)
    rig.scope.configure(setup(level_V=1.5))
    rig.scope.single(timeout_s=5)
    assert rig.scope.read_waveform(1).n == 120_000


def test_arm_then_wait_with_the_benchs_clock(rig: Rig) -> None:
    """The cutoff procedure: arm on the marker (CH2), cause the edge, let bench time run, wait."""
    marker_setup = setup(level_V=2.5, trigger_channel=2, reference="left", points=50_000, scale_s=1e-3,
                         channels=(ChannelSetup(1, 0.5, 1.5, 10.0), ChannelSetup(2, 2.0, 0.0, 1.0)))
    rig.scope.configure(marker_setup)
    t_armed = rig.host.now()
    rig.scope.arm()
    assert rig.host.now() == t_armed  # arming lets no bench time pass
    rig.host.wait(1.1e-3)
    rig.host.marker_at_s = rig.host.now() + 1e-4
    rig.host.wait(2e-3)
    assert rig.instrument.status() in ("WAIT", "TD")
    rig.scope.wait_acquired(1.0, rig.host)  # type: ignore[arg-type]
    output, marker = rig.scope.read_waveform(1), rig.scope.read_waveform(2)
    edge = marker.times()[np.flatnonzero(marker.volts() > 2.5)[0]]
    assert edge == pytest.approx(0.0, abs=2 * marker.x_increment_s)
    assert output.n == marker.n == 60_000 and output.times()[0] == pytest.approx(-1e-3)


# ------------------------------------------------------------------------------------------------ failures


def test_configuration_errors_are_read_back_from_the_error_queue(rig: Rig) -> None:
    with pytest.raises(InstrumentError) as info:
        rig.scope.configure(setup(level_V=100.0))  # off the screen of CH1: the scope refuses it
    err = info.value
    assert err.instrument == rig.server.resource()
    assert ":TRIGger:EDGe:LEVel 100" in err.command
    assert '-222,"Data out of range"' in err.problem and "after configuring" in err.problem
    assert err.expected.startswith("an empty error queue")


def test_a_preamble_with_the_wrong_number_of_fields_is_refused(rig: Rig) -> None:
    rig.scope.configure(setup())
    rig.scope.single(timeout_s=5)
    rig.instrument.preamble = lambda: "0,2,120000,1,1.000000e-08,-6.000000e-04,0,2.000000e-02,-75"  # type: ignore[method-assign]
    with pytest.raises(InstrumentError) as info:
        rig.scope.read_waveform(1)
    err = info.value
    assert err.instrument == rig.server.resource() and err.command == ":WAVeform:PREamble?"
    assert "preamble has 9 fields" in err.problem and err.expected.startswith("10 comma-separated fields")


def test_a_preamble_with_a_fractional_integer_field_is_refused(rig: Rig) -> None:
    rig.scope.configure(setup())
    rig.scope.single(timeout_s=5)
    rig.instrument.preamble = lambda: "0,2,120000,1,1.000000e-08,-6.000000e-04,0,2.000000e-02,-75.5,127"  # type: ignore[method-assign]
    with pytest.raises(InstrumentError, match="unparsable preamble"):
        rig.scope.read_waveform(1)


def test_a_record_of_another_length_than_configured_is_refused(rig: Rig) -> None:
    rig.scope.configure(setup())
    rig.scope.single(timeout_s=5)
    rig.instrument.settings.memory_depth = 12_000  # changed behind the driver's back
    rig.instrument.execute(b":SINGle\n")
    rig.instrument.execute(b":TRIGger:STATus?\n")
    rig.instrument.execute(b":TRIGger:STATus?\n")
    with pytest.raises(InstrumentError, match="the record holds 12000 points"):
        rig.scope.read_waveform(1)


def test_configure_commands_follow_the_programming_guide() -> None:
    commands = driver.configure_commands(setup(reference="left"), instrument="x")
    assert commands[:2] == ["*CLS", ":RUN"]
    assert ":CHANnel1:OFFSet -1.5" in commands and ":CHANnel2:DISPlay OFF" in commands
    assert ":TIMebase:MAIN:OFFSet 0.0005" in commands and ":ACQuire:MDEPth 120000" in commands
    assert commands[-2:] == [":WAVeform:MODE RAW", ":WAVeform:FORMat BYTE"]
    with pytest.raises(InstrumentError, match="no channel 5"):
        driver.configure_commands(setup(trigger_channel=5), instrument="x")
