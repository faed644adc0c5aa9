"""Stimulation program fixture: waveform, timing, ramps, ON/OFF cycling and session length."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Cycle(BaseModel):
    """ON/OFF duty cycling (EMS). Ramps happen inside each ON period."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    on_s: float = Field(gt=0)
    off_s: float = Field(ge=0)


class Program(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["stimrig.program/1"] = Field(alias="schema")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    name: str = Field(min_length=1)
    category: Literal["tens", "ems", "relaxation"]
    waveform: Literal["symmetric", "asymmetric"]
    frequency_Hz: float = Field(gt=0)
    phase_duration_us: float = Field(gt=0)
    phase2_duration_us: float | None = Field(
        default=None, gt=0, description="asymmetric only: the charge-balancing second phase"
    )
    interphase_gap_us: float = Field(ge=0)
    amplitude_mA: float = Field(gt=0, description="nominal treatment amplitude the suite certifies at")
    ramp_up_s: float = Field(ge=0)
    ramp_down_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    cycle: Cycle | None = None
    source: str = Field(min_length=1, description="where the parameters come from")

    @model_validator(mode="after")
    def _consistent(self) -> Program:
        if self.waveform == "asymmetric":
            if self.phase2_duration_us is None:
                raise ValueError("phase2_duration_us is required for an asymmetric waveform")
            if self.phase2_duration_us <= self.phase_duration_us:
                raise ValueError("phase2_duration_us must be longer than phase_duration_us (charge balance)")
        elif self.phase2_duration_us is not None:
            raise ValueError("phase2_duration_us is only allowed for an asymmetric waveform")
        period_us = 1e6 / self.frequency_Hz
        if self.pulse_width_us >= period_us:
            raise ValueError(
                f"pulse ({self.pulse_width_us:g} us) does not fit in one period ({period_us:g} us): "
                "phase_duration_us + interphase_gap_us + phase2 must be shorter than 1/frequency_Hz"
            )
        if self.cycle is not None and self.ramp_up_s + self.ramp_down_s > self.cycle.on_s:
            raise ValueError("ramp_up_s + ramp_down_s must fit inside cycle.on_s")
        return self

    @property
    def phase2_us(self) -> float:
        return self.phase2_duration_us if self.phase2_duration_us is not None else self.phase_duration_us

    @property
    def phase2_amplitude_ratio(self) -> float:
        """Second-phase amplitude relative to the first, so that the two phase charges cancel."""
        return self.phase_duration_us / self.phase2_us

    @property
    def pulse_width_us(self) -> float:
        return self.phase_duration_us + self.interphase_gap_us + self.phase2_us
