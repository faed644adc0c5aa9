"""Capture rendering for the emulated scope: record geometry, the analog front end, the trigger search
and the wire formats of :WAVeform:DATA?.

Front-end chain for one channel (every random draw from a seeded ``host.rng`` stream)::

    tip voltage (host.signal(ch).render)
      / physical probe attenuation         (host.probe_attenuation(ch): volts at the BNC)
      -> first-order low-pass              (full bandwidth, or the BW-limit filter)
      -> [first-order high-pass]           (AC coupling only)
      + gaussian front-end noise           (rms from the model; scaled down with the BW limit)
      * :CHANnel<n>:PROBe setting          (a wrong setting scales the reading wrongly, as on a real scope)
      -> ADC: round to 1/32 div codes over the 8-division screen, clip to the ADC range
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.signal import lfilter

from simulator.instruments.host import ProbedSignal, ScopeHost
from simulator.instruments.scope_model import ScopeModel
from simulator.instruments.scpi import definite_block

Reference = Literal["LEFT", "CENTer", "RIGHt"]
Slope = Literal["POSitive", "NEGative", "EITHer", "ALTernate"]
WaveFormat = Literal["BYTE", "WORD", "ASCii"]
PointsMode = Literal["NORMal", "MAXimum", "RAW"]

# --------------------------------------------------------------------------------------------
# Record geometry

_NICE_MANTISSAS = (1.0, 2.0, 2.5, 5.0)


def nice_sample_rate(limit_Sa_per_s: float) -> float:
    """The largest 1-2-2.5-5 x 10^k sample rate not above ``limit`` (scopes decimate by such steps)."""
    if limit_Sa_per_s <= 0 or not math.isfinite(limit_Sa_per_s):
        raise ValueError(f"sample-rate limit must be positive and finite, got {limit_Sa_per_s}")
    exponent = math.floor(math.log10(limit_Sa_per_s))
    best = 0.0
    for k in (exponent - 1, exponent):
        for m in _NICE_MANTISSAS:
            rate = m * 10.0**k
            if rate <= limit_Sa_per_s * (1 + 1e-9):
                best = max(best, rate)
    return best


@dataclass(frozen=True)
class RecordGeometry:
    """Where the record sits: sample rate, length, and the time of its first sample (trigger = 0)."""

    sample_rate_Sa_per_s: float
    n_points: int
    t_first_s: float

    @property
    def dt_s(self) -> float:
        return 1.0 / self.sample_rate_Sa_per_s

    @property
    def duration_s(self) -> float:
        return self.n_points * self.dt_s

    @property
    def pre_trigger_s(self) -> float:
        """How much of the record lies before the trigger (what the scope must fill before arming)."""
        return max(0.0, min(-self.t_first_s, self.duration_s))


def reference_divisions(model: ScopeModel, reference: Reference) -> float:
    """Divisions from the left screen edge to the time reference."""
    h = model.horizontal
    if reference == "LEFT":
        return h.reference_divisions_from_edge
    if reference == "RIGHt":
        return h.divisions - h.reference_divisions_from_edge
    return h.divisions / 2.0


def compute_geometry(
    model: ScopeModel,
    time_scale_s_per_div: float,
    reference: Reference,
    position_s: float,
    displayed: frozenset[int],
) -> RecordGeometry:
    """Full-memory single-shot record: the screen (10 div) at the highest rate the memory allows.

    :TIMebase:POSition is the time from the trigger to the reference point, so the left screen edge
    is at ``position - ref_div * scale`` relative to the trigger.
    """
    duration = model.horizontal.divisions * time_scale_s_per_div
    limit = min(model.max_sample_rate_Sa_per_s(displayed), model.memory_depth_pts(displayed) / duration)
    rate = nice_sample_rate(limit)
    n = max(1, math.floor(duration * rate + 1e-6))
    t_first = position_s - reference_divisions(model, reference) * time_scale_s_per_div
    return RecordGeometry(sample_rate_Sa_per_s=rate, n_points=n, t_first_s=t_first)


# --------------------------------------------------------------------------------------------
# Analog front end


@dataclass(frozen=True)
class FrontEnd:
    """One channel's vertical set-up, in the scope's units (after the :PROBe setting)."""

    scale_V_per_div: float
    offset_V: float
    probe_setting: float
    bw_limit: bool = False
    ac_coupled: bool = False


def _first_order_coefficients(dt_s: float, cutoff_Hz: float) -> tuple[np.ndarray, np.ndarray]:
    """First-order low-pass 1/(1+s*tau), discretised exactly for inputs linear between samples
    (first-order hold); valid for any ratio of sample interval to time constant."""
    tau = 1.0 / (2.0 * math.pi * cutoff_Hz)
    x = dt_s / tau
    a = math.exp(-x)
    one_minus_a = -math.expm1(-x)
    r = tau / dt_s
    b0 = 1.0 - r * one_minus_a
    b1 = r * one_minus_a - a
    return np.array([b0, b1]), np.array([1.0, -a])


def lowpass(x: np.ndarray, dt_s: float, cutoff_Hz: float, initial: float | None = None) -> np.ndarray:
    """First-order low-pass of samples ``x`` taken every ``dt_s``; the input is assumed to have sat at
    ``initial`` (default: ``x[0]``) forever before the first sample."""
    if x.size == 0:
        return x.astype(np.float64)
    b, a = _first_order_coefficients(dt_s, cutoff_Hz)
    x0 = float(x[0]) if initial is None else float(initial)
    if a[1] > -1e-17:
        # Sample interval far above the time constant (e.g. a 350 MHz front end sampled at 400 kSa/s):
        # the pole's memory a = exp(-dt/tau) is below 1e-17, so the recursion is the two-tap FIR
        # y[k] = b0 x[k] + b1 x[k-1] to within double precision. Same result, no lfilter pass.
        x = np.asarray(x, dtype=np.float64)
        y = b[0] * x
        y[1:] += b[1] * x[:-1]
        y[0] += b[1] * x0
        return y
    # transposed direct form: z = b1*x[-1] - a1*y[-1]; a constant past x = y = x0 gives (b1 - a1)*x0
    zi = np.array([(b[1] - a[1]) * x0])
    y, _ = lfilter(b, a, x, zi=zi)
    return np.asarray(y, dtype=np.float64)


def highpass(x: np.ndarray, dt_s: float, cutoff_Hz: float) -> np.ndarray:
    """First-order high-pass (AC coupling): ``x`` minus its low-pass, with the record mean as the past DC."""
    if x.size == 0:
        return x.astype(np.float64)
    return x - lowpass(x, dt_s, cutoff_Hz, initial=float(np.mean(x)))


def noise_rms_V(model: ScopeModel, fe: FrontEnd) -> float:
    """Front-end rms noise at the BNC for this set-up (BW limit lowers it by sqrt(bandwidth ratio))."""
    v = model.vertical
    full_scale_bnc = v.divisions * fe.scale_V_per_div / fe.probe_setting
    rms = math.hypot(v.noise_floor_rms_V, v.noise_fraction_of_full_scale * full_scale_bnc)
    if fe.bw_limit:
        rms *= math.sqrt(v.bw_limit_Hz / v.bandwidth_Hz)
    return rms


def y_increment_V(model: ScopeModel, fe: FrontEnd, levels: int) -> float:
    """Volts (scope units) per code when the screen's divisions span ``levels`` codes."""
    return model.vertical.divisions * fe.scale_V_per_div / levels


