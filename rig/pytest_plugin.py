"""stimrig's pytest plugin (registered through the ``pytest11`` entry point).

Options: ``--target sim|hw``, ``--bench PATH``, ``--fault NAME`` (simulated bench only),
``--results-dir DIR``. Fixtures: ``bench``, ``dut``, ``scope``, ``load``, ``device_model``,
``measure``; tests asking for ``program`` / ``channel`` are parametrized over the programs in
the fixtures and the device's channels. Markers ``sim_only`` / ``hw_only`` skip with a reason.

Fail-safe rules enforced here:
- every fixture file is validated before the first test; a bad one stops the run with one line;
- a test that takes measurements fails if any is out of limits, and a test that asks for
  ``measure`` but records nothing fails too (it proved nothing);
- every output is stopped after each test, at the end of the session, and on Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from rig.bench.session import RigBench
from rig.config.loader import FIXTURES_DIR
from rig.config.requirements import RequirementCatalogue, load_requirements, trace, unknown_requirement_message
from rig.errors import FixtureError
from rig.measurements import MeasuredValue, Measurement, MeasurementSet, Verdict
from rig.records.audit import AuditTrail, fixtures_digest, operator_name, run_context
from rig.results import SIMULATED_MARK, ResultsLog, new_run_id

DEFAULT_SIM_BENCH = FIXTURES_DIR / "benches" / "sim.yaml"
log = logging.getLogger(__name__)
BENCH_FIXTURES = frozenset({"bench", "dut", "scope", "load", "radio", "bystander"})


@dataclass
class StimrigState:
    bench_path: Path
    target: str | None
    fault: str | None
    programs_dir: Path | None
    results_root: Path
    transport: str | None = None
    rig: RigBench | None = None
    run_id: str = field(default_factory=new_run_id)
    log: ResultsLog | None = None
    counts: dict[str, int] = field(default_factory=dict)
    catalogue: RequirementCatalogue | None = None
    operator: str | None = None
    identities_logged: set[str] = field(default_factory=set)
    link_events_written: int = 0  # how many of rig.link_events are in the records
    stopped_before_start: bool = False

    def requirements(self) -> RequirementCatalogue:
        """The requirement catalogue, validated once (FixtureError naming the file and field)."""
        if self.catalogue is None:
            self.catalogue = load_requirements()
        return self.catalogue

    def load(self) -> RigBench:
        """Validate every fixture the run needs (bench, device, programs, fault) exactly once."""
        if self.rig is None:
            rig = RigBench.from_files(self.bench_path, programs_dir=self.programs_dir, fault=self.fault,
                                      transport=self.transport)
            if self.target is not None and rig.config.target != self.target:
                raise FixtureError(
                    f"{self.bench_path}: field 'target' is {rig.config.target!r} but --target {self.target} "
                    "was given (expected the bench file to match the requested target)"
                )
            self.rig = rig
        return self.rig

    def results(self) -> ResultsLog:
        if self.log is None:
            rig = self.load()
            self.log = ResultsLog(self.results_root / self.run_id, simulated=rig.simulated)
            context = run_context(operator=operator_name(self.operator), fixtures=rig.fixture_files())
            cal = rig.config.scope_calibration
            self.log.write(
                "run_start", run_id=self.run_id, **rig.describe(), **context,
                scope_accuracy=rig.config.scope_accuracy.model_dump(),
                scope_calibration={"certificate": cal.certificate, "calibrated_on": str(cal.calibrated_on),
                                   "due_on": str(cal.due_on), "overdue": rig.calibration_overdue},
            )
            AuditTrail(self.results_root).append(
                "run_start", run_id=self.run_id, operator=context["operator"], host=context["host"],
                command=context["command"], bench=rig.config.name, bench_file=context["fixtures"]["bench"],
                target=rig.config.target, simulated=rig.simulated, fault=rig.fault,
                fixtures_sha256=fixtures_digest(context["fixtures"]), git=context["git"],
            )
        return self.log


STATE_KEY = pytest.StashKey[StimrigState]()
MEASURE_KEY = pytest.StashKey[MeasurementSet]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stimrig", "stimrig bench selection")
    group.addoption("--target", choices=("sim", "hw"), default=None, help="run against the simulated or a real bench")
    group.addoption("--bench", default=None, help=f"bench YAML (default for sim: {DEFAULT_SIM_BENCH})")
    group.addoption("--fault", default=None, help="inject a catalogued firmware defect (simulated bench only)")
    group.addoption("--transport", choices=("serial", "ble"), default=None,
                    help="how the rig reaches the DUT: serial (its port or the controller bridge's) or ble "
                         "(its GATT service, with bleak); default: the bench file's dut.transport")
    group.addoption("--programs-dir", default=None, help="directory of program fixtures (default fixtures/programs)")
    group.addoption("--results-dir", default="results", help="where run directories are created")
    group.addoption("--stimrig-run-id", default=None, help="name of the run directory (default: UTC time + random)")
    group.addoption("--operator", default=None,
                    help="who runs it, for the audit trail (default: $STIMRIG_OPERATOR, else the login name)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim_only(reason): runs only on a simulated bench")
    config.addinivalue_line("markers", "hw_only(reason): runs only on a real bench")
    config.addinivalue_line(
        "markers", "requirement(*ids): the requirement(s) of fixtures/requirements.yaml this test verifies"
    )
    target = config.getoption("target")
    bench = config.getoption("bench")
    if bench is None:
        if target == "hw":
            raise pytest.UsageError("--target hw needs --bench FILE naming the real bench's YAML")
        bench_path = DEFAULT_SIM_BENCH
    else:
        bench_path = Path(bench)
    programs_dir = config.getoption("programs_dir")
    state = StimrigState(
        bench_path=bench_path,
        target=target,
        fault=config.getoption("fault"),
        transport=config.getoption("transport"),
        programs_dir=Path(programs_dir) if programs_dir else None,
        results_root=Path(config.getoption("results_dir")),
    )
    if config.getoption("stimrig_run_id"):
        state.run_id = config.getoption("stimrig_run_id")
    state.operator = config.getoption("operator")
    config.stash[STATE_KEY] = state
    if target is not None or bench is not None or state.fault is not None or state.transport is not None:
        # Explicit bench selection: validate now, before collection and before any output.
        try:
            state.load()
        except FixtureError as exc:
            raise pytest.UsageError(str(exc)) from None


def _state(config: pytest.Config) -> StimrigState:
    return config.stash[STATE_KEY]


def _loaded(config: pytest.Config) -> RigBench:
    try:
        return _state(config).load()
    except FixtureError as exc:
        pytest.exit(f"stimrig: {exc}", returncode=4)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "program" in names:
        rig = _loaded(metafunc.config)
        metafunc.parametrize("program", rig.programs, ids=[p.id for p in rig.programs], scope="function")
    if "channel" in names:
        rig = _loaded(metafunc.config)
        chans = list(range(1, rig.device.channels + 1))
        metafunc.parametrize("channel", chans, ids=[f"ch{c}" for c in chans], scope="function")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wants_bench = [i for i in items if BENCH_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if not wants_bench:
        return
    rig = _loaded(config)  # validate before any test runs, and so before any output is switched on
    state = _state(config)
    try:
        catalogue = state.requirements()
    except FixtureError as exc:
        _stop_before_start(state, f"stimrig: {exc}")
    traced = trace(catalogue, {i.nodeid: requirement_ids(i) for i in wants_bench})
    if traced.unknown:  # stops the run before it starts
        _stop_before_start(state, f"stimrig: {unknown_requirement_message(traced)}")
    problem = rig.ble_adapter_problem()  # e.g. --transport ble on a machine without a Bluetooth stack
    if problem is not None:
        _stop_before_start(state, f"stimrig: {problem}")
    for item in wants_bench:
        for marker, needed in (("sim_only", True), ("hw_only", False)):
            m = item.get_closest_marker(marker)
            if m is not None and rig.simulated != needed:
                reason = m.args[0] if m.args else m.kwargs.get("reason", "")
                where = "a simulated" if needed else "a real (hw)"
                item.add_marker(pytest.mark.skip(reason=f"needs {where} bench{': ' + reason if reason else ''}"))


def _stop_before_start(state: StimrigState, message: str) -> NoReturn:
    """Stop the session before any test (and so before any output), writing nothing: the message on
    stderr too, since `stimrig certify` runs pytest without its terminal reporter."""
    state.stopped_before_start = True
    sys.stderr.write(message + "\n")
    pytest.exit(message, returncode=4)


def requirement_ids(item: pytest.Item) -> list[str]:
    """The requirement IDs the test's ``requirement`` marker(s) name, in order."""
    ids: list[str] = []
    for marker in item.iter_markers("requirement"):
        ids.extend(str(a) for a in marker.args if str(a) not in ids)
    return ids


