"""The pytest plugin: fixture validation, target selection, markers, verdicts, records, safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rig.config.loader import FIXTURES_DIR

SIM_BENCH = FIXTURES_DIR / "benches" / "sim.yaml"


def _copy_bench(tmp: Path, text_edit: tuple[str, str] | None = None) -> Path:
    """A copy of the simulated bench (and the fixtures it points at) that a test may break."""
    fixtures = tmp / "fixtures"
    shutil.copytree(FIXTURES_DIR, fixtures)
    bench = fixtures / "benches" / "sim.yaml"
    if text_edit:
        text = bench.read_text()
        assert text_edit[0] in text
        bench.write_text(text.replace(*text_edit))
    return bench


def test_invalid_bench_stops_run_with_one_line(pytester: pytest.Pytester) -> None:
    bench = _copy_bench(pytester.path, ("amplitude_ceiling_mA: 110", "amplitude_ceiling_mA: -3"))
    pytester.makepyfile("def test_x(dut):\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_subprocess("--bench", str(bench))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if "amplitude_ceiling_mA" in line]
    assert len(errors) == 1, result.stderr.str()
    assert str(bench) in errors[0] and "greater than 0" in errors[0]
    assert "must not run" not in result.stdout.str()


def test_missing_device_fixture_named(pytester: pytest.Pytester) -> None:
    bench = _copy_bench(pytester.path, ("device: ../devices/cs4.yaml", "device: ../devices/nope.yaml"))
    pytester.makepyfile("def test_x(dut):\n    pass\n")
    result = pytester.runpytest_subprocess("--bench", str(bench))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "field 'device'" in result.stderr.str() and "nope.yaml" in result.stderr.str()


def test_hw_target_needs_bench(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--target", "hw")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--target hw needs --bench" in result.stderr.str()


def test_target_must_match_bench(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--target", "hw", "--bench", str(SIM_BENCH))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "field 'target' is 'sim'" in result.stderr.str()


def test_unknown_fault_refused_before_running(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(dut):\n    pass\n")
    result = pytester.runpytest_subprocess("--fault", "no_such_fault")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown fault 'no_such_fault'" in result.stderr.str()
    assert "frequency_off_5pct" in result.stderr.str()


def test_unknown_radio_environment_refused_before_running(pytester: pytest.Pytester) -> None:
    text = SIM_BENCH.read_text().replace("environment: gym", "environment: moon")
    assert "environment: moon" in text
    text = text.replace("device: ../devices/cs4.yaml", f"device: {FIXTURES_DIR / 'devices' / 'cs4.yaml'}")
    text = text.replace("scope_model: ../instruments/", f"scope_model: {FIXTURES_DIR / 'instruments'}/")
    bench = pytester.path / "bench.yaml"
    bench.write_text(text)
    pytester.makepyfile("def test_x(dut):\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest_subprocess("--bench", str(bench))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "field 'radio.environment'" in err and "unknown environment 'moon'" in err and "gym" in err
    assert "must not run" not in result.stdout.str()


def test_markers_skip_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.hw_only("needs a real scope probe")
        def test_hw(bench):
            pass

        @pytest.mark.sim_only
        def test_sim(bench):
            assert bench.simulated
        """
    )
    result = pytester.runpytest_subprocess("-rs", "--results-dir", str(pytester.path / "res"))
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs a real (hw) bench: needs a real scope probe*"])


def test_measurement_verdicts_decide_the_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from rig.measurements import Measurement

        def test_in_limits(measure):
            measure(Measurement("x", "mA", 1, 2), 1.5)

        def test_out_of_limits(measure):
            measure(Measurement("freq", "Hz", 89, 91), 94.5)
            measure(Measurement("ok", "Hz", 0, 1), 0.5)

        def test_nan_never_passes(measure):
            measure(Measurement("x", "mA", 1, 2), float("nan"))

        def test_nothing_measured(measure):
            pass
        """
    )
    results = pytester.path / "res"
    result = pytester.runpytest_subprocess("--results-dir", str(results))
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    assert "freq = 94.5 Hz, limits [89, 91] Hz: FAIL" in out
    assert "recorded no measurement" in out
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "run_start" and "run_end" in kinds and kinds[-1] == "bundle_sealed"
    assert all(r["simulated"] is True for r in records)
    verdicts = {r["measurement"]["name"]: r["verdict"] for r in records if r["kind"] == "measurement"}
    assert verdicts == {"x": "FAIL", "freq": "FAIL", "ok": "PASS"}  # the NaN x overwrote the passing x
    outcomes = [r["outcome"] for r in records if r["kind"] == "test_result"]
    assert sorted(outcomes) == ["failed", "failed", "failed", "passed"]


def test_a_rig_error_during_a_test_is_an_error_not_a_device_failure(pytester: pytest.Pytester) -> None:
    """A DutError in the test body (a dropped link, a corrupt reply) means nothing was proven about the
    device: ERROR in the records and the evidence verdict, never FAIL (and never PASS)."""
    pytester.makepyfile(
        """
        from rig.errors import DutError
        from rig.measurements import Measurement

        def test_link_breaks(measure):
            measure(Measurement("x", "mA", 1, 2), 1.5)
            raise DutError("ble:CS-4 X: STATUS not delivered: the link dropped")
        """
    )
    results = pytester.path / "res"
    pytester.runpytest_subprocess("--results-dir", str(results))
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    (result,) = [r for r in records if r["kind"] == "test_result"]
    assert (result["outcome"], result["verdict"]) == ("error", "ERROR")
    assert "STATUS not delivered" in result["message"]


def test_a_failed_precondition_stops_the_test_as_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from rig.measurements import Measurement

        def test_precondition_fails(measure):
            measure.require(Measurement("output_running", "bool", 1, 1), 0.0, state="fault", fault="over_current")
            raise AssertionError("must not get here")

        def test_precondition_holds(measure):
            measure.require(Measurement("output_running", "bool", 1, 1), 1.0)
            measure(Measurement("x", "mA", 1, 2), 1.5)
        """
    )
    results = pytester.path / "res"
    result = pytester.runpytest_subprocess("--results-dir", str(results))
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "output_running = 0 bool, limits [1, 1] bool: FAIL (state=fault, fault=over_current)" in out
    assert "must not get here" not in out
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    recorded = [(r["measurement"]["name"], r["verdict"]) for r in records if r["kind"] == "measurement"]
    assert recorded == [("output_running", "FAIL"), ("output_running", "PASS"), ("x", "PASS")]


