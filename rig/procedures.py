"""Measurement procedures the certification suite shares: scope set-ups derived from the program
and the load, and the capture sequence. They use only the bench protocols, so they run unchanged on
a simulated and on a real bench."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rig.analysis import PulseTrain, analyse_pulse_train
from rig.capture import Capture
from rig.config.device import DeviceModel
from rig.config.program import Program
from rig.interfaces import AcquisitionSetup, ChannelSetup, Oscilloscope, TriggerSetup

SETTLE_AFTER_RAMP_S = 0.25
SCREEN_DIVISIONS = 10
VERTICAL_HEADROOM_DIV = 3.2  # the expected peak sits at 3.2 of the 4 divisions above centre
MIN_POINTS = 100_000
MAX_POINTS = 2_000_000


def step_125_at_least(x: float) -> float:
    """Smallest value of the 1-2-5 sequence that is >= x (scope V/div and s/div steps)."""
    if x <= 0 or not math.isfinite(x):
        raise ValueError(f"scale must be positive and finite, got {x}")
    decade = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * decade >= x * (1 - 1e-12):
            return m * decade
    return 10.0 * decade


def delivered_current_mA(amplitude_mA: float, load_ohm: float, compliance_V: float) -> float:
    """What a constant-current output can drive into a resistor: its set-point, or less at compliance."""
    return min(amplitude_mA, 1000.0 * compliance_V / load_ohm)


@dataclass(frozen=True)
class Plan:
    """Where the signal is expected, so the scope can be set up to see all of it."""

    peak_V: float
    load_ohm: float
    channel: int
    probe_attenuation: float


def acquisition(
    program: Program,
    plan: Plan,
    span: Literal["pulse", "train"],
    *,
    sweep: Literal["normal", "auto"] = "normal",
    trigger_level_V: float | None = None,
) -> AcquisitionSetup:
    """Scope set-up that shows ``plan.peak_V`` on screen; triggers at half of it unless told otherwise."""
    volts_per_div = step_125_at_least(max(plan.peak_V, 0.05) / VERTICAL_HEADROOM_DIV)
    width_s = program.pulse_width_us * 1e-6
    if span == "pulse":
        s_per_div = step_125_at_least(width_s / 7.0)  # the pulse fills most of the 9 post-trigger divisions
        points = 200_000
    else:
        periods = 5.0
        s_per_div = step_125_at_least(periods / program.frequency_Hz / SCREEN_DIVISIONS * 1.1)
        screen_s = s_per_div * SCREEN_DIVISIONS
        finest_phase_s = min(program.phase_duration_us, program.phase2_us) * 1e-6
        # >= 50 samples per phase: charge is integrated sample by sample, so an edge falling between
        # two samples costs at most 1/50 of a phase charge.
        points = int(min(MAX_POINTS, max(MIN_POINTS, screen_s / (finest_phase_s / 50.0))))
    return AcquisitionSetup(
        channels=(ChannelSetup(plan.channel, volts_per_div, 0.0, plan.probe_attenuation),),
        time_scale_s_per_div=s_per_div,
        trigger=TriggerSetup(
            plan.channel,
            level_V=0.5 * plan.peak_V if trigger_level_V is None else trigger_level_V,
            slope="positive",
            sweep=sweep,
        ),
        points=points,
        time_reference="left",
        time_position_s=0.0,
    )


def capture(scope: Oscilloscope, setup: AcquisitionSetup, timeout_s: float) -> Capture:
    scope.configure(setup)
    scope.single(timeout_s)
    return scope.read_waveform(setup.channels[0].channel)


def analyse(capture_: Capture) -> PulseTrain:
    return analyse_pulse_train(
        capture_.samples, capture_.x_increment_s, t0_s=capture_.x_origin_s, gain=capture_.gain, offset=capture_.offset
    )


def settle_time_s(program: Program) -> float:
    """From START until the output holds its set-point (ramp done), inside the first ON period."""
    return program.ramp_up_s + SETTLE_AFTER_RAMP_S


def plan_for(device: DeviceModel, amplitude_mA: float, load_ohm: float, channel: int, probe: float) -> Plan:
    i_mA = delivered_current_mA(amplitude_mA, load_ohm, device.output.compliance_voltage_V)
    return Plan(peak_V=i_mA * load_ohm / 1000.0, load_ohm=load_ohm, channel=channel, probe_attenuation=probe)