def render_tip(signal: ProbedSignal | None, t0_s: float, dt_s: float, n: int) -> np.ndarray:
    if signal is None or n <= 0:
        return np.zeros(max(n, 0), dtype=np.float64)
    out = np.asarray(signal.render(t0_s, dt_s, n), dtype=np.float64)
    if out.shape != (n,):
        raise ValueError(f"signal.render returned shape {out.shape}, expected ({n},)")
    return out


def digitize(
    signal: ProbedSignal | None,
    physical_attenuation: float,
    t0_s: float,
    dt_s: float,
    n: int,
    fe: FrontEnd,
    model: ScopeModel,
    noise_rng: np.random.Generator,
) -> np.ndarray:
    """ADC codes (uint8 for an 8-bit ADC) of samples at bench times ``t0_s + k*dt_s``, k < n."""
    v = model.vertical
    cutoff = v.bw_limit_Hz if fe.bw_limit else v.bandwidth_Hz
    tau = 1.0 / (2.0 * math.pi * cutoff)
    pre = min(math.ceil(8.0 * tau / dt_s), 100_000) + 1  # filter pre-roll from the past
    tip = render_tip(signal, t0_s - pre * dt_s, dt_s, n + pre)
    bnc = lowpass(tip * (1.0 / physical_attenuation), dt_s, cutoff)[pre:]  # a new array: tip may be shared
    if fe.ac_coupled:
        bnc = highpass(bnc, dt_s, v.ac_coupling_cutoff_Hz)
    noise = noise_rng.standard_normal(n, dtype=np.float32)  # float32 draws: half the cost, ample for noise
    noise *= noise_rms_V(model, fe)
    bnc += noise
    bnc *= fe.probe_setting  # what the screen displays
    return quantize(bnc, fe, model)


