"""The FDA powered muscle stimulator 510(k) output specification (attachment II), per output mode.

For every program at the device's maximum amplitude, on the bench's measurement channel (DUT
channel 1 routed onto the load box; the table is per output mode, not per channel), the four
waveform tracings the guidance asks for: a single pulse into 500 ohm, 2 kohm and 10 kohm and a pulse
train into 500 ohm, taken in one ON period with the load switched between them; then, if the bench
has an open circuit, one pulse into it (the device trips on it: electrode off). From them the table
row (rig.output_spec), recorded with ``measure.table_row``, and the IEC 60601-2-10 output limits.

Current and power density are flags for the instructions (IEC 60601-2-10: warn above 2 mA/cm^2;
FDA guidance: power density "should be below" 0.25 W/cm^2), not pass/fail limits: a value within its
threshold is recorded as a measurement marked ``flag=True``; one above it is not (it would FAIL the
test) and shows as ``*_above_*: true`` in the table row instead.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rig.capture import Capture
from rig.errors import StimrigError
from rig.evidence import CaptureEvidence
from rig.interfaces import AcquisitionSetup
from rig.measurements import Measurement
from rig.output_spec import (
    OPEN_CIRCUIT_PEAK_LIMIT_V,
    SPEC_LOADS_OHM,
    TABLE_LOAD_OHM,
    CURRENT_DENSITY_WARNING_mA_per_cm2,
    ENERGY_LIMIT_mJ,
    LoadRecord,
    OutputSpecification,
    POWER_DENSITY_GUIDANCE_W_per_cm2,
    mode_of,
    output_specification,
    peak_excursion_V,
)
from rig.procedures import (
    SETTLE_AFTER_RAMP_S,
    acquisition,
    capture,
    delivered_current_mA,
    plan_for,
    settle_time_s,
)
from tests.certification.conftest import load_named, start_running
from tests.certification.cutoff import capture_event, event_capture_setup

SPEC_CHANNEL = 1  # the DUT output the load box routes onto the measurement loads
SWITCH_SETTLE_PERIODS = 2  # pulses after a load switch before the next capture (relay bounce, DUT sensing)
MIN_SWITCH_SETTLE_S = 0.02
RMS_CROSSCHECK_PCT = 5.0  # sample r.m.s. against the phase formula: edges, noise, 8-bit quantisation
#: Row fields that may read "n/a" (not interferential, no bursts); with a monophasic pulse also these.
NOT_APPLICABLE = ("beat_frequency_Hz", "pulses_per_burst", "bursts_per_s", "burst_duration_s", "burst_duty_cycle_pct")
MONOPHASIC_NOT_APPLICABLE = ("interphase_gap_us", "phase2_duration_us")

IEC_LIMITS = ("IEC 60601-2-10 ed.2 2012 (+A1 2016), output limits into 500 ohm carried over from ed.1 clause "
              "51.104 (standards.md gives no ed.2 clause number)")
FDA_TABLE = "FDA PMS 510(k) guidance (June 1999) attachment II, output specification table"
HOLDING = Measurement("output_holding_setpoint", "bool", low=1, high=1, requirement="OUT-SPEC-TABLE",
                      description="STATUS shows the channel holding its set-point (state 'on': ramp done, not in "
                                  "an OFF period) before the first and after the last tracing")


def spec_amplitude_mA(device_model: Any, bench: Any) -> float:
    """The device's maximum amplitude, or the bench's ceiling if that is lower."""
    return min(device_model.limits.max_amplitude_mA, bench.config.amplitude_ceiling_mA)


def settle_at_maximum_s(program: Any, device_model: Any, amplitude_mA: float) -> float:
    """To the end of the start ramp; at least as long as the slew limit (max_amplitude_step_mA per pulse)
    lets a device climb to ``amplitude_mA`` (tens_lf at 2 Hz: 10 pulses, 5 s, longer than its 2 s ramp)."""
    pulses = math.ceil(amplitude_mA / device_model.safety.max_amplitude_step_mA)
    return max(settle_time_s(program), pulses / program.frequency_Hz + SETTLE_AFTER_RAMP_S)


def require_holding(dut: Any, measure: Any, program: Any, when: str) -> None:
    status = {s.channel: s for s in dut.status()}[SPEC_CHANNEL]
    measure.require(HOLDING, float(status.state == "on"), program=program.id, channel=SPEC_CHANNEL, when=when,
                    state=status.state, fault=status.fault)


def evidence(measure: Any, cap: Capture, setup: AcquisitionSetup, program: Any, amplitude_mA: float, load: str,
             load_ohm: float, kind: str, device_model: Any) -> None:
    """Save and attach one tracing, labelled as the guidance asks (mode, axes, baseline, settings, load)."""
    compliance = device_model.output.compliance_voltage_V
    at_max = amplitude_mA >= device_model.limits.max_amplitude_mA
    labels: dict[str, Any] = {
        "program": program.id, "mode": mode_of(program),
        "set amplitude": f"{amplitude_mA:g} mA " + ("(device maximum)" if at_max else
                                                    f"(bench ceiling; device maximum "
                                                    f"{device_model.limits.max_amplitude_mA:g} mA)"),
    }
    if math.isfinite(load_ohm):
        expected = delivered_current_mA(amplitude_mA, load_ohm, compliance)
        labels["load"] = f"{load} ({load_ohm:g} ohm)"
        labels["expected"] = (f"{expected:g} mA, {expected * load_ohm / 1000.0:g} V"
                              + (f" (compliance {compliance:g} V)" if expected < amplitude_mA else ""))
        labels["y axis"] = f"V across load (I = V/R: 1 V = {1000.0 / load_ohm:g} mA)"
        where = f"{load_ohm:g}ohm"
    else:
        labels["load"] = f"{load} (open circuit)"
        labels["expected"] = f"at most the {compliance:g} V compliance voltage; the device may trip (electrode off)"
        labels["y axis"] = "V across the open output"
        where = "open_circuit"
    labels |= {"x axis": "time from trigger", "baseline": "0 V (dashed line)", "channel": SPEC_CHANNEL,
               "scope": f"{setup.channels[0].scale_V_per_div:g} V/div, {setup.time_scale_s_per_div:g} s/div, "
                        f"trigger {setup.trigger.level_V:g} V on CH{setup.trigger.source_channel}"}
    name = f"{program.id}-spec-{kind.replace(' ', '_')}" + ("" if where == "open_circuit" else f"-{where}")
    title = f"{program.id}: {kind} into {labels['load']}, {amplitude_mA:g} mA set"
    ev = CaptureEvidence.render(cap, name, title, labels, simulated=measure.simulated)
    ev.save(measure.log)
    ev.attach()


@dataclass(frozen=True)
class OpenCircuit:
    capture: Capture
    setup: AcquisitionSetup
    peak_V: float  # largest |v - baseline| after the switch; NaN if the record is clipped (peak unknown)
    pulse_after_switch: bool  # anything clearly above the noise (8 codes) after the switch


def open_circuit(bench: Any, scope: Any, program: Any, device_model: Any) -> OpenCircuit | None:
    """The output switched onto the open circuit with the scope armed on the load box marker (its
    relay-sense edge, t = 0): the record covers the switch and the next pulse after it (the CS-4 trips on
    it: electrode off). None if the bench has no open-circuit load.

    Only samples after the switch count: the pre-trigger division may hold a 10 kohm pulse, which also
    sits at the compliance voltage. A device that trips before delivering any pulse into the open
    circuit shows none: its open-circuit peak is the baseline, a legitimate PASS (``pulse_after_switch``
    says which it was)."""
    try:
        open_load = load_named(bench, math.inf)
    except StimrigError:
        return None
    window_s = 1.2 / program.frequency_Hz + 2e-6 * program.pulse_width_us  # the first pulse after the switch
    compliance = device_model.output.compliance_voltage_V
    out, _marker = capture_event(bench, scope, compliance, window_s,
                                 lambda: bench.load.connect(SPEC_CHANNEL, open_load))
    setup = event_capture_setup(bench, compliance, window_s)  # what capture_event set up
    times, volts = out.times(), out.volts()
    before = volts[times < 0.0]
    baseline = float(np.median(before)) if before.size else 0.0
    peak = peak_excursion_V(volts[times >= 0.0], baseline=baseline)
    seen = peak > 8.0 * abs(out.y_increment_V)
    return OpenCircuit(out, setup, math.nan if out.clipped_fraction() > 0 else peak, seen)


def record_table(measure: Any, spec: OutputSpecification, oc: OpenCircuit | None) -> dict[str, Any]:
    row = spec.row()
    if oc is None:
        row["open_circuit_peak_V"] = "not measured: the bench has no open-circuit load"
    else:
        row["open_circuit_peak_V"] = "clipped" if math.isnan(oc.peak_V) else float(f"{oc.peak_V:.6g}")
        row["open_circuit_pulse_after_switch"] = oc.pulse_after_switch
    measure.table_row("output_specification", program=spec.program, mode=spec.mode, **row)
    return row


@pytest.mark.requirement("OUT-SPEC-TABLE", "OUT-TRACINGS", "OUT-LIMIT-RMS", "OUT-LIMIT-ENERGY", "OUT-DENSITY-POWER",
                         "OUT-DENSITY-CURRENT", "OUT-LIMIT-VPEAK")
def test_output_specification(program, bench, dut, scope, device_model, measure):
    amplitude = spec_amplitude_mA(device_model, bench)
    cfg = bench.config.scope
    tol = device_model.tolerances
    compliance = device_model.output.compliance_voltage_V
    loads = {ohm: load_named(bench, ohm) for ohm in SPEC_LOADS_OHM}  # ERROR here if the bench lacks one

    def plan(load_ohm: float) -> Any:
        return plan_for(device_model, amplitude, load_ohm, cfg.measure_channel, cfg.probe_attenuation)

    # ---- the four tracings, in one ON period ------------------------------------------------------
    bench.load.connect(SPEC_CHANNEL, loads[TABLE_LOAD_OHM])
    start_running(bench, dut, measure, program, SPEC_CHANNEL, amplitude,
                  settle_at_maximum_s(program, device_model, amplitude))
    require_holding(dut, measure, program, "before the tracings")
    setups = {ohm: acquisition(program, plan(ohm), "pulse") for ohm in SPEC_LOADS_OHM}
    train_setup = acquisition(program, plan(TABLE_LOAD_OHM), "train")
    train_cap = capture(scope, train_setup, cfg.timeout_s)
    pulse_caps = {TABLE_LOAD_OHM: capture(scope, setups[TABLE_LOAD_OHM], cfg.timeout_s)}
    settle_s = max(SWITCH_SETTLE_PERIODS / program.frequency_Hz, MIN_SWITCH_SETTLE_S)
    for ohm in SPEC_LOADS_OHM:
        if ohm == TABLE_LOAD_OHM:
            continue
        bench.load.connect(SPEC_CHANNEL, loads[ohm])
        bench.wait(settle_s)
        pulse_caps[ohm] = capture(scope, setups[ohm], cfg.timeout_s)
    require_holding(dut, measure, program, "after the tracings")
    oc = open_circuit(bench, scope, program, device_model)
    dut.stop([SPEC_CHANNEL])

    # ---- evidence -----------------------------------------------------------------------------------
    evidence(measure, train_cap, train_setup, program, amplitude, loads[TABLE_LOAD_OHM], TABLE_LOAD_OHM,
             "pulse train", device_model)
    for ohm, cap in pulse_caps.items():
        evidence(measure, cap, setups[ohm], program, amplitude, loads[ohm], ohm, "single pulse", device_model)
    if oc is not None:
        evidence(measure, oc.capture, oc.setup, program, amplitude, load_named(bench, math.inf), math.inf,
                 "open circuit pulse", device_model)

    # ---- the table row ------------------------------------------------------------------------------
    train = LoadRecord.of(train_cap, TABLE_LOAD_OHM)
    pulses = [LoadRecord.of(cap, ohm) for ohm, cap in pulse_caps.items()]
    tracing = Measurement("tracing_complete_pulses", "pulses", low=1, requirement="OUT-TRACINGS",
                          description="the tracing shows at least one complete pulse, baseline on both sides",
                          source="FDA PMS 510(k) guidance (June 1999) attachment II, waveform tracings")
    measure(tracing, train.analysis.n_pulses, load_ohm=TABLE_LOAD_OHM, kind="pulse train")
    for rec in pulses:
        measure(tracing, rec.analysis.n_pulses, load_ohm=rec.load_ohm, kind="single pulse")
    spec = output_specification(program=program, device=device_model, set_amplitude_mA=amplitude, pulses=pulses,
                                train=train)
    row = record_table(measure, spec, oc)
    missing = [k for k, v in row.items() if v == "n/a" and k not in
               NOT_APPLICABLE + (MONOPHASIC_NOT_APPLICABLE if spec.waveform == "pulsed monophasic" else ())]
    measure(Measurement("table_fields_measured", "fields", high=0, requirement="OUT-SPEC-TABLE",
                        description="fields of the row with no finite measured value (beyond those that do not "
                                    "apply to the mode)", source=FDA_TABLE),
            len(missing), missing=missing, fields=len(row))

    # ---- output per load, against the device tolerance ----------------------------------------------
    amp_src = device_model.source_of("tolerances.amplitude_pct")
    for out in spec.outputs:
        at_compliance = "" if not out.compliance_limited else (
            f"; constant-current stage at its compliance voltage: min(I_set, V_comp/R) "
            f"({device_model.source_of('output.compliance_voltage_V')})")
        name = "max_current_500ohm" if out.load_ohm == TABLE_LOAD_OHM else f"current_{out.load_ohm:g}ohm"
        measure(Measurement.around(name, "mA", out.expected_current_mA, out.tolerance_mA, requirement="OUT-SPEC-TABLE",
                                   source=f"{FDA_TABLE}: maximum output current; {amp_src}{at_compliance}"),
                out.current_mA, load_ohm=out.load_ohm, voltage_V=out.voltage_V, set_mA=amplitude,
                tolerance_pct=out.tolerance_pct, compliance_limited=out.compliance_limited)

    # ---- IEC 60601-2-10 output limits into 500 ohm ------------------------------------------------------
    rms = spec.rms
    measure(Measurement("rms_current_500ohm", "mA", high=spec.rms_limit_mA, requirement="OUT-LIMIT-RMS",
                        source=f"{IEC_LIMITS}: {spec.rms_limit_mA:g} mA r.m.s. at {spec.frequency_Hz:.4g} Hz"),
            rms.samples_mA, frequency_Hz=spec.frequency_Hz, periods=rms.periods, phases_formula_mA=rms.phases_mA,
            peak_formula_mA=rms.peak_formula_mA, set_mA=amplitude)
    measure(Measurement.around("rms_current_crosscheck", "%", 0.0, RMS_CROSSCHECK_PCT, requirement="OUT-LIMIT-RMS",
                               description="r.m.s. from the samples (baseline noise removed) against "
                                           "sqrt(f * (I1^2 t1 + I2^2 t2)) of the measured phases",
                               source="IEC 60601-2-10 (standards.md): I_rms = I_peak * sqrt(total phase duration "
                                      "* f) for equal phases"),
            rms.crosscheck_pct, samples_noise_corrected_mA=rms.noise_corrected_mA, phases_formula_mA=rms.phases_mA)
    measure(Measurement("energy_per_pulse_500ohm", "mJ", high=ENERGY_LIMIT_mJ, requirement="OUT-LIMIT-ENERGY",
                        source=f"{IEC_LIMITS}: at most {ENERGY_LIMIT_mJ:g} mJ per pulse for pulses shorter than 0.1 s"),
            spec.energy_per_pulse_mJ_500ohm, pulse_width_us=spec.pulse_width_us, set_mA=amplitude)
    limit_q = tol.max_net_charge_uC
    measure(Measurement("net_charge_per_pulse_500ohm", "uC", low=-limit_q, high=limit_q, nominal=0.0,
                        requirement="OUT-SPEC-TABLE",
                        source=f"{FDA_TABLE}: net charge per pulse at 500 ohm; "
                               f"{device_model.source_of('tolerances.max_net_charge_uC')}"),
            spec.net_charge_uC_500ohm, max_phase_charge_uC=spec.max_phase_charge_uC_500ohm, set_mA=amplitude)
    if oc is not None:  # without an open-circuit load OUT-LIMIT-VPEAK is not measured here (the row says so)
        measure(Measurement("open_circuit_peak_voltage", "V", high=OPEN_CIRCUIT_PEAK_LIMIT_V,
                            requirement="OUT-LIMIT-VPEAK",
                            source=f"IEC 60601-2-10 ed.2 2012 (+A1 2016), output limits: peak voltage, open circuit "
                                   f"at most {OPEN_CIRCUIT_PEAK_LIMIT_V:g} V (standards.md, no clause number given)"),
                oc.peak_V, clipped=math.isnan(oc.peak_V), compliance_voltage_V=compliance, set_mA=amplitude,
                pulse_after_switch=oc.pulse_after_switch)

    # ---- density flags (informational: never FAIL) --------------------------------------------------------
    area_src = device_model.source_of("electrode.min_area_cm2")
    for above, text in ((spec.current_density_above_warning,
                         f"r.m.s. current density {spec.current_density_mA_per_cm2:.3g} mA/cm^2 (formula "
                         f"{spec.current_density_peak_formula_mA_per_cm2:.3g}) above 2 mA/cm^2: the instructions must "
                         "warn (IEC 60601-2-10)"),
                        (spec.power_density_above_guidance,
                         f"power density {spec.power_density_W_per_cm2:.3g} W/cm^2 above the 0.25 W/cm^2 the FDA "
                         "guidance says it should stay below")):
        if above:  # a flag for the table and the operator, not a failure
            warnings.warn(f"{program.id} at {amplitude:g} mA: {text}; flagged in the output specification table",
                          stacklevel=1)
    if not spec.current_density_above_warning:
        measure(Measurement("current_density_flag_mA_per_cm2", "mA/cm2", high=CURRENT_DENSITY_WARNING_mA_per_cm2,
                            requirement="OUT-DENSITY-CURRENT",
                            description="informational: r.m.s. current at 500 ohm over the smallest electrode; above "
                                        "2 mA/cm^2 the instructions must warn (flag, not a pass/fail limit)",
                            source="IEC 60601-2-10 ed.2 2012 (+A1 2016), instructions for use: current densities "
                                   f"above 2 mA/cm^2 r.m.s. (standards.md); {FDA_TABLE}; {area_src}"),
                spec.current_density_mA_per_cm2, flag=True,
                peak_formula_mA_per_cm2=spec.current_density_peak_formula_mA_per_cm2,
                electrode_area_cm2=spec.electrode_area_cm2)
    if not spec.power_density_above_guidance:
        measure(Measurement("power_density_flag_W_per_cm2", "W/cm2", high=POWER_DENSITY_GUIDANCE_W_per_cm2,
                            requirement="OUT-DENSITY-POWER",
                            description="average power over the 1 s of highest duty at 500 ohm over the smallest "
                                        "electrode; the guidance says it should be below 0.25 W/cm^2 (flag)",
                            source="FDA PMS 510(k) guidance (June 1999) attachment II: power density averaged over "
                                   f"1 s at maximum duty cycle should be below 0.25 W/cm^2; {area_src}"),
                spec.power_density_W_per_cm2, flag=True, average_power_W=spec.average_power_W_500ohm,
                max_duty_in_1s=spec.max_on_fraction_1s, electrode_area_cm2=spec.electrode_area_cm2)
