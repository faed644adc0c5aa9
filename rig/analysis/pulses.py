"""Which runs make a pulse: phase 1, then its phase 2, both wholly inside the record."""

from __future__ import annotations

import numpy as np

from rig.analysis.runs import Runs


def pair_phases(runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """Run indices of each complete pulse's phase 1 and phase 2 (-1: none).

    Phase 1 is a positive run. Its phase 2 is the longest negative run before the next positive
    run (a ringing undershoot that made a short negative run of its own is not a phase). A pulse
    counts only if its runs both start and end inside the record; in a biphasic train a last
    positive run with no negative run after it is cut off by the record's end, while a positive run
    followed by another one is a pulse without phase 2 (a monophasic train, or a missing phase).
    """
    positive = runs.polarity > 0
    pos = np.flatnonzero(positive)
    owner = np.cumsum(positive) - 1  # index into pos of the positive run each run follows
    neg = np.flatnonzero(~positive & (owner >= 0))
    order = neg[np.lexsort((-runs.length[neg], owner[neg]))]  # per owner, longest first
    firsts = order[np.concatenate(([True], owner[order][1:] != owner[order][:-1]))] if order.size else order
    second = np.full(pos.size, -1, dtype=np.int64)
    second[owner[firsts]] = firsts
    has2 = second >= 0
    followed = np.append(pos[1:], runs.size) < runs.size  # another positive run comes later
    complete = runs.complete
    ok = complete[pos] & np.where(has2, complete[np.maximum(second, 0)], followed | (not has2.any()))
    return pos[ok], second[ok]
