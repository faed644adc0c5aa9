"""Emulated Rigol DS1000Z scope (DS1104Z by default): settings, acquisitions, SCPI as the DS1000Z
Programming Guide describes it.

Create one :class:`RigolDS1000Z` per bench and serve it with ``ScpiSocketServer(scope.session,
port=5555)``. All connections share the one instrument; every program message runs under its lock.

Captures are rendered with :mod:`simulator.instruments.render` from the bench's signals (probe, noise,
bandwidth, trigger search and jitter as for the Keysight emulator); only the ADC is Rigol's: 25 codes
per division around code 127 (:WAVeform:YREFerence), codes 0..255.

Record geometry (DS1000Z User's Guide 4-6: memory depth = sample rate x 12 divisions x s/div): with
:ACQuire:MDEPth AUTO the record is the 12-division screen at the highest rate the channel mode allows
(the memory the real scope fills for that timebase); with a fixed depth the record holds that many
points at the rate the depth gives the screen (at most the channel mode's maximum rate, in which case
the record is longer than the screen), centred on the screen centre. :TIMebase:MAIN:OFFSet is the time
of the screen centre relative to the trigger.

Time is the bench's, and it advances only while the client waits:

* :SINGle arms and returns (:TRIGger:STATus? WAIT). Each later message first looks for the trigger in
  the bench time that elapsed meanwhile (the rig's clock); after a trigger the status is TD until the
  record is full, then STOP.
* A :TRIGger:STATus? poll while armed, sent without any bench time having elapsed since the previous
  poll, is a client waiting on the scope (a driver polling until STOP, as Rigol drivers do): the scope
  lets up to ``poll_wait_s`` of bench time pass looking for its trigger, or, once triggered, fills the
  record. An acquisition that finds no trigger within ``search_horizon_s`` of arming stays armed, and
  polls stop moving bench time (as a real scope waits for ever).
* While running (:RUN, or after *RST), a screen read (:WAVeform:DATA? in NORMal mode) and :STOP take a
  fresh acquisition: the trigger is searched up to ``search_horizon_s`` ahead (AUTO sweep: forced after
  the model's auto timeout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simulator.instruments import render
from simulator.instruments.host import ScopeHost
from simulator.instruments.ieee488 import EmulatedInstrument, no_args, query, status_commands
from simulator.instruments.render import EdgeTrigger, FrontEnd, RecordGeometry
from simulator.instruments.scope_model import RIGOL_DS1104Z_MODEL_PATH, ScopeModel, ScreenCodes, load_scope_model
from simulator.instruments.scpi import (
    ESR_OPC,
    Call,
    CommandTree,
    ScpiError,
    ScpiExecutor,
    definite_block,
    matches,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
    split_spec,
)

Sweep = Literal["AUTO", "NORMal", "SINGle"]
WaveMode = Literal["NORMal", "MAXimum", "RAW"]
RigolSlope = Literal["POSitive", "NEGative", "RFALl"]

BLOCK_LENGTH_DIGITS = 9  # "#9000001200": the DS1000Z's TMC data description header
FORMAT_CODE: dict[render.WaveFormat, int] = {"BYTE": 0, "WORD": 1, "ASCii": 2}
MODE_CODE: dict[WaveMode, int] = {"NORMal": 0, "MAXimum": 1, "RAW": 2}
_SLOPE_FOR_SEARCH: dict[RigolSlope, render.Slope] = {"POSitive": "POSitive", "NEGative": "NEGative", "RFALl": "EITHer"}
# :CHANnel<n>:PROBe takes these ratios only (ds1054z set_probe_ratio, after the Programming Guide)
PROBE_RATIOS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
# :CHANnel<n>:OFFSet range at probe ratio 1 (ds1054z set_channel_offset, after the Programming Guide):
# +/-100 V from 500 mV/div up, +/-2 V below; both scale with the probe ratio.
_OFFSET_RANGE_COARSE_V, _OFFSET_RANGE_FINE_V, _OFFSET_RANGE_SPLIT_V_PER_DIV = 100.0, 2.0, 0.5
# :TIMebase:MAIN:OFFSet: from -screen/2 (trigger at the right edge) up to the delay the guide allows
_MAX_DELAY_S = 5000.0
_TRIGGER_LEVEL_DIVISIONS = 5.0  # :TRIGger:EDGe:LEVel within +/-5 divisions of the screen centre


def _short(spec: str) -> str:
    return split_spec(spec)[0]


def _e(value: float) -> str:
    """The DS1000Z's number form in replies: ``2.000000e-05``."""
    return f"{float(value):.6e}"


def format_error(code: int, message: str) -> str:
    """:SYSTem:ERRor? reply as the DS1000Z sends it: ``0,"No error"`` / ``-113,"Undefined header"``."""
    return f'{code},"{message}"'


@dataclass
class ChannelState:
    display: bool
    scale_V_per_div: float
    offset_V: float = 0.0  # Rigol sense: the trace moves up by it, the screen centre shows -offset
    probe: float = 10.0
    coupling: Literal["DC", "AC", "GND"] = "DC"
    bw_limit: bool = False


