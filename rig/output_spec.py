"""The output specification table of the FDA powered muscle stimulator 510(k) guidance (June 1999,
attachment II), filled from analysed scope captures.

Pure functions on numpy arrays and :class:`~rig.analysis.PulseTrain` results; no bench, no pytest.
One table row per output mode (program), from four captures at the device's maximum amplitude:
a single pulse into 500 ohm, 2 kohm and 10 kohm, and a pulse train into 500 ohm (each a
:class:`LoadRecord`). Every field's unit is in its name.

What comes from where:

* waveform: pulsed biphasic when every pulse has a second (negative) phase, monophasic when none has;
* shape: "rectangular" when each phase holds within 10 % of its IEEE 181 state level (or 4 noise rms)
  for at least 80 % of its 50 %-to-50 % duration (``flat_top_fraction``);
* symmetrical phases: both phase amplitudes and both durations equal within the device tolerances;
* maximum output voltage / current per load: the largest phase state level of the single pulse, with
  the device's amplitude tolerance around what a constant-current stage can deliver into that load,
  ``min(I_set, V_compliance / R)``;
* net charge and maximum phase charge: phase integrals of the single pulse at 500 ohm (finest sampling);
* r.m.s. current: from the train's samples over whole periods (first to last pulse start), cross-checked
  against ``sqrt(f * (I1^2 t1 + I2^2 t2))`` of the measured phases (which for equal phases is the
  ``I_peak * sqrt(total phase duration * f)`` of IEC 60601-2-10);
* energy per pulse: the integral of v^2/R over the single pulse at 500 ohm;
* current density: r.m.s. current over the smallest electrode area; power density: the average power
  over the 1 s window of the program's highest duty (ON/OFF cycling) over the same area;
* burst mode and ON/OFF times: from the program fixture, cross-checked against the pulse train where
  its record covers them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rig.analysis import PulseTrain, analyse_pulse_train
from rig.capture import Capture
from rig.config.device import DeviceModel, Tolerances
from rig.config.program import Cycle, Program
from rig.procedures import delivered_current_mA

#: The load of the IEC 60601-2-10 output limits and of most FDA table fields.
TABLE_LOAD_OHM = 500.0
#: The loads of the FDA waveform tracings and the maximum output voltage / current fields.
SPEC_LOADS_OHM = (500.0, 2000.0, 10000.0)

#: IEC 60601-2-10 output limits into 500 ohm (standards.md): r.m.s. current by repetition rate ...
RMS_LIMITS_mA = ((400.0, 50.0), (1500.0, 80.0), (math.inf, 100.0))
#: ... energy per pulse for pulses shorter than 0.1 s, and open-circuit peak voltage.
ENERGY_LIMIT_mJ = 300.0
ENERGY_LIMIT_MAX_PULSE_S = 0.1
OPEN_CIRCUIT_PEAK_LIMIT_V = 500.0
#: IEC 60601-2-10: the instructions must warn about current densities above this (r.m.s.); a flag.
CURRENT_DENSITY_WARNING_mA_per_cm2 = 2.0
#: FDA PMS 510(k) guidance: power density averaged over 1 s at maximum duty "should be below" this.
POWER_DENSITY_GUIDANCE_W_per_cm2 = 0.25
POWER_AVERAGING_S = 1.0

#: Flat top: within this share of the phase's state level (or FLAT_NOISE noise rms, if larger) ...
FLAT_BAND = 0.10
FLAT_NOISE = 4.0
#: ... for at least this share of the phase's 50 %-to-50 % duration makes a phase rectangular.
RECTANGULAR_MIN_FLAT = 0.8
#: Pulses further apart than this many times the shortest spacing start a new group (burst, ON period).
GROUP_GAP_FACTOR = 1.5


def rms_limit_mA(frequency_Hz: float) -> float:
    """IEC 60601-2-10 r.m.s. current limit into 500 ohm for pulses repeating at ``frequency_Hz``."""
    for up_to_Hz, limit in RMS_LIMITS_mA:
        if frequency_Hz <= up_to_Hz:
            return limit
    return RMS_LIMITS_mA[-1][1]  # NaN frequency: the loosest limit (the NaN value FAILs anyway)


@dataclass(frozen=True, eq=False)
class LoadRecord:
    """One capture across a resistive load: the record in volts and its IEEE 181 pulse analysis."""

    load_ohm: float
    volts: np.ndarray
    dt_s: float
    t0_s: float
    analysis: PulseTrain

    @classmethod
    def of(cls, capture: Capture, load_ohm: float, analysis: PulseTrain | None = None) -> LoadRecord:
        if analysis is None:
            analysis = analyse_pulse_train(capture.samples, capture.x_increment_s, t0_s=capture.x_origin_s,
                                           gain=capture.gain, offset=capture.offset)
        return cls(load_ohm, capture.volts(), capture.x_increment_s, capture.x_origin_s, analysis)

    @classmethod
    def of_samples(cls, samples: np.ndarray, dt_s: float, load_ohm: float, *, t0_s: float = 0.0,
                   gain: float = 1.0, offset: float = 0.0) -> LoadRecord:
        analysis = analyse_pulse_train(samples, dt_s, t0_s=t0_s, gain=gain, offset=offset)
        volts = np.asarray(samples, dtype=np.float64) * gain + offset
        return cls(load_ohm, volts, dt_s, t0_s, analysis)

    def mA(self, volts: float) -> float:
        return 1000.0 * volts / self.load_ohm

    def index_at(self, t_s: float) -> int:
        """First sample at or after ``t_s``, inside the record."""
        return int(min(max(math.ceil((t_s - self.t0_s) / self.dt_s - 1e-9), 0), self.volts.size))


# ---- waveform and shape ---------------------------------------------------------------------------
def waveform(pulse: PulseTrain) -> str:
    """'pulsed biphasic' / 'pulsed monophasic' from the phases measured."""
    has2 = np.isfinite(pulse.phase2_amplitude)
    if has2.all():
        return "pulsed biphasic"
    if not has2.any():
        return "pulsed monophasic"
    return f"irregular: {int((~has2).sum())} of {has2.size} pulses without a second phase"


def _phase_windows(pulse: PulseTrain) -> list[tuple[float, float, float]]:
    """(start, duration, signed state level relative to the baseline) of every measured phase."""
    out = []
    for k in range(pulse.n_pulses):
        t1, d1 = float(pulse.start_s[k]), float(pulse.phase1_duration_s[k])
        out.append((t1, d1, float(pulse.phase1_amplitude[k])))
        if math.isfinite(pulse.phase2_amplitude[k]):
            out.append((t1 + d1 + float(pulse.gap_s[k]), float(pulse.phase2_duration_s[k]),
                        -float(pulse.phase2_amplitude[k])))
    return out


def flat_top_fraction(rec: LoadRecord) -> float:
    """Smallest share, over the phases of the record, of a phase's 50 %-to-50 % duration during which it
    holds within ``FLAT_BAND`` of its state level (IEEE 181 histogram level) or ``FLAT_NOISE`` noise rms:
    about 1 for a rectangular pulse (only the edges are outside), well below for a spike or a sine."""
    a = rec.analysis
    noise = a.noise_rms if math.isfinite(a.noise_rms) else 0.0
    worst = math.nan
    for start, duration, level in _phase_windows(a):
        seg = rec.volts[rec.index_at(start):rec.index_at(start + duration)] - a.baseline
        if seg.size == 0:
            continue
        band = max(FLAT_BAND * abs(level), FLAT_NOISE * noise)
        share = float(np.count_nonzero(np.abs(seg - level) <= band)) / seg.size
        worst = share if math.isnan(worst) else min(worst, share)
    return worst


def shape(flat_fraction: float) -> str:
    if flat_fraction >= RECTANGULAR_MIN_FLAT:
        return "rectangular"
    return f"not rectangular (flat top {100.0 * flat_fraction:.0f} % of the phase)"


def symmetrical_phases(rec: LoadRecord, tolerances: Tolerances) -> bool:
    """Both phases of equal amplitude and duration within the device tolerances (mean over the pulses);
    False for a monophasic pulse."""
    a = rec.analysis
    if a.n_pulses == 0 or not np.isfinite(a.phase2_amplitude).all():
        return False
    a1, a2 = rec.mA(float(np.mean(a.phase1_amplitude))), rec.mA(float(np.mean(a.phase2_amplitude)))
    d1, d2 = 1e6 * float(np.mean(a.phase1_duration_s)), 1e6 * float(np.mean(a.phase2_duration_s))
    return abs(a1 - a2) <= tolerances.amplitude_band_mA(a1) and abs(d1 - d2) <= tolerances.phase_band_us(d1)


# ---- output per load ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadOutput:
    """Maximum output into one load: the largest phase state level of the record, and what a
    constant-current stage set to ``I_set`` can deliver there: ``min(I_set, V_compliance / R)``."""

    load_ohm: float
    expected_current_mA: float
    tolerance_mA: float
    current_mA: float
    voltage_V: float
    peak_voltage_V: float  # largest |v - baseline| sample (overshoot included)
    compliance_limited: bool
    net_charge_uC: float  # at compliance an asymmetric pulse's phases no longer balance

    @property
    def expected_voltage_V(self) -> float:
        return self.expected_current_mA * self.load_ohm / 1000.0

    @property
    def tolerance_pct(self) -> float:
        return 100.0 * self.tolerance_mA / self.expected_current_mA


def load_output(rec: LoadRecord, set_amplitude_mA: float, device: DeviceModel) -> LoadOutput:
    a = rec.analysis
    compliance = device.output.compliance_voltage_V
    expected = delivered_current_mA(set_amplitude_mA, rec.load_ohm, compliance)
    level_V = float(np.nanmax(np.concatenate([a.phase1_amplitude, a.phase2_amplitude])))
    return LoadOutput(
        load_ohm=rec.load_ohm,
        expected_current_mA=expected,
        tolerance_mA=device.tolerances.amplitude_band_mA(expected),
        current_mA=rec.mA(level_V),
        voltage_V=level_V,
        peak_voltage_V=peak_excursion_V(rec.volts, baseline=a.baseline),
        compliance_limited=expected < set_amplitude_mA,
        net_charge_uC=net_charge_uC(rec),
    )


def peak_excursion_V(volts: np.ndarray, *, baseline: float | None = None) -> float:
    """Largest |v - baseline| of a record (baseline: its median unless given); NaN for no samples."""
    if volts.size == 0:
        return math.nan
    base = float(np.median(volts)) if baseline is None else baseline
    return float(max(np.max(volts) - base, base - np.min(volts)))


# ---- charge, r.m.s. current, energy -----------------------------------------------------------------
def net_charge_uC(rec: LoadRecord) -> float:
    """The pulse's net charge of largest magnitude in the record (signed)."""
    q = rec.analysis.net_integral
    return 1e6 * float(q[int(np.argmax(np.abs(q)))]) / rec.load_ohm if q.size else math.nan


