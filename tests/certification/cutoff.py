"""The shared procedure of every cutoff test: arm the scope on the load box marker, cause the event
right after the marker, and measure from the marker edge to the last pulse above 10 % of the output's
amplitude before the event (rig.analysis.cutoff)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from rig.analysis.cutoff import CutoffResult, cutoff_latency
from rig.capture import Capture
from rig.interfaces import AcquisitionSetup, ChannelSetup, TriggerSetup
from rig.procedures import plan_for, settle_time_s, step_125_at_least
from tests.certification.conftest import MEASUREMENT_LOAD_OHM, load_named, start_running

CUTOFF_PROGRAM = "tens_hf"  # highest pulse rate: the finest resolution of "last pulse"
MARKER_LEVEL_V = 2.5
CUTOFF_POINTS = 500_000


def event_capture_setup(bench: Any, peak_V: float, window_s: float) -> AcquisitionSetup:
    """CH1 output and CH2 marker, triggered by the marker; one division before it, nine after."""
    cfg = bench.config.scope
    return AcquisitionSetup(
        channels=(
            ChannelSetup(cfg.measure_channel, step_125_at_least(peak_V / 3.2), 0.0, cfg.probe_attenuation),
            ChannelSetup(cfg.marker_channel, 2.0, 0.0, 1.0),
        ),
        time_scale_s_per_div=step_125_at_least(window_s / 9.0),
        trigger=TriggerSetup(cfg.marker_channel, MARKER_LEVEL_V, "positive", "normal"),
        points=CUTOFF_POINTS,
        time_reference="left",
    )


def capture_event(
    bench: Any,
    scope: Any,
    peak_V: float,
    window_s: float,
    cause: Callable[[], None],
    during: Callable[[], AbstractContextManager[Any]] | None = None,
) -> tuple[Capture, Capture]:
    """Arm the scope on the marker, let ``cause`` produce the marker edge and the event, and capture
    ``window_s`` after it: (output on CH1 sized for ``peak_V``, marker on CH2). ``during`` wraps the
    event and the wait (e.g. ``bench.silenced`` for link loss)."""
    cfg = bench.config.scope
    setup = event_capture_setup(bench, peak_V, window_s)
    scope.configure(setup)
    scope.arm()
    bench.wait(1.1 * setup.time_scale_s_per_div)  # the pre-trigger division fills (link still alive)
    with (during or nullcontext)():
        cause()
        bench.clock.wait(window_s)
        scope.wait_acquired(cfg.timeout_s, bench.clock)
    return scope.read_waveform(cfg.measure_channel), scope.read_waveform(cfg.marker_channel)


def marker_timed_capture(
    bench: Any,
    dut: Any,
    scope: Any,
    measure: Any,
    channel: int,
    amplitude_mA: float,
    window_s: float,
    cause: Callable[[], None],
    *,
    settle_s: float | None = None,
    during: Callable[[], AbstractContextManager[Any]] | None = None,
    scale_mA: float | None = None,
    peak_V: float | None = None,
    before: Callable[[], None] | None = None,
) -> tuple[Capture, Capture]:
    """Run CUTOFF_PROGRAM on ``channel`` into 500 ohm at ``amplitude_mA``, then capture what ``cause``
    provokes: (output on CH1, marker on CH2), triggered by the marker.

    ``cause`` must produce the marker edge itself: ``bench.load.mark()`` followed by the event, or a
    relay switch (the box's relay-sense drives the marker). ``settle_s`` is how long the program runs
    first (default: to the end of its ramp); ``scale_mA`` sizes the vertical range (default: the
    amplitude) into 500 ohm, ``peak_V`` overrides it (e.g. when the event switches to another load);
    ``before`` runs once the output is running, before the scope is armed (e.g. a walk).
    """
    program = bench.program(CUTOFF_PROGRAM)
    bench.load.connect(channel, load_named(bench, MEASUREMENT_LOAD_OHM))
    start_running(bench, dut, measure, program, channel, amplitude_mA,
                  settle_time_s(program) if settle_s is None else settle_s)
    if before is not None:
        before()
    if peak_V is None:
        peak_V = plan_for(bench.device, scale_mA or amplitude_mA, MEASUREMENT_LOAD_OHM, 1, 1).peak_V
    return capture_event(bench, scope, peak_V, window_s, cause, during)


def timed_cutoff(bench: Any, dut: Any, scope: Any, measure: Any, channel: int, amplitude_mA: float,
                 window_s: float, cause: Callable[[], None], **kw: Any) -> CutoffResult:
    """Latency from the marker edge to the last pulse above 10 % of the pre-event amplitude."""
    return cutoff_latency(
        *marker_timed_capture(bench, dut, scope, measure, channel, amplitude_mA, window_s, cause, **kw)
    )
