"""Load models: the voltage across a load driven by a constant-current output stage.

A constant-current stage holds its commanded current until the voltage that takes would exceed its
compliance voltage; from there on it is a voltage source at the compliance rail (+ or -) and delivers
whatever current the load then draws. Every model honours that.

* ``Resistive`` is memoryless and exact: ``V = clip(I*R, -Vc, +Vc)``. ``ohm=inf`` is an open circuit
  (±compliance while any current is commanded, 0 V otherwise), ``ohm=0`` a short (0 V).
* ``ElectrodeSkin`` is the usual electrode-skin equivalent circuit: a series resistance ``Rs`` with a
  parallel ``Rp || C``. It is solved exactly for a current that is constant over each sample interval
  (zero-order hold): an exponential integrator per sample (``scipy.signal.lfilter``) while the stage
  regulates, a closed-form exponential approach while it sits on a compliance rail, and the switching
  instant between the two solved within its sample interval. See ``ElectrodeSkin.render``.

Currents are in mA (the schedule's unit), voltages in V, times in s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.signal import lfilter

from simulator.stimulator.output_stage import load_voltage_V

MEMORY_DECAY = 1e-12  # memory_s: time for a stored state to decay below this fraction
_MIN_CHUNK = 256  # ElectrodeSkin.render: smallest block solved in one vectorised step


@runtime_checkable
class Load(Protocol):
    """What the bench needs from a load: the voltage across it, and the impedance a DUT would sense."""

    @property
    def sensed_impedance_ohm(self) -> float:
        """V/I a stimulator would measure at the end of a long constant-current plateau (inf: open)."""
        ...

    @property
    def memory_s(self) -> float:
        """How long the load remembers its past (0: memoryless). Rendering a window from a discharged
        state this long before it gives the same samples as rendering from the beginning of time."""
        ...

    def render_voltage_V(self, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> np.ndarray:
        """Voltage across the load at each sample for the commanded current (one value per sample,
        held over the sample interval), starting from rest."""
        ...


@dataclass(frozen=True)
class LoadResponse:
    voltage_V: np.ndarray  # across the load, at each sample instant
    current_mA: np.ndarray  # delivered into the load (differs from the command where compliance clips)
    clipped: np.ndarray  # bool: the stage was on a compliance rail at that sample


@dataclass(frozen=True)
class SkinResponse(LoadResponse):
    capacitor_V: np.ndarray  # voltage on Rp || C at each sample instant
    final_capacitor_V: float  # state after the last sample interval (pass it on to continue a render)


def _as_current(current_mA: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(current_mA, dtype=np.float64)


def _check(dt_s: float, compliance_V: float) -> None:
    if not dt_s > 0 or not math.isfinite(dt_s):
        raise ValueError(f"sample interval must be a positive finite time, got {dt_s!r} s")
    if not compliance_V > 0:
        raise ValueError(f"compliance voltage must be positive, got {compliance_V!r} V")


@dataclass(frozen=True)
class Resistive:
    """A resistor; ``inf`` is an open circuit and ``0`` a short. Exact and vectorised."""

    ohm: float

    def __post_init__(self) -> None:
        if math.isnan(self.ohm) or self.ohm < 0:
            raise ValueError(f"a resistive load needs 0 <= ohm <= inf, got {self.ohm!r}")

    @property
    def sensed_impedance_ohm(self) -> float:
        return float(self.ohm)

    @property
    def memory_s(self) -> float:
        return 0.0

    def render(self, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> LoadResponse:
        _check(dt_s, compliance_V)
        i = _as_current(current_mA)
        if math.isinf(self.ohm):  # open: any commanded current drives the stage onto its rail
            v = compliance_V * np.sign(i)
            return LoadResponse(v, np.zeros_like(i), i != 0)
        if self.ohm == 0:  # short: the stage delivers its set-point into 0 V
            return LoadResponse(np.zeros_like(i), i.copy(), np.zeros(i.shape, dtype=bool))
        v = load_voltage_V(i, self.ohm, compliance_V)
        return LoadResponse(v, v * (1000.0 / self.ohm), np.abs(i) * (self.ohm / 1000.0) > compliance_V)

    def render_voltage_V(self, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> np.ndarray:
        return self.render(current_mA, dt_s, compliance_V).voltage_V

    def describe(self) -> dict[str, Any]:
        kind = "open" if math.isinf(self.ohm) else "short" if self.ohm == 0 else "resistor"
        return {"kind": kind, "ohm": self.ohm}


OPEN = Resistive(math.inf)
SHORT = Resistive(0.0)


@dataclass(frozen=True)
class ElectrodeSkin:
    """Series ``Rs`` with a parallel ``Rp || C`` (electrode-skin equivalent circuit), linear and time-invariant.

    Regulating (|Rs*I + vC| <= Vc): ``C dvC/dt = I - vC/Rp``, time constant ``tau = Rp*C``, V = Rs*I + vC.
    On a rail (V = ±Vc):           ``C dvC/dt = (V - vC)/Rs - vC/Rp``, time constant ``Rs||Rp * C``.
    """

    series_ohm: float
    parallel_ohm: float
    parallel_F: float

    def __post_init__(self) -> None:
        for name in ("series_ohm", "parallel_ohm", "parallel_F"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"electrode-skin model: {name} must be positive and finite, got {value!r}")

    @property
    def tau_s(self) -> float:
        """Time constant while the stage regulates current (Rp*C)."""
        return self.parallel_ohm * self.parallel_F

    @property
    def tau_rail_s(self) -> float:
        """Time constant while the stage sits on a compliance rail ((Rs||Rp)*C)."""
        rs, rp = self.series_ohm, self.parallel_ohm
        return rs * rp / (rs + rp) * self.parallel_F

    @property
    def sensed_impedance_ohm(self) -> float:
        return self.series_ohm + self.parallel_ohm

    def plateau_impedance_ohm(self, phase_s: float) -> float:
        """V/I at the end of a constant-current phase of ``phase_s`` that starts from rest (unclipped)."""
        return self.series_ohm + self.parallel_ohm * -math.expm1(-phase_s / self.tau_s)

    @property
    def memory_s(self) -> float:
        return self.tau_s * math.log(1.0 / MEMORY_DECAY)

    def render_voltage_V(self, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> np.ndarray:
        return self.render(current_mA, dt_s, compliance_V).voltage_V

    def describe(self) -> dict[str, Any]:
        return {"kind": "electrode_skin", "series_ohm": self.series_ohm, "parallel_ohm": self.parallel_ohm,
                "parallel_nF": self.parallel_F * 1e9}

    # ---- exact solution -----------------------------------------------------------------------
    def render(
        self, current_mA: np.ndarray, dt_s: float, compliance_V: float, *, capacitor_V: float = 0.0
    ) -> SkinResponse:
        """Exact response to a current held constant over each sample interval, from ``capacitor_V``.

        The piecewise-linear system is solved in runs of one mode. A regulating run is a first-order
        IIR filter whose coefficients are the exact exponential step (``lfilter``); a rail run is a
        closed-form exponential approach. A block stops at its first mode change; the samples around a
        change go through an exact scalar step that also solves the switching instant inside its
        sample interval, and blocks resume once the mode has held for a while. Work is O(n): vectorised
        between mode changes, a pure-Python step (about 1 us) per sample only where modes change densely.
        """
        _check(dt_s, compliance_V)
        i_all = _as_current(current_mA) / 1000.0  # A
        n = i_all.size
        k_ = _Kernel(self, dt_s, compliance_V)
        v = np.empty(n)
        i_out = np.empty(n)
        clipped = np.zeros(n, dtype=bool)
        vcap = np.empty(n)
        vc = float(capacitor_V)
        k = 0
        chunk = n  # first try everything in one block: most renders never clip
        scalar_left = 0
        while k < n:
            if scalar_left > 0:  # exact scalar steps around a mode change
                stop = min(n, k + scalar_left)
                vc, k_end, changed_at = k_.steps(i_all, k, stop, vc, v, i_out, clipped, vcap)
                scalar_left = 0 if changed_at < 0 else max(0, _SCALAR_RUN - (k_end - 1 - changed_at))
                k = k_end
                chunk = _MIN_CHUNK
                continue
            m = min(chunk, n - k)
            e, vc = k_.block(i_all[k : k + m], vc, v[k : k + m], i_out[k : k + m], clipped[k : k + m],
                             vcap[k : k + m])
            k += e
            if e == m:
                chunk = 2 * m
            else:
                scalar_left = max(1, _SCALAR_RUN)  # the change itself is always stepped
        return SkinResponse(v, i_out * 1000.0, clipped, vcap, vc)


_SCALAR_RUN = 16  # samples stepped one by one after a mode change (a block costs about as much as 30-40 steps)


class _Kernel:
    """Exact one-interval and block solutions of ElectrodeSkin at a fixed sample interval."""

    def __init__(self, load: ElectrodeSkin, dt_s: float, compliance_V: float) -> None:
        self.rs, self.rp = load.series_ohm, load.parallel_ohm
        self.tau, self.tau_rail = load.tau_s, load.tau_rail_s
        self.dt = dt_s
        self.vmax = compliance_V
        self.a = math.exp(-dt_s / self.tau)  # regulating: vC' = a*vC + g*I
        self.g = -math.expm1(-dt_s / self.tau) * self.rp
        self.b = math.exp(-dt_s / self.tau_rail)  # on a rail: vC' = vinf + b*(vC - vinf)
        self.frac = self.rp / (self.rs + self.rp)  # vinf = rail * Rp/(Rs+Rp)

    def block(
        self, seg: np.ndarray, vc: float, v: np.ndarray, i_out: np.ndarray, clipped: np.ndarray, vcap: np.ndarray
    ) -> tuple[int, float]:
        """Solve ``seg`` while the mode at its first sample holds; return (samples done, state after them).

        Stops before the first sample whose interval is not entirely in that mode (possibly the first:
        a mode change inside an interval is left to ``steps``)."""
        rs, vmax, m = self.rs, self.vmax, seg.size
        needed = rs * seg[0] + vc
        if abs(needed) <= vmax:  # the stage regulates current
            nxt, _ = lfilter([self.g], [1.0, -self.a], seg, zi=[self.a * vc])
            start = np.empty(m)
            start[0] = vc
            start[1:] = nxt[:-1]
            hit = np.flatnonzero((np.abs(rs * seg + start) > vmax) | (np.abs(rs * seg + nxt) > vmax))
            e = int(hit[0]) if hit.size else m
            v[:e] = rs * seg[:e] + start[:e]
            i_out[:e] = seg[:e]
            vcap[:e] = start[:e]
        else:  # the stage sits on the rail sign(needed)*Vc
            rail = math.copysign(vmax, needed)
            vinf = rail * self.frac
            states = vinf + (vc - vinf) * np.power(self.b, np.arange(m + 1, dtype=np.float64))
            start, nxt = states[:-1], states[1:]
            s = 1.0 if rail > 0 else -1.0
            hit = np.flatnonzero((s * (rs * seg + start) <= vmax) | (s * (rs * seg + nxt) <= vmax))
            e = int(hit[0]) if hit.size else m
            v[:e] = rail
            i_out[:e] = (rail - start[:e]) / rs
            clipped[:e] = True
            vcap[:e] = start[:e]
        return e, float(start[e]) if e < m else float(nxt[-1])

    def steps(
        self, i_all: np.ndarray, k0: int, k1: int, vc: float,
        v: np.ndarray, i_out: np.ndarray, clipped: np.ndarray, vcap: np.ndarray,
    ) -> tuple[float, int, int]:
        """Step samples k0..k1-1 exactly; return (state after them, k1, last sample where the mode changed
        or -1)."""
        rs, vmax, a, g, b, frac = self.rs, self.vmax, self.a, self.g, self.b, self.frac
        currents = i_all[k0:k1].tolist()
        vs: list[float] = []
        ios: list[float] = []
        cls: list[bool] = []
        vcs: list[float] = []
        changed_at = -1
        prev_mode = 0.0 if k0 == 0 or not clipped[k0 - 1] else math.copysign(1.0, v[k0 - 1])
        for j, i in enumerate(currents):
            needed = rs * i + vc
            vcs.append(vc)
            if -vmax <= needed <= vmax:
                mode = 0.0
                vs.append(needed)
                ios.append(i)
                cls.append(False)
                nxt = a * vc + g * i
                if abs(rs * i + nxt) > vmax:
                    nxt = self._regulating_then_rail(vc, i)
                    changed_at = k0 + j
            else:
                rail = vmax if needed > 0 else -vmax
                mode = 1.0 if needed > 0 else -1.0
                vs.append(rail)
                ios.append((rail - vc) / rs)
                cls.append(True)
                vinf = rail * frac
                nxt = vinf + b * (vc - vinf)
                if mode * (rs * i + nxt) <= vmax:
                    nxt = self._rail_then_regulating(vc, i, rail)
                    changed_at = k0 + j
            if mode != prev_mode:
                changed_at = k0 + j
                prev_mode = mode
            vc = nxt
        v[k0:k1] = vs
        i_out[k0:k1] = ios
        clipped[k0:k1] = cls
        vcap[k0:k1] = vcs
        return vc, k1, changed_at

    def _regulating_then_rail(self, vc0: float, i: float) -> float:
        """State after one interval that starts regulating ``i`` and reaches a rail inside it."""
        rs, rp = self.rs, self.rp
        vc_end_reg = i * rp + (vc0 - i * rp) * self.a
        rail = math.copysign(self.vmax, rs * i + vc_end_reg)
        v_switch = rail - rs * i  # vC at which the needed voltage reaches the rail
        # vC(t) = i*Rp + (vc0 - i*Rp) exp(-t/tau): the instant it reaches v_switch
        ratio = (vc0 - i * rp) / (v_switch - i * rp)
        t = min(max(self.tau * math.log(ratio), 0.0), self.dt) if ratio > 0 else 0.0
        vinf = rail * self.frac
        return vinf + (v_switch - vinf) * math.exp(-(self.dt - t) / self.tau_rail)

    def _rail_then_regulating(self, vc0: float, i: float, rail: float) -> float:
        """State after one interval that starts on ``rail`` and can regulate ``i`` again inside it."""
        rs, rp = self.rs, self.rp
        vinf = rail * self.frac
        v_switch = rail - rs * i  # the delivered current (rail - vC)/Rs has come back to the set-point
        ratio = (vc0 - vinf) / (v_switch - vinf)
        t = min(max(self.tau_rail * math.log(ratio), 0.0), self.dt) if ratio > 0 else 0.0
        return i * rp + (v_switch - i * rp) * math.exp(-(self.dt - t) / self.tau)


def render(load: Load, current_mA: np.ndarray, dt_s: float, compliance_V: float) -> LoadResponse:
    """Full response (voltage, delivered current, clipping) of any catalogued load."""
    if isinstance(load, Resistive | ElectrodeSkin):
        return load.render(current_mA, dt_s, compliance_V)
    i = _as_current(current_mA)
    v = np.asarray(load.render_voltage_V(i, dt_s, compliance_V), dtype=np.float64)
    return LoadResponse(v, np.full_like(i, np.nan), np.abs(v) >= compliance_V)


# ---- the load catalogue (fixtures/loads/*.yaml) --------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResistorSpec(_Strict):
    kind: Literal["resistor"]
    ohm: float = Field(gt=0, allow_inf_nan=False, description="resistance in ohm")
    source: str = Field(min_length=1)


class OpenSpec(_Strict):
    kind: Literal["open"]
    source: str = Field(min_length=1)


class ShortSpec(_Strict):
    kind: Literal["short"]
    source: str = Field(min_length=1)


class ElectrodeSkinSpec(_Strict):
    kind: Literal["electrode_skin"]
    series_ohm: float = Field(gt=0, allow_inf_nan=False)
    parallel_ohm: float = Field(gt=0, allow_inf_nan=False)
    parallel_nF: float = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=1)


LoadSpec = Annotated[ResistorSpec | OpenSpec | ShortSpec | ElectrodeSkinSpec, Field(discriminator="kind")]


class LoadCatalogue(_Strict):
    schema_: Literal["stimrig.loads/1"] = Field(alias="schema")
    name: str = Field(min_length=1)
    loads: dict[str, LoadSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> LoadCatalogue:
        for name in self.loads:
            if not name or not all(c.isalnum() or c in "_-." for c in name):
                raise ValueError(f"load name {name!r}: use letters, digits, '_', '-' or '.' (it goes on a serial line)")
        return self

    def models(self) -> dict[str, Load]:
        return {name: model_of(spec) for name, spec in self.loads.items()}

    def sources(self) -> dict[str, str]:
        return {name: spec.source for name, spec in self.loads.items()}


def model_of(spec: ResistorSpec | OpenSpec | ShortSpec | ElectrodeSkinSpec) -> Load:
    if isinstance(spec, ResistorSpec):
        return Resistive(spec.ohm)
    if isinstance(spec, OpenSpec):
        return OPEN
    if isinstance(spec, ShortSpec):
        return SHORT
    return ElectrodeSkin(spec.series_ohm, spec.parallel_ohm, spec.parallel_nF / 1e9)


def standard_catalogue_path() -> Path:
    from rig.config.loader import FIXTURES_DIR

    return FIXTURES_DIR / "loads" / "standard.yaml"


def load_catalogue(path: Path | str | None = None) -> LoadCatalogue:
    """Read and validate a load catalogue; a bad file raises FixtureError naming file and field."""
    from rig.config.loader import load_yaml_model

    return load_yaml_model(path or standard_catalogue_path(), LoadCatalogue)


def as_load(value: float | Load) -> Load:
    """A catalogue entry as a model: a bare number is a resistor of that many ohm (inf: open, 0: short)."""
    if isinstance(value, int | float):
        return Resistive(float(value))
    if not isinstance(value, Load):
        raise TypeError(f"expected a resistance in ohm or a Load model, got {value!r}")
    return value