def max_phase_charge_uC(rec: LoadRecord) -> float:
    a = rec.analysis
    both = np.abs(np.concatenate([a.phase1_integral, a.phase2_integral]))
    return 1e6 * float(np.nanmax(both)) / rec.load_ohm if both.size else math.nan


def energy_per_pulse_mJ(rec: LoadRecord) -> float:
    """Largest energy of a pulse into the load: the integral of v^2 / R over both phases."""
    e = rec.analysis.square_integral
    return 1e3 * float(np.max(e)) / rec.load_ohm if e.size else math.nan


@dataclass(frozen=True)
class RmsCurrent:
    samples_mA: float  # from the samples over whole periods (baseline noise included: conservative)
    noise_corrected_mA: float  # the same with the baseline noise power taken out
    phases_mA: float  # sqrt(f * (I1^2 t1 + I2^2 t2)) of the measured phases
    peak_formula_mA: float  # I_peak * sqrt((t1 + t2) * f): IEC 60601-2-10's formula, exact for equal phases
    periods: int

    @property
    def crosscheck_pct(self) -> float:
        """Noise-corrected sample r.m.s. against the phase formula, in %."""
        return 100.0 * (self.noise_corrected_mA / self.phases_mA - 1.0)


def rms_current(train: LoadRecord) -> RmsCurrent:
    """R.m.s. current of a pulse train over whole periods: from the first pulse's leading 50 % instant
    to the last one's (``n_pulses - 1`` periods), so the record's partial periods do not count."""
    a = train.analysis
    if a.n_pulses < 2:
        raise ValueError(f"the r.m.s. current over whole periods needs two complete pulses; the record has "
                         f"{a.n_pulses}")
    d = train.volts[train.index_at(float(a.start_s[0])):train.index_at(float(a.start_s[-1]))] - a.baseline
    mean_square = float(np.mean(d * d))
    noise = a.noise_rms if math.isfinite(a.noise_rms) else 0.0
    f = a.frequency_Hz
    a1, a2 = a.phase1_amplitude, np.nan_to_num(a.phase2_amplitude)
    t1, t2 = a.phase1_duration_s, np.nan_to_num(a.phase2_duration_s)
    phases = math.sqrt(f * float(np.mean(a1 * a1 * t1 + a2 * a2 * t2)))
    peak = float(np.max(np.maximum(a1, a2)))
    return RmsCurrent(
        samples_mA=train.mA(math.sqrt(mean_square)),
        noise_corrected_mA=train.mA(math.sqrt(max(mean_square - noise * noise, 0.0))),
        phases_mA=train.mA(phases),
        peak_formula_mA=train.mA(peak * math.sqrt(float(np.mean(t1 + t2)) * f)),
        periods=a.n_pulses - 1,
    )