@dataclass
class Settings:
    """Everything *RST restores."""

    channels: dict[int, ChannelState]
    time_scale_s_per_div: float
    time_offset_s: float = 0.0
    sweep: Sweep = "AUTO"
    run_sweep: Literal["AUTO", "NORMal"] = "AUTO"  # the sweep :RUN returns to after :SINGle
    trigger_source: int = 1
    trigger_level_V: float = 0.0
    trigger_slope: RigolSlope = "POSitive"
    memory_depth: int | None = None  # None: AUTO
    wav_source: int = 1
    wav_mode: WaveMode = "NORMal"
    wav_format: render.WaveFormat = "BYTE"
    wav_start: int = 1
    wav_stop: int = 1200

    @classmethod
    def default(cls, model: ScopeModel, codes: ScreenCodes) -> Settings:
        d = model.defaults
        channels = {
            n: ChannelState(display=(n == 1), scale_V_per_div=d.scale_V_per_div, probe=d.probe_attenuation)
            for n in range(1, model.vertical.channels + 1)
        }
        return cls(
            channels=channels,
            time_scale_s_per_div=d.time_scale_s_per_div,
            sweep="NORMal" if d.sweep == "NORMal" else "AUTO",
            wav_mode=d.points_mode,
            wav_format=d.waveform_format,
            wav_stop=codes.screen_points,
        )

    def displayed(self) -> frozenset[int]:
        return frozenset(n for n, c in self.channels.items() if c.display)


@dataclass(frozen=True)
class Vertical:
    """One channel's vertical set-up frozen for an acquisition, with its code scaling."""

    front_end: FrontEnd  # offset_V here is the value at the screen centre (render's convention)
    y_increment_V: float
    y_origin_codes: int  # the preamble's yorigin: the (quantised) offset in codes
    ground: bool


@dataclass(frozen=True)
class Plan:
    """What one acquisition captures, frozen when it is armed."""

    geometry: RecordGeometry
    verticals: dict[int, Vertical]
    trigger: EdgeTrigger
    auto: bool  # AUTO sweep: acquire untriggered once the auto timeout passes
    time_scale_s_per_div: float
    time_offset_s: float


@dataclass(frozen=True)
class Acquisition:
    plan: Plan
    codes: dict[int, np.ndarray]
    triggered: bool
    trigger_time_s: float  # bench time of the crossing (or of the forced trigger)

    @property
    def geometry(self) -> RecordGeometry:
        return self.plan.geometry


@dataclass
class Armed:
    """An acquisition waiting for its trigger (or, once triggered, for its record to fill)."""

    kind: Literal["single", "run"]
    plan: Plan
    armed_at_s: float
    searched_to_s: float  # the trigger is looked for after this bench time (pre-trigger filled first)
    auto_deadline_s: float | None
    trigger_s: float | None = None
    triggered: bool = False
    jitter_s: float = 0.0
    polled_at_s: float | None = field(default=None)  # bench time of the last :TRIGger:STATus? reply

    @property
    def end_s(self) -> float:
        """Bench time at which the record is full (once the trigger is known)."""
        assert self.trigger_s is not None
        g = self.plan.geometry
        return self.trigger_s + self.jitter_s + g.t_first_s + (g.n_points - 1) * g.dt_s


class _NoData(ScpiError):
    def __init__(self, detail: str = "no acquired data for this source") -> None:
        super().__init__(-222, detail)


