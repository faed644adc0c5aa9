"""Scope model fixture: the datasheet and programmer's-guide numbers an emulated scope is built from.

Every number carries a ``sources`` entry (``"<section>.<field>"``) naming the document it came
from, or saying "assumed" and why. Load with :func:`load_scope_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rig.config.loader import load_yaml_model
from rig.config.sources import require_sources


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Strict):
    manufacturer: str = Field(min_length=1, description="first *IDN? field")
    model: str = Field(min_length=1, description="second *IDN? field, spelled as the instrument does")
    serial: str = Field(min_length=1, description="default serial number (third *IDN? field)")
    firmware: str = Field(min_length=1, description="fourth *IDN? field")


class Vertical(_Strict):
    channels: int = Field(ge=1, le=8)
    adc_bits: int = Field(ge=6, le=16)
    divisions: int = Field(ge=1, le=20, description="vertical divisions on screen")
    bandwidth_Hz: float = Field(gt=0)
    bw_limit_Hz: float = Field(gt=0, description="cut-off of the :CHANnel<n>:BWLimit ON filter")
    ac_coupling_cutoff_Hz: float = Field(gt=0)
    min_scale_V_per_div: float = Field(gt=0, description="at the BNC (probe setting 1:1)")
    max_scale_V_per_div: float = Field(gt=0, description="at the BNC (probe setting 1:1)")
    min_probe_attenuation: float = Field(gt=0)
    max_probe_attenuation: float = Field(gt=0)
    noise_floor_rms_V: float = Field(ge=0, description="front-end noise at the BNC, full bandwidth")
    noise_fraction_of_full_scale: float = Field(
        ge=0, le=0.1, description="scale-dependent part of the rms noise, as a fraction of 8 divisions"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Vertical:
        if self.min_scale_V_per_div > self.max_scale_V_per_div:
            raise ValueError("min_scale_V_per_div must not exceed max_scale_V_per_div")
        if self.min_probe_attenuation > self.max_probe_attenuation:
            raise ValueError("min_probe_attenuation must not exceed max_probe_attenuation")
        if self.bw_limit_Hz > self.bandwidth_Hz:
            raise ValueError("bw_limit_Hz must not exceed bandwidth_Hz")
        return self


class Horizontal(_Strict):
    divisions: int = Field(ge=1, le=20)
    min_scale_s_per_div: float = Field(gt=0)
    max_scale_s_per_div: float = Field(gt=0)
    reference_divisions_from_edge: float = Field(
        ge=0, description="where LEFT / RIGHt put the time reference, in divisions from that edge"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Horizontal:
        if self.min_scale_s_per_div > self.max_scale_s_per_div:
            raise ValueError("min_scale_s_per_div must not exceed max_scale_s_per_div")
        return self


class Acquisition(_Strict):
    max_sample_rate_Sa_per_s: float = Field(gt=0, description="half-channel interleaved")
    max_sample_rate_per_channel_Sa_per_s: float = Field(gt=0, description="both channels of a pair on")
    memory_depth_pts: int = Field(gt=0, description="half-channel interleaved")
    memory_depth_per_channel_pts: int = Field(gt=0, description="both channels of a pair on")
    measurement_record_max_pts: int = Field(gt=0, description=":WAVeform:POINts:MODE NORMal record")
    min_transfer_pts: int = Field(gt=0, description="fewest points :WAVeform:POINts accepts")


class Trigger(_Strict):
    jitter_rms_s: float = Field(ge=0)
    auto_timeout_s: float = Field(gt=0, description="AUTO sweep: wait this long, then acquire untriggered")


class Defaults(_Strict):
    """Settings after *RST (the instrument's Default Setup)."""

    scale_V_per_div: float = Field(gt=0)
    probe_attenuation: float = Field(gt=0)
    time_scale_s_per_div: float = Field(gt=0)
    transfer_points: int = Field(gt=0)
    points_mode: Literal["NORMal", "MAXimum", "RAW"] = "NORMal"
    waveform_format: Literal["BYTE", "WORD", "ASCii"] = "BYTE"
    unsigned: bool = True
    msb_first: bool = True
    sweep: Literal["AUTO", "NORMal"] = "AUTO"


class ChannelMode(_Strict):
    """Acquisition limits while ``up_to_channels`` channels (any of them) are on: scopes such as the
    Rigol DS1000Z share one ADC among the channels that are on, whichever they are."""

    up_to_channels: int = Field(ge=1, le=8)
    max_sample_rate_Sa_per_s: float = Field(gt=0)
    memory_depths_pts: tuple[int, ...] = Field(min_length=1, description=":ACQuire:MDEPth choices, ascending")

    @model_validator(mode="after")
    def _ascending(self) -> ChannelMode:
        depths = self.memory_depths_pts
        if any(d <= 0 for d in depths) or list(depths) != sorted(set(depths)):
            raise ValueError("memory_depths_pts must be positive and strictly ascending")
        return self


class ScreenCodes(_Strict):
    """Waveform codes tied to the graticule (Rigol DS1000Z): ``codes_per_division`` codes per vertical
    division, the screen centre at ``centre_code`` (the preamble's yreference), codes
    ``min_code``..``max_code``; NORMal mode returns the ``screen_points`` of the screen; one memory read
    (:WAVeform:DATA? in RAW mode) returns at most ``max_read_points_*`` points."""

    codes_per_division: int = Field(ge=1)
    centre_code: int = Field(ge=0)
    min_code: int = Field(ge=0)
    max_code: int = Field(ge=1)
    screen_points: int = Field(ge=1)
    max_read_points_byte: int = Field(ge=1)
    max_read_points_word: int = Field(ge=1)
    max_read_points_ascii: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ScreenCodes:
        if not self.min_code <= self.centre_code <= self.max_code:
            raise ValueError("centre_code must lie between min_code and max_code")
        return self


SOURCED_SECTIONS = ("vertical", "horizontal", "acquisition", "trigger", "defaults", "channel_modes", "screen_codes")


class ScopeModel(_Strict):
    schema_: Literal["stimrig.scope_model/1"] = Field(alias="schema")
    description: str = ""
    identity: Identity
    vertical: Vertical
    horizontal: Horizontal
    acquisition: Acquisition
    trigger: Trigger
    defaults: Defaults
    channel_modes: dict[str, ChannelMode] | None = Field(
        default=None, description="limits by number of channels on (scopes that share the ADC that way)"
    )
    screen_codes: ScreenCodes | None = Field(default=None, description="graticule-tied waveform codes")
    sources: dict[str, str] = Field(description="for every numeric field: the document it comes from")

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> ScopeModel:
        require_sources(self, self.sources, SOURCED_SECTIONS)
        return self

    @model_validator(mode="after")
    def _defaults_in_range(self) -> ScopeModel:
        v, h = self.vertical, self.horizontal
        if not v.min_probe_attenuation <= self.defaults.probe_attenuation <= v.max_probe_attenuation:
            raise ValueError("defaults.probe_attenuation is outside the vertical probe range")
        if not h.min_scale_s_per_div <= self.defaults.time_scale_s_per_div <= h.max_scale_s_per_div:
            raise ValueError("defaults.time_scale_s_per_div is outside the horizontal scale range")
        return self

    @model_validator(mode="after")
    def _channel_modes_cover_the_channels(self) -> ScopeModel:
        if self.channel_modes is not None:
            modes = sorted(self.channel_modes.values(), key=lambda m: m.up_to_channels)
            if not modes or modes[-1].up_to_channels < self.vertical.channels:
                raise ValueError("channel_modes must cover every channel of the scope")
            if len({m.up_to_channels for m in modes}) != len(modes):
                raise ValueError("channel_modes: two modes for the same number of channels")
        return self

    def channel_mode(self, channels_on: int) -> ChannelMode:
        """The channel mode in force with ``channels_on`` channels on (at least one counts); needs
        ``channel_modes``."""
        if self.channel_modes is None:
            raise ValueError("this scope model has no channel_modes")
        for mode in sorted(self.channel_modes.values(), key=lambda m: m.up_to_channels):
            if max(1, channels_on) <= mode.up_to_channels:
                return mode
        raise ValueError(f"no channel mode for {channels_on} channels")

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "unsourced")

    @property
    def adc_levels(self) -> int:
        return 1 << self.vertical.adc_bits

    def _interleaved(self, displayed: frozenset[int]) -> bool:
        """Half-channel interleaving: at most one channel of each pair (1,2), (3,4) ... is on."""
        pairs: dict[int, int] = {}
        for ch in displayed:
            pairs[(ch - 1) // 2] = pairs.get((ch - 1) // 2, 0) + 1
        return all(n <= 1 for n in pairs.values())

    def max_sample_rate_Sa_per_s(self, displayed: frozenset[int]) -> float:
        a = self.acquisition
        return a.max_sample_rate_Sa_per_s if self._interleaved(displayed) else a.max_sample_rate_per_channel_Sa_per_s

    def memory_depth_pts(self, displayed: frozenset[int]) -> int:
        a = self.acquisition
        return a.memory_depth_pts if self._interleaved(displayed) else a.memory_depth_per_channel_pts


DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "fixtures" / "instruments" / "keysight_dsox3034t.yaml"
RIGOL_DS1104Z_MODEL_PATH = DEFAULT_MODEL_PATH.with_name("rigol_ds1104z.yaml")


def load_scope_model(path: Path | str | None = None) -> ScopeModel:
    """Read and validate a scope model fixture (default: the DSOX3034T); FixtureError on any problem."""
    return load_yaml_model(path if path is not None else DEFAULT_MODEL_PATH, ScopeModel)