# ---- duty, bursts, ON/OFF ---------------------------------------------------------------------------
def max_on_fraction(cycle: Cycle | None, window_s: float = POWER_AVERAGING_S) -> float:
    """Largest share of any ``window_s`` window that an ON/OFF cycle keeps ON (a window starting with an
    ON period holds the most); 1 without cycling."""
    if cycle is None or cycle.off_s <= 0:
        return 1.0
    period = cycle.on_s + cycle.off_s
    whole = math.floor(window_s / period)
    return min(1.0, (whole * cycle.on_s + min(cycle.on_s, max(0.0, window_s - whole * period))) / window_s)


@dataclass(frozen=True)
class PulseGroups:
    """Pulses in groups (bursts, or ON periods) separated by gaps longer than the pulse spacing."""

    groups: int  # groups seen (partial ones at the record's ends included)
    pulses_per_group: int  # of the complete groups (bounded by a gap on both sides); else the largest
    group_duration_s: float  # first pulse start to last pulse end of a complete group (NaN: none)
    group_period_s: float  # between the starts of successive groups
    off_s: float  # from the end of a group to the start of the next

    @property
    def duty_cycle(self) -> float:
        return self.group_duration_s / self.group_period_s

    @property
    def groups_per_s(self) -> float:
        return 1.0 / self.group_period_s


