"""Which connection events carry a command PDU, chunk by chunk (the fast engine's one sequential rule).

``BleConnection`` sends the oldest pending command's PDU at an event if one is pending, else an empty keep-alive
PDU, and the two have different packet error rates. So whether event k succeeds depends on whether a command is
pending at k, which depends on the earlier events. ``CommandWindows`` resolves this for many links at once: given
both outcomes of every event (``ok_empty``: the empty PDU would get through; ``ok_command``: the command PDU would)
it returns the outcome the connection actually had, carrying its state from one time chunk to the next.

Rules (those of BleConnection + the fleet engines' reconnect rule, docs/fleet.md):

* a command first sent at event f opens a WINDOW (commands pending) unless the link is lost at f (then it is lost);
  a command whose first event falls inside an open window joins it;
* in a window every event carries the command PDU; the window closes at the first such event that gets through
  (every pending command delivered) or at the event where the supervision timeout expires (pending commands
  flushed; that event itself is a reconnection attempt with an empty PDU);
* outside windows every event carries an empty PDU (also while the link is lost: reconnection attempts).

The loop is over windows (vectorised over links), never over events.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.fleet.rules import NEVER, expiry_events
from simulator.link.timeline import supervision_expired

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class CommandWindows:
    """State of many links' command windows across time chunks.

    ``first_event``: (n_links, max_commands) first-event index of each link's commands, non-decreasing along a row,
    padded with ``rules.NEVER``.
    """

    def __init__(self, first_event: IntArray, spacing_s: float, supervision_timeout_s: float) -> None:
        self.first = np.asarray(first_event, dtype=np.int64)
        n = self.first.shape[0]
        self.spacing_s = spacing_s
        self.timeout_s = supervision_timeout_s
        self.expiry = expiry_events(spacing_s, supervision_timeout_s)
        self.ptr = np.zeros(n, dtype=np.int64)  # next command not yet handled
        self.last = np.zeros(n, dtype=np.int64)  # last successful event (0 = connection established)
        self.open = np.zeros(n, dtype=bool)  # a window is open at the next chunk's start
        self.next_k = 0
        self.in_window = np.zeros((n, 0), dtype=bool)  # the last chunk's events that carried a command PDU

    def _next_first(self, rows: IntArray) -> IntArray:
        width = self.first.shape[1]
        if width == 0:
            return np.full(rows.size, NEVER, dtype=np.int64)
        p = self.ptr[rows]
        return np.where(p < width, self.first[rows, np.minimum(p, width - 1)], NEVER)

    def _skip_through(self, rows: IntArray, limit: IntArray) -> None:
        """Advance past every command whose first event is <= limit (they join the window just resolved)."""
        while rows.size:
            move = self._next_first(rows) <= limit
            rows, limit = rows[move], limit[move]
            self.ptr[rows] += 1

    def step(self, ok_empty: BoolArray, ok_command: BoolArray) -> BoolArray:
        """Outcomes of the next ``m`` events of every link, (n_links, m), given both possible outcomes."""
        ok_e = np.asarray(ok_empty, dtype=bool)
        ok_c = np.asarray(ok_command, dtype=bool)
        n, m = ok_e.shape
        if ok_c.shape != (n, m) or n != self.first.shape[0]:
            raise ValueError("ok_empty and ok_command must both be (n_links, n_events_in_chunk)")
        k0 = self.next_k
        cols = np.arange(m, dtype=np.int64)
        # last empty-PDU success at or before each column; first command-PDU success at or after it
        prev_e = np.maximum.accumulate(np.where(ok_e, cols, -1), axis=1)
        next_c = np.minimum.accumulate(np.where(ok_c, cols, m)[:, ::-1], axis=1)[:, ::-1]
        marks = np.zeros((n, m + 1), dtype=np.int32)
        cur = np.zeros(n, dtype=np.int64)  # events before cur (chunk-local) are accounted for in `last`
        last = self.last.copy()
        busy = np.zeros(n, dtype=bool)  # window still open at the chunk's end

        def window(rows: IntArray, start: IntArray) -> None:
            d = next_c[rows, start]
            x = last[rows] + self.expiry - k0
            delivered = d < np.minimum(x, m)
            flushed = ~delivered & (x < m)
            stop = np.where(delivered, d + 1, np.where(flushed, x, m))
            marks[rows, start] += 1
            marks[rows, stop] -= 1
            last[rows[delivered]] = k0 + d[delivered]
            cur[rows] = np.where(delivered, d + 1, np.where(flushed, x, m))
            unresolved = ~(delivered | flushed)
            self.open[rows] = unresolved
            busy[rows[unresolved]] = True
            limit = k0 + np.where(delivered, d, np.where(flushed, x, m - 1))
            self._skip_through(rows, limit)

        carried = np.flatnonzero(self.open)
        if carried.size:
            window(carried, np.zeros(carried.size, dtype=np.int64))
        while True:
            f = self._next_first(np.arange(n))
            rows = np.flatnonzero(~busy & (f < k0 + m))
            if rows.size == 0:
                break
            fl = f[rows] - k0
            pe = prev_e[rows, np.maximum(fl - 1, 0)]
            seen = (fl >= 1) & (pe >= cur[rows])
            last[rows] = np.where(seen, k0 + pe, last[rows])
            cur[rows] = fl
            down = np.asarray(supervision_expired(k0 + fl - last[rows], self.spacing_s, self.timeout_s), dtype=bool)
            self.ptr[rows[down]] += 1  # issued while the link is lost: lost, no window
            if np.any(~down):
                window(rows[~down], fl[~down])

        in_window = np.cumsum(marks[:, :m], axis=1) > 0
        self.in_window = in_window
        combined = np.where(in_window, ok_c, ok_e)
        any_ok = combined.any(axis=1)
        last_ok = m - 1 - np.argmax(combined[:, ::-1], axis=1)
        self.last = np.where(any_ok, np.maximum(self.last, k0 + last_ok), self.last)
        self.next_k = k0 + m
        return np.asarray(combined, dtype=bool)
