"""simpy model of the stimulator firmware: command handling, limits, programs, ramps, sessions.

The firmware never schedules an event per pulse: it opens a pulse-schedule segment whenever the
output changes (start, ramp, ON/OFF edge, amplitude change, stop) and sleeps until the next change.

Methods named in ``SEAMS`` are the places a seeded defect (simulator.faults) may override; each
fault is a small subclass, so the defect is a reviewable change of behaviour, not a flag a test reads.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from rig.config.device import DeviceModel
from rig.config.program import Program
from rig.protocol.framing import PROTOCOL_VERSION, Frame, FrameError
from rig.protocol.messages import (
    ErrorCode,
    MsgType,
    PayloadError,
    SetAmplitudeRequest,
    StartRequest,
    StopRequest,
    error_payload,
    parse_payload,
    reply_type,
)
from simulator.stimulator.schedule import PulseSchedule, Segment

SEAMS = (
    "pulse_period_s",
    "phase_timing_s",
    "check_amplitude",
    "channels_affected",
    "supervision_timeout_s",
    "on_link_lost",
)
RUNNING = ("ramp_up", "on", "ramp_down", "off_phase")
RESTARTABLE = ("idle", "stopped", "link_lost")


class Refusal(Exception):
    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class ChannelRuntime:
    number: int
    schedule: PulseSchedule
    state: str = "idle"
    program: Program | None = None
    target_mA: float = 0.0
    started_at_s: float = 0.0
    process: simpy.Process | None = None


class Firmware:
    """One stimulator. ``handle`` turns a received frame (or framing error) into a reply frame."""

    def __init__(self, env: simpy.Environment, device: DeviceModel, programs: dict[str, Program]) -> None:
        self.env = env
        self.device = device
        self.programs = dict(programs)
        rise_s = device.output.rise_time_us * 1e-6
        self.channels = {
            n: ChannelRuntime(n, PulseSchedule(rise_s)) for n in range(1, device.channels + 1)
        }
        self.last_frame_s = env.now
        self._frame_arrived = env.event()
        self.link_losses: list[float] = []  # bench times at which the link was declared lost
        self._supervisor = env.process(self._supervise())

    # ---- protocol ---------------------------------------------------------------------------
    def handle(self, received: Frame | FrameError) -> Generator[simpy.Event, Any, Frame]:
        """simpy process: take the firmware's command latency, then act and reply."""
        if not isinstance(received, FrameError):
            self._note_valid_frame()
        yield self.env.timeout(self.device.output.command_latency_ms / 1000.0)
        if isinstance(received, FrameError):
            seq = received.seq if received.seq is not None else 0
            return Frame(MsgType.ERROR, seq, error_payload(ErrorCode(received.code), received.detail))
        try:
            kind, request = parse_payload(received.msg_type, received.payload)
            payload = self._dispatch(kind, request)
        except PayloadError as exc:
            return Frame(MsgType.ERROR, received.seq, error_payload(exc.code, exc.detail))
        except Refusal as exc:
            return Frame(MsgType.ERROR, received.seq, error_payload(exc.code, exc.detail))
        return Frame(reply_type(kind), received.seq, payload)

    def _dispatch(self, kind: MsgType, request: Any) -> dict[str, Any]:
        if kind is MsgType.IDENTIFY:
            return self.identify()
        if kind is MsgType.LIST_PROGRAMS:
            return {"programs": sorted(self.programs)}
        if kind is MsgType.START:
            self.start(request)
            return {}
        if kind is MsgType.SET_AMPLITUDE:
            self.set_amplitude(request)
            return {}
        if kind is MsgType.STOP:
            self.stop(request)
            return {}
        if kind is MsgType.EMERGENCY_STOP:
            self.emergency_stop()
            return {}
        if kind is MsgType.STATUS:
            return self.status()
        if kind is MsgType.KEEPALIVE:
            return {}
        raise Refusal(ErrorCode.UNKNOWN_COMMAND, f"{kind.name} is not handled")

    def identify(self) -> dict[str, Any]:
        d = self.device
        return {
            "model": d.model,
            "serial": d.identity.serial,
            "firmware": d.identity.firmware_version,
            "protocol": PROTOCOL_VERSION,
            "channels": d.channels,
        }

    def status(self) -> dict[str, Any]:
        now = self.env.now
        return {
            "channels": [
                {
                    "channel": ch.number,
                    "state": ch.state,
                    "program": ch.program.id if ch.program else None,
                    "amplitude_mA": round(ch.schedule.envelope_mA(now), 3),
                    "target_mA": ch.target_mA,
                    "elapsed_s": round(now - ch.started_at_s, 6) if ch.program else 0.0,
                }
                for ch in self.channels.values()
            ]
        }

    # ---- validation seams ---------------------------------------------------------------------
    def _channel(self, number: int) -> ChannelRuntime:
        if number not in self.channels:
            raise Refusal(ErrorCode.BAD_CHANNEL, f"channel {number} does not exist (1..{len(self.channels)})")
        return self.channels[number]

    def check_amplitude(self, amplitude_mA: float) -> float:
        """The amplitude clamp: refuse anything outside 0..max."""
        limit = self.device.limits.max_amplitude_mA
        if not 0.0 <= amplitude_mA <= limit:
            raise Refusal(
                ErrorCode.OUT_OF_RANGE, f"amplitude {amplitude_mA:g} mA outside 0..{limit:g} mA"
            )
        return amplitude_mA

    def check_program(self, program: Program) -> None:
        """Hard limits of the fixture: frequency, (stimulating) phase duration, interphase gap."""
        lim = self.device.limits
        if not lim.min_frequency_Hz <= program.frequency_Hz <= lim.max_frequency_Hz:
            raise Refusal(
                ErrorCode.OUT_OF_RANGE,
                f"frequency {program.frequency_Hz:g} Hz outside {lim.min_frequency_Hz:g}..{lim.max_frequency_Hz:g} Hz",
            )
        if not lim.min_phase_us <= program.phase_duration_us <= lim.max_phase_us:
            raise Refusal(
                ErrorCode.OUT_OF_RANGE,
                f"phase duration {program.phase_duration_us:g} us outside "
                f"{lim.min_phase_us:g}..{lim.max_phase_us:g} us",
            )
        if program.interphase_gap_us > lim.max_interphase_gap_us:
            raise Refusal(
                ErrorCode.OUT_OF_RANGE,
                f"interphase gap {program.interphase_gap_us:g} us above {lim.max_interphase_gap_us:g} us",
            )

    def pulse_period_s(self, program: Program) -> float:
        return 1.0 / program.frequency_Hz

    def phase_timing_s(self, program: Program) -> tuple[float, float, float]:
        """(phase 1, interphase gap, phase 2) durations in seconds."""
        return (program.phase_duration_us * 1e-6, program.interphase_gap_us * 1e-6, program.phase2_us * 1e-6)

    def channels_affected(self, requested: list[int]) -> list[int]:
        """Which channels a command addressed to ``requested`` acts on."""
        return list(requested)

    def supervision_timeout_s(self) -> float:
        return self.device.safety.supervision_timeout_s

    # ---- link supervision ---------------------------------------------------------------------
    def _note_valid_frame(self) -> None:
        self.last_frame_s = self.env.now
        if not self._frame_arrived.triggered:
            self._frame_arrived.succeed()

    def _supervise(self) -> Generator[simpy.Event, Any, None]:
        """Declare the link lost when no valid frame arrived for the supervision timeout.

        Wakes once per timeout while frames keep coming, never per frame or per pulse.
        """
        while True:
            left = self.last_frame_s + self.supervision_timeout_s() - self.env.now
            if left > 0:
                yield self.env.timeout(left)
                continue
            self.link_losses.append(self.env.now)
            self.on_link_lost()
            self._frame_arrived = self.env.event()
            yield self._frame_arrived

    def on_link_lost(self) -> None:
        """Every running channel ramps to zero over the fixture's link-loss ramp, then stays off."""
        for ch in self.channels.values():
            if ch.state in RUNNING:
                if ch.process is not None and ch.process.is_alive:
                    ch.process.interrupt("link lost")
                ch.state = "link_lost"
                ch.process = self.env.process(self._link_loss_ramp(ch))

    def _link_loss_ramp(self, ch: ChannelRuntime) -> Generator[simpy.Event, Any, None]:
        ramp_s = self.device.safety.link_loss_ramp_down_s
        try:
            cur = ch.schedule.current
            if cur is not None and ch.program is not None:
                self._ramp(ch, float(cur.envelope_mA(self.env.now)), 0.0, ramp_s)
                yield self.env.timeout(ramp_s + cur.period_s)
            ch.schedule.close(ch.schedule.end_of_pulse_s(self.env.now))
            ch.program, ch.target_mA, ch.process = None, 0.0, None
        except simpy.Interrupt:
            return

    # ---- commands -----------------------------------------------------------------------------
    def start(self, req: StartRequest) -> None:
        program = self.programs.get(req.program)
        if program is None:
            raise Refusal(ErrorCode.UNKNOWN_PROGRAM, f"no program {req.program!r}; have {sorted(self.programs)}")
        if len(set(req.channels)) != len(req.channels):
            raise Refusal(ErrorCode.BAD_PAYLOAD, f"channel list {req.channels} repeats a channel")
        channels = [self._channel(n) for n in req.channels]
        amplitude = self.check_amplitude(req.amplitude_mA)
        self.check_program(program)
        busy = [ch.number for ch in channels if ch.state not in RESTARTABLE or ch.process is not None]
        if busy:
            raise Refusal(ErrorCode.INVALID_STATE, f"channel(s) {busy} already running; stop them first")
        for n in self.channels_affected(req.channels):
            ch = self._channel(n)
            ch.program, ch.target_mA, ch.started_at_s = program, amplitude, self.env.now
            ch.process = self.env.process(self._run_program(ch))

    def set_amplitude(self, req: SetAmplitudeRequest) -> None:
        ch = self._channel(req.channel)
        amplitude = self.check_amplitude(req.amplitude_mA)
        if ch.program is None or ch.state not in RUNNING:
            raise Refusal(ErrorCode.INVALID_STATE, f"channel {ch.number} is not running a program")
        for n in self.channels_affected([req.channel]):
            self._retarget(self._channel(n), amplitude)

    def stop(self, req: StopRequest) -> None:
        numbers = req.channels if req.channels is not None else list(self.channels)
        for ch in [self._channel(n) for n in numbers]:
            # Orderly: finish the pulse in progress so no phase is left uncompensated.
            self._halt(ch, finish_pulse=True, state="stopped")

    def emergency_stop(self) -> None:
        for ch in self.channels.values():
            self._halt(ch, finish_pulse=False, state="stopped")

    # ---- output control -----------------------------------------------------------------------
    def _halt(self, ch: ChannelRuntime, *, finish_pulse: bool, state: str) -> None:
        if ch.process is not None and ch.process.is_alive and ch.process is not self.env.active_process:
            ch.process.interrupt("halt")
        ch.process = None
        now = self.env.now
        ch.schedule.close(ch.schedule.end_of_pulse_s(now) if finish_pulse else now)
        if ch.program is not None or ch.state != "idle":
            ch.state = state
        ch.program = None
        ch.target_mA = 0.0

    def _segment(self, ch: ChannelRuntime, t_start: float, a0: float, a1: float, ramp_s: float) -> Segment:
        assert ch.program is not None
        p1, gap, p2 = self.phase_timing_s(ch.program)
        return Segment(
            t_start_s=t_start,
            t_end_s=math.inf,
            period_s=self.pulse_period_s(ch.program),
            phase1_s=p1,
            gap_s=gap,
            phase2_s=p2,
            phase2_ratio=ch.program.phase2_amplitude_ratio,
            a0_mA=a0,
            a1_mA=a1,
            ramp_s=ramp_s,
            resolution_mA=self.device.limits.amplitude_resolution_mA,
        )

    def _ramp(self, ch: ChannelRuntime, a0: float, a1: float, ramp_s: float) -> None:
        """Open a ramp segment: now for a new train, else at the next pulse boundary of the running one."""
        now = self.env.now
        cur = ch.schedule.current
        t_start = cur.next_pulse_at_or_after(now) if cur is not None else now
        ch.schedule.open(self._segment(ch, t_start, a0, a1, ramp_s), now)

    def _retarget(self, ch: ChannelRuntime, amplitude_mA: float) -> None:
        ch.target_mA = amplitude_mA
        cur = ch.schedule.current
        if cur is None or ch.state not in ("ramp_up", "on"):
            return  # takes effect at the next ON period
        now = self.env.now
        t_switch = cur.next_pulse_at_or_after(now)
        a_now = float(cur.envelope_mA(t_switch))
        ramp_left = max(0.0, cur.t_start_s + cur.ramp_s - t_switch) if ch.state == "ramp_up" else 0.0
        seg = self._segment(ch, t_switch, a_now, amplitude_mA, ramp_left)
        ch.schedule.open(seg, now)

    def _run_program(self, ch: ChannelRuntime) -> Generator[simpy.Event, Any, None]:
        """Session: repeated ON periods (ramp up, hold, ramp down) and OFF periods until the end."""
        program = ch.program
        assert program is not None
        session_end = self.env.now + program.duration_s
        try:
            while self.env.now < session_end:
                on_s = program.cycle.on_s if program.cycle else program.duration_s
                on_end = min(self.env.now + on_s, session_end)
                ch.state = "ramp_up"
                self._ramp(ch, 0.0, ch.target_mA, program.ramp_up_s)
                yield self.env.timeout(min(program.ramp_up_s, on_end - self.env.now))
                ch.state = "on"
                hold_s = on_end - program.ramp_down_s - self.env.now
                if hold_s > 0:
                    yield self.env.timeout(hold_s)
                ch.state = "ramp_down"
                cur = ch.schedule.current
                a_now = float(cur.envelope_mA(self.env.now)) if cur else 0.0
                self._ramp(ch, a_now, 0.0, program.ramp_down_s)
                yield self.env.timeout(max(0.0, on_end - self.env.now))
                ch.schedule.close(ch.schedule.end_of_pulse_s(self.env.now))
                if program.cycle is None or self.env.now >= session_end:
                    break
                ch.state = "off_phase"
                yield self.env.timeout(min(program.cycle.off_s, session_end - self.env.now))
            ch.schedule.close(ch.schedule.end_of_pulse_s(self.env.now))
            ch.state, ch.program, ch.target_mA, ch.process = "stopped", None, 0.0, None
        except simpy.Interrupt:
            return