def test_outputs_stopped_after_a_failing_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        SEEN = {}

        def test_starts_then_fails(bench, dut):
            dut.start("tens_hf", [1, 2], 20)
            bench.clock.wait(3.0)
            SEEN["amps"] = bench.virtual.output_amplitudes_mA()
            raise RuntimeError("boom")

        def test_outputs_are_off(bench):
            assert SEEN["amps"][1] == 20 and SEEN["amps"][2] == 20
            assert all(a == 0 for a in bench.virtual.output_amplitudes_mA().values())
        """
    )
    result = pytester.runpytest_subprocess("--results-dir", str(pytester.path / "res"), "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)


def test_ceiling_interlock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from rig.errors import CeilingError

        def test_refused(bench, dut):
            handled = bench.virtual.device_server.frames_handled
            with pytest.raises(CeilingError, match="amplitude_ceiling_mA of 110 mA"):
                dut.start("tens_hf", [1], 150)
            assert bench.virtual.device_server.frames_handled == handled
        """
    )
    result = pytester.runpytest_subprocess("--results-dir", str(pytester.path / "res"))
    result.assert_outcomes(passed=1)


def test_a_failing_heartbeat_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from rig.measurements import Measurement

        def test_link_dies_quietly(bench, dut, measure):
            dut.start("tens_hf", [1], 20)
            dut._ser.close()  # the USB-serial link drops: every keep-alive now fails
            bench.wait(0.3)
            measure(Measurement("x", "mA", 0, 1), 0.5)  # would pass on its own
        """
    )
    result = pytester.runpytest_subprocess("--results-dir", str(pytester.path / "res"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*controller heartbeat failed*"])


def test_a_value_within_its_uncertainty_of_a_limit_is_marginal(pytester: pytest.Pytester) -> None:
    """Guard-banded verdicts: with the simulated bench's accuracy (2 % gain, 1 % probe, 1 % load: U = 2.83 % of a
    current), 9.8 mA against <= 10 mA is inside the limit but within U of it: MARGINAL, recorded and reported as
    such, and the test still passes (OpenHTF's convention). A count has no instrument term: 10 against <= 10 passes."""
    pytester.makepyfile(
        """
        from rig.measurements import Measurement

        def test_marginal(measure):
            measure(Measurement("current", "mA", 0, 10), 9.8)

        def test_clear(measure):
            measure(Measurement("current", "mA", 0, 10), 9.0)
            measure(Measurement("channels", "channels", high=10), 10)
        """
    )
    results = pytester.path / "res"
    result = pytester.runpytest_subprocess("--results-dir", str(results), "-p", "no:xdist")
    result.assert_outcomes(passed=2)
    (run,) = [p for p in results.iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    measured = [(r["test"].split("::")[-1], r["verdict"], round(r["uncertainty"], 4))
                for r in records if r["kind"] == "measurement"]
    assert measured == [("test_marginal", "MARGINAL", 0.2772), ("test_clear", "PASS", 0.2546),
                        ("test_clear", "PASS", 0.0)]
    verdicts = {r["test"].split("::")[-1]: r["verdict"] for r in records if r["kind"] == "test_result"}
    assert verdicts == {"test_marginal": "MARGINAL", "test_clear": "PASS"}
    report = (run / "report.html").read_text()
    assert "1 test(s) MARGINAL" in report and '<span class="MARGINAL">MARGINAL</span>' in report