def pytest_collection_finish(session: pytest.Session) -> None:
    """Record which requirements the tests about to run verify, and which they leave uncovered."""
    state = session.config.stash.get(STATE_KEY, None)
    items = [i for i in session.items if BENCH_FIXTURES & set(getattr(i, "fixturenames", ()))]
    if state is None or not items or state.catalogue is None or state.stopped_before_start:
        return
    catalogue = state.catalogue
    traced = trace(catalogue, {i.nodeid: requirement_ids(i) for i in items})
    state.results().write(
        "traceability", catalogue=str(catalogue.path), catalogue_sha256=catalogue.sha256,
        tests={i.nodeid: requirement_ids(i) for i in items},
        verified_by={rid: list(tests) for rid, tests in traced.verified_by.items()},
        uncovered=list(traced.uncovered), untraced_tests=list(traced.untraced_tests), complete=traced.complete,
    )


# ---- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Iterator[RigBench]:
    state = _state(request.config)
    rig = _loaded(request.config)
    rig.start()
    state.results()
    try:
        yield rig
    finally:
        rig.close()


@pytest.fixture
def dut(bench: RigBench) -> Iterator[Any]:
    """The DUT link; every output is stopped when the test ends, however it ends."""
    link = bench.dut
    try:
        yield link
    finally:
        bench.outputs_off()


