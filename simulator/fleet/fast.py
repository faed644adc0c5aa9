"""Fast fleet engine: numpy over (links x connection events), chunked in time; Python loops only over command
windows and chunks, never over events.

Same rules as the reference engine (simulator.fleet.reference), in two passes per group of links that share
connection parameters (simulator.fleet.setup.LinkGroup):

1. chunk by chunk in time (``max_elements`` links x events per chunk bounds the memory): distance along each path,
   ``correlated_shadowing_dB`` over the distance walked (static devices: one draw), margin, ``packet_error_rate``
   for the empty keep-alive PDU and for the command PDU, ``sample_bad_states`` (Gilbert-Elliott, continued across
   chunks) and ``sample_event_losses`` for both; ``CommandWindows`` picks per event which of the two the connection
   actually sent (the only state carried event to event besides the chain and the shadowing). The outcome is kept
   as one bit per event. The draws of the next chunk are made on a second thread meanwhile (``_prefetched``).
2. block by block of links over the whole record, two blocks at a time: link held or lost, dropouts at the
   dropout threshold and at the supervision timeout (cutoffs), the outcome and latency of every command - the
   numbers of ``lost_mask``, ``link_dropouts`` and ``command_latency_s``, worked out from the failure runs
   (``_block_record``; tests/unit/test_fleet_engines.py holds it to the helpers exactly).

Link state changes (cutoffs) and deliveries then drive the device-state model (set-points per device, checked
addressing), in time order. The threads change no number: same seed, same chunking, same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from simulator.fleet.device_state import DeviceStates
from simulator.fleet.results import EngineRecord, Gaps
from simulator.fleet.rules import NEVER, CommandStatus, expiry_events, first_event_index
from simulator.fleet.setup import LinkGroup, RunSetup
from simulator.fleet.windows import CommandWindows
from simulator.link import (
    correlated_shadowing_dB,
    lost_mask,
    packet_error_rate,
    sample_bad_states,
    sample_event_losses,
)
from simulator.link.per import EMPTY_PDU_BYTES
from simulator.rng import SeededStreams

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[float], None]
T = TypeVar("T")

DEFAULT_MAX_ELEMENTS = 2_000_000
"""Links x events held at once (a few arrays of 8 bytes each): bounds memory for any fleet size or duration."""

_PHASE2_WEIGHT = 0.25  # share of the work the second pass takes, for the progress bar
_PHASE2_THREADS = 2  # blocks of links worked out at once in the second pass (the benchmark target: 2 cores)


@dataclass
class _Out:
    n_events: IntArray
    spacing: FloatArray
    rssi_sum: FloatArray
    failures: IntArray
    status: npt.NDArray[np.int8]
    latency: FloatArray
    hold: FloatArray
    held: FloatArray
    drops: list[Gaps] = field(default_factory=list)
    cuts: list[Gaps] = field(default_factory=list)
    delivered_to: list[IntArray] = field(default_factory=list)
    delivered_cmd: list[IntArray] = field(default_factory=list)
    delivered_s: list[FloatArray] = field(default_factory=list)


def chunk_events(n_links: int, n_events: int, max_elements: int = DEFAULT_MAX_ELEMENTS) -> int:
    """Events per time chunk: a multiple of 8 (one byte of packed outcomes), at least 8."""
    per = max(8, (max_elements // max(n_links, 1)) // 8 * 8)
    return min(per, ((n_events + 7) // 8) * 8)


class _Work:
    def __init__(self, total: float, progress: Progress | None) -> None:
        self.total, self.done, self.progress = max(total, 1.0), 0.0, progress

    def add(self, amount: float) -> None:
        self.done += amount
        if self.progress is not None:
            self.progress(min(self.done / self.total, 1.0))


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each computed on a worker thread while the caller works on the previous one (one ahead).

    The iterator is only ever advanced by that one worker, one item at a time, so it runs exactly as it would
    inline (same order of random draws); an exception in it is raised here.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleet-draws") as pool:
        ahead = pool.submit(next, items, None)
        while True:
            item = ahead.result()
            if item is None:
                return
            ahead = pool.submit(next, items, None)
            yield item


def _first_events(setup: RunSetup, cmds: IntArray, anchor: FloatArray, spacing_s: float) -> IntArray:
    valid = cmds >= 0
    issued = np.where(valid, setup.plan.issued_s[np.maximum(cmds, 0)], anchor[:, None])
    return np.where(valid, first_event_index(issued, anchor[:, None], spacing_s), NEVER)


def _outcomes(setup: RunSetup, g: LinkGroup, out: _Out, work: _Work, max_elements: int,
              cmds: IntArray) -> npt.NDArray[np.uint8]:
    """Pass 1: the outcome of every connection event of the group's links, packed 8 events per byte."""
    fleet = setup.fleet
    model = setup.link_model(g.connection)
    env = model.environment
    dev, ng, ne, spacing = g.devices, g.devices.size, g.n_events, g.spacing_s
    anchor = fleet.anchor_s[dev]
    streams = SeededStreams(setup.seed)
    rng_shadow, rng_burst, rng_loss = (streams(f"fast/{g.key}/{s}") for s in ("shadowing", "burst", "loss"))
    windows = CommandWindows(_first_events(setup, cmds, anchor, spacing), spacing, g.connection.supervision_timeout_s)
    fixed = np.where(fleet.body_in_path[dev], setup.body_loss_dB, 0.0) + setup.extra_loss_dB
    tx = model.budget.tx_power_dBm
    chunk = chunk_events(ng, ne, max_elements)
    packed = np.zeros((ng, (ne + 7) // 8), dtype=np.uint8)

    per_e: FloatArray | None = None
    per_c: FloatArray | None = None
    if not g.moving:
        d0 = fleet.distance_m(dev, anchor[:, None])[:, 0]
        loss0 = model.mean_path_loss_dB(d0) + rng_shadow.normal(0.0, env.shadowing_sigma_dB, ng) + fixed
        margin0 = model.budget.margin_dB(loss0)
        per_e = np.asarray(packet_error_rate(margin0, EMPTY_PDU_BYTES))[:, None]
        per_c = np.asarray(packet_error_rate(margin0, setup.payload_bytes))[:, None]
        out.rssi_sum[dev] = (tx - loss0) * ne
    paths = fleet.path_arrays(dev) if g.moving else None

    def draws() -> Iterator[tuple[int, BoolArray, BoolArray]]:
        """Per chunk: both possible outcomes of every event (empty PDU, command PDU), from the group's streams."""
        per_e_, per_c_ = per_e, per_c
        walked_prev: FloatArray | None = None
        shadow_prev: FloatArray | None = None
        prev_bad: BoolArray | None = None
        for k0 in range(0, ne, chunk):
            m = min(chunk, ne - k0)
            if paths is not None:
                t = anchor[:, None] + (k0 + np.arange(m)) * spacing
                walked = paths.travelled_m(t)
                before = walked[:, :1] if walked_prev is None else walked_prev
                moved = np.diff(np.concatenate([before, walked], axis=1), axis=1)
                walked_prev = walked[:, -1:]
                shadow = correlated_shadowing_dB(rng_shadow, env.shadowing_sigma_dB, env.decorrelation_distance_m,
                                                 moved, initial_dB=shadow_prev)
                shadow_prev = shadow[:, -1]
                loss = model.mean_path_loss_dB(fleet.distance_m(dev, t)) + shadow + fixed[:, None]
                out.rssi_sum[dev] += (tx - loss).sum(axis=1)
                margin = model.budget.margin_dB(loss)
                per_e_ = np.asarray(packet_error_rate(margin, EMPTY_PDU_BYTES))
                per_c_ = np.asarray(packet_error_rate(margin, setup.payload_bytes))
            assert per_e_ is not None and per_c_ is not None
            bad = sample_bad_states(model.burst, rng_burst, ng, m, previous_bad=prev_bad)
            prev_bad = bad[:, -1]
            ok_e = ~sample_event_losses(model.burst, rng_loss, bad, per_e_, model.interference_loss)
            ok_c = ~sample_event_losses(model.burst, rng_loss, bad, per_c_, model.interference_loss)
            yield k0, ok_e, ok_c

    # The draws of chunk c + 1 (random streams only: the same calls in the same order, so the same numbers) are
    # made on a second thread while this one resolves chunk c's command windows: numpy releases the GIL in both.
    for k0, ok_e, ok_c in _prefetched(draws()):
        m = ok_e.shape[1]
        ok = windows.step(ok_e, ok_c)
        packed[:, k0 // 8 : k0 // 8 + (m + 7) // 8] = np.packbits(ok, axis=1)
        work.add(ng * m)
    return packed


@dataclass
class _Runs:
    """The failure runs of a block of outcome rows, in row-major order: every gap figure follows from them.

    Run i of row ``row[i]`` holds the failed events ``start[i] .. end[i] - 1``; ``end[i]`` is the success that ends
    it (``n_events``: none); ``last[i]`` the last success before it (``_last_success_before``: 0 when the row
    starts with it = the connection's establishment).
    """

    row: IntArray
    start: IntArray
    end: IntArray
    last: IntArray

    @classmethod
    def of(cls, ok: BoolArray) -> _Runs:
        step = np.diff(ok.view(np.int8), axis=1, prepend=np.int8(1), append=np.int8(1))  # ok[-1] = ok[n] = 1
        row, start = np.nonzero(step == -1)
        end = np.nonzero(step == 1)[1]
        return cls(row.astype(np.int64), start.astype(np.int64), end.astype(np.int64),
                   np.maximum(start - 1, 0).astype(np.int64))

    def lost_events(self, n_events: int, expiry: int) -> tuple[IntArray, IntArray]:
        """Per run, the events ``lo .. hi`` at which ``lost_mask`` is True (empty where lo > hi), for expiry >= 2.

        An event is lost when ``expiry`` or more events have passed since the last success before it; with
        expiry >= 2 the event after a success never is, so lost events lie in failure runs (+ the success ending
        the run: the reconnection event), from ``last + expiry`` on.
        """
        return self.last + expiry, np.minimum(self.end, n_events - 1)


def _first_success_from_1(ok: BoolArray) -> IntArray:
    """Per row, the first successful event at index >= 1 (n_events if none)."""
    n = ok.shape[1]
    if n < 2:
        return np.full(ok.shape[0], n, dtype=np.int64)
    tail = ok[:, 1:]
    return np.where(tail.any(axis=1), 1 + np.argmax(tail, axis=1), n).astype(np.int64)


def _gaps(ok: BoolArray, runs: _Runs, spacing_s: float, limit_s: float) -> tuple[IntArray, FloatArray, FloatArray]:
    """``link_dropouts(ok, spacing_s, limit_s)`` (rows, lost_at_s, restored_at_s), from the failure runs."""
    nb, n = ok.shape
    expiry = expiry_events(spacing_s, limit_s)
    if expiry >= 2:
        lo, hi = runs.lost_events(n, expiry)
        has = lo <= hi
        rows, last, restore = runs.row[has], runs.last[has], runs.end[has]
    else:  # every event after the first is lost: one gap per row, from event 1 to the end
        rows = np.arange(nb, dtype=np.int64) if n >= 2 else np.zeros(0, dtype=np.int64)
        last = np.zeros(rows.size, dtype=np.int64)
        restore = _first_success_from_1(ok)[rows]
    lost_at = np.asarray(0.0 + last * spacing_s + limit_s, dtype=np.float64)  # link_dropouts' expressions
    restored = np.asarray(np.where(restore < n, 0.0 + restore * spacing_s, np.nan), dtype=np.float64)
    return rows, lost_at, restored


@dataclass
class _BlockRecord:
    """Phase 2 of one block of links (rows), the numbers of the simulator.link.timeline helpers."""

    failures: IntArray  # (nb,)
    held_events: IntArray  # (nb,) events at which the link was not lost (lost_mask False)
    drops: tuple[IntArray, FloatArray, FloatArray]  # link_dropouts at the dropout threshold: rows, start, end
    cuts: tuple[IntArray, FloatArray, FloatArray]  # ... at the supervision timeout (cutoffs)
    delivered: BoolArray  # (nb, n_commands)
    pending: BoolArray  # (nb, n_commands) pending at the end (censored)
    latency_s: FloatArray  # (nb, n_commands), NaN unless delivered


def _block_record(ok: BoolArray, spacing_s: float, timeout_s: float, threshold_s: float, first: IntArray,
                  rel_s: FloatArray, valid: BoolArray) -> _BlockRecord:
    """Held time, dropouts, cutoffs and command outcomes of a block of links from their outcomes, exactly as
    ``lost_mask``, ``link_dropouts`` and ``command_latency_s`` give them (tests/unit/test_fleet_engines.py checks
    it), but from the failure runs: a few passes over the (links x events) block instead of a dozen
    (the helpers each recompute the last and next success of every event).

    ``first``: first event of each command (``rules.first_event_index``); ``rel_s``: its issue time from the
    link's anchor; ``valid``: a real command (not padding).
    """
    nb, n = ok.shape
    runs = _Runs.of(ok)
    expiry = expiry_events(spacing_s, timeout_s)
    rows_all = np.arange(nb, dtype=np.int64)
    if expiry >= 2:
        lo, hi = runs.lost_events(n, expiry)
        lost_count = np.bincount(runs.row, weights=np.maximum(hi - lo + 1, 0), minlength=nb).astype(np.int64)
        lost_last = np.zeros(nb, dtype=bool)
        lost_last[runs.row[(lo <= n - 1) & (hi >= n - 1)]] = True
    else:
        lost_count = np.full(nb, max(n - 1, 0), dtype=np.int64)
        lost_last = np.full(nb, n >= 2)
    # commands: s = first success at or after the first event (f itself, or the end of the failure run holding f)
    inside = valid & (first < n)
    r = np.broadcast_to(rows_all[:, None], first.shape)[inside]
    f = first[inside]
    s = f.copy()
    if runs.row.size:
        failed = ~ok[r, f]
        i = np.searchsorted(runs.row * n + runs.start, r[failed] * n + f[failed], side="right") - 1
        s[failed] = runs.end[i]
        # the success before s: the run ending at s says it, else s - 1 (or 0 at s = 0)
        key_end = runs.row * (n + 1) + runs.end
        j = np.minimum(np.searchsorted(key_end, r * (n + 1) + s), key_end.size - 1)
        ends_run = key_end[j] == r * (n + 1) + s
        before = np.where(ends_run, runs.last[j], np.maximum(s - 1, 0))
    else:
        before = np.maximum(s - 1, 0)
    lost_at_s = (s - before) >= expiry  # lost_mask at the event that would deliver
    ok_s = (s < n) & ~lost_at_s
    delivered = np.zeros(first.shape, dtype=bool)
    delivered[inside] = ok_s
    ahead = np.zeros(first.shape, dtype=bool)
    ahead[inside] = s < n
    latency = np.full(first.shape, np.nan)
    latency[inside] = np.where(ok_s, 0.0 + s * spacing_s - rel_s[inside], np.nan)  # command_latency_s's expression
    pending = valid & ~delivered & ((first >= n) | (~ahead & ~lost_last[:, None]))
    return _BlockRecord(
        failures=(n - np.count_nonzero(ok, axis=1)).astype(np.int64),
        held_events=n - lost_count,
        drops=_gaps(ok, runs, spacing_s, threshold_s),
        cuts=_gaps(ok, runs, spacing_s, timeout_s),
        delivered=delivered,
        pending=pending,
        latency_s=latency,
    )


def _timeline(setup: RunSetup, g: LinkGroup, packed: npt.NDArray[np.uint8], out: _Out, work: _Work,
              max_elements: int, cmds_all: IntArray) -> None:
    """Pass 2: held/lost, dropouts, cutoffs and command outcomes of every link, block by block of links."""
    fleet, plan = setup.fleet, setup.plan
    dev, ne, spacing = g.devices, g.n_events, g.spacing_s
    timeout, threshold = g.connection.supervision_timeout_s, setup.dropout_threshold_s
    anchor_all = fleet.anchor_s[dev]
    first_all = _first_events(setup, cmds_all, anchor_all, spacing)
    width, nbins = setup.hold_bin_width_m, setup.n_hold_bins
    block = max(1, max_elements // ne)
    beyond_s = (ne + 1) * spacing  # relative issue time past the record (padding): never delivered
    starts = range(0, dev.size, block)

    def record(b0: int) -> tuple[_BlockRecord, tuple[FloatArray, FloatArray] | None]:
        b1 = min(b0 + block, dev.size)
        ok = np.unpackbits(packed[b0:b1], axis=1, count=ne).view(bool)
        cmds, first = cmds_all[b0:b1], first_all[b0:b1]
        valid = cmds >= 0
        rel = np.where(valid, plan.issued_s[np.maximum(cmds, 0)] - anchor_all[b0:b1, None], beyond_s)
        rec = _block_record(ok, spacing, timeout, threshold, first, rel, valid)
        if not g.moving:
            return rec, None
        # moving links: link time and held time per distance bin, event by event
        lost = lost_mask(ok, spacing, timeout)
        d = fleet.distance_m(dev[b0:b1], anchor_all[b0:b1, None] + np.arange(ne) * spacing)
        bins = np.minimum((d / width).astype(np.int64), nbins - 1).ravel()
        hold = np.asarray(np.bincount(bins, minlength=nbins) * spacing, dtype=np.float64)
        held = np.asarray(np.bincount(bins, weights=(~lost).ravel(), minlength=nbins) * spacing, dtype=np.float64)
        return rec, (hold, held)

    # blocks are independent: worked out on two threads (numpy releases the GIL), summed up here in block order
    with ThreadPoolExecutor(max_workers=_PHASE2_THREADS, thread_name_prefix="fleet-timeline") as pool:
        for b0, (rec, binned) in zip(starts, pool.map(record, starts), strict=True):
            b1 = min(b0 + block, dev.size)
            dv, anchor = dev[b0:b1], anchor_all[b0:b1]
            cmds = cmds_all[b0:b1]
            out.n_events[dv], out.spacing[dv] = ne, spacing
            out.failures[dv] = rec.failures
            # link held (not lost) per distance bin
            if binned is not None:
                out.hold += binned[0]
                out.held += binned[1]
            else:
                d0 = fleet.distance_m(dv, anchor[:, None])[:, 0]
                bins = np.minimum((d0 / width).astype(np.int64), nbins - 1)
                np.add.at(out.hold, bins, ne * spacing)
                np.add.at(out.held, bins, rec.held_events * spacing)
            # dropouts (gap >= threshold) and link-loss cutoffs (gap >= supervision timeout)
            for (rows, start_s, end_s), into in ((rec.drops, out.drops), (rec.cuts, out.cuts)):
                shift = anchor[rows]
                into.append(Gaps(dv[rows], start_s + shift, end_s + shift))
            # commands
            if cmds.shape[1]:
                delivered, pending = rec.delivered, rec.pending
                valid = cmds >= 0
                out.status[cmds[valid]] = CommandStatus.LOST
                out.status[cmds[pending]] = CommandStatus.PENDING_AT_END
                out.status[cmds[delivered]] = CommandStatus.DELIVERED
                out.latency[cmds[delivered]] = rec.latency_s[delivered]
                receivers = np.broadcast_to(dv[:, None], cmds.shape)[delivered]
                out.delivered_to.append(receivers)
                out.delivered_cmd.append(cmds[delivered])
                out.delivered_s.append(plan.issued_s[cmds[delivered]] + rec.latency_s[delivered])
            work.add(_PHASE2_WEIGHT * (b1 - b0) * ne)


def _device_states(setup: RunSetup, out: _Out, cutoffs: Gaps) -> DeviceStates:
    """Deliveries and link-loss cutoffs applied in time order (a cutoff resets the set-points to zero)."""
    plan = setup.plan
    states = DeviceStates(setup.fleet.device_ids, setup.scenario.traffic.channels)
    if out.delivered_to:
        recv = np.concatenate(out.delivered_to)
        cmd = np.concatenate(out.delivered_cmd)
        at = np.concatenate(out.delivered_s)
    else:
        recv = cmd = np.zeros(0, dtype=np.int64)
        at = np.zeros(0)
    order = np.lexsort((cmd, at))
    recv, cmd, at = recv[order], cmd[order], at[order]
    last_cut = np.full(setup.fleet.n_devices, -np.inf)
    np.maximum.at(last_cut, cutoffs.device, cutoffs.start_s)
    before = at < last_cut[recv]
    after = ~before

    def apply(part: BoolArray) -> None:
        states.apply_many(recv[part], plan.target[cmd[part]], plan.channel[cmd[part]], plan.amplitude_mA[cmd[part]])

    apply(before)
    states.cut_off(cutoffs.device)
    apply(after)
    return states


def run_fast(setup: RunSetup, progress: Progress | None = None,
             max_elements: int = DEFAULT_MAX_ELEMENTS) -> EngineRecord:
    """Run the vectorised engine; ``progress(fraction)`` is called after every chunk and block."""
    t0 = time.perf_counter()
    n, k = setup.fleet.n_devices, len(setup.plan)
    out = _Out(
        n_events=np.zeros(n, dtype=np.int64),
        spacing=np.full(n, np.nan),
        rssi_sum=np.zeros(n),
        failures=np.zeros(n, dtype=np.int64),
        status=np.full(k, CommandStatus.NOT_SENT, dtype=np.int8),
        latency=np.full(k, np.nan),
        hold=np.zeros(setup.n_hold_bins),
        held=np.zeros(setup.n_hold_bins),
    )
    groups = setup.groups()
    work = _Work(sum(g.devices.size * g.n_events for g in groups) * (1 + _PHASE2_WEIGHT), progress)
    chunks: dict[str, int] = {}
    per_device = setup.plan.per_device(n)
    for g in groups:
        cmds = per_device[g.devices]
        packed = _outcomes(setup, g, out, work, max_elements, cmds)
        _timeline(setup, g, packed, out, work, max_elements, cmds)
        chunks[g.key] = chunk_events(g.devices.size, g.n_events, max_elements)
    cutoffs = Gaps.concat(out.cuts)
    states = _device_states(setup, out, cutoffs)
    return EngineRecord(
        n_events=out.n_events, spacing_s=out.spacing, rssi_sum_dBm=out.rssi_sum, failures=out.failures,
        dropouts=Gaps.concat(out.drops), cutoffs=cutoffs, command_status=out.status, command_latency_s=out.latency,
        states=states, hold_bin_width_m=setup.hold_bin_width_m, hold_time_s=out.hold, held_time_s=out.held,
        info={"engine_wall_s": time.perf_counter() - t0, "chunk_events": chunks, "max_elements": max_elements},
    )
