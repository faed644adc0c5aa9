"""Expanded measurement uncertainty U of a scope-derived value, from the bench's accuracy
specification (bench field ``scope.accuracy``), for guard-banded verdicts (rig.measurements).

Each specification limit is taken as the half-width of a rectangular distribution (standard
uncertainty a/sqrt(3), GUM 4.3.7); independent terms combine in quadrature; U = k u with k = 2.
The quantity a unit stands for decides which terms apply and with which sensitivity:

- voltage (V): scope gain, probe;
- current, charge, current density (mA, uA, uC, nC, mA/cm2): scope gain, probe, and the load resistor
  (I = V / R);
- energy and power (mJ, uJ, W, mW, W/cm2): V^2 / R, so gain and probe twice;
- time and frequency (s, ms, us, ns, Hz, kHz): the timebase;
- counts, states, ratios, percentages, dB: exact (no instrument term), U = 0.

Terms this model leaves out (sampling resolution, noise, interpolation) are small against these for
the ranges the suite sets; docs/evidence.md says so.
"""

from __future__ import annotations

import math

from rig.config.bench import ScopeAccuracy

COVERAGE_FACTOR = 2.0
_RECTANGULAR = 1.0 / math.sqrt(3.0)

VOLTAGE_UNITS = frozenset({"V", "mV", "V_peak"})
CURRENT_UNITS = frozenset({"mA", "uA", "A", "uC", "nC", "mA/cm2", "mA_rms"})
POWER_UNITS = frozenset({"mJ", "uJ", "J", "W", "mW", "W/cm2"})
TIME_UNITS = frozenset({"s", "ms", "us", "ns", "Hz", "kHz"})


def relative_terms_pct(unit: str, accuracy: ScopeAccuracy) -> list[float]:
    """The specification limits (in %, each with its sensitivity) that apply to a value in ``unit``."""
    if unit in VOLTAGE_UNITS:
        return [accuracy.dc_gain_pct, accuracy.probe_pct]
    if unit in CURRENT_UNITS:
        return [accuracy.dc_gain_pct, accuracy.probe_pct, accuracy.load_pct]
    if unit in POWER_UNITS:
        return [2 * accuracy.dc_gain_pct, 2 * accuracy.probe_pct, accuracy.load_pct]
    if unit in TIME_UNITS:
        return [accuracy.timebase_ppm * 1e-4]
    return []


def expanded_uncertainty(unit: str, value: float, accuracy: ScopeAccuracy) -> float:
    """U (k=2) of ``value`` in ``unit``; 0 for units with no instrument term."""
    terms = relative_terms_pct(unit, accuracy)
    if not terms or not math.isfinite(value):
        return 0.0
    u_rel = math.sqrt(sum((t / 100.0 * _RECTANGULAR) ** 2 for t in terms))
    return COVERAGE_FACTOR * u_rel * abs(value)
