"""Device model fixture: channel count, output stage, hard limits and tolerances, each with its source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rig.config.sources import require_sources


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identity(_Strict):
    serial: str = Field(min_length=1)
    firmware_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")


class OutputStage(_Strict):
    regulation: Literal["constant_current"] = "constant_current"
    compliance_voltage_V: float = Field(gt=0, le=500)
    rise_time_us: float = Field(gt=0, le=100, description="10-90 % rise time of the output stage")
    command_latency_ms: float = Field(ge=0, le=1000, description="firmware time to process one command")


class Limits(_Strict):
    max_amplitude_mA: float = Field(gt=0, le=200)
    amplitude_resolution_mA: float = Field(gt=0, le=10)
    min_phase_us: float = Field(gt=0)
    max_phase_us: float = Field(gt=0, le=100_000)
    min_frequency_Hz: float = Field(gt=0)
    max_frequency_Hz: float = Field(gt=0, le=10_000)
    max_interphase_gap_us: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.min_phase_us > self.max_phase_us:
            raise ValueError("min_phase_us must not exceed max_phase_us")
        if self.min_frequency_Hz > self.max_frequency_Hz:
            raise ValueError("min_frequency_Hz must not exceed max_frequency_Hz")
        return self


class Tolerances(_Strict):
    amplitude_pct: float = Field(gt=0, le=50)
    amplitude_floor_mA: float = Field(ge=0)
    frequency_pct: float = Field(gt=0, le=50)
    phase_duration_pct: float = Field(gt=0, le=50)
    phase_duration_floor_us: float = Field(ge=0)
    max_net_charge_uC: float = Field(gt=0)

    def amplitude_band_mA(self, nominal_mA: float) -> float:
        """Half-width of the acceptance band: the larger of the relative and the absolute term."""
        return max(abs(nominal_mA) * self.amplitude_pct / 100.0, self.amplitude_floor_mA)

    def phase_band_us(self, nominal_us: float) -> float:
        return max(nominal_us * self.phase_duration_pct / 100.0, self.phase_duration_floor_us)

    def frequency_band_Hz(self, nominal_Hz: float) -> float:
        return nominal_Hz * self.frequency_pct / 100.0


class Electrode(_Strict):
    min_area_cm2: float = Field(gt=0, description="conductive area of the smallest electrode offered")


class Safety(_Strict):
    """Safety cutoffs and the limits the certification suite holds them to."""

    supervision_timeout_s: float = Field(
        ge=0.1, le=32.0, description="no valid controller frame for this long = link lost (BLE: 100 ms .. 32 s)"
    )
    link_loss_ramp_down_s: float = Field(ge=0, le=10, description="output ramps to zero over this after link loss")
    link_loss_cutoff_max_s: float = Field(
        gt=0, le=60, description="limit: controller silent -> last pulse above 10 % of its amplitude"
    )
    on_reconnect: Literal["resume_at_zero", "resume_ramp"] = Field(
        description="after a link-loss cutoff, when the controller is heard again: stay at zero until the "
        "operator starts again (resume_at_zero), or ramp back up to the set amplitude (resume_ramp)"
    )
    cutoff_test_amplitudes_mA: tuple[float, float] = Field(
        description="minimum and maximum amplitude every cutoff test runs at"
    )
    load_fault_detect_pulses: int = Field(
        ge=1, le=10, description="electrode-off / short / over-current seen on this many consecutive pulses trips"
    )
    electrode_off_threshold_ohm: float = Field(
        gt=10_000, description="sensed impedance above this = electrode off (the 10 kohm test load must still work)"
    )
    electrode_off_cutoff_max_ms: float = Field(gt=0, le=10_000, description="limit: electrode off -> output stopped")
    short_circuit_threshold_ohm: float = Field(ge=0, lt=500, description="sensed load impedance below this = short")
    overcurrent_margin_pct: float = Field(
        gt=0, le=100, description="sensed current above the commanded by more than this (+1 DAC step) = over-current"
    )
    overcurrent_cutoff_max_ms: float = Field(gt=0, le=10_000, description="limit: short / over-current -> output off")
    emergency_stop_max_ms: float = Field(gt=0, le=1000, description="limit: EMERGENCY_STOP frame -> all channels at 0")
    watchdog_period_ms: float = Field(gt=0, le=10_000, description="main loop silent this long = watchdog resets MCU")
    watchdog_cutoff_max_ms: float = Field(gt=0, le=10_000, description="limit: main loop hung -> output disabled")
    max_amplitude_step_mA: float = Field(gt=0, le=200, description="largest amplitude change pulse to pulse")
    low_battery_V: float = Field(gt=0, le=50, description="battery below this = orderly ramp-down, no new START")
    low_battery_ramp_down_s: float = Field(ge=0, le=30, description="output ramps to zero over this on low battery")
    low_battery_cutoff_max_s: float = Field(
        gt=0, le=60, description="limit: battery below low_battery_V -> last pulse above 10 % of its amplitude"
    )
    session_test_duration_s: float = Field(
        gt=0, le=3600, description="treatment time the end-of-session test sets with START"
    )
    session_end_max_overrun_ms: float = Field(
        ge=0, le=60_000, description="limit: end of the set treatment time -> last pulse above 10 % of amplitude"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Safety:
        if self.link_loss_cutoff_max_s < self.supervision_timeout_s:
            raise ValueError(
                "safety.link_loss_cutoff_max_s is below safety.supervision_timeout_s: no device could meet it"
            )
        if self.watchdog_cutoff_max_ms < self.watchdog_period_ms:
            raise ValueError(
                "safety.watchdog_cutoff_max_ms is below safety.watchdog_period_ms: no device could meet it"
            )
        if self.low_battery_cutoff_max_s < self.low_battery_ramp_down_s:
            raise ValueError(
                "safety.low_battery_cutoff_max_s is below safety.low_battery_ramp_down_s: no device could meet it"
            )
        lo, hi = self.cutoff_test_amplitudes_mA
        if not 0 < lo < hi:
            raise ValueError("safety.cutoff_test_amplitudes_mA must be [minimum, maximum] with 0 < minimum < maximum")
        return self


class Radio(_Strict):
    """The device's BLE radio: what its link to the clinic controller is made of."""

    phy: Literal["LE_1M", "LE_2M", "LE_CODED_S2", "LE_CODED_S8"] = Field(description="PHY of the connection")
    tx_power_dBm: float = Field(ge=-20, le=20, description="transmit power (BLE core spec: -20..+20 dBm)")
    connection_interval_ms: float = Field(ge=7.5, le=4000, description="BLE connection interval, 1.25 ms steps")
    peripheral_latency: int = Field(ge=0, le=499, description="connection events the device may skip")
    claimed_range_m: float = Field(gt=0, le=1000, description="the range the product claims the link holds")

    @model_validator(mode="after")
    def _spec_steps(self) -> Radio:
        steps = self.connection_interval_ms / 1.25
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError("radio.connection_interval_ms must be a multiple of 1.25 ms (BLE core spec)")
        return self


