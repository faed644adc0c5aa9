"""Shared steps of the certification suite: drive a program to steady state and capture it.

Captures are taken once per (program, channel, load) and shared by the tests that measure different
quantities on them; each test still attaches the evidence it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from rig.analysis import PulseTrain
from rig.capture import Capture
from rig.config.program import Program
from rig.errors import StimrigError
from rig.evidence import CaptureEvidence
from rig.measurements import Measurement
from rig.procedures import acquisition, analyse, capture, plan_for, settle_time_s

MEASUREMENT_LOAD_OHM = 500.0  # IEC 60601-2-10 output limits and the FDA 510(k) table are at 500 ohm


def load_named(bench: Any, ohm: float) -> str:
    """The bench's load of ``ohm`` (math.inf: the open circuit)."""
    for name, value in bench.load.loads().items():
        if value == ohm or (math.isfinite(ohm) and abs(value - ohm) <= 1e-6 * ohm):
            return name
    raise StimrigError(
        f"{bench.config.path}: field 'load.loads_ohm' has no {ohm:g} ohm load (have {bench.load.loads()}); "
        f"the certification suite measures into {ohm:g} ohm"
    )


@dataclass
class SteadyState:
    program: Program
    channel: int
    load_ohm: float
    amplitude_mA: float
    train: Capture
    pulse: Capture
    train_analysis: PulseTrain
    pulse_analysis: PulseTrain

    def to_mA(self, volts: float) -> float:
        return 1000.0 * volts / self.load_ohm

    def to_uC(self, volt_seconds: float) -> float:
        return 1e6 * volt_seconds / self.load_ohm

    evidence: tuple[CaptureEvidence, ...] = ()

    def attach(self, recorder: Any) -> None:
        """Save the captures with the run's results (once) and attach them to this test's report."""
        if not self.evidence:
            labels = {
                "program": self.program.id,
                "mode": f"{self.program.waveform} biphasic, {self.program.frequency_Hz:g} Hz",
                "phase": f"{self.program.phase_duration_us:g} us, gap {self.program.interphase_gap_us:g} us",
                "set amplitude": f"{self.amplitude_mA:g} mA",
                "load": f"{self.load_ohm:g} ohm",
                "channel": self.channel,
                "y axis": "V across load (I = V/R)",
            }
            base = f"{self.program.id}-ch{self.channel}-{self.load_ohm:g}ohm"
            self.evidence = tuple(
                CaptureEvidence.render(cap, f"{base}-{kind.replace(' ', '_')}",
                                       f"{self.program.name}: {kind} into {self.load_ohm:g} ohm", labels,
                                       simulated=recorder.simulated)
                for cap, kind in ((self.pulse, "single pulse"), (self.train, "pulse train"))
            )
        for ev in self.evidence:
            ev.save(recorder.log)
            ev.attach()


RUNNING_STATES = ("ramp_up", "on", "ramp_down", "off_phase")
OUTPUT_RUNNING = Measurement("output_running", "bool", low=1, high=1,
                             description="STATUS shows the channel running before it is measured")


def start_running(bench: Any, dut: Any, measure: Any, program: Program, channel: int, amplitude_mA: float,
                  settle_s: float, **start: Any) -> None:
    """START ``program`` on ``channel``, let it run ``settle_s`` and require STATUS to show it running:
    a channel the device has already stopped (e.g. a fault trip) FAILs the test here, with the state
    and fault it reports, instead of leaving the scope waiting for pulses that never come."""
    dut.start(program.id, [channel], amplitude_mA, **start)
    bench.wait(settle_s)
    status = {s.channel: s for s in dut.status()}[channel]
    measure.require(OUTPUT_RUNNING, float(status.state in RUNNING_STATES), channel=channel, program=program.id,
                    state=status.state, fault=status.fault, after_s=settle_s)


def drive_to_steady_state(bench: Any, dut: Any, scope: Any, measure: Any, program: Program,
                          channel: int) -> SteadyState:
    load_ohm = MEASUREMENT_LOAD_OHM
    bench.load.connect(channel, load_named(bench, load_ohm))
    amplitude = program.amplitude_mA
    cfg = bench.config.scope
    plan = plan_for(bench.device, amplitude, load_ohm, cfg.measure_channel, cfg.probe_attenuation)
    start_running(bench, dut, measure, program, channel, amplitude, settle_time_s(program))
    train = capture(scope, acquisition(program, plan, "train"), cfg.timeout_s)
    pulse = capture(scope, acquisition(program, plan, "pulse"), cfg.timeout_s)
    dut.stop([channel])
    return SteadyState(program, channel, load_ohm, amplitude, train, pulse, analyse(train), analyse(pulse))


@pytest.fixture(scope="session")
def _steady_cache() -> dict[tuple[str, int], SteadyState]:
    return {}


@pytest.fixture
def steady_state(
    bench: Any, dut: Any, scope: Any, measure: Any, program: Program, channel: int,
    _steady_cache: dict[tuple[str, int], SteadyState],
) -> SteadyState:
    key = (program.id, channel)
    if key not in _steady_cache:
        _steady_cache[key] = drive_to_steady_state(bench, dut, scope, measure, program, channel)
    state = _steady_cache[key]
    state.attach(measure)
    return state
