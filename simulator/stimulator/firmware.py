"""simpy model of the stimulator firmware: command handling, limits, programs, ramps, sessions.

The firmware never schedules an event per pulse: it opens a pulse-schedule segment whenever the
output changes (start, ramp, ON/OFF edge, amplitude change, stop) and sleeps until the next change.

Methods named in ``SEAMS`` are the places a seeded defect (simulator.faults) may override; each
fault is a small subclass, so the defect is a reviewable change of behaviour, not a flag a test reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
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
    "ramp_up_s",
    "session_duration_s",
    "estop_halts",
    "slew_pulses",
    "dac_levels",
    "read_sense",
    "open_circuit",
    "overcurrent_cutoff",
    "on_watchdog_expired",
    "on_low_battery",
    "on_reconnect",
    "addressed_to_me",
    "control_point_requires_bonding",
)
RUNNING = ("ramp_up", "on", "ramp_down", "off_phase")
RESTARTABLE = ("idle", "stopped", "link_lost")
IDEAL_LOAD_OHM = 500.0  # what the firmware senses when the bench gives it no sense hook


@dataclass(frozen=True)
class Sense:
    """What the output stage's sense circuit reports for one channel.

    ``impedance_ohm``: load impedance V/I at the phase-1 plateau (inf: open, 0: short).
    ``current_gain``: sensed current / DAC current (1: healthy; 0: the current sense reads zero; 1.5:
    50 % more current flows than the DAC was set to, e.g. a failed current regulator). Either way the
    sensed current is at most what the compliance voltage can drive into the load.
    """

    impedance_ohm: float = IDEAL_LOAD_OHM
    current_gain: float = 1.0


SenseHook = Callable[[int], "float | Sense"]


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
    fault: str | None = None  # condition that put the channel in state "fault" (cleared by STOP)
    intended: Segment | None = None  # the envelope the firmware commands (the schedule holds what the DAC makes)
    check_gen: int = 0  # bumped on every output change: a pending load-fault trip for an older one is void
    session_s: float | None = None  # treatment time set by START (None: the program's duration)
    resume: tuple[Program, float, float] | None = None  # (program, target, session left) cut by a link loss


class Firmware:
    """One stimulator. ``handle`` turns a received frame (or framing error) into a reply frame."""

    def __init__(
        self,
        env: simpy.Environment,
        device: DeviceModel,
        programs: dict[str, Program],
        *,
        sense: SenseHook | None = None,
    ) -> None:
        self.env = env
        self.sense = sense  # channel -> sensed impedance in ohm, or a Sense; None: ideal 500 ohm loads
        self.device = device
        self.programs = dict(programs)
        rise_s = device.output.rise_time_us * 1e-6
        self.channels = {
            n: ChannelRuntime(n, PulseSchedule(rise_s)) for n in range(1, device.channels + 1)
        }
        self.last_frame_s = env.now
        self._frame_arrived = env.event()  # triggered while the link is up; a fresh one after each loss
        self._frame_arrived.succeed()
        self.link_losses: list[float] = []  # bench times at which the link was declared lost
        self.hung = False  # main loop frozen (bench-side hang()) until the watchdog resets the MCU
        self._hang_count = 0  # identifies the present hang (a watchdog or a recovery for an older one is void)
        self._resume = env.event()  # fires with "reset" (watchdog) or "recovered" when the main loop runs again
        self.watchdog_resets: list[float] = []
        self.battery_V: float | None = None  # None: not simulated (a full battery)
        self.battery_low = False
        self.trips: list[tuple[float, int, str]] = []  # (bench time, channel, condition) of every fault trip
        self._supervisor = env.process(self._supervise())

    # ---- protocol ---------------------------------------------------------------------------
    def handle(self, received: Frame | FrameError) -> Generator[simpy.Event, Any, Frame]:
        """simpy process: take the firmware's command latency, then act and reply."""
        if not isinstance(received, FrameError) and not self.hung:
            self._note_valid_frame()
        yield self.env.timeout(self.device.output.command_latency_ms / 1000.0)
        if self.hung:  # the main loop picks the frame up only when it runs again; a watchdog reset loses it
            how = yield self._resume
            if how == "reset":
                seq = received.seq if received.seq is not None else 0
                return Frame(
                    MsgType.ERROR, seq, error_payload(ErrorCode.FAULT_ACTIVE, "watchdog reset: command not executed")
                )
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

    @property
    def address(self) -> str:
        """The device's radio address: its serial number, which the controller puts on every request."""
        return self.device.identity.serial

    def addressed_to_me(self, destination: str) -> bool:
        """The receive path's address filter: a request the controller addressed to another device is
        dropped before it is parsed, and does not count as hearing from the controller."""
        return destination == self.address

    def overhear(self, received: Frame, destination: str) -> Generator[simpy.Event, Any, None]:
        """simpy process: a request the controller addressed to ``destination`` reached this device's
        receiver too. Acted on only if the address filter passes it; any reply is lost (the controller
        listens to ``destination`` only)."""
        if self.addressed_to_me(destination):
            yield from self.handle(received)

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
                    "fault": ch.fault or ("low_battery" if self.battery_low else None),
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

    def control_point_requires_bonding(self) -> bool:
        """The GATT table's security: the control point (and status subscriptions) need an encrypted
        link, which only a bonded controller can make (docs/protocol.md, BLE transport)."""
        return True

    def ramp_up_s(self, program: Program) -> float:
        """Start-up (and each ON period's) ramp from zero to the set-point."""
        return program.ramp_up_s

    def session_duration_s(self, program: Program, requested_s: float | None) -> float:
        """The session timer: the program ends by itself after the treatment time START set (else after
        the program's duration)."""
        return program.duration_s if requested_s is None else requested_s

    def estop_halts(self, ch: ChannelRuntime) -> bool:
        """Whether EMERGENCY_STOP cuts this channel: always."""
        return True

    def slew_pulses(self, a0_mA: float, a1_mA: float) -> int:
        """Pulses an amplitude change from ``a0`` to ``a1`` is spread over (1: a single step), so that
        consecutive pulses, as the DAC rounds them, differ by at most ``max_amplitude_step_mA``."""
        step = self.device.safety.max_amplitude_step_mA
        res = self.device.limits.amplitude_resolution_mA
        n = max(1, math.ceil(abs(a1_mA - a0_mA) / step - 1e-9))
        while True:
            levels = np.round((a0_mA + (a1_mA - a0_mA) * np.arange(n + 1) / n) / res) * res
            if np.max(np.abs(np.diff(levels))) <= step + 1e-9:
                return n
            n += 1

    def dac_levels(self, ch: ChannelRuntime, a0_mA: float, a1_mA: float) -> tuple[float, float]:
        """What the DAC makes of a commanded envelope from ``a0`` to ``a1``: exactly that."""
        return a0_mA, a1_mA

    def read_sense(self, channel: int) -> Sense:
        """The channel's sense circuit (the bench's ``sense`` hook; ideal 500 ohm loads without one)."""
        if self.sense is None:
            return Sense()
        value = self.sense(channel)
        return value if isinstance(value, Sense) else Sense(impedance_ohm=float(value))

    def open_circuit(self, sense: Sense) -> bool:
        """Electrode-off detection: the sensed impedance is above the fixture's threshold."""
        return sense.impedance_ohm > self.device.safety.electrode_off_threshold_ohm

    def overcurrent_cutoff(self, ch: ChannelRuntime, condition: str) -> None:
        """Short circuit or over-current seen: stop the output at the end of the pulse (and hold a fault)."""
        self._trip(ch, condition)

    # ---- link supervision ---------------------------------------------------------------------
    def _note_valid_frame(self) -> None:
        self.last_frame_s = self.env.now
        if not self._frame_arrived.triggered:
            self._frame_arrived.succeed()
            if self.link_losses:
                self.on_reconnect()

    def on_reconnect(self) -> None:
        """The controller is heard again after a link loss: the fixture's ``on_reconnect`` decides.
        ``resume_at_zero``: channels stay at zero (state ``link_lost``) until the operator starts them;
        ``resume_ramp``: each channel the cutoff stopped starts again from zero with its program's ramp,
        to the amplitude it had, for the rest of its session."""
        for ch in self.channels.values():
            resume, ch.resume = ch.resume, None
            if resume is None or ch.state != "link_lost" or self.device.safety.on_reconnect != "resume_ramp":
                continue
            if self.battery_low:
                continue
            if ch.process is not None and ch.process.is_alive:
                ch.process.interrupt("reconnected")
            program, target_mA, left_s = resume
            ch.program, ch.target_mA, ch.started_at_s, ch.session_s = program, target_mA, self.env.now, left_s
            ch.process = self.env.process(self._run_program(ch))

    def _supervise(self) -> Generator[simpy.Event, Any, None]:
        """Declare the link lost when no valid frame arrived for the supervision timeout.

        Wakes once per timeout while frames keep coming, never per frame or per pulse.
        """
        while True:
            left = self.last_frame_s + self.supervision_timeout_s() - self.env.now
            if left > 0:
                yield self.env.timeout(left)
                continue
            if self.hung:  # the supervision runs in the main loop: frozen until it runs again
                yield self._resume
                continue
            if self._frame_arrived.triggered:  # else the radio already reported the loss
                self._declare_link_lost()
            yield self._frame_arrived

    def _declare_link_lost(self) -> None:
        self.link_losses.append(self.env.now)
        self._frame_arrived = self.env.event()
        self.on_link_lost()

    def link_disconnected(self) -> None:
        """Bench side (the radio): the BLE connection's supervision timeout expired. The link is lost
        now, as when no valid frame arrived for the supervision timeout (whichever comes first)."""
        if not self.hung and self._frame_arrived.triggered:
            self._declare_link_lost()

    def on_link_lost(self) -> None:
        """Every running channel ramps to zero over the fixture's link-loss ramp, then stays off."""
        for ch in self.channels.values():
            if ch.state in RUNNING:
                if ch.process is not None and ch.process.is_alive:
                    ch.process.interrupt("link lost")
                if ch.program is not None:
                    session_s = self.session_duration_s(ch.program, ch.session_s)
                    left_s = max(0.0, session_s - (self.env.now - ch.started_at_s))
                    ch.resume = (ch.program, ch.target_mA, left_s)
                ch.state = "link_lost"
                ch.process = self.env.process(self._ramp_to_zero(ch, self.device.safety.link_loss_ramp_down_s))

    def _ramp_to_zero(self, ch: ChannelRuntime, ramp_s: float) -> Generator[simpy.Event, Any, None]:
        """Orderly shutdown (link loss, low battery): ramp to zero from the present amplitude, then off."""
        try:
            cur = ch.schedule.current
            if cur is not None and ch.program is not None:
                self._ramp(ch, self._commanded_mA(ch, self.env.now), 0.0, ramp_s)
                yield self.env.timeout(ramp_s + cur.period_s)
            ch.schedule.close(ch.schedule.end_of_pulse_s(self.env.now))
            ch.program, ch.target_mA, ch.process = None, 0.0, None
        except simpy.Interrupt:
            return

    # ---- watchdog ---------------------------------------------------------------------------------
    def hang(self, duration_s: float = math.inf) -> None:
        """Bench side: the main loop freezes (for ``duration_s``, e.g. a transient lock-up, else for
        good). No command, timer or supervision is processed meanwhile; the pulse hardware keeps running
        whatever segment it had, and the program timers are lost. The watchdog (not kicked from now on)
        resets the MCU after ``watchdog_period_ms``; a lock-up that ends before that goes unnoticed."""
        if self.hung:
            return
        self.hung = True
        self._hang_count += 1
        for ch in self.channels.values():
            ch.check_gen += 1
            if ch.process is not None and ch.process.is_alive:
                ch.process.interrupt("hung")
            ch.process = None
        self.env.process(self._watchdog(self._hang_count))
        if math.isfinite(duration_s):
            self.env.process(self._recover(self._hang_count, duration_s))

    def _watchdog(self, hang: int) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.device.safety.watchdog_period_ms / 1000.0)
        if self.hung and hang == self._hang_count:
            self.on_watchdog_expired()

    def _recover(self, hang: int, duration_s: float) -> Generator[simpy.Event, Any, None]:
        """The end of a transient lock-up: the main loop runs on where it stopped (outputs untouched)."""
        yield self.env.timeout(duration_s)
        if self.hung and hang == self._hang_count:
            self._run_again("recovered")

    def _run_again(self, how: str) -> None:
        self.hung = False
        self.last_frame_s = self.env.now
        resume, self._resume = self._resume, self.env.event()
        resume.succeed(how)

    def on_watchdog_expired(self) -> None:
        """The watchdog resets the MCU: every output is disabled at once (mid-pulse), channels that had
        output hold the fault "watchdog", and the main loop runs again."""
        for ch in self.channels.values():
            if ch.program is not None or ch.schedule.current is not None:
                self._halt(ch, finish_pulse=False, state="fault")
                ch.fault = "watchdog"
        self.watchdog_resets.append(self.env.now)
        self._run_again("reset")

    # ---- battery ----------------------------------------------------------------------------------
    def set_battery_V(self, volts: float) -> None:
        """Bench side: the battery voltage now. Falling below ``low_battery_V`` ramps every running
        channel down over ``low_battery_ramp_down_s`` (fault "low_battery") and refuses START until the
        battery is back above it."""
        self.battery_V = float(volts)
        low = self.battery_V < self.device.safety.low_battery_V
        if low and not self.battery_low:
            self.battery_low = True
            if not self.hung:
                self.on_low_battery()
        elif not low:
            self.battery_low = False

    def on_low_battery(self) -> None:
        """Orderly shutdown: every running channel ramps to zero over ``low_battery_ramp_down_s``."""
        for ch in self.channels.values():
            if ch.state in RUNNING or (ch.state == "link_lost" and ch.process is not None):
                if ch.process is not None and ch.process.is_alive:
                    ch.process.interrupt("low battery")
                ch.state, ch.fault = "fault", "low_battery"
                ch.process = self.env.process(self._ramp_to_zero(ch, self.device.safety.low_battery_ramp_down_s))

    # ---- load supervision (electrode off, short circuit, over-current) ---------------------------
    def on_load_changed(self, channel: int) -> None:
        """Bench side (SimLoadBox.on_change): the load on ``channel`` changed. The firmware measures it
        on the next pulse(s) it delivers; nothing is polled."""
        if channel in self.channels:
            self._arm_load_check(self.channels[channel])

    def _arm_load_check(self, ch: ChannelRuntime) -> None:
        """Work out, from the sensed load and the present segment, the first pulse on which a load fault
        is seen ``load_fault_detect_pulses`` times in a row, and schedule one trip there (none if never)."""
        ch.check_gen += 1
        seg, want = ch.schedule.current, ch.intended
        if seg is None or want is None or self.hung:
            return
        safety = self.device.safety
        n_detect = safety.load_fault_detect_pulses
        sense = self.read_sense(ch.number)
        now = self.env.now
        k0 = max(0, math.ceil((max(now, seg.t_start_s) - seg.t_start_s) / seg.period_s - 1e-9))
        ramp_end = seg.t_start_s + max(seg.ramp_s, want.ramp_s)
        k_end = max(k0, math.ceil((ramp_end - seg.t_start_s) / seg.period_s)) + n_detect + 1
        t = seg.t_start_s + np.arange(k0, k_end + 1, dtype=np.float64) * seg.period_s
        t = t[t < seg.t_end_s]
        if t.size == 0:
            return
        delivered = np.abs(seg.envelope_mA(t))
        commanded = np.abs(want.envelope_mA(t))
        z = sense.impedance_ohm
        ceiling_mA = math.inf if z <= 0 else 1000.0 * self.device.output.compliance_voltage_V / z
        sensed = np.minimum(delivered * sense.current_gain, ceiling_mA)
        live = delivered > 0  # a pulse of zero amplitude measures nothing
        margin = 1.0 + safety.overcurrent_margin_pct / 100.0
        over = sensed > commanded * margin + self.device.limits.amplitude_resolution_mA
        conditions = (
            ("electrode_off", live & self.open_circuit(sense)),
            ("short_circuit", live & (z < safety.short_circuit_threshold_ohm)),
            ("over_current", over),
        )
        first: tuple[int, str] | None = None
        for name, hits in conditions:
            if hits.size < n_detect:
                continue
            runs = np.lib.stride_tricks.sliding_window_view(hits, n_detect).all(axis=1)
            idx = np.flatnonzero(runs)
            if idx.size and (first is None or idx[0] + n_detect - 1 < first[0]):
                first = (int(idx[0]) + n_detect - 1, name)
        if first is not None:
            self.env.process(self._load_trip(ch, ch.check_gen, seg, float(t[first[0]]), first[1]))

    def _load_trip(
        self, ch: ChannelRuntime, gen: int, seg: Segment, t_pulse: float, condition: str
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(0.0, t_pulse - self.env.now))
        if gen != ch.check_gen or self.hung or not seg.t_start_s <= t_pulse < seg.t_end_s:
            return  # the output changed (or stopped) before that pulse: re-armed or nothing to cut
        if condition == "electrode_off":
            self._trip(ch, condition)
        else:
            self.overcurrent_cutoff(ch, condition)

    def _trip(self, ch: ChannelRuntime, condition: str) -> None:
        """Stop the channel at the end of the pulse in progress and hold ``condition`` until STOP."""
        self.trips.append((self.env.now, ch.number, condition))
        self._halt(ch, finish_pulse=True, state="fault")
        ch.state, ch.fault = "fault", condition

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
        faulted = {ch.number: ch.fault for ch in channels if ch.state == "fault"}
        if faulted:
            raise Refusal(ErrorCode.FAULT_ACTIVE, f"channel(s) {faulted} in fault; STOP clears it")
        if self.battery_low:
            raise Refusal(
                ErrorCode.FAULT_ACTIVE, f"battery low ({self.battery_V:g} V < {self.device.safety.low_battery_V:g} V)"
            )
        if req.duration_s is not None:
            shortest = program.ramp_up_s + program.ramp_down_s
            if not shortest <= req.duration_s <= program.duration_s:
                raise Refusal(
                    ErrorCode.OUT_OF_RANGE,
                    f"duration {req.duration_s:g} s outside {shortest:g}..{program.duration_s:g} s "
                    f"(program {program.id}: its ramps .. its duration)",
                )
        busy = [ch.number for ch in channels if ch.state not in RESTARTABLE or ch.process is not None]
        if busy:
            raise Refusal(ErrorCode.INVALID_STATE, f"channel(s) {busy} already running; stop them first")
        for n in self.channels_affected(req.channels):
            ch = self._channel(n)
            if ch.process is not None and ch.process.is_alive:
                ch.process.interrupt("restart")
            ch.program, ch.target_mA, ch.started_at_s, ch.fault = program, amplitude, self.env.now, None
            ch.session_s, ch.resume = req.duration_s, None
            ch.process = self.env.process(self._run_program(ch))

    def set_amplitude(self, req: SetAmplitudeRequest) -> None:
        ch = self._channel(req.channel)
        amplitude = self.check_amplitude(req.amplitude_mA)
        if ch.state == "fault":
            raise Refusal(ErrorCode.FAULT_ACTIVE, f"channel {ch.number} in fault {ch.fault!r}; STOP clears it")
        if ch.program is None or ch.state not in RUNNING:
            raise Refusal(ErrorCode.INVALID_STATE, f"channel {ch.number} is not running a program")
        for n in self.channels_affected([req.channel]):
            self._retarget(self._channel(n), amplitude)

    def stop(self, req: StopRequest) -> None:
        numbers = req.channels if req.channels is not None else list(self.channels)
        for ch in [self._channel(n) for n in numbers]:
            # Orderly: finish the pulse in progress so no phase is left uncompensated.
            self._halt(ch, finish_pulse=True, state="stopped")
            ch.fault = None

    def emergency_stop(self) -> None:
        """Every channel off at once, cutting a pulse in progress; a held fault stays (STOP clears it)."""
        for ch in self.channels.values():
            if self.estop_halts(ch):
                self._halt(ch, finish_pulse=False, state="fault" if ch.state == "fault" else "stopped")

    # ---- output control -----------------------------------------------------------------------
    def _halt(self, ch: ChannelRuntime, *, finish_pulse: bool, state: str) -> None:
        if ch.process is not None and ch.process.is_alive and ch.process is not self.env.active_process:
            ch.process.interrupt("halt")
        ch.process = None
        ch.check_gen += 1
        ch.resume = None  # an operator's STOP / EMERGENCY_STOP (or a fault) cancels any resume
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

    def _open(self, ch: ChannelRuntime, intended: Segment) -> None:
        """Put a commanded segment out through the DAC, and re-arm the load supervision for it."""
        a0, a1 = self.dac_levels(ch, intended.a0_mA, intended.a1_mA)
        ch.intended = intended
        ch.schedule.open(replace(intended, a0_mA=a0, a1_mA=a1), self.env.now)
        self._arm_load_check(ch)

    def _commanded_mA(self, ch: ChannelRuntime, t_s: float) -> float:
        """The envelope the firmware commands at ``t_s`` (0 while the output is off)."""
        if ch.schedule.current is None or ch.intended is None:
            return float(ch.schedule.envelope_mA(t_s))
        return float(ch.intended.envelope_mA(t_s))

    def _ramp(self, ch: ChannelRuntime, a0: float, a1: float, ramp_s: float) -> None:
        """Open a ramp segment: now for a new train, else at the next pulse boundary of the running one."""
        now = self.env.now
        cur = ch.schedule.current
        t_start = cur.next_pulse_at_or_after(now) if cur is not None else now
        self._open(ch, self._segment(ch, t_start, a0, a1, ramp_s))

    def _retarget(self, ch: ChannelRuntime, amplitude_mA: float) -> None:
        """New set-point from the next pulse on; a step larger than the slew limit becomes a ramp."""
        ch.target_mA = amplitude_mA
        cur = ch.schedule.current
        if cur is None or ch.state not in ("ramp_up", "on"):
            return  # takes effect at the next ON period
        now = self.env.now
        t_switch = cur.next_pulse_at_or_after(now)
        a_now = self._commanded_mA(ch, t_switch)
        period = cur.period_s
        if ch.state == "ramp_up":
            # the rest of the ramp (the pulse at t_switch keeps the present envelope), never faster than the slew
            ramp_left = max(0.0, cur.t_start_s + cur.ramp_s - t_switch)
            ramp_s = max(ramp_left, self.slew_pulses(a_now, amplitude_mA) * period)
            seg = self._segment(ch, t_switch, a_now, amplitude_mA, ramp_s)
        else:
            # n pulses of at most one slew step each; the first already at t_switch (n = 1: a plain step)
            n = self.slew_pulses(a_now, amplitude_mA)
            first = a_now + (amplitude_mA - a_now) / n
            seg = self._segment(ch, t_switch, first, amplitude_mA, (n - 1) * period)
        self._open(ch, seg)

    def _run_program(self, ch: ChannelRuntime) -> Generator[simpy.Event, Any, None]:
        """Session: repeated ON periods (ramp up, hold, ramp down) and OFF periods until the end."""
        program = ch.program
        assert program is not None
        session_s = self.session_duration_s(program, ch.session_s)
        session_end = self.env.now + session_s
        ramp_up_s = self.ramp_up_s(program)
        try:
            while self.env.now < session_end:
                on_s = program.cycle.on_s if program.cycle else session_s
                on_end = min(self.env.now + on_s, session_end)
                ch.state = "ramp_up"
                self._ramp(ch, 0.0, ch.target_mA, ramp_up_s)
                yield self.env.timeout(min(ramp_up_s, on_end - self.env.now))
                ch.state = "on"
                hold_s = on_end - program.ramp_down_s - self.env.now
                if math.isinf(hold_s):
                    yield self.env.event()  # never: the session timer does not run out
                if hold_s > 0:
                    yield self.env.timeout(hold_s)
                ch.state = "ramp_down"
                a_now = self._commanded_mA(ch, self.env.now)
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