def pulse_groups(start_s: np.ndarray, pulse_width_s: float) -> PulseGroups | None:
    """Group pulses where a spacing exceeds ``GROUP_GAP_FACTOR`` x the shortest; None when the pulses are
    evenly spaced (a continuous train) or too few to tell."""
    if start_s.size < 3:
        return None
    spacing = np.diff(start_s)
    gaps = np.flatnonzero(spacing > GROUP_GAP_FACTOR * float(np.min(spacing)))
    if gaps.size == 0:
        return None
    firsts = np.concatenate(([0], gaps + 1))
    lasts = np.concatenate((gaps, [start_s.size - 1]))
    sizes = lasts - firsts + 1
    inner = slice(1, -1)  # groups with a gap on both sides are complete
    complete = sizes[inner]
    durations = start_s[lasts[inner]] - start_s[firsts[inner]] + pulse_width_s
    period = float(np.mean(np.diff(start_s[firsts]))) if firsts.size >= 3 else math.nan
    return PulseGroups(
        groups=int(firsts.size),
        pulses_per_group=int(np.median(complete)) if complete.size else int(np.max(sizes)),
        group_duration_s=float(np.mean(durations)) if durations.size else math.nan,
        group_period_s=period,
        off_s=float(np.mean(start_s[firsts[1:]] - start_s[lasts[:-1]])) - pulse_width_s,
    )


