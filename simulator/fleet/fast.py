"""Fast fleet engine: numpy over (links x connection events), chunked in time; Python loops only over command
windows and chunks, never over events.

Same rules as the reference engine (simulator.fleet.reference), in two passes per group of links that share
connection parameters (simulator.fleet.setup.LinkGroup):

1. chunk by chunk in time (``max_elements`` links x events per chunk bounds the memory): distance along each path,
   ``correlated_shadowing_dB`` over the distance walked (static devices: one draw), margin, ``packet_error_rate``
   for the empty keep-alive PDU and for the command PDU, ``sample_bad_states`` (Gilbert-Elliott, continued across
   chunks) and ``sample_event_losses`` for both; ``CommandWindows`` picks per event which of the two the connection
   actually sent (the only state carried event to event besides the chain and the shadowing). The outcome is kept
   as one bit per event.
2. block by block of links over the whole record: ``lost_mask`` (link held or lost), ``link_dropouts`` at the
   dropout threshold and at the supervision timeout (cutoffs), ``command_latency_s`` for every command.

Link state changes (cutoffs) and deliveries then drive the device-state model (set-points per device, checked
addressing), in time order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulator.fleet.device_state import DeviceStates
from simulator.fleet.results import EngineRecord, Gaps
from simulator.fleet.rules import NEVER, CommandStatus, first_event_index
from simulator.fleet.setup import LinkGroup, RunSetup
from simulator.fleet.windows import CommandWindows
from simulator.link import (
    command_latency_s,
    correlated_shadowing_dB,
    link_dropouts,
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

DEFAULT_MAX_ELEMENTS = 2_000_000
"""Links x events held at once (a few arrays of 8 bytes each): bounds memory for any fleet size or duration."""

_PHASE2_WEIGHT = 0.25  # share of the work the second pass takes, for the progress bar


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


def _first_events(setup: RunSetup, cmds: IntArray, anchor: FloatArray, spacing_s: float) -> IntArray:
    valid = cmds >= 0
    issued = np.where(valid, setup.plan.issued_s[np.maximum(cmds, 0)], anchor[:, None])
    return np.where(valid, first_event_index(issued, anchor[:, None], spacing_s), NEVER)


def _outcomes(setup: RunSetup, g: LinkGroup, out: _Out, work: _Work, max_elements: int) -> npt.NDArray[np.uint8]:
    """Pass 1: the outcome of every connection event of the group's links, packed 8 events per byte."""
    fleet = setup.fleet
    model = setup.link_model(g.connection)
    env = model.environment
    dev, ng, ne, spacing = g.devices, g.devices.size, g.n_events, g.spacing_s
    anchor = fleet.anchor_s[dev]
    streams = SeededStreams(setup.seed)
    rng_shadow, rng_burst, rng_loss = (streams(f"fast/{g.key}/{s}") for s in ("shadowing", "burst", "loss"))
    cmds = setup.plan.per_device(fleet.n_devices)[dev]
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
            shadow = correlated_shadowing_dB(rng_shadow, env.shadowing_sigma_dB, env.decorrelation_distance_m, moved,
                                             initial_dB=shadow_prev)
            shadow_prev = shadow[:, -1]
            loss = model.mean_path_loss_dB(fleet.distance_m(dev, t)) + shadow + fixed[:, None]
            out.rssi_sum[dev] += (tx - loss).sum(axis=1)
            margin = model.budget.margin_dB(loss)
            per_e = np.asarray(packet_error_rate(margin, EMPTY_PDU_BYTES))
            per_c = np.asarray(packet_error_rate(margin, setup.payload_bytes))
        assert per_e is not None and per_c is not None
        bad = sample_bad_states(model.burst, rng_burst, ng, m, previous_bad=prev_bad)
        prev_bad = bad[:, -1]
        ok_e = ~sample_event_losses(model.burst, rng_loss, bad, per_e, model.interference_loss)
        ok_c = ~sample_event_losses(model.burst, rng_loss, bad, per_c, model.interference_loss)
        ok = windows.step(ok_e, ok_c)
        packed[:, k0 // 8 : k0 // 8 + (m + 7) // 8] = np.packbits(ok, axis=1)
        work.add(ng * m)
    return packed


def _timeline(setup: RunSetup, g: LinkGroup, packed: npt.NDArray[np.uint8], out: _Out, work: _Work,
              max_elements: int) -> None:
    """Pass 2: held/lost, dropouts, cutoffs and command outcomes of every link, block by block of links."""
    fleet, plan = setup.fleet, setup.plan
    dev, ne, spacing = g.devices, g.n_events, g.spacing_s
    timeout, threshold = g.connection.supervision_timeout_s, setup.dropout_threshold_s
    anchor_all = fleet.anchor_s[dev]
    cmds_all = plan.per_device(fleet.n_devices)[dev]
    first_all = _first_events(setup, cmds_all, anchor_all, spacing)
    width, nbins = setup.hold_bin_width_m, setup.n_hold_bins
    block = max(1, max_elements // ne)
    for b0 in range(0, dev.size, block):
        b1 = min(b0 + block, dev.size)
        dv, anchor = dev[b0:b1], anchor_all[b0:b1]
        ok = np.unpackbits(packed[b0:b1], axis=1, count=ne).astype(bool)
        lost = lost_mask(ok, spacing, timeout)
        out.n_events[dv], out.spacing[dv] = ne, spacing
        out.failures[dv] = ne - ok.sum(axis=1)
        # link held (not lost) per distance bin
        if g.moving:
            d = fleet.distance_m(dv, anchor[:, None] + np.arange(ne) * spacing)
            bins = np.minimum((d / width).astype(np.int64), nbins - 1).ravel()
            out.hold += np.bincount(bins, minlength=nbins) * spacing
            out.held += np.bincount(bins, weights=(~lost).ravel(), minlength=nbins) * spacing
        else:
            d0 = fleet.distance_m(dv, anchor[:, None])[:, 0]
            bins = np.minimum((d0 / width).astype(np.int64), nbins - 1)
            np.add.at(out.hold, bins, ne * spacing)
            np.add.at(out.held, bins, (~lost).sum(axis=1) * spacing)
        # dropouts (gap >= threshold) and link-loss cutoffs (gap >= supervision timeout)
        for limit_s, into in ((threshold, out.drops), (timeout, out.cuts)):
            gaps = link_dropouts(ok, spacing, limit_s)
            shift = anchor[gaps.device]
            into.append(Gaps(dv[gaps.device], gaps.lost_at_s + shift, gaps.restored_at_s + shift))
        # commands
        cmds, first = cmds_all[b0:b1], first_all[b0:b1]
        valid = cmds >= 0
        if cmds.shape[1]:
            beyond_s = (ne + 1) * spacing  # relative issue time past the record: never delivered
            rel = np.where(valid, plan.issued_s[np.maximum(cmds, 0)] - anchor[:, None], beyond_s)
            lat = command_latency_s(ok, spacing, timeout, rel)
            delivered = valid & np.isfinite(lat)
            ok_from = np.flip(np.logical_or.accumulate(np.flip(ok, axis=1), axis=1), axis=1)
            rows = np.arange(b1 - b0)[:, None]
            success_ahead = (first < ne) & ok_from[rows, np.minimum(first, ne - 1)]
            pending = valid & ~delivered & ((first >= ne) | (~success_ahead & ~lost[:, -1:]))
            out.status[cmds[valid]] = CommandStatus.LOST
            out.status[cmds[pending]] = CommandStatus.PENDING_AT_END
            out.status[cmds[delivered]] = CommandStatus.DELIVERED
            out.latency[cmds[delivered]] = lat[delivered]
            receivers = np.broadcast_to(dv[:, None], cmds.shape)[delivered]
            out.delivered_to.append(receivers)
            out.delivered_cmd.append(cmds[delivered])
            out.delivered_s.append(plan.issued_s[cmds[delivered]] + lat[delivered])
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
    for g in groups:
        packed = _outcomes(setup, g, out, work, max_elements)
        _timeline(setup, g, packed, out, work, max_elements)
        chunks[g.key] = chunk_events(g.devices.size, g.n_events, max_elements)
    cutoffs = Gaps.concat(out.cuts)
    states = _device_states(setup, out, cutoffs)
    return EngineRecord(
        n_events=out.n_events, spacing_s=out.spacing, rssi_sum_dBm=out.rssi_sum, failures=out.failures,
        dropouts=Gaps.concat(out.drops), cutoffs=cutoffs, command_status=out.status, command_latency_s=out.latency,
        states=states, hold_bin_width_m=setup.hold_bin_width_m, hold_time_s=out.hold, held_time_s=out.held,
        info={"engine_wall_s": time.perf_counter() - t0, "chunk_events": chunks, "max_elements": max_elements},
    )
