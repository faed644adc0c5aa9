"""Attenuator model fixture: the data-sheet and command-set facts an emulated step attenuator is built from.

Every number carries a ``sources`` entry (``"<section>.<field>"``) naming where it came from, or saying
"assumed" and why. Load with :func:`load_attenuator_model` (one-line FixtureError on any problem).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rig.config.loader import load_yaml_model
from rig.config.sources import require_sources


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Identity(_Strict):
    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1, description="the MN? reply after its prefix, spelled as the unit does")
    serial: str = Field(min_length=1, description="the SN? reply after its prefix")
    firmware: str = Field(min_length=1, description="the FIRMWARE? reply")


def on_grid(value: float, origin: float, step: float) -> bool:
    """Whether ``value`` is ``origin`` plus a whole number of ``step``s (to 1e-9 of a step)."""
    steps = (value - origin) / step
    return abs(steps - round(steps)) < 1e-9


class Attenuation(_Strict):
    min_dB: float = Field(ge=0, allow_inf_nan=False)
    max_dB: float = Field(gt=0, allow_inf_nan=False)
    step_dB: float = Field(gt=0, allow_inf_nan=False)
    power_on_dB: float = Field(ge=0, allow_inf_nan=False, description="attenuation when the emulator starts")

    @model_validator(mode="after")
    def _consistent(self) -> Attenuation:
        if self.min_dB >= self.max_dB:
            raise ValueError(f"min_dB {self.min_dB} must be below max_dB {self.max_dB}")
        if not on_grid(self.max_dB, self.min_dB, self.step_dB):
            raise ValueError(f"max_dB {self.max_dB} is not min_dB plus a whole number of {self.step_dB} dB steps")
        if not self.min_dB <= self.power_on_dB <= self.max_dB:
            raise ValueError(f"power_on_dB {self.power_on_dB} is outside {self.min_dB}..{self.max_dB} dB")
        if not on_grid(self.power_on_dB, self.min_dB, self.step_dB):
            raise ValueError(f"power_on_dB {self.power_on_dB} is not on the {self.step_dB} dB step grid")
        return self


class Rf(_Strict):
    min_frequency_MHz: float = Field(gt=0, allow_inf_nan=False)
    max_frequency_MHz: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Rf:
        if self.min_frequency_MHz >= self.max_frequency_MHz:
            raise ValueError("min_frequency_MHz must be below max_frequency_MHz")
        return self


class Interface(_Strict):
    telnet_port: int = Field(ge=1, le=65535, description="the real unit's port; the emulator binds where it is told")
    command_termination: Literal["\r\n", "\n"]
    reply_termination: Literal["\r\n", "\n"]


class Replies(_Strict):
    model_prefix: str = Field(min_length=1)
    serial_prefix: str = Field(min_length=1)
    set_ok: str = Field(min_length=1)
    set_failed: str = Field(min_length=1)
    set_clamped_to_max: str = Field(min_length=1)
    unrecognized: str = Field(min_length=1, description="may use {model} and {serial}")

    @model_validator(mode="after")
    def _distinct_set_replies(self) -> Replies:
        if len({self.set_ok, self.set_failed, self.set_clamped_to_max}) != 3:
            raise ValueError("set_ok, set_failed and set_clamped_to_max must differ")
        return self


SOURCED_SECTIONS = ("identity", "attenuation", "rf", "interface")


class AttenuatorModel(_Strict):
    schema_: Literal["stimrig.attenuator_model/1"] = Field(alias="schema")
    description: str = ""
    identity: Identity
    attenuation: Attenuation
    rf: Rf
    interface: Interface
    replies: Replies
    sources: dict[str, str] = Field(description="for every identity field and every number: where it comes from")

    @model_validator(mode="after")
    def _every_fact_has_a_source(self) -> AttenuatorModel:
        require_sources(self, self.sources, SOURCED_SECTIONS, text_sections=("identity",))
        return self

    @property
    def range_dB(self) -> tuple[float, float]:
        return self.attenuation.min_dB, self.attenuation.max_dB

    def quantize_dB(self, value_dB: float) -> float:
        """``value_dB`` rounded to the nearest step (half a step rounds up); not clamped to the range."""
        a = self.attenuation
        if not math.isfinite(value_dB):
            raise ValueError(f"attenuation {value_dB!r} is not a finite number")
        return a.min_dB + math.floor((value_dB - a.min_dB) / a.step_dB + 0.5) * a.step_dB


DEFAULT_MODEL_PATH = (
    Path(__file__).resolve().parents[2] / "fixtures" / "instruments" / "minicircuits_rcdat_6000_90.yaml"
)


def load_attenuator_model(path: Path | str | None = None) -> AttenuatorModel:
    """Read and validate an attenuator model fixture (default: the RCDAT-6000-90); FixtureError on any problem."""
    return load_yaml_model(path if path is not None else DEFAULT_MODEL_PATH, AttenuatorModel)
