"""Emulated Keysight InfiniiVision 3000T X-Series scope (DSOX3034T): settings, acquisitions, SCPI.

Create one :class:`KeysightInfiniiVision` per bench and serve it with
``ScpiSocketServer(scope.session, port=...)``. All connections share the one instrument; every
program message runs under the instrument's lock.

Time is the bench's: an acquisition (:DIGitize, :SINGle, or a :WAVeform:DATA? while running) fills
its pre-trigger part, then advances the bench chunk by chunk until the trigger source crosses the
level with the slope, then advances to the end of the record and renders every channel it acquires
(see :mod:`simulator.instruments.render`). With NORMal sweep and no trigger within
``search_horizon_s`` the acquisition stays armed: :TER? reads 0, an *OPC? after :DIGitize is never
answered, and later messages keep being served (each one first looks for the trigger in whatever
bench time has elapsed meanwhile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from simulator.instruments import render
from simulator.instruments.host import ScopeHost
from simulator.instruments.ieee488 import EmulatedInstrument, InstrumentSession, no_args, query, status_commands
from simulator.instruments.render import EdgeTrigger, FrontEnd, RecordGeometry
from simulator.instruments.scope_model import ScopeModel, load_scope_model
from simulator.instruments.scpi import ESR_OPC as _ESR_OPC
from simulator.instruments.scpi import (
    Call,
    CommandTree,
    ScpiError,
    ScpiExecutor,
    Unanswerable,
    matches,
    nr1,
    nr3,
    parse_bool,
    parse_choice,
    parse_int,
    parse_number,
    split_spec,
)

OPER_RUN, OPER_WAIT_TRIG = 0x08, 0x20
_MAX_TRANSFER_POINTS = 8_000_000  # the largest value the :WAVeform:POINts syntax lists


def _short(spec: str) -> str:
    return split_spec(spec)[0]


@dataclass
class ChannelState:
    display: bool
    scale_V_per_div: float
    offset_V: float = 0.0
    probe: float = 1.0
    coupling: Literal["DC", "AC"] = "DC"
    bw_limit: bool = False

    def front_end(self) -> FrontEnd:
        return FrontEnd(self.scale_V_per_div, self.offset_V, self.probe, self.bw_limit, self.coupling == "AC")


@dataclass
class Settings:
    """Everything *RST restores."""

    channels: dict[int, ChannelState]
    time_scale_s_per_div: float
    time_position_s: float = 0.0
    time_reference: render.Reference = "CENTer"
    sweep: Literal["AUTO", "NORMal"] = "AUTO"
    trigger_source: int = 1
    trigger_level_V: float = 0.0
    trigger_slope: render.Slope = "POSitive"
    wav_source: int = 1
    wav_format: render.WaveFormat = "BYTE"
    wav_points: int = 1000
    wav_points_mode: render.PointsMode = "NORMal"
    wav_unsigned: bool = True
    wav_msb_first: bool = True

    @classmethod
    def default(cls, model: ScopeModel) -> Settings:
        d = model.defaults
        channels = {
            n: ChannelState(display=(n == 1), scale_V_per_div=d.scale_V_per_div, probe=d.probe_attenuation)
            for n in range(1, model.vertical.channels + 1)
        }
        return cls(
            channels=channels,
            time_scale_s_per_div=d.time_scale_s_per_div,
            sweep=d.sweep,
            wav_format=d.waveform_format,
            wav_points=d.transfer_points,
            wav_points_mode=d.points_mode,
            wav_unsigned=d.unsigned,
            wav_msb_first=d.msb_first,
        )

    def displayed(self) -> frozenset[int]:
        return frozenset(n for n, c in self.channels.items() if c.display)


@dataclass(frozen=True)
class Plan:
    """What one acquisition will capture, frozen when it is armed."""

    geometry: RecordGeometry
    front_ends: dict[int, FrontEnd]
    trigger: EdgeTrigger
    sweep: Literal["AUTO", "NORMal"]


@dataclass(frozen=True)
class Acquisition:
    geometry: RecordGeometry
    front_ends: dict[int, FrontEnd]
    codes: dict[int, np.ndarray]
    triggered: bool
    trigger_time_s: float  # bench time of the true crossing (or of the forced trigger)


@dataclass
class Pending:
    kind: Literal["digitize", "single", "run"]
    plan: Plan
    searched_to_s: float
    opc_flag: bool = field(default=False)  # *OPC (command) waits for this acquisition
    auto_deadline_s: float | None = None  # AUTO sweep: acquire untriggered once bench time passes this


class KeysightInfiniiVision(EmulatedInstrument):
    """The instrument: one shared state for every connection.

    ``host`` is the bench (clock, wiring, seeded randomness); ``model`` the fixture
    (default ``fixtures/instruments/keysight_dsox3034t.yaml``); ``serial`` overrides the fixture's.
    ``search_horizon_s`` is how much bench time one NORMal-sweep acquisition waits for a trigger
    before it is left pending; ``search_chunk_s`` how far the bench advances per search step;
    ``trigger_search_step_s`` the coarsest interval at which the trigger source is examined
    (narrower pulses can be missed, as can a real trigger's minimum pulse width).
    """

    def __init__(
        self,
        host: ScopeHost,
        model: ScopeModel | None = None,
        *,
        serial: str | None = None,
        search_horizon_s: float = 10.0,
        search_chunk_s: float = 0.01,
        trigger_search_step_s: float = 0.5e-6,
    ) -> None:
        if search_horizon_s <= 0 or search_chunk_s <= 0 or trigger_search_step_s <= 0:
            raise ValueError("search horizon, chunk and step must be positive")
        super().__init__()  # error queue and status registers
        self.host = host
        self.model = model if model is not None else load_scope_model()
        self.serial = serial or self.model.identity.serial
        self.search_horizon_s = search_horizon_s
        self.search_chunk_s = search_chunk_s
        self.trigger_search_step_s = trigger_search_step_s
        self.settings = Settings.default(self.model)
        self.acquisition: Acquisition | None = None
        self.pending: Pending | None = None
        self.running = True
        self._ter = False
        self._oper_event = 0
        self._noise_rng: np.random.Generator | None = None
        self._trigger_rng: np.random.Generator | None = None
        self._executor = ScpiExecutor(self._build_tree(), self._report)

    # ---------------------------------------------------------------- public entry points

    @property
    def idn(self) -> str:
        i = self.model.identity
        return f"{i.manufacturer},{i.model},{self.serial},{i.firmware}"

    # ---------------------------------------------------------------- status

    def _oper_condition(self) -> int:
        value = 0
        if self.running or self.pending is not None:
            value |= OPER_RUN
        if self.pending is not None:
            value |= OPER_WAIT_TRIG
        return value

    def _set_running(self, running: bool) -> None:
        if running and not self.running:
            self._oper_event |= OPER_RUN
        self.running = running

    def _stb(self) -> int:
        stb = 0x01 if self._ter else 0
        if self._esr & self._ese:
            stb |= 0x20
        if stb & self._sre & ~0x40:
            stb |= 0x40
        return stb

    # ---------------------------------------------------------------- acquisition

    def _rngs(self) -> tuple[np.random.Generator, np.random.Generator]:
        if self._noise_rng is None or self._trigger_rng is None:
            self._noise_rng = self.host.rng("scope.noise")
            self._trigger_rng = self.host.rng("scope.trigger")
        return self._noise_rng, self._trigger_rng

    def _plan(self, channels: frozenset[int]) -> Plan:
        s = self.settings
        geometry = render.compute_geometry(
            self.model, s.time_scale_s_per_div, s.time_reference, s.time_position_s, s.displayed() | channels
        )
        src = s.trigger_source
        gain = s.channels[src].probe / self._physical_attenuation(src)
        trigger = EdgeTrigger(src, s.trigger_level_V, s.trigger_slope, gain)
        front_ends = {n: s.channels[n].front_end() for n in sorted(channels)}
        return Plan(geometry, front_ends, trigger, s.sweep)

    def _physical_attenuation(self, channel: int) -> float:
        value = float(self.host.probe_attenuation(channel))
        return value if value > 0 and math.isfinite(value) else 1.0

    def _search(self, plan: Plan, start_s: float, stop_s: float) -> tuple[float | None, float]:
        resolution = max(1e-13, plan.geometry.dt_s * 1e-3)
        step = max(self.trigger_search_step_s, plan.geometry.dt_s)
        return render.search_edge(self.host, plan.trigger, start_s, stop_s, step, self.search_chunk_s, resolution)

    def _arm(self, kind: Literal["digitize", "single", "run"], channels: frozenset[int]) -> None:
        """Start an acquisition and run it as far as the search horizon allows."""
        self.pending = None
        plan = self._plan(channels)
        start = self.host.now() + plan.geometry.pre_trigger_s
        wait = self.model.trigger.auto_timeout_s if plan.sweep == "AUTO" else self.search_horizon_s
        if kind == "single":
            # :SINGle arms and returns, as on the real scope: the event it waits for may be caused by
            # the client afterwards, so the trigger is searched for only in bench time that passes
            # later (only the client's waiting moves bench time). :DIGitize is the blocking form.
            auto = start + wait if plan.sweep == "AUTO" else None
            self.pending = Pending(kind, plan, start, auto_deadline_s=auto)
            return
        self.host.advance_to(start)
        crossing, searched_to = self._search(plan, start, start + wait)
        if crossing is not None:
            self._complete(kind, plan, crossing, triggered=True)
        elif plan.sweep == "AUTO":
            self._complete(kind, plan, start + wait, triggered=False)
        else:
            self.pending = Pending(kind, plan, searched_to)

    def _service(self) -> None:
        """An armed acquisition looks for its trigger in the bench time that elapsed meanwhile."""
        p = self.pending
        if p is None:
            return
        now = self.host.now()
        if now <= p.searched_to_s:
            return
        crossing, searched_to = self._search(p.plan, p.searched_to_s, now)
        if crossing is not None:
            self.pending = None
            self._complete(p.kind, p.plan, crossing, triggered=True, opc_flag=p.opc_flag)
        elif p.auto_deadline_s is not None and now >= p.auto_deadline_s:
            self.pending = None
            self._complete(p.kind, p.plan, p.auto_deadline_s, triggered=False, opc_flag=p.opc_flag)
        else:
            p.searched_to_s = searched_to

    def _complete(self, kind: str, plan: Plan, trigger_s: float, *, triggered: bool, opc_flag: bool = False) -> None:
        noise_rng, trigger_rng = self._rngs()
        g = plan.geometry
        jitter = float(trigger_rng.normal(0.0, self.model.trigger.jitter_rms_s)) if triggered else 0.0
        t0 = trigger_s + jitter + g.t_first_s
        self.host.advance_to(t0 + (g.n_points - 1) * g.dt_s)
        codes = {
            n: render.digitize(
                self.host.signal(n),
                self._physical_attenuation(n),
                t0,
                g.dt_s,
                g.n_points,
                fe,
                self.model,
                noise_rng,
            )
            for n, fe in plan.front_ends.items()
        }
        self.acquisition = Acquisition(g, plan.front_ends, codes, triggered, trigger_s)
        if triggered:
            self._ter = True
        if kind != "run":
            self._set_running(False)
        if opc_flag:
            self._esr |= _ESR_OPC

    def _acquire_if_running(self) -> None:
        """While running, a data query returns a fresh acquisition of the displayed channels."""
        if self.running and self.pending is None:
            self._arm("run", self.settings.displayed())

    # ---------------------------------------------------------------- waveform records

    def _record(self, *, acquired: bool = False) -> tuple[RecordGeometry, FrontEnd, np.ndarray | None]:
        """The record :WAVeform describes. Stopped (or armed): the last acquisition. Running: the
        acquisition the next :WAVeform:DATA? takes with the present settings, so that a preamble read
        before the data scales it correctly even after a settings change."""
        s = self.settings
        a = self.acquisition
        live = self.running and self.pending is None and not acquired
        if a is not None and s.wav_source in a.codes and not live:
            return a.geometry, a.front_ends[s.wav_source], a.codes[s.wav_source]
        plan = self._plan(frozenset())
        return plan.geometry, s.channels[s.wav_source].front_end(), None

    def _transfer(self, *, acquired: bool = False) -> tuple[int, int, RecordGeometry, FrontEnd, np.ndarray | None]:
        """(step, points, geometry, front end, codes or None) for the current :WAVeform settings."""
        s = self.settings
        geometry, fe, codes = self._record(acquired=acquired)
        n_raw = codes.size if codes is not None else (geometry.n_points if s.channels[s.wav_source].display else 0)
        step = render.transfer_step(
            n_raw, s.wav_points_mode, s.wav_points, self.model.acquisition.measurement_record_max_pts
        )
        return step, math.ceil(n_raw / step) if n_raw else 0, geometry, fe, codes

    def _preamble(self) -> str:
        s = self.settings
        step, points, geometry, fe, _ = self._transfer()
        y = render.y_scaling(self.model, fe, s.wav_format, s.wav_unsigned)
        fields = [
            nr1(render.PREAMBLE_FORMAT_CODE[s.wav_format]),
            nr1(0),
            nr1(points),
            nr1(1),
            nr3(step * geometry.dt_s),
            nr3(geometry.t_first_s),
            nr1(0),
            nr3(y.y_increment),
            nr3(y.y_origin),
            nr1(y.y_reference),
        ]
        return ",".join(fields)

    def _data(self) -> bytes:
        s = self.settings
        step, _points, _geometry, fe, codes = self._transfer(acquired=True)
        if codes is None:
            raise _NoData()
        return render.encode_values(codes[::step], self.model, fe, s.wav_format, s.wav_unsigned, s.wav_msb_first)

    # ---------------------------------------------------------------- command tree

    def _build_tree(self) -> CommandTree:
        t = CommandTree()
        _common_commands(self, t)
        _root_commands(self, t)
        _channel_commands(self, t)
        _timebase_trigger_commands(self, t)
        _waveform_commands(self, t)
        return t

    def reset(self) -> None:
        """*RST: Default Setup; the error queue and status registers are left alone (IEEE 488.2)."""
        self.settings = Settings.default(self.model)
        self.pending = None
        self.acquisition = None
        self._set_running(True)


ScopeSession = InstrumentSession  # the name the VXI-11 server and the tests know


class _NoData(ScpiError):
    def __init__(self) -> None:
        super().__init__(-222, "no acquired data for this source")


# ==================================================================================================
# Handlers. Each group registers closures over the instrument.


def _channel_list(args: tuple[str, ...], channels: int) -> frozenset[int]:
    out = set()
    for a in args:
        t = a.strip().upper()
        alpha = t.rstrip("0123456789")
        digits = t[len(alpha) :]
        if not matches(alpha, "CHANnel"):
            raise ScpiError(-224 if alpha.isalpha() else -104)
        n = int(digits) if digits and len(digits) < 4 else (1 if not digits else 0)
        if not 1 <= n <= channels:
            raise ScpiError(-224)
        out.add(n)
    return frozenset(out)


def _common_commands(scope: KeysightInfiniiVision, t: CommandTree) -> None:
    def idn(c: Call) -> str:
        no_args(c)
        return scope.idn

    def rst(c: Call) -> None:
        no_args(c)
        scope.reset()

    def cls(c: Call) -> None:
        no_args(c)
        scope.errors.clear()
        scope._esr = 0
        scope._ter = False
        scope._oper_event = 0
        if scope.pending is not None:
            scope.pending.opc_flag = False

    def opc(c: Call) -> None:
        no_args(c)
        if scope.pending is not None and scope.pending.kind == "digitize":
            scope.pending.opc_flag = True
        else:
            scope._esr |= _ESR_OPC

    def opc_q(c: Call) -> str:
        no_args(c)
        if scope.pending is not None and scope.pending.kind == "digitize":
            raise Unanswerable()
        return "1"

    def wai(c: Call) -> None:
        no_args(c)
        if scope.pending is not None and scope.pending.kind == "digitize":
            raise Unanswerable()

    t.add("*IDN?", idn)
    t.add("*RST", rst)
    t.add("*CLS", cls)
    t.add("*OPC", opc)
    t.add("*OPC?", opc_q)
    t.add("*WAI", wai)
    t.add("*OPT?", query(lambda c: "0"))
    status_commands(scope, t, integer=nr1)


def _root_commands(scope: KeysightInfiniiVision, t: CommandTree) -> None:
    n_ch = scope.model.vertical.channels

    def run(c: Call) -> None:
        no_args(c)
        scope.pending = None
        scope._set_running(True)

    def stop(c: Call) -> None:
        no_args(c)
        scope.pending = None
        scope._set_running(False)

    def single(c: Call) -> None:
        no_args(c)
        scope._set_running(True)
        scope._arm("single", scope.settings.displayed())

    def digitize(c: Call) -> None:
        channels = _channel_list(tuple(a for a in c.args if a), n_ch) if c.args else scope.settings.displayed()
        for n in channels:
            scope.settings.channels[n].display = True
        scope._set_running(True)
        scope._arm("digitize", channels)

    def ter(c: Call) -> str:
        no_args(c)
        value, scope._ter = scope._ter, False
        return nr1(int(value))

    def oper_event(c: Call) -> str:
        no_args(c)
        value, scope._oper_event = scope._oper_event, 0
        return nr1(value)

    def force(c: Call) -> None:
        no_args(c)
        p = scope.pending
        if p is not None:
            scope.pending = None
            scope._complete(p.kind, p.plan, scope.host.now(), triggered=False, opc_flag=p.opc_flag)

    t.add(":RUN", run)
    t.add(":STOP", stop)
    t.add(":SINGle", single)
    t.add(":DIGitize", digitize)
    t.add(":TER?", ter)
    t.add(":OPERegister:CONDition?", query(lambda c: nr1(scope._oper_condition())))
    t.add(":OPERegister[:EVENt]?", oper_event)
    t.add(":TRIGger:FORCe", force)

    def acq_type(c: Call) -> None:
        c.expect_args(1)
        if parse_choice(c.args[0], ("NORMal", "PEAK", "AVERage", "HRESolution")) != "NORMal":
            raise ScpiError(-224, "only NORMal acquisitions are emulated")

    def srate(c: Call) -> str:
        no_args(c)
        return nr3(scope._plan(frozenset()).geometry.sample_rate_Sa_per_s)

    def acq_points(c: Call) -> str:
        no_args(c)
        a = scope.acquisition
        if a is not None and not scope.running:
            return nr1(a.geometry.n_points)
        return nr1(scope._plan(frozenset()).geometry.n_points)

    t.add(":ACQuire:TYPE", acq_type)
    t.add(":ACQuire:TYPE?", query(lambda c: "NORM"))
    t.add(":ACQuire:SRATe?", srate)
    t.add(":ACQuire:POINts?", acq_points)


def _number_setter(c: Call, unit: str) -> float:
    c.expect_args(1)
    return parse_number(c.args[0], unit=unit)


def _channel_commands(scope: KeysightInfiniiVision, t: CommandTree) -> None:
    n_ch = scope.model.vertical.channels
    v = scope.model.vertical
    prefix = f":CHANnel<1-{n_ch}>"

    def ch(c: Call) -> ChannelState:
        return scope.settings.channels[c.suffixes[0]]

    def set_scale(c: Call, value: float) -> None:
        state = ch(c)
        lo, hi = v.min_scale_V_per_div * state.probe, v.max_scale_V_per_div * state.probe
        if not lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9):
            raise ScpiError(-222)
        state.scale_V_per_div = value

    def scale(c: Call) -> None:
        set_scale(c, _number_setter(c, "V"))

    def range_(c: Call) -> None:
        set_scale(c, _number_setter(c, "V") / v.divisions)

    def offset(c: Call) -> None:
        ch(c).offset_V = _number_setter(c, "V")

    def probe(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip()
        if text[:1].upper() == "X":  # "X10" form
            text = text[1:]
        value = parse_number(text)
        if not v.min_probe_attenuation <= value <= v.max_probe_attenuation:
            raise ScpiError(-222)
        state = ch(c)
        ratio = value / state.probe  # the screen keeps its sensitivity at the BNC
        state.scale_V_per_div *= ratio
        state.offset_V *= ratio
        state.probe = value

    def display(c: Call) -> None:
        c.expect_args(1)
        ch(c).display = parse_bool(c.args[0])

    def coupling(c: Call) -> None:
        c.expect_args(1)
        ch(c).coupling = "AC" if parse_choice(c.args[0], ("AC", "DC")) == "AC" else "DC"

    def bwlimit(c: Call) -> None:
        c.expect_args(1)
        ch(c).bw_limit = parse_bool(c.args[0])

    t.add(prefix + ":SCALe", scale)
    t.add(prefix + ":SCALe?", query(lambda c: nr3(ch(c).scale_V_per_div)))
    t.add(prefix + ":RANGe", range_)
    t.add(prefix + ":RANGe?", query(lambda c: nr3(ch(c).scale_V_per_div * v.divisions)))
    t.add(prefix + ":OFFSet", offset)
    t.add(prefix + ":OFFSet?", query(lambda c: nr3(ch(c).offset_V)))
    t.add(prefix + ":PROBe", probe)
    t.add(prefix + ":PROBe?", query(lambda c: nr3(ch(c).probe)))
    t.add(prefix + ":DISPlay", display)
    t.add(prefix + ":DISPlay?", query(lambda c: str(int(ch(c).display))))
    t.add(prefix + ":COUPling", coupling)
    t.add(prefix + ":COUPling?", query(lambda c: ch(c).coupling))
    t.add(prefix + ":BWLimit", bwlimit)
    t.add(prefix + ":BWLimit?", query(lambda c: str(int(ch(c).bw_limit))))


def _timebase_trigger_commands(scope: KeysightInfiniiVision, t: CommandTree) -> None:
    h = scope.model.horizontal
    n_ch = scope.model.vertical.channels

    def set_time_scale(value: float) -> None:
        if not h.min_scale_s_per_div * (1 - 1e-9) <= value <= h.max_scale_s_per_div * (1 + 1e-9):
            raise ScpiError(-222)
        scope.settings.time_scale_s_per_div = value

    def position(c: Call) -> None:
        scope.settings.time_position_s = _number_setter(c, "S")

    def reference(c: Call) -> None:
        c.expect_args(1)
        choice = parse_choice(c.args[0], ("LEFT", "CENTer", "RIGHt", "CUSTom"))
        if choice == "CUSTom":
            raise ScpiError(-224, "CUSTom reference is not emulated")
        scope.settings.time_reference = choice  # type: ignore[assignment]

    def tb_mode(c: Call) -> None:
        c.expect_args(1)
        if parse_choice(c.args[0], ("MAIN", "WINDow", "XY", "ROLL")) != "MAIN":
            raise ScpiError(-224, "only the MAIN timebase is emulated")

    t.add(":TIMebase:SCALe", lambda c: set_time_scale(_number_setter(c, "S")))
    t.add(":TIMebase:SCALe?", query(lambda c: nr3(scope.settings.time_scale_s_per_div)))
    t.add(":TIMebase:RANGe", lambda c: set_time_scale(_number_setter(c, "S") / h.divisions))
    t.add(":TIMebase:RANGe?", query(lambda c: nr3(scope.settings.time_scale_s_per_div * h.divisions)))
    t.add(":TIMebase:POSition", position)
    t.add(":TIMebase:POSition?", query(lambda c: nr3(scope.settings.time_position_s)))
    t.add(":TIMebase:REFerence", reference)
    t.add(":TIMebase:REFerence?", query(lambda c: _short(scope.settings.time_reference)))
    t.add(":TIMebase:MODE", tb_mode)
    t.add(":TIMebase:MODE?", query(lambda c: "MAIN"))

    def trig_mode(c: Call) -> None:
        c.expect_args(1)
        choice = parse_choice(
            c.args[0],
            (
                "EDGE",
                "GLITch",
                "PATTern",
                "TV",
                "DELay",
                "EBURst",
                "OR",
                "RUNT",
                "SHOLd",
                "TRANsition",
                "SBUS1",
                "SBUS2",
                "USB",
                "NFC",
            ),
        )
        if choice != "EDGE":
            raise ScpiError(-224, "only the EDGE trigger is emulated")

    def sweep(c: Call) -> None:
        c.expect_args(1)
        scope.settings.sweep = parse_choice(c.args[0], ("AUTO", "NORMal"))  # type: ignore[assignment]

    def source(c: Call) -> None:
        c.expect_args(1)
        scope.settings.trigger_source = next(iter(_channel_list(c.args[:1], n_ch)))

    def level(c: Call) -> None:
        c.expect_args(1, 2)
        value = parse_number(c.args[0], unit="V")
        if len(c.args) == 2:
            scope.settings.trigger_source = next(iter(_channel_list(c.args[1:], n_ch)))
        scope.settings.trigger_level_V = value

    def slope(c: Call) -> None:
        c.expect_args(1)
        scope.settings.trigger_slope = parse_choice(  # type: ignore[assignment]
            c.args[0], ("POSitive", "NEGative", "EITHer", "ALTernate")
        )

    t.add(":TRIGger:MODE", trig_mode)
    t.add(":TRIGger:MODE?", query(lambda c: "EDGE"))
    t.add(":TRIGger:SWEep", sweep)
    t.add(":TRIGger:SWEep?", query(lambda c: _short(scope.settings.sweep)))
    t.add(":TRIGger[:EDGE]:SOURce", source)
    t.add(":TRIGger[:EDGE]:SOURce?", query(lambda c: f"CHAN{scope.settings.trigger_source}"))
    t.add(":TRIGger[:EDGE]:LEVel", level)

    def level_q(c: Call) -> str:
        c.expect_args(0, 1)  # an optional source, as in the guide's :TRIGger:LEVel? [<source>]
        return nr3(scope.settings.trigger_level_V)

    t.add(":TRIGger[:EDGE]:LEVel?", level_q)
    t.add(":TRIGger[:EDGE]:SLOPe", slope)
    t.add(":TRIGger[:EDGE]:SLOPe?", query(lambda c: _short(scope.settings.trigger_slope)))


def _waveform_commands(scope: KeysightInfiniiVision, t: CommandTree) -> None:
    n_ch = scope.model.vertical.channels
    w = ":WAVeform"

    def source(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip().upper()
        if any(matches(text.rstrip("0123456789"), s) for s in ("FUNCtion", "MATH", "FFT", "WMEMory", "SBUS")):
            raise ScpiError(-224, "only analog channel sources are emulated")
        n = next(iter(_channel_list(c.args[:1], n_ch)))
        scope.settings.wav_source = n
        scope.settings.channels[n].display = True  # selecting a source turns the channel on

    def fmt(c: Call) -> None:
        c.expect_args(1)
        scope.settings.wav_format = parse_choice(c.args[0], ("BYTE", "WORD", "ASCii"))  # type: ignore[assignment]

    def points(c: Call) -> None:
        c.expect_args(1)
        text = c.args[0].strip()
        if text[:1].isalpha():
            mode = parse_choice(text, ("NORMal", "MAXimum", "RAW"))
            scope.settings.wav_points_mode = mode  # type: ignore[assignment]
            scope.settings.wav_points = _MAX_TRANSFER_POINTS
            return
        value = parse_int(text)
        if value < scope.model.acquisition.min_transfer_pts:
            raise ScpiError(-222)
        scope.settings.wav_points = min(value, _MAX_TRANSFER_POINTS)

    def points_q(c: Call) -> str:
        c.expect_args(0, 1)
        if c.args:
            parse_choice(c.args[0], ("MAXimum",))
            saved = (scope.settings.wav_points_mode, scope.settings.wav_points)
            scope.settings.wav_points_mode, scope.settings.wav_points = "MAXimum", _MAX_TRANSFER_POINTS
            try:
                return nr1(scope._transfer()[1])
            finally:
                scope.settings.wav_points_mode, scope.settings.wav_points = saved
        return nr1(scope._transfer()[1])

    def points_mode(c: Call) -> None:
        c.expect_args(1)
        scope.settings.wav_points_mode = parse_choice(  # type: ignore[assignment]
            c.args[0], ("NORMal", "MAXimum", "RAW")
        )

    def unsigned(c: Call) -> None:
        c.expect_args(1)
        scope.settings.wav_unsigned = parse_bool(c.args[0])

    def byteorder(c: Call) -> None:
        c.expect_args(1)
        scope.settings.wav_msb_first = parse_choice(c.args[0], ("LSBFirst", "MSBFirst")) == "MSBFirst"

    def data(c: Call) -> bytes:
        no_args(c)
        scope._acquire_if_running()
        try:
            return scope._data()
        except _NoData:
            scope._report(-222)
            return render.encode_values(
                np.zeros(0, dtype=np.uint8), scope.model, scope._record()[1], "BYTE", True, True
            )

    def preamble_field(index: int, kind: str) -> None:
        def query(c: Call) -> str:
            no_args(c)
            return scope._preamble().split(",")[index]

        t.add(f"{w}:{kind}?", query)

    t.add(f"{w}:SOURce", source)
    t.add(f"{w}:SOURce?", query(lambda c: f"CHAN{scope.settings.wav_source}"))
    t.add(f"{w}:FORMat", fmt)
    t.add(f"{w}:FORMat?", query(lambda c: _short(scope.settings.wav_format)))
    t.add(f"{w}:POINts", points)
    t.add(f"{w}:POINts?", points_q)
    t.add(f"{w}:POINts:MODE", points_mode)
    t.add(f"{w}:POINts:MODE?", query(lambda c: _short(scope.settings.wav_points_mode)))
    t.add(f"{w}:UNSigned", unsigned)
    t.add(f"{w}:UNSigned?", query(lambda c: str(int(scope.settings.wav_unsigned))))
    t.add(f"{w}:BYTeorder", byteorder)
    t.add(f"{w}:BYTeorder?", query(lambda c: "MSBF" if scope.settings.wav_msb_first else "LSBF"))
    t.add(f"{w}:PREamble?", query(lambda c: scope._preamble()))
    t.add(f"{w}:DATA?", data)
    t.add(f"{w}:COUNt?", query(lambda c: nr1(1)))
    t.add(f"{w}:TYPE?", query(lambda c: "NORM"))
    for index, kind in (
        (4, "XINCrement"),
        (5, "XORigin"),
        (6, "XREFerence"),
        (7, "YINCrement"),
        (8, "YORigin"),
        (9, "YREFerence"),
    ):
        preamble_field(index, kind)


__all__ = ["KeysightInfiniiVision", "ScopeSession"]