def quantize(displayed_V: np.ndarray, fe: FrontEnd, model: ScopeModel) -> np.ndarray:
    """Round to ADC codes (half a code rounds up): mid-code = screen centre (= offset); codes
    1..levels-1 (0 means 'hole'). Overwrites ``displayed_V``."""
    levels = model.adc_levels
    yinc = y_increment_V(model, fe, levels)
    codes = displayed_V
    codes -= fe.offset_V
    codes *= 1.0 / yinc
    codes += levels // 2 + 0.5
    np.clip(codes, 1, levels - 1, out=codes)
    return codes.astype(np.uint8 if levels <= 256 else np.uint16)  # truncation of values >= 1 = floor


# --------------------------------------------------------------------------------------------
# Edge trigger search


@dataclass(frozen=True)
class EdgeTrigger:
    """Edge trigger in scope units: the comparator sees tip / physical attenuation * probe setting."""

    source: int
    level_V: float
    slope: Slope
    gain: float  # probe setting / physical attenuation


def _first_crossing(v: np.ndarray, level: float, slope: Slope) -> int | None:
    """Index k of the first pair (v[k], v[k+1]) that crosses ``level`` with the slope, or None."""
    if v.size < 2:
        return None
    candidates = []
    if slope in ("POSitive", "EITHer", "ALTernate"):
        above = v >= level
        hits = np.flatnonzero(~above[:-1] & above[1:])
        if hits.size:
            candidates.append(int(hits[0]))
    if slope in ("NEGative", "EITHer", "ALTernate"):
        below = v <= level
        hits = np.flatnonzero(~below[:-1] & below[1:])
        if hits.size:
            candidates.append(int(hits[0]))
    return min(candidates) if candidates else None


def _refine(
    render: Callable[[float, float, int], np.ndarray],
    trig: EdgeTrigger,
    ta: float,
    tb: float,
    va: float,
    vb: float,
    resolution_s: float,
) -> float:
    """Narrow a bracketing pair down to ``resolution_s``, then interpolate linearly."""
    m = 32
    for _ in range(6):
        if tb - ta <= resolution_s:
            break
        step = (tb - ta) / m
        fine = render(ta, step, m + 1)
        fine[0], fine[-1] = va, vb  # keep the bracket exact despite rounding of the grid times
        k = _first_crossing(fine, trig.level_V, trig.slope)
        if k is None:
            break
        ta, tb, va, vb = ta + k * step, ta + (k + 1) * step, float(fine[k]), float(fine[k + 1])
    if vb == va:
        return tb
    frac = min(max((trig.level_V - va) / (vb - va), 0.0), 1.0)
    return ta + frac * (tb - ta)


