"""Gathering small windows of a long record without Python loops over pulses.

Equal-length windows are rows of a sliding-window view: fancy-indexing it copies just the rows
(about memcpy speed), far cheaper than building a flat index array. Windows of different lengths
are sorted by length, taken in chunks and masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def rows(x: np.ndarray, first: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``x[f : f + length]`` for each ``f`` in ``first``, shifted to stay inside the record.

    Returns ``(matrix, first_used)``; a window that would leave the record is moved inwards, so
    callers work relative to ``first_used`` (or mask with it, see :func:`window_sums`).
    """
    length = max(1, min(int(length), x.size))
    first_used = np.minimum(np.maximum(np.asarray(first, dtype=np.int64), 0), x.size - length)
    return _windows_view(x, length)[first_used], first_used


def _windows_view(x: np.ndarray, length: int) -> np.ndarray:
    """``sliding_window_view(x, length)`` without its argument checking (it is called often)."""
    step = x.strides[0]
    if x.flags.c_contiguous:
        return np.ndarray((x.size - length + 1, length), x.dtype, x, 0, (step, step))
    return sliding_window_view(x, length)


@dataclass(frozen=True)
class Subsample:
    """Evenly spread blocks of consecutive samples: ``values[k]`` is ``x[start[k] : start[k] + width]``.

    Blocks rather than single samples: a strided single-sample subsample touches one cache line
    per sample, a block subsample a few per block, which makes it ~10x cheaper to take.
    """

    values: np.ndarray  # (n_blocks, width), dtype of the record
    start: np.ndarray  # int64 first sample of each block


def block_subsample(x: np.ndarray, target: int, width: int = 64) -> Subsample:
    """About ``target`` samples of ``x`` in blocks of ``width`` (the whole record if it is short)."""
    if x.size <= target:
        return Subsample(x[None, :], np.zeros(1, dtype=np.int64))
    n_blocks = max(1, target // width)
    stride = x.size // n_blocks
    start = np.arange(n_blocks, dtype=np.int64) * stride + (stride - width) // 2
    values, start = rows(x, start, width)
    return Subsample(values, start)


def ragged_indices(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the concatenated ranges ``[start_i, start_i + length_i)`` and each range's offset."""
    length = np.asarray(length, dtype=np.int64)
    offsets = np.cumsum(length) - length
    total = int(length.sum())
    idx = np.arange(total, dtype=np.int64) + np.repeat(np.asarray(start, dtype=np.int64) - offsets, length)
    return idx, offsets


def window_sums(
    x: np.ndarray, start: np.ndarray, length: np.ndarray, centre: float
) -> tuple[np.ndarray, np.ndarray]:
    """``sum(x - centre)`` and ``sum((x - centre)**2)`` over each window ``[start, start + length)``.

    Windows must lie inside the record and have ``length >= 1``. 8-bit codes are summed exactly in
    integers and shifted by ``centre`` afterwards; other data in float64. The windows are taken in
    chunks of similar length whose temporaries stay small (~256 kB): freshly allocated megabytes
    cost a page fault per 4 kB, which here is more than the arithmetic.
    """
    start = np.asarray(start, dtype=np.int64)
    length = np.asarray(length, dtype=np.int64)
    s1 = np.zeros(start.size)
    s2 = np.zeros(start.size)
    if start.size == 0:
        return s1, s2
    small_codes = x.dtype.kind in "ui" and x.dtype.itemsize == 1
    order = np.argsort(length, kind="stable")
    per_chunk = max(1, _CHUNK_BYTES // ((2 if small_codes else 8) * int(length[order[-1]])))
    for i in range(0, start.size, per_chunk):
        sel = order[i : i + per_chunk]
        matrix, first = rows(x, start[sel], int(length[sel[-1]]))  # sorted: the last is the longest
        s1[sel], s2[sel] = _masked_sums(matrix, start[sel] - first, length[sel], centre, small_codes)
    return s1, s2


_CHUNK_BYTES = 1 << 18


def _masked_sums(
    matrix: np.ndarray, lo: np.ndarray, count: np.ndarray, centre: float, small_codes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sums over columns ``[lo, lo + count)`` of each row (the rest of the row is zeroed first)."""
    width = matrix.shape[1]
    if lo.any():  # rows moved inwards at the record's ends: mask every column
        cols = np.arange(width)
        keep = (cols >= lo[:, None]) & (cols < (lo + count)[:, None])
        k = 0
    else:  # only the tails of the shorter windows: mask just those columns
        k = int(count.min())
        keep = np.arange(k, width) < count[:, None]
    if small_codes:
        signed = matrix.dtype.kind == "i"
        codes: np.ndarray = matrix.astype(np.int16 if signed else np.uint16)  # an 8-bit code squared fits
        codes[:, k:] *= keep
        acc = np.int64 if signed else np.uint64
        total = codes.sum(axis=1, dtype=acc).astype(np.float64)
        codes *= codes
        squares = codes.sum(axis=1, dtype=acc).astype(np.float64)
        return total - centre * count, squares - 2.0 * centre * total + centre * centre * count
    values: np.ndarray = matrix.astype(np.float64) - centre
    values[:, k:] *= keep
    return values.sum(axis=1), np.einsum("ij,ij->i", values, values)