# ---- the table row ----------------------------------------------------------------------------------
def mode_of(program: Program) -> str:
    """The output mode as the program fixture sets it."""
    p = program
    text = (f"{p.waveform} biphasic, {p.frequency_Hz:g} Hz, phases {p.phase_duration_us:g}/{p.phase2_us:g} us, "
            f"gap {p.interphase_gap_us:g} us")
    if p.cycle is not None:
        text += f", ON/OFF {p.cycle.on_s:g}/{p.cycle.off_s:g} s"
    return text


def _load_key(load_ohm: float) -> str:
    return f"{load_ohm:g}ohm"


@dataclass(frozen=True)
class OutputSpecification:
    """One row of the FDA 510(k) attachment II output specification table, with units in the names."""

    program: str
    mode: str
    set_amplitude_mA: float
    compliance_voltage_V: float
    waveform: str
    shape: str
    flat_top_fraction: float
    symmetrical_phases: bool
    phase1_duration_us: float
    interphase_gap_us: float
    phase2_duration_us: float  # NaN: monophasic
    pulse_width_us: float  # phase-1 leading to last phase trailing 50 % instant
    frequency_Hz: float
    outputs: tuple[LoadOutput, ...]
    net_charge_uC_500ohm: float
    net_charge_zero_by: str
    max_phase_charge_uC_500ohm: float
    rms: RmsCurrent
    rms_limit_mA: float
    energy_per_pulse_mJ_500ohm: float
    max_on_fraction_1s: float
    average_power_W_500ohm: float  # over the 1 s of highest duty
    electrode_area_cm2: float
    current_density_mA_per_cm2: float
    current_density_peak_formula_mA_per_cm2: float
    power_density_W_per_cm2: float
    burst: PulseGroups | None  # None: continuous
    burst_source: str
    on_time_s: float | None  # None: no ON/OFF cycling
    off_time_s: float | None
    on_off_source: str

    def output_at(self, load_ohm: float) -> LoadOutput:
        for out in self.outputs:
            if out.load_ohm == load_ohm:
                return out
        raise KeyError(f"no output measured into {load_ohm:g} ohm (have {[o.load_ohm for o in self.outputs]})")

    @property
    def current_density_above_warning(self) -> bool:
        """Flag, not a failure: the larger of the measured and the formula density above 2 mA/cm^2."""
        worst = max(self.current_density_mA_per_cm2, self.current_density_peak_formula_mA_per_cm2)
        return not worst <= CURRENT_DENSITY_WARNING_mA_per_cm2

    @property
    def power_density_above_guidance(self) -> bool:
        return not self.power_density_W_per_cm2 <= POWER_DENSITY_GUIDANCE_W_per_cm2

    def row(self) -> dict[str, Any]:
        """The row as a flat dict of strings, numbers and booleans, units in the keys (program and mode
        excluded: they name the row)."""
        row: dict[str, Any] = {
            "waveform": self.waveform,
            "shape": self.shape,
            "flat_top_pct": 100.0 * self.flat_top_fraction,
            "set_amplitude_mA": self.set_amplitude_mA,
            "compliance_voltage_V": self.compliance_voltage_V,
        }
        for out in self.outputs:
            k = _load_key(out.load_ohm)
            row |= {
                f"max_voltage_V_{k}": out.voltage_V,
                f"max_voltage_tolerance_pct_{k}": out.tolerance_pct,
                f"max_current_mA_{k}": out.current_mA,
                f"max_current_tolerance_pct_{k}": out.tolerance_pct,
                f"expected_current_mA_{k}": out.expected_current_mA,
                f"peak_voltage_V_{k}": out.peak_voltage_V,
                f"compliance_limited_{k}": out.compliance_limited,
                f"net_charge_uC_{k}": out.net_charge_uC,
            }
        row |= {
            "pulse_width_us": self.pulse_width_us,
            "frequency_Hz": self.frequency_Hz,
            "beat_frequency_Hz": "n/a (not interferential)",
            "symmetrical_phases": "yes" if self.symmetrical_phases else "no",
            "phase1_duration_us": self.phase1_duration_us,
            "interphase_gap_us": self.interphase_gap_us,
            "phase2_duration_us": self.phase2_duration_us,
            "net_charge_uC_500ohm": self.net_charge_uC_500ohm,
            "net_charge_zero_by": self.net_charge_zero_by,
            "max_phase_charge_uC_500ohm": self.max_phase_charge_uC_500ohm,
            "rms_current_mA_500ohm": self.rms.samples_mA,
            "rms_current_phases_formula_mA_500ohm": self.rms.phases_mA,
            "rms_current_peak_formula_mA_500ohm": self.rms.peak_formula_mA,
            "rms_crosscheck_pct": self.rms.crosscheck_pct,
            "rms_limit_mA_500ohm": self.rms_limit_mA,
            "energy_per_pulse_mJ_500ohm": self.energy_per_pulse_mJ_500ohm,
            "max_duty_in_1s_pct": 100.0 * self.max_on_fraction_1s,
            "average_power_W_500ohm": self.average_power_W_500ohm,
            "electrode_area_cm2": self.electrode_area_cm2,
            "max_current_density_mA_per_cm2": self.current_density_mA_per_cm2,
            "current_density_peak_formula_mA_per_cm2": self.current_density_peak_formula_mA_per_cm2,
            "current_density_above_2mA_per_cm2": self.current_density_above_warning,
            "max_power_density_W_per_cm2": self.power_density_W_per_cm2,
            "power_density_above_0p25W_per_cm2": self.power_density_above_guidance,
        }
        b = self.burst
        row |= {
            "burst_mode": "none" if b is None else "burst",
            "pulses_per_burst": "n/a" if b is None else b.pulses_per_group,
            "bursts_per_s": "n/a" if b is None else b.groups_per_s,
            "burst_duration_s": "n/a" if b is None else b.group_duration_s,
            "burst_duty_cycle_pct": "n/a" if b is None else 100.0 * b.duty_cycle,
            "burst_source": self.burst_source,
            "on_time_s": "n/a (continuous)" if self.on_time_s is None else self.on_time_s,
            "off_time_s": "n/a (continuous)" if self.off_time_s is None else self.off_time_s,
            "on_off_source": self.on_off_source,
        }
        return {k: _plain(v) for k, v in row.items()}