def search_edge(
    host: ScopeHost,
    trig: EdgeTrigger,
    start_s: float,
    stop_s: float,
    step_s: float,
    chunk_s: float,
    resolution_s: float,
) -> tuple[float | None, float]:
    """First trigger crossing in (start_s, stop_s], or None; and the bench time searched up to.

    Bench time advances chunk by chunk (``host.advance_to``) only as far as the search needs; each
    newly elapsed chunk of the source is rendered every ``step_s`` and a crossing is located to
    ``resolution_s`` by re-rendering the bracketing interval finely.
    """
    if stop_s <= start_s:
        return None, start_s
    signal = host.signal(trig.source)
    if signal is None:
        host.advance_to(stop_s)
        return None, stop_s
    gain = trig.gain

    def render(t0: float, dt: float, n: int) -> np.ndarray:
        return render_tip(signal, t0, dt, n) * gain

    k_last = math.floor((stop_s - start_s) / step_s + 1e-9)
    k0 = 0
    prev: float | None = None
    while k0 <= k_last:
        t_chunk_end = min(start_s + (k0 * step_s) + chunk_s, stop_s)
        k1 = min(k_last, math.floor((t_chunk_end - start_s) / step_s + 1e-9))
        k1 = max(k1, k0)
        t_end = start_s + k1 * step_s
        host.advance_to(max(t_end, t_chunk_end))  # never render past the bench's present
        v = render(start_s + k0 * step_s, step_s, k1 - k0 + 1)
        base = k0
        if prev is not None:
            v = np.concatenate(([prev], v))
            base = k0 - 1
        k = _first_crossing(v, trig.level_V, trig.slope)
        if k is not None:
            ta, tb = start_s + (base + k) * step_s, start_s + (base + k + 1) * step_s
            return _refine(render, trig, ta, tb, float(v[k]), float(v[k + 1]), resolution_s), t_end
        prev = float(v[-1])
        k0 = k1 + 1
    return None, stop_s


# --------------------------------------------------------------------------------------------
# :WAVeform transfer


PREAMBLE_FORMAT_CODE: dict[WaveFormat, int] = {"BYTE": 0, "WORD": 1, "ASCii": 4}


def transfer_step(n_raw: int, mode: PointsMode, requested: int, measurement_max: int) -> int:
    """Decimation step (1 of N) so that at most ``requested`` points are sent from the chosen record.

    NORMal sends the measurement record (the raw record decimated to <= ``measurement_max``);
    RAW and MAXimum send the raw record.
    """
    if n_raw <= 0:
        return 1
    base = 1 if mode in ("RAW", "MAXimum") else max(1, math.ceil(n_raw / measurement_max))
    available = math.ceil(n_raw / base)
    if requested >= available:
        return base
    return base * math.ceil(available / max(1, requested))


@dataclass(frozen=True)
class YScaling:
    y_increment: float
    y_origin: float
    y_reference: int


def y_scaling(model: ScopeModel, fe: FrontEnd, fmt: WaveFormat, unsigned: bool) -> YScaling:
    """volts = (value - y_reference) * y_increment + y_origin, for the values as sent."""
    levels = 65536 if fmt == "WORD" else 256
    reference = levels // 2 if unsigned else 0
    return YScaling(y_increment_V(model, fe, levels), fe.offset_V, reference)


def encode_values(
    codes: np.ndarray, model: ScopeModel, fe: FrontEnd, fmt: WaveFormat, unsigned: bool, msb_first: bool
) -> bytes:
    """The payload of :WAVeform:DATA? as an IEEE 488.2 ``#8`` block (ASCii included, as InfiniiVision does)."""
    bits = model.vertical.adc_bits
    c = codes.astype(np.int64)
    if fmt == "BYTE":
        c = c >> (bits - 8) if bits > 8 else c << (8 - bits)
        payload = (c.astype(np.uint8) if unsigned else (c - 128).astype(np.int8)).tobytes()
    elif fmt == "WORD":
        w = c << (16 - bits)
        dtype = (">" if msb_first else "<") + ("u2" if unsigned else "i2")
        payload = (w if unsigned else w - 32768).astype(dtype).tobytes()
    else:
        levels = model.adc_levels
        volts = (c - levels // 2) * y_increment_V(model, fe, levels) + fe.offset_V
        payload = ",".join(_ascii_value(float(x)) for x in volts).encode("ascii")
    return definite_block(payload)


def _ascii_value(v: float) -> str:
    """InfiniiVision's ASCii number form: `` 4.03266e-002`` / ``-1.25647e-004``."""
    mantissa, exponent = f"{v: .5e}".split("e")
    return f"{mantissa}e{exponent[0]}{int(exponent[1:]):03d}"
