"""Constant-current output stage driving a load, saturating at its compliance voltage."""

from __future__ import annotations

import numpy as np


def delivered_current_mA(commanded_mA: np.ndarray, load_ohm: float, compliance_V: float) -> np.ndarray:
    """Current the stage actually drives into ``load_ohm``.

    A current source holds its set-point until I*R would exceed the compliance voltage; beyond it the
    output is a voltage source at the compliance rail, so |I| = V_compliance / R.
    """
    if load_ohm <= 0:
        return commanded_mA.copy()
    limit_mA = 1000.0 * compliance_V / load_ohm
    return np.clip(commanded_mA, -limit_mA, limit_mA)


def load_voltage_V(commanded_mA: np.ndarray, load_ohm: float, compliance_V: float) -> np.ndarray:
    """Voltage across a resistive load for the commanded current waveform."""
    return delivered_current_mA(commanded_mA, load_ohm, compliance_V) * (load_ohm / 1000.0)