@pytest.fixture
def radio(bench: RigBench, dut: Any) -> Iterator[Any]:
    """The controller-to-DUT radio path (set_distance_m); the patient is back at the bench's default
    distance when the test ends, before its outputs are stopped over that link."""
    channel = bench.radio
    try:
        yield channel
    finally:
        try:
            bench.reset_radio()
        except Exception as exc:  # must not mask the test's own failure; outputs_off still runs
            log.error("could not put the radio back at the default distance: %s", exc)


@pytest.fixture
def bystander(bench: RigBench, dut: Any) -> Iterator[Any]:
    """A second stimulator beside the DUT on the same controller (bench section 'bystander'); its
    outputs are stopped and its link closed when the test ends, however it ends."""
    link = bench.bystander
    try:
        yield link
    finally:
        bench.close_bystander()


@pytest.fixture
def scope(bench: RigBench) -> Any:
    return bench.scope


@pytest.fixture
def load(bench: RigBench) -> Any:
    return bench.load


@pytest.fixture
def device_model(bench: RigBench) -> Any:
    return bench.device


class Recorder:
    """``measure(Measurement(...), value, **context)``: records (and logs at once) one measured value."""

    def __init__(self, item: pytest.Item, state: StimrigState, mset: MeasurementSet) -> None:
        self.item = item
        self.state = state
        self.mset = mset

    def __call__(self, measurement: Measurement, value: float, **context: Any) -> MeasuredValue:
        from rig.uncertainty import expanded_uncertainty

        rig = self.state.load()
        uncertainty = expanded_uncertainty(measurement.unit, float(value), rig.config.scope_accuracy)
        mv = self.mset.take(measurement, value, uncertainty, **context)
        if rig.calibration_overdue:
            mv.context["non_conforming"] = (f"scope calibration overdue since {rig.config.scope_calibration.due_on}: "
                                            "this result is not conforming evidence")
        requirements = [measurement.requirement] if measurement.requirement else requirement_ids(self.item)
        self.state.results().write("measurement", test=self.item.nodeid, requirements=requirements, **mv.record())
        import allure

        with allure.step(f"{mv.describe()} [{', '.join(requirements)}]"):
            pass
        return mv

    def require(self, measurement: Measurement, value: float, **context: Any) -> MeasuredValue:
        """Record a measurement the rest of the test depends on; if it fails, the test FAILs here (the
        steps after it would measure nothing, e.g. wait for a trigger from an output that is off)."""
        mv = self(measurement, value, **context)
        if mv.verdict is Verdict.FAIL:
            details = ", ".join(f"{k}={v}" for k, v in context.items())
            pytest.fail(f"{mv.describe()} ({details}); the test stops here", pytrace=False)
        return mv

    def table_row(self, table: str, **row: Any) -> None:
        """Record one row of a table of the run's evidence (e.g. the output specification table)."""
        self.state.results().write("table_row", test=self.item.nodeid, table=table, row=row)

    @property
    def log(self) -> ResultsLog:
        """The run's results log (evidence files are saved through it: ``CaptureEvidence.save(log)``)."""
        return self.state.results()

    @property
    def results_dir(self) -> Path:
        return self.state.results().directory

    @property
    def simulated(self) -> bool:
        return self.state.results().simulated