def _plain(value: Any) -> Any:
    """JSON-friendly: Python floats rounded to 6 significant digits, NaN as 'n/a'."""
    if isinstance(value, bool | str | int) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    x = float(value)
    return float(f"{x:.6g}") if math.isfinite(x) else "n/a"


def _burst(program: Program, train: LoadRecord, pulse_width_s: float) -> tuple[PulseGroups | None, str]:
    """Burst mode: the program fixture declares none (programs are continuous trains, ON/OFF aside);
    the captured train must agree (evenly spaced pulses)."""
    a = train.analysis
    groups = pulse_groups(a.start_s, pulse_width_s)
    if groups is None:
        spread = 100.0 * float(np.ptp(a.periods_s) / np.mean(a.periods_s)) if a.periods_s.size else math.nan
        return None, (f"program fixture (continuous); capture: {a.n_pulses} evenly spaced pulses "
                      f"(period spread {spread:.2g} %)")
    return groups, (f"capture: {groups.groups} groups of pulses, which the program fixture does not declare "
                    f"(ON/OFF {program.cycle.on_s:g}/{program.cycle.off_s:g} s)" if program.cycle else
                    f"capture: {groups.groups} groups of pulses, which the program fixture does not declare")


def _on_off(program: Program, train: LoadRecord, pulse_width_s: float) -> tuple[float | None, float | None, str]:
    cycle = program.cycle
    if cycle is None:
        return None, None, "program fixture (no ON/OFF cycling)"
    a = train.analysis
    span = a.n_samples * a.dt_s
    groups = pulse_groups(a.start_s, pulse_width_s)
    if span < cycle.on_s + cycle.off_s or groups is None or not math.isfinite(groups.group_duration_s):
        return cycle.on_s, cycle.off_s, (f"from program fixture (the {span:.3g} s train record does not cover "
                                         f"one {cycle.on_s + cycle.off_s:g} s ON/OFF cycle)")
    return cycle.on_s, cycle.off_s, (f"program fixture; capture: ON {groups.group_duration_s:.3g} s (pulses above "
                                     f"the analysis threshold, ramps partly), OFF {groups.off_s:.3g} s")