class RigolDS1000Z(EmulatedInstrument):
    """The instrument: one shared state for every connection.

    ``host`` is the bench; ``model`` the fixture (default ``fixtures/instruments/rigol_ds1104z.yaml``;
    it must have ``channel_modes`` and ``screen_codes``); ``serial`` overrides the fixture's.
    ``search_horizon_s``: bench time an armed acquisition may make pass looking for its trigger;
    ``poll_wait_s``: bench time one waiting :TRIGger:STATus? poll lets pass; ``search_chunk_s`` /
    ``trigger_search_step_s`` as for the Keysight emulator.
    """

    def __init__(
        self,
        host: ScopeHost,
        model: ScopeModel | None = None,
        *,
        serial: str | None = None,
        search_horizon_s: float = 10.0,
        poll_wait_s: float = 0.1,
        search_chunk_s: float = 0.01,
        trigger_search_step_s: float = 0.5e-6,
    ) -> None:
        if min(search_horizon_s, poll_wait_s, search_chunk_s, trigger_search_step_s) <= 0:
            raise ValueError("search horizon, poll wait, chunk and step must be positive")
        super().__init__()  # error queue and status registers
        self.host = host
        self.model = model if model is not None else load_scope_model(RIGOL_DS1104Z_MODEL_PATH)
        if self.model.channel_modes is None or self.model.screen_codes is None:
            raise ValueError("a Rigol DS1000Z model needs channel_modes and screen_codes")
        self.codes: ScreenCodes = self.model.screen_codes
        self.serial = serial or self.model.identity.serial
        self.search_horizon_s = search_horizon_s
        self.poll_wait_s = poll_wait_s
        self.search_chunk_s = search_chunk_s
        self.trigger_search_step_s = trigger_search_step_s
        self.settings = Settings.default(self.model, self.codes)
        self.acquisition: Acquisition | None = None
        self.armed: Armed | None = None
        self.running = True
        self.fresh = False  # an acquisition was taken since the scope last started running
        self._noise_rng: np.random.Generator | None = None
        self._trigger_rng: np.random.Generator | None = None
        self._executor = ScpiExecutor(self._build_tree(), self._report)

    # ---------------------------------------------------------------- public entry points

    @property
    def idn(self) -> str:
        i = self.model.identity
        return f"{i.manufacturer},{i.model},{self.serial},{i.firmware}"

    def reset(self) -> None:
        """*RST: Default Setup, running; the error queue and status registers are left alone."""
        self.settings = Settings.default(self.model, self.codes)
        self.armed = None
        self.acquisition = None
        self.running = True
        self.fresh = False

    def status(self) -> str:
        """The :TRIGger:STATus? word: TD, WAIT, RUN, AUTO or STOP (Programming Guide)."""
        a = self.armed
        if a is not None and a.kind == "single":
            return "TD" if a.trigger_s is not None else "WAIT"
        if not self.running:
            return "STOP"
        if a is not None and a.trigger_s is not None:
            return "TD" if a.triggered else "AUTO"
        last = self.acquisition if self.fresh else None
        if last is not None:
            return "TD" if last.triggered else "AUTO"
        return "WAIT" if self.settings.sweep == "NORMal" else "RUN"

    # ---------------------------------------------------------------- status registers

    def _stb(self) -> int:
        stb = 0x04 if len(self.errors) else 0
        if self._esr & self._ese:
            stb |= 0x20
        if stb & self._sre:
            stb |= 0x40
        return stb

    # ---------------------------------------------------------------- record geometry and plans

    def channel_mode_depths(self, displayed: frozenset[int]) -> tuple[int, ...]:
        return self.model.channel_mode(len(displayed)).memory_depths_pts

    def effective_depth(self, displayed: frozenset[int]) -> int | None:
        """The fixed memory depth in force with these channels on (None: AUTO). A depth set for
        another channel mode maps to the same step of this mode's list (12 M with one channel on is
        6 M with two), as on the real scope."""
        depth = self.settings.memory_depth
        if depth is None:
            return None
        depths = self.channel_mode_depths(displayed)
        if depth in depths:
            return depth
        assert self.model.channel_modes is not None
        for mode in self.model.channel_modes.values():
            if depth in mode.memory_depths_pts:
                index = mode.memory_depths_pts.index(depth)
                return depths[min(index, len(depths) - 1)]
        return max([d for d in depths if d <= depth], default=depths[0])

    def geometry(self, displayed: frozenset[int], time_scale_s_per_div: float, offset_s: float) -> RecordGeometry:
        mode = self.model.channel_mode(len(displayed))
        screen_s = self.model.horizontal.divisions * time_scale_s_per_div
        depth = self.effective_depth(displayed)
        if depth is None:  # AUTO: the screen at the highest rate the deepest memory allows
            rate = render.nice_sample_rate(min(mode.max_sample_rate_Sa_per_s, mode.memory_depths_pts[-1] / screen_s))
            n = max(1, math.floor(screen_s * rate + 1e-6))
        else:
            rate = render.nice_sample_rate(min(mode.max_sample_rate_Sa_per_s, depth / screen_s))
            n = depth
        return RecordGeometry(sample_rate_Sa_per_s=rate, n_points=n, t_first_s=offset_s - 0.5 * n / rate)

    def vertical(self, channel: int) -> Vertical:
        c = self.settings.channels[channel]
        yinc = c.scale_V_per_div / self.codes.codes_per_division
        y_origin = round(c.offset_V / yinc)  # the preamble carries whole codes: the offset is quantised so
        centre_V = -y_origin * yinc
        fe = FrontEnd(c.scale_V_per_div, centre_V, c.probe, c.bw_limit, c.coupling == "AC")
        return Vertical(fe, yinc, y_origin, c.coupling == "GND")

    def _physical_attenuation(self, channel: int) -> float:
        value = float(self.host.probe_attenuation(channel))
        return value if value > 0 and math.isfinite(value) else 1.0

    def plan(self, channels: frozenset[int] | None = None) -> Plan:
        s = self.settings
        displayed = s.displayed()
        chans = displayed if channels is None else channels
        geometry = self.geometry(displayed, s.time_scale_s_per_div, s.time_offset_s)
        src = s.trigger_source
        gain = s.channels[src].probe / self._physical_attenuation(src)
        trigger = EdgeTrigger(src, s.trigger_level_V, _SLOPE_FOR_SEARCH[s.trigger_slope], gain)
        verticals = {n: self.vertical(n) for n in sorted(chans)}
        return Plan(geometry, verticals, trigger, s.sweep == "AUTO", s.time_scale_s_per_div, s.time_offset_s)

    # ---------------------------------------------------------------- acquisition

    def _rngs(self) -> tuple[np.random.Generator, np.random.Generator]:
        if self._noise_rng is None or self._trigger_rng is None:
            self._noise_rng = self.host.rng("scope.noise")
            self._trigger_rng = self.host.rng("scope.trigger")
        return self._noise_rng, self._trigger_rng

    def _search(self, plan: Plan, start_s: float, stop_s: float) -> tuple[float | None, float]:
        resolution = max(1e-13, plan.geometry.dt_s * 1e-3)
        step = max(self.trigger_search_step_s, plan.geometry.dt_s)
        return render.search_edge(self.host, plan.trigger, start_s, stop_s, step, self.search_chunk_s, resolution)

    def arm(self, kind: Literal["single", "run"]) -> Armed:
        plan = self.plan()
        now = self.host.now()
        start = now + plan.geometry.pre_trigger_s
        auto = start + self.model.trigger.auto_timeout_s if (plan.auto and kind == "run") else None
        self.armed = Armed(kind, plan, now, start, auto)
        return self.armed

    def _found(self, a: Armed, trigger_s: float, *, triggered: bool) -> None:
        a.trigger_s = trigger_s
        a.triggered = triggered
        if triggered:
            a.jitter_s = float(self._rngs()[1].normal(0.0, self.model.trigger.jitter_rms_s))

    def _look(self, a: Armed, until_s: float) -> None:
        """Search the trigger in (searched_to, until]; bench time moves only as far as needed."""
        if a.trigger_s is not None or until_s <= a.searched_to_s:
            return
        crossing, searched_to = self._search(a.plan, a.searched_to_s, until_s)
        if crossing is not None:
            self._found(a, crossing, triggered=True)
        elif a.auto_deadline_s is not None and until_s >= a.auto_deadline_s:
            self._found(a, a.auto_deadline_s, triggered=False)
        else:
            a.searched_to_s = searched_to

    def _service(self) -> None:
        """An armed acquisition looks for its trigger in the bench time that elapsed meanwhile and
        completes once its record is full."""
        a = self.armed
        if a is None:
            return
        now = self.host.now()
        self._look(a, now)
        if a.trigger_s is not None and now >= a.end_s:
            self._complete(a)

    def wait(self, a: Armed, budget_s: float) -> None:
        """The client waits on the scope: up to ``budget_s`` more bench time (never beyond the search
        horizon) looking for the trigger; once triggered, the record is filled."""
        if a.trigger_s is None:
            limit = a.armed_at_s + a.plan.geometry.pre_trigger_s + self.search_horizon_s
            if a.auto_deadline_s is not None:
                limit = a.auto_deadline_s
            until = min(limit, max(self.host.now(), a.searched_to_s) + budget_s)
            if until > a.searched_to_s:
                self.host.advance_to(a.searched_to_s)  # the pre-trigger part fills first
                self._look(a, until)
        if a.trigger_s is not None:
            self.host.advance_to(a.end_s)
            self._complete(a)

    def _complete(self, a: Armed) -> None:
        assert a.trigger_s is not None
        noise_rng, _ = self._rngs()
        g = a.plan.geometry
        t0 = a.trigger_s + a.jitter_s + g.t_first_s
        self.host.advance_to(t0 + (g.n_points - 1) * g.dt_s)
        codes = {n: self._digitize(n, v, t0, g.dt_s, g.n_points, noise_rng) for n, v in a.plan.verticals.items()}
        self.acquisition = Acquisition(a.plan, codes, a.triggered, a.trigger_s)
        self.armed = None
        self.fresh = True
        if a.kind == "single":
            self.running = False  # a running scope keeps acquiring: its next acquisition is taken on demand

    def _digitize(
        self, channel: int, v: Vertical, t0_s: float, dt_s: float, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """The Rigol ADC codes of samples at bench times ``t0_s + k*dt_s``: the render.py front end
        (physical probe, low-pass, AC coupling, noise, probe setting), then 25 codes/div around 127."""
        model, fe = self.model, v.front_end
        cutoff = model.vertical.bw_limit_Hz if fe.bw_limit else model.vertical.bandwidth_Hz
        tau = 1.0 / (2.0 * math.pi * cutoff)
        pre = min(math.ceil(8.0 * tau / dt_s), 100_000) + 1  # filter pre-roll from the past
        signal = None if v.ground else self.host.signal(channel)
        tip = render.render_tip(signal, t0_s - pre * dt_s, dt_s, n + pre)
        bnc = render.lowpass(tip * (1.0 / self._physical_attenuation(channel)), dt_s, cutoff)[pre:]
        if fe.ac_coupled:
            bnc = render.highpass(bnc, dt_s, model.vertical.ac_coupling_cutoff_Hz)
        noise = rng.standard_normal(n, dtype=np.float32)
        noise *= render.noise_rms_V(model, fe)
        bnc += noise
        bnc *= fe.probe_setting
        return self._quantize(bnc, v)

    def _quantize(self, displayed_V: np.ndarray, v: Vertical) -> np.ndarray:
        """Round to codes (half a code rounds up), clip to the ADC range. Overwrites the input."""
        c = self.codes
        codes = displayed_V
        codes -= v.front_end.offset_V
        codes *= 1.0 / v.y_increment_V
        codes += c.centre_code + 0.5
        np.clip(codes, c.min_code, c.max_code + 0.5, out=codes)
        return codes.astype(np.uint8 if c.max_code < 256 else np.uint16)

    def single(self) -> None:
        """:SINGle (or :TRIGger:SWEep SINGle): arm one acquisition and return."""
        if self.settings.sweep != "SINGle":
            self.settings.run_sweep = self.settings.sweep
        self.settings.sweep = "SINGle"
        self.running = True
        self.fresh = False
        self.arm("single")

    def acquire_now(self) -> None:
        """A running scope's fresh acquisition of the displayed channels (waits as :DIGitize would)."""
        a = self.armed if (self.armed is not None and self.armed.kind == "run") else self.arm("run")
        self.wait(a, self.search_horizon_s)

    # ---------------------------------------------------------------- waveform transfer

    def memory_readable(self) -> bool:
        return not self.running and self.armed is None

    def reads_memory(self) -> bool:
        m = self.settings.wav_mode
        return m == "RAW" or (m == "MAXimum" and self.memory_readable())

    def record_points(self) -> int:
        """Points of the record :WAVeform currently describes (1200 on screen)."""
        if not self.reads_memory():
            return self.codes.screen_points
        a = self.acquisition
        if a is not None and self.memory_readable():
            return a.geometry.n_points
        s = self.settings
        return self.geometry(s.displayed(), s.time_scale_s_per_div, s.time_offset_s).n_points

    def _described(self) -> tuple[Plan, Vertical]:
        """The plan and vertical set-up the preamble describes: the stopped acquisition's, else the
        current settings (what the next acquisition of a running scope will have)."""
        s = self.settings
        a = self.acquisition
        if a is not None and not self.running and s.wav_source in a.plan.verticals:
            return a.plan, a.plan.verticals[s.wav_source]
        plan = self.plan(frozenset({s.wav_source}))
        return plan, plan.verticals[s.wav_source]

    def preamble(self) -> str:
        s = self.settings
        plan, v = self._described()
        if self.reads_memory():
            xinc, xorigin = plan.geometry.dt_s, plan.geometry.t_first_s
        else:
            xinc = plan.time_scale_s_per_div * self.model.horizontal.divisions / self.codes.screen_points
            xorigin = plan.time_offset_s - 0.5 * self.model.horizontal.divisions * plan.time_scale_s_per_div
        fields = [
            str(FORMAT_CODE[s.wav_format]),
            str(MODE_CODE[s.wav_mode]),
            str(self.record_points()),
            "1",
            _e(xinc),
            _e(xorigin),
            "0",
            _e(v.y_increment_V),
            str(v.y_origin_codes),
            str(self.codes.centre_code),
        ]
        return ",".join(fields)

    def _screen_codes(self, a: Acquisition, channel: int) -> np.ndarray:
        """The 1200 screen points of an acquisition: the memory sampled at the screen's 12 div / 1200."""
        g, p = a.geometry, a.plan
        divisions = self.model.horizontal.divisions
        n_screen = self.codes.screen_points
        left = p.time_offset_s - 0.5 * divisions * p.time_scale_s_per_div
        t = left + np.arange(n_screen) * (divisions * p.time_scale_s_per_div / n_screen)
        index = np.clip(np.rint((t - g.t_first_s) / g.dt_s), 0, g.n_points - 1).astype(np.int64)
        return a.codes[channel][index]

    def data(self) -> bytes:
        """The :WAVeform:DATA? block ("#9" header) of points STARt..STOP of the current record."""
        s = self.settings
        if s.wav_mode == "RAW" and not self.memory_readable():
            raise ScpiError(-221, "the internal memory is read in the STOP state")
        memory = self.reads_memory()
        if not memory and self.running and self.armed is None:
            self.acquire_now()  # a running scope shows a fresh screen
        a = self.acquisition
        if a is None or s.wav_source not in a.codes:
            raise _NoData()
        total = a.geometry.n_points if memory else self.codes.screen_points
        start, stop = s.wav_start, min(s.wav_stop, total)
        if start > stop:
            raise ScpiError(-222, f"start point {start} after stop point {stop} (record of {total})")
        count = stop - start + 1
        limit = {
            "BYTE": self.codes.max_read_points_byte,
            "WORD": self.codes.max_read_points_word,
            "ASCii": self.codes.max_read_points_ascii,
        }[s.wav_format]
        if memory and count > limit:
            raise ScpiError(-222, f"{count} points in one read; at most {limit} in {s.wav_format}")
        codes = a.codes[s.wav_source] if memory else self._screen_codes(a, s.wav_source)
        return encode(codes[start - 1 : stop], s.wav_format, a.plan.verticals[s.wav_source], self.codes)

    # ---------------------------------------------------------------- command tree

    def _build_tree(self) -> CommandTree:
        t = CommandTree()
        _common_commands(self, t)
        _root_commands(self, t)
        _channel_commands(self, t)
        _timebase_trigger_commands(self, t)
        _waveform_commands(self, t)
        return t


def encode(codes: np.ndarray, fmt: render.WaveFormat, v: Vertical, screen: ScreenCodes) -> bytes:
    """A :WAVeform:DATA? payload in a "#9" block: BYTE codes; WORD codes in the low byte of 16 bits
    (high byte 0, low byte first); ASCii volts in scientific notation separated by commas."""
    if fmt == "BYTE":
        payload = codes.astype(np.uint8).tobytes()
    elif fmt == "WORD":
        payload = codes.astype("<u2").tobytes()
    else:
        volts = (codes.astype(np.float64) - v.y_origin_codes - screen.centre_code) * v.y_increment_V
        payload = ",".join(_e(x) for x in volts).encode("ascii")
    return definite_block(payload, BLOCK_LENGTH_DIGITS)


# ==================================================================================================
# Handlers. Each group registers closures over the instrument.


def _number(c: Call, unit: str = "") -> float:
    c.expect_args(1)
    return parse_number(c.args[0], unit=unit)


def _channel(text: str, channels: int) -> int:
    t = text.strip().upper()
    alpha = t.rstrip("0123456789")
    digits = t[len(alpha) :]
    if not matches(alpha, "CHANnel"):
        raise ScpiError(-224 if alpha.isalpha() else -104)
    n = int(digits) if digits and len(digits) < 4 else 0
    if not 1 <= n <= channels:
        raise ScpiError(-224)
    return n


def _common_commands(scope: RigolDS1000Z, t: CommandTree) -> None:
    def cls(c: Call) -> None:
        no_args(c)
        scope.errors.clear()
        scope._esr = 0

    def opc(c: Call) -> None:
        no_args(c)
        scope._esr |= ESR_OPC

    def rst(c: Call) -> None:
        no_args(c)
        scope.reset()

    t.add("*IDN?", query(lambda c: scope.idn))
    t.add("*RST", rst)
    t.add("*CLS", cls)
    t.add("*OPC", opc)
    t.add("*OPC?", query(lambda c: "1"))
    t.add("*WAI", no_args)
    status_commands(scope, t, error=format_error)


def _root_commands(scope: RigolDS1000Z, t: CommandTree) -> None:
    def run(c: Call) -> None:
        no_args(c)
        if not scope.running or (scope.armed is not None and scope.armed.kind == "single"):
            scope.armed = None
            scope.fresh = False
        scope.running = True
        if scope.settings.sweep == "SINGle":
            scope.settings.sweep = scope.settings.run_sweep

    def stop(c: Call) -> None:
        no_args(c)
        if scope.running and (scope.armed is None or scope.armed.kind == "run") and not scope.fresh:
            scope.acquire_now()  # the memory holds the frame the running scope acquired last
        scope.armed = None
        scope.running = False

    def single(c: Call) -> None:
        no_args(c)
        scope.single()

    def tforce(c: Call) -> None:
        no_args(c)
        a = scope.armed
        if a is None and scope.running:
            a = scope.arm("run")
        if a is not None and a.trigger_s is None:
            scope.host.advance_to(a.searched_to_s)  # a forced trigger still needs the pre-trigger part
            scope._found(a, max(scope.host.now(), a.searched_to_s), triggered=False)
            scope._service()

    t.add(":RUN", run)
    t.add(":STOP", stop)
    t.add(":SINGle", single)
    t.add(":TFORce", tforce)
    t.add(":CLEar", no_args)

    def mdepth(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip()
        if text[:1].isalpha():
            parse_choice(text, ("AUTO",))
            scope.settings.memory_depth = None
            return
        value = parse_int(text)
        if value not in scope.channel_mode_depths(scope.settings.displayed()):
            raise ScpiError(-224, f"memory depth {value} is not offered with the channels on")
        scope.settings.memory_depth = value

    def mdepth_q(c: Call) -> str:
        no_args(c)
        depth = scope.effective_depth(scope.settings.displayed())
        return "AUTO" if depth is None else str(depth)

    def srate_q(c: Call) -> str:
        no_args(c)
        a = scope.acquisition
        if a is not None and not scope.running:
            return _e(a.geometry.sample_rate_Sa_per_s)
        s = scope.settings
        return _e(scope.geometry(s.displayed(), s.time_scale_s_per_div, s.time_offset_s).sample_rate_Sa_per_s)

    def acq_type(c: Call) -> None:
        c.expect_args(1)
        if parse_choice(c.args[0], ("NORMal", "AVERages", "PEAK", "HRESolution")) != "NORMal":
            raise ScpiError(-224, "only NORMal acquisitions are emulated")

    t.add(":ACQuire:MDEPth", mdepth)
    t.add(":ACQuire:MDEPth?", mdepth_q)
    t.add(":ACQuire:SRATe?", srate_q)
    t.add(":ACQuire:TYPE", acq_type)
    t.add(":ACQuire:TYPE?", query(lambda c: "NORM"))


def _channel_commands(scope: RigolDS1000Z, t: CommandTree) -> None:
    v = scope.model.vertical
    prefix = f":CHANnel<1-{v.channels}>"

    def ch(c: Call) -> ChannelState:
        return scope.settings.channels[c.suffixes[0]]

    def scale(c: Call) -> None:
        value = _number(c, "V")
        state = ch(c)
        lo, hi = v.min_scale_V_per_div * state.probe, v.max_scale_V_per_div * state.probe
        if not lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9):
            raise ScpiError(-222)
        state.scale_V_per_div = value

    def offset(c: Call) -> None:
        value = _number(c, "V")
        state = ch(c)
        at_bnc = state.scale_V_per_div / state.probe
        span = _OFFSET_RANGE_COARSE_V if at_bnc >= _OFFSET_RANGE_SPLIT_V_PER_DIV * (1 - 1e-9) else _OFFSET_RANGE_FINE_V
        if abs(value) > span * state.probe * (1 + 1e-9):
            raise ScpiError(-222)
        state.offset_V = value

    def probe(c: Call) -> None:
        value = _number(c)
        ratio = next((r for r in PROBE_RATIOS if abs(value - r) <= 1e-9 * r), None)
        if ratio is None:
            raise ScpiError(-224, f"probe ratio {value} is not one of {PROBE_RATIOS}")
        state = ch(c)
        factor = ratio / state.probe  # the screen keeps its sensitivity at the BNC
        state.scale_V_per_div *= factor
        state.offset_V *= factor
        state.probe = ratio

    def display(c: Call) -> None:
        c.expect_args(1)
        ch(c).display = parse_bool(c.args[0])

    def coupling(c: Call) -> None:
        c.expect_args(1)
        ch(c).coupling = parse_choice(c.args[0], ("AC", "DC", "GND"))  # type: ignore[assignment]

    def bwlimit(c: Call) -> None:
        c.expect_args(1)
        ch(c).bw_limit = parse_choice(c.args[0], ("20M", "OFF")) == "20M"

    def invert(c: Call) -> None:
        c.expect_args(1)
        if parse_bool(c.args[0]):
            raise ScpiError(-224, "inverted channels are not emulated")

    t.add(prefix + ":SCALe", scale)
    t.add(prefix + ":SCALe?", query(lambda c: _e(ch(c).scale_V_per_div)))
    t.add(prefix + ":OFFSet", offset)
    t.add(prefix + ":OFFSet?", query(lambda c: _e(ch(c).offset_V)))
    t.add(prefix + ":PROBe", probe)
    t.add(prefix + ":PROBe?", query(lambda c: _e(ch(c).probe)))
    t.add(prefix + ":DISPlay", display)
    t.add(prefix + ":DISPlay?", query(lambda c: str(int(ch(c).display))))
    t.add(prefix + ":COUPling", coupling)
    t.add(prefix + ":COUPling?", query(lambda c: ch(c).coupling))
    t.add(prefix + ":BWLimit", bwlimit)
    t.add(prefix + ":BWLimit?", query(lambda c: "20M" if ch(c).bw_limit else "OFF"))
    t.add(prefix + ":INVert", invert)
    t.add(prefix + ":INVert?", query(lambda c: "0"))


def _timebase_trigger_commands(scope: RigolDS1000Z, t: CommandTree) -> None:
    h = scope.model.horizontal
    n_ch = scope.model.vertical.channels
    s = lambda: scope.settings  # noqa: E731 - settings are replaced by *RST

    def tb_scale(c: Call) -> None:
        value = _number(c, "S")
        if not h.min_scale_s_per_div * (1 - 1e-9) <= value <= h.max_scale_s_per_div * (1 + 1e-9):
            raise ScpiError(-222)
        s().time_scale_s_per_div = value

    def tb_offset(c: Call) -> None:
        value = _number(c, "S")
        half_screen = 0.5 * h.divisions * s().time_scale_s_per_div
        if not -half_screen * (1 + 1e-9) <= value <= _MAX_DELAY_S:
            raise ScpiError(-222)
        s().time_offset_s = value

    def tb_mode(c: Call) -> None:
        c.expect_args(1)
        if parse_choice(c.args[0], ("MAIN", "XY", "ROLL")) != "MAIN":
            raise ScpiError(-224, "only the MAIN timebase is emulated")

    t.add(":TIMebase[:MAIN]:SCALe", tb_scale)
    t.add(":TIMebase[:MAIN]:SCALe?", query(lambda c: _e(s().time_scale_s_per_div)))
    t.add(":TIMebase[:MAIN]:OFFSet", tb_offset)
    t.add(":TIMebase[:MAIN]:OFFSet?", query(lambda c: _e(s().time_offset_s)))
    t.add(":TIMebase:MODE", tb_mode)
    t.add(":TIMebase:MODE?", query(lambda c: "MAIN"))

    def trig_mode(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip()
        if not matches(text, "EDGE"):
            parse_choice(text, ("PULSe", "RUNT", "WIND", "SLOPe", "NEDGe", "PATTern", "DELay", "TIMeout",
                                "DURation", "SHOLd", "VIDeo", "RS232", "IIC", "SPI"))
            raise ScpiError(-224, "only the EDGE trigger is emulated")

    def sweep(c: Call) -> None:
        c.expect_args(1)
        choice = parse_choice(c.args[0], ("AUTO", "NORMal", "SINGle"))
        if choice == "SINGle":
            scope.single()
        else:
            s().sweep = s().run_sweep = choice  # type: ignore[assignment]

    def source(c: Call) -> None:
        c.expect_args(1)
        s().trigger_source = _channel(c.args[0], n_ch)

    def level(c: Call) -> None:
        value = _number(c, "V")
        src = s().channels[s().trigger_source]
        centre = -src.offset_V
        span = _TRIGGER_LEVEL_DIVISIONS * src.scale_V_per_div
        if not centre - span * (1 + 1e-9) <= value <= centre + span * (1 + 1e-9):
            raise ScpiError(-222, "trigger level off the screen of its source")
        s().trigger_level_V = value

    def slope(c: Call) -> None:
        c.expect_args(1)
        s().trigger_slope = parse_choice(c.args[0], ("POSitive", "NEGative", "RFALl"))  # type: ignore[assignment]

    def status_q(c: Call) -> str:
        no_args(c)
        a = scope.armed
        if a is not None:
            now = scope.host.now()
            if a.polled_at_s is not None and now <= a.polled_at_s:
                scope.wait(a, scope.poll_wait_s)  # no bench time passed since the last poll: the client waits
            if scope.armed is a:
                a.polled_at_s = scope.host.now()
        return scope.status()

    t.add(":TRIGger:MODE", trig_mode)
    t.add(":TRIGger:MODE?", query(lambda c: "EDGE"))
    t.add(":TRIGger:SWEep", sweep)
    t.add(":TRIGger:SWEep?", query(lambda c: _short(s().sweep)))
    t.add(":TRIGger:EDGe:SOURce", source)
    t.add(":TRIGger:EDGe:SOURce?", query(lambda c: f"CHAN{s().trigger_source}"))
    t.add(":TRIGger:EDGe:LEVel", level)
    t.add(":TRIGger:EDGe:LEVel?", query(lambda c: _e(s().trigger_level_V)))
    t.add(":TRIGger:EDGe:SLOPe", slope)
    t.add(":TRIGger:EDGe:SLOPe?", query(lambda c: _short(s().trigger_slope)))
    t.add(":TRIGger:STATus?", status_q)


def _waveform_commands(scope: RigolDS1000Z, t: CommandTree) -> None:
    n_ch = scope.model.vertical.channels
    w = ":WAVeform"
    s = lambda: scope.settings  # noqa: E731 - settings are replaced by *RST

    def source(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip().upper()
        if matches(text, "MATH") or text.rstrip("0123456789") in ("D",):
            raise ScpiError(-224, "only analog channel sources are emulated")
        s().wav_source = _channel(text, n_ch)

    def mode(c: Call) -> None:
        c.expect_args(1)
        s().wav_mode = parse_choice(c.args[0], ("NORMal", "MAXimum", "RAW"))  # type: ignore[assignment]

    def fmt(c: Call) -> None:
        c.expect_args(1)
        s().wav_format = parse_choice(c.args[0], ("WORD", "BYTE", "ASCii"))  # type: ignore[assignment]

    def start(c: Call) -> None:
        c.expect_args(1)
        value = parse_int(c.args[0])
        if value < 1:
            raise ScpiError(-222)
        s().wav_start = min(value, scope.record_points())  # the scope keeps the point inside the record

    def stop(c: Call) -> None:
        c.expect_args(1)
        value = parse_int(c.args[0])
        if value < 1:
            raise ScpiError(-222)
        s().wav_stop = min(value, scope.record_points())

    def data(c: Call) -> bytes:
        no_args(c)
        try:
            return scope.data()
        except ScpiError as exc:
            scope._report(exc.code)
            return definite_block(b"", BLOCK_LENGTH_DIGITS)

    def preamble_field(index: int, name: str) -> None:
        t.add(f"{w}:{name}?", query(lambda c: scope.preamble().split(",")[index]))

    t.add(f"{w}:SOURce", source)
    t.add(f"{w}:SOURce?", query(lambda c: f"CHAN{s().wav_source}"))
    t.add(f"{w}:MODE", mode)
    t.add(f"{w}:MODE?", query(lambda c: _short(s().wav_mode)))
    t.add(f"{w}:FORMat", fmt)
    t.add(f"{w}:FORMat?", query(lambda c: _short(s().wav_format)))
    t.add(f"{w}:STARt", start)
    t.add(f"{w}:STARt?", query(lambda c: str(s().wav_start)))
    t.add(f"{w}:STOP", stop)
    t.add(f"{w}:STOP?", query(lambda c: str(s().wav_stop)))
    t.add(f"{w}:POINts?", query(lambda c: str(scope.record_points())))
    t.add(f"{w}:PREamble?", query(lambda c: scope.preamble()))
    t.add(f"{w}:DATA?", data)
    for index, name in ((4, "XINCrement"), (5, "XORigin"), (6, "XREFerence"), (7, "YINCrement"),
                        (8, "YORigin"), (9, "YREFerence")):
        preamble_field(index, name)


__all__ = ["RigolDS1000Z"]