@pytest.fixture
def measure(request: pytest.FixtureRequest, bench: RigBench) -> Recorder:
    mset = MeasurementSet()
    request.node.stash[MEASURE_KEY] = mset
    return Recorder(request.node, _state(request.config), mset)


# ---- verdicts and records -------------------------------------------------------------------------
def _record_link_events(state: StimrigState, nodeid: str) -> None:
    """Write the link events (dropouts, reconnections) not yet in the records, under ``nodeid``."""
    if state.rig is None or state.log is None:
        return
    for event in state.rig.link_events[state.link_events_written:]:
        state.results().write("link_event", test=nodeid, event=event)
    state.link_events_written = len(state.rig.link_events)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Link events of the teardown (the patient walked back, the link re-established) are recorded too."""
    result = yield
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None:
        _record_link_events(state, item.nodeid)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    state = item.config.stash.get(STATE_KEY, None)
    if state is not None and state.rig is not None and BENCH_FIXTURES & set(getattr(item, "fixturenames", ())):
        import allure

        rig = state.rig
        allure.dynamic.label("target", rig.config.target)
        allure.dynamic.label("seed", str(rig.seed))
        if rig.simulated:
            allure.dynamic.tag(SIMULATED_MARK)
            allure.dynamic.label("simulated", "true")
        _allure_requirements(item, state)
    link_errors_before = len(state.rig.link_errors) if state is not None and state.rig is not None else 0
    result = yield
    if state is not None and state.rig is not None:
        for role, identity in state.rig.identities.items():
            if role not in state.identities_logged:
                state.identities_logged.add(role)
                state.results().write("instrument", role=role, **identity)
        _record_link_events(state, item.nodeid)
    if state is not None and state.rig is not None and len(state.rig.link_errors) > link_errors_before:
        lost = state.rig.link_errors[link_errors_before:]
        raise AssertionError(
            f"the controller heartbeat failed {len(lost)} time(s) during the test, so the DUT may have "
            f"cut its output for a reason the test did not cause: {lost[0]}"
        )
    mset = item.stash.get(MEASURE_KEY, None)
    if mset is not None:
        if mset.values:
            import allure

            table = "\n".join(v.describe() for v in mset.values)
            allure.attach(table, name="measurements", attachment_type=allure.attachment_type.TEXT)
        if mset.marginal:
            import allure

            allure.dynamic.label("verdict", "MARGINAL")
            allure.dynamic.tag("MARGINAL")
        failures = mset.failures
        if failures:
            lines = "\n".join("  " + f.describe() for f in failures)
            raise AssertionError(f"{len(failures)} measurement(s) out of limits:\n{lines}")
        if not mset.values:
            raise AssertionError("the test recorded no measurement, so it proved nothing (a PASS needs one)")
    return result


def _allure_requirements(item: pytest.Item, state: StimrigState) -> None:
    """Requirement links, feature / story labels and severity from the requirement catalogue."""
    import allure

    if state.catalogue is None:
        return
    severities: list[str] = []
    for rid in requirement_ids(item):
        req = state.catalogue.get(rid)
        if req is None:
            continue
        allure.dynamic.link(f"{REQUIREMENTS_LINK}#{rid}", link_type="requirement", name=f"{rid}: {req.title}")
        allure.dynamic.label("requirement", rid)
        allure.dynamic.feature(req.feature)
        allure.dynamic.story(f"{rid}: {req.title}")
        severities.append(req.severity)
    if severities:
        allure.dynamic.severity(allure.severity_level(min(severities, key=SEVERITY_ORDER.index)))


REQUIREMENTS_LINK = "fixtures/requirements.yaml"
SEVERITY_ORDER = ["blocker", "critical", "normal", "minor", "trivial"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call" and report.failed and call.excinfo is not None \
            and not call.excinfo.errisinstance((AssertionError, pytest.fail.Exception)):
        # the rig could not measure (an instrument, the DUT link, a fixture): ERROR, not a device FAIL
        report.user_properties.append(RIG_ERROR)
    state = item.config.stash.get(STATE_KEY, None)
    if state is None or state.log is None:
        return report
    if report.when == "call" or report.outcome != "passed":
        outcome = call_outcome(report) if report.when == "call" else ("error" if report.failed else report.outcome)
        state.counts[outcome] = state.counts.get(outcome, 0) + 1
        message = "" if report.passed else str(report.longrepr.reprcrash.message) if hasattr(
            report.longrepr, "reprcrash"
        ) and report.longrepr.reprcrash else str(report.longrepr)[-2000:]
        mset = item.stash.get(MEASURE_KEY, None)
        marginal = [m.describe() for m in mset.marginal] if mset is not None else []
        if outcome == "passed" and marginal:
            state.counts["marginal"] = state.counts.get("marginal", 0) + 1
            report.user_properties.append(("stimrig_verdict", "MARGINAL"))
        state.log.write(
            "test_result",
            test=item.nodeid,
            phase=report.when,
            outcome=outcome,
            verdict=evidence_verdict(outcome, marginal),
            marginal=marginal,
            requirements=requirement_ids(item),
            duration_s=round(report.duration, 4),
            message=message,
        )
    return report


RIG_ERROR = ("stimrig_outcome", "error")


def call_outcome(report: pytest.TestReport) -> str:
    """passed / failed (an assertion: a measurement out of limits) / error (the rig could not measure)."""
    return "error" if RIG_ERROR in report.user_properties else report.outcome


def evidence_verdict(outcome: str, marginal: list[str]) -> str:
    """The evidence verdict of a test: PASS, MARGINAL (passed, a measurement within U of a limit),
    FAIL, ERROR or SKIPPED."""
    if outcome == "passed":
        return "MARGINAL" if marginal else "PASS"
    return {"failed": "FAIL", "error": "ERROR", "skipped": "SKIPPED"}.get(outcome, outcome.upper())


@pytest.hookimpl(trylast=True)  # after allure-pytest has written its last result files
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    bench_time_s = None
    outputs_after_stop: dict[int, float] | None = None
    if state.rig is not None:
        state.rig.close()  # idempotent: also covers Ctrl-C, where fixtures may not have torn down
        if state.rig.virtual is not None:
            bench_time_s = state.rig.virtual.clock.now()
            outputs_after_stop = state.rig.virtual.output_amplitudes_mA()
    if state.log is not None:
        _record_link_events(state, "session teardown")
        state.log.write(
            "run_end", exit_status=int(exitstatus), counts=state.counts, bench_time_s=bench_time_s,
            outputs_after_stop_mA=outputs_after_stop,
        )
        from rig.records.finalize import finalize_bundle

        status = finalize_bundle(state.log, state.run_id, exitstatus=int(exitstatus), catalogue=state.catalogue)
        AuditTrail(state.results_root).append("run_end", run_id=state.run_id, status=status, counts=state.counts,
                                              exit_status=int(exitstatus))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.log is None or state.rig is None:
        return
    rig = state.rig
    mark = SIMULATED_MARK if rig.simulated else "HARDWARE"
    terminalreporter.section("stimrig")
    terminalreporter.write_line(f"bench: {rig.config.name} [{mark}]")
    terminalreporter.write_line(f"seed: {rig.seed}" + (f"   fault: {rig.fault}" if rig.fault else ""))
    terminalreporter.write_line(f"DUT transport: {rig.transport}")
    terminalreporter.write_line(f"results: {state.log.directory}")