SOURCED_SECTIONS = ("output", "limits", "tolerances", "electrode", "safety", "radio")


class DeviceModel(_Strict):
    schema_: Literal["stimrig.device/1"] = Field(alias="schema")
    model: str = Field(min_length=1)
    manufacturer: str = Field(min_length=1)
    description: str = ""
    channels: int = Field(ge=1, le=16)
    identity: Identity
    output: OutputStage
    limits: Limits
    tolerances: Tolerances
    electrode: Electrode
    safety: Safety
    radio: Radio
    sources: dict[str, str] = Field(
        description="for every numeric field of output/limits/tolerances/electrode: where the number comes from"
    )

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> DeviceModel:
        require_sources(self, self.sources, SOURCED_SECTIONS, text_sections=SOURCED_SECTIONS)
        interval_s = self.radio.connection_interval_ms / 1000.0
        if self.safety.supervision_timeout_s <= 2 * (1 + self.radio.peripheral_latency) * interval_s:
            raise ValueError(
                "safety.supervision_timeout_s must exceed (1 + radio.peripheral_latency) x "
                "radio.connection_interval_ms x 2 (BLE core spec)"
            )
        steps = self.safety.supervision_timeout_s / 0.010
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError("safety.supervision_timeout_s must be a multiple of 10 ms (BLE core spec)")
        return self

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "unsourced")
