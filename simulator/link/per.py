"""Packet error rate from the link margin: non-coherent GFSK, calibrated at the receiver's sensitivity.

Derivation (docs/link-model.md, "Packet error rate"):

* Bit error rate of non-coherent binary FSK: ``BER = 0.5 exp(-gamma / 2)`` with ``gamma`` = Eb/N0 (linear).
* The sensitivity of a BLE receiver is, by definition, the input level at BER = 0.1 % (wireless.md), so at
  margin 0 dB ``gamma_0 = 2 ln(1 / (2 x 0.001)) = 12.43`` (10.94 dB); a margin of m dB scales it:
  ``gamma = gamma_0 10^(m / 10)``.
* Bits are independent: ``PER = 1 - (1 - BER)^bits``, ``bits = 8 (payload + overhead)``.
* The overhead is 9 bytes (access address 4 + PDU header 2 + CRC 3; the preamble only synchronises). With a
  37-byte test payload that is 368 bits, and PER at sensitivity = 1 - 0.999^368 = 30.80 %, the figure wireless.md
  quotes for 0.1 % BER at 37 bytes. The overhead was chosen to reproduce it.

The same curve serves every PHY: each PHY's sensitivity is defined at the same 0.1 % BER, so the margin above
that PHY's sensitivity is what matters. (Coded PHYs fall off more steeply below sensitivity than this uncoded
curve: a limit of the model.)
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

SENSITIVITY_BER = 1e-3
"""Bit error rate at which receiver sensitivity is specified (0.1 %, wireless.md)."""

GAMMA_AT_SENSITIVITY = 2.0 * math.log(1.0 / (2.0 * SENSITIVITY_BER))
"""Eb/N0 (linear) at which 0.5 exp(-gamma/2) = 0.1 %: 12.43 (10.94 dB)."""

LL_OVERHEAD_BYTES = 9
"""Access address (4) + PDU header (2) + CRC (3): gives PER = 30.8 % at sensitivity for 37 payload bytes."""

TEST_PAYLOAD_BYTES = 37
"""Payload of the sensitivity test packet (wireless.md)."""

EMPTY_PDU_BYTES = 0
"""Payload of an empty (keep-alive) link-layer PDU."""

FloatArray = npt.NDArray[np.float64]


def packet_bits(payload_bytes: int) -> int:
    """Bits exposed to errors in one packet: 8 x (payload + link-layer overhead)."""
    if payload_bytes < 0:
        raise ValueError(f"payload_bytes must be >= 0, got {payload_bytes}")
    return 8 * (payload_bytes + LL_OVERHEAD_BYTES)


def bit_error_rate(margin_dB: Any) -> Any:
    """BER at ``margin_dB`` above sensitivity (scalar -> float, array -> array); 0.1 % at 0 dB, -> 0.5 far below."""
    if isinstance(margin_dB, float):
        return _scalar_ber(margin_dB)
    m = np.asarray(margin_dB, dtype=np.float64)
    gamma = GAMMA_AT_SENSITIVITY * np.power(10.0, np.minimum(m, 30.0) / 10.0)
    ber = 0.5 * np.exp(-gamma / 2.0)
    return float(ber) if ber.ndim == 0 else ber


def packet_error_rate(margin_dB: Any, payload_bytes: int = TEST_PAYLOAD_BYTES) -> Any:
    """PER of a ``payload_bytes`` packet at ``margin_dB`` above sensitivity (scalar -> float, array -> array).

    Monotone decreasing in the margin; 30.8 % at 0 dB for the 37-byte test payload.
    """
    if isinstance(margin_dB, float):
        return _scalar_per(margin_dB, payload_bytes)
    ber = np.asarray(bit_error_rate(margin_dB), dtype=np.float64)
    per = -np.expm1(packet_bits(payload_bytes) * np.log1p(-ber))
    return float(per) if per.ndim == 0 else per


# Scalar fast paths (the per-event engine asks for one margin at a time). They give the array path's numbers
# bit for bit: the same numpy ufuncs on the same IEEE doubles, with the plain arithmetic done on Python floats
# (identical operations in the same order). ``math.exp`` / ``math.log1p`` / ``10 ** x`` would NOT be identical:
# numpy's SIMD transcendental functions (e.g. AVX-512) differ from libm's in the last bit for a few % of inputs.
# Calling a ufunc on a scalar costs ~1 us (``np.power`` most of it), so results are memoised: a static device asks
# for the same two margins (empty and command PDU) at every event. tests/unit/test_fleet_engines.py checks the
# scalar and array paths against each other.


@functools.lru_cache(maxsize=4096)
def _scalar_ber(margin_dB: float) -> float:
    m = 30.0 if margin_dB > 30.0 else margin_dB  # np.minimum(m, 30): NaN stays NaN
    gamma = GAMMA_AT_SENSITIVITY * float(np.power(10.0, m / 10.0))
    return 0.5 * float(np.exp(-gamma / 2.0))


@functools.lru_cache(maxsize=4096)
def _scalar_per(margin_dB: float, payload_bytes: int) -> float:
    return -float(np.expm1(packet_bits(payload_bytes) * float(np.log1p(-_scalar_ber(margin_dB)))))