def output_specification(
    *,
    program: Program,
    device: DeviceModel,
    set_amplitude_mA: float,
    pulses: Sequence[LoadRecord],
    train: LoadRecord,
) -> OutputSpecification:
    """The table row of ``program`` at ``set_amplitude_mA`` from single-pulse records into each load of
    ``pulses`` (500 ohm among them) and a pulse-train record into 500 ohm."""
    by_load = {rec.load_ohm: rec for rec in pulses}
    if TABLE_LOAD_OHM not in by_load or train.load_ohm != TABLE_LOAD_OHM:
        raise ValueError(f"the table needs a single pulse and a pulse train into {TABLE_LOAD_OHM:g} ohm; got "
                         f"single pulses into {sorted(by_load)} ohm, a train into {train.load_ohm:g} ohm")
    p500 = by_load[TABLE_LOAD_OHM]
    a = p500.analysis
    if a.n_pulses == 0 or train.analysis.n_pulses < 2:
        raise ValueError("the single-pulse record needs one complete pulse and the train two")
    d1 = 1e6 * float(np.mean(a.phase1_duration_s))
    has2 = bool(np.isfinite(a.phase2_amplitude).all())
    gap = 1e6 * float(np.mean(a.gap_s)) if has2 else math.nan
    d2 = 1e6 * float(np.mean(a.phase2_duration_s)) if has2 else math.nan
    width_us = d1 + gap + d2 if has2 else d1
    flat = flat_top_fraction(p500)
    net = net_charge_uC(p500)
    kind = waveform(a)
    zero_by = ("charge-balanced biphasic pulse: the second phase returns the first phase's charge"
               if kind == "pulsed biphasic" and abs(net) <= device.tolerances.max_net_charge_uC else
               "n/a (net charge not zero)")
    rms = rms_current(train)
    f = train.analysis.frequency_Hz
    energy = energy_per_pulse_mJ(p500)
    on_fraction = max_on_fraction(program.cycle)
    power_W = 1e-3 * energy * f * on_fraction
    area = device.electrode.min_area_cm2
    burst, burst_source = _burst(program, train, 1e-6 * width_us)
    on_s, off_s, on_off_source = _on_off(program, train, 1e-6 * width_us)
    return OutputSpecification(
        program=program.id,
        mode=mode_of(program),
        set_amplitude_mA=set_amplitude_mA,
        compliance_voltage_V=device.output.compliance_voltage_V,
        waveform=kind,
        shape=shape(flat),
        flat_top_fraction=flat,
        symmetrical_phases=symmetrical_phases(p500, device.tolerances),
        phase1_duration_us=d1,
        interphase_gap_us=gap,
        phase2_duration_us=d2,
        pulse_width_us=width_us,
        frequency_Hz=f,
        outputs=tuple(load_output(by_load[r], set_amplitude_mA, device) for r in sorted(by_load)),
        net_charge_uC_500ohm=net,
        net_charge_zero_by=zero_by,
        max_phase_charge_uC_500ohm=max_phase_charge_uC(p500),
        rms=rms,
        rms_limit_mA=rms_limit_mA(f),
        energy_per_pulse_mJ_500ohm=energy,
        max_on_fraction_1s=on_fraction,
        average_power_W_500ohm=power_W,
        electrode_area_cm2=area,
        current_density_mA_per_cm2=rms.samples_mA / area,
        current_density_peak_formula_mA_per_cm2=rms.peak_formula_mA / area,
        power_density_W_per_cm2=power_W / area,
        burst=burst,
        burst_source=burst_source,
        on_time_s=on_s,
        off_time_s=off_s,
        on_off_source=on_off_source,
    )

