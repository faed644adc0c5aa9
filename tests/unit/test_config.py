"""Fixture loading: shipped fixtures validate; a broken one fails with ONE line naming file, field, expectation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rig.config import BenchConfig, DeviceModel, Program, load_bench, load_device, load_program, load_programs
from rig.errors import FixtureError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DEVICE_FILES = sorted((FIXTURES / "devices").glob("*.yaml"))
PROGRAM_FILES = sorted((FIXTURES / "programs").glob("*.yaml"))
BENCH_FILES = sorted((FIXTURES / "benches").glob("*.yaml"))


def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _fixture_error(loader: Callable[[Path], Any], path: Path) -> str:
    with pytest.raises(FixtureError) as info:
        loader(path)
    return str(info.value)


def _assert_one_line(msg: str, path: Path, *expected: str) -> None:
    assert "\n" not in msg and "\r" not in msg, f"message spans several lines: {msg!r}"
    assert str(path) in msg, f"file {path} not named in: {msg}"
    for part in expected:
        assert part in msg, f"{part!r} not in: {msg}"


# ---- shipped fixtures --------------------------------------------------------------------------------


def test_fixture_directories_are_not_empty() -> None:
    assert DEVICE_FILES and PROGRAM_FILES and BENCH_FILES


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.name)
def test_shipped_device_loads(path: Path) -> None:
    dev = load_device(path)
    assert isinstance(dev, DeviceModel)
    assert dev.limits.min_frequency_Hz <= dev.limits.max_frequency_Hz


@pytest.mark.parametrize("path", PROGRAM_FILES, ids=lambda p: p.name)
def test_shipped_program_loads(path: Path) -> None:
    prog = load_program(path)
    assert isinstance(prog, Program)
    assert prog.id == path.stem


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: p.name)
def test_shipped_bench_loads_and_resolves_its_device(path: Path) -> None:
    cfg = load_bench(path)
    assert isinstance(cfg, BenchConfig)
    assert cfg.device.is_file()
    assert isinstance(load_device(cfg.device), DeviceModel)
    assert cfg.path == path


def test_shipped_programs_load_as_a_set_sorted_by_id() -> None:
    ids = [p.id for p in load_programs()]
    assert ids == sorted(ids)
    assert set(ids) == {p.stem for p in PROGRAM_FILES}


def test_shipped_cs4_values() -> None:
    dev = load_device(FIXTURES / "devices" / "cs4.yaml")
    assert dev.channels == 4
    assert dev.output.compliance_voltage_V == 120
    assert dev.limits.max_amplitude_mA == 100
    assert dev.source_of("limits.max_amplitude_mA").startswith("CS-4 specification")


def test_bench_device_path_is_resolved_relative_to_the_bench_file(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "benches").mkdir()
    (tmp_path / "devices" / "mine.yaml").write_text((FIXTURES / "devices" / "cs4.yaml").read_text())
    data = _read(FIXTURES / "benches" / "sim.yaml")
    data["device"] = "../devices/mine.yaml"
    bench_file = tmp_path / "benches" / "b.yaml"
    bench_file.write_text(yaml.safe_dump(data))
    cfg = load_bench(bench_file)
    assert cfg.device == (tmp_path / "devices" / "mine.yaml").resolve()


# ---- broken copies -----------------------------------------------------------------------------------

CS4 = FIXTURES / "devices" / "cs4.yaml"
EMS = FIXTURES / "programs" / "ems_strength.yaml"
TENS_LF = FIXTURES / "programs" / "tens_lf.yaml"
SIM = FIXTURES / "benches" / "sim.yaml"
HW = FIXTURES / "benches" / "lab-keysight-usbserial.yaml"


def _bench(src: Path) -> dict[str, Any]:
    data = _read(src)
    data["device"] = str(CS4)  # the copy lives in tmp_path: point at the real device by absolute path
    return data


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def mutate(data: dict[str, Any]) -> None:
        for p in parents:
            data = data[p]
        data[leaf] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def mutate(data: dict[str, Any]) -> None:
        for p in parents:
            data = data[p]
        del data[leaf]

    return mutate


def _source(key: str, text: str | None = None) -> Callable[[dict[str, Any]], None]:
    """Drop (text None) or replace the ``sources`` entry ``key`` (keys contain dots, so no _set/_drop)."""

    def mutate(data: dict[str, Any]) -> None:
        if text is None:
            del data["sources"][key]
        else:
            data["sources"][key] = text

    return mutate


# (id, source fixture, loader, mutation, substrings the one line must hold: field path + expectation)
# fmt: off
BROKEN: list[tuple[str, Path, Callable[[Path], Any], Callable[[dict[str, Any]], None], tuple[str, ...]]] = [
    ("device-missing-field", CS4, load_device, _drop("output.rise_time_us"),
     ("'output.rise_time_us'", "missing", "required")),
    ("device-wrong-type", CS4, load_device, _set("channels", "four"),
     ("'channels'", "valid integer", "'four'")),
    ("device-negative-compliance", CS4, load_device, _set("output.compliance_voltage_V", -5),
     ("'output.compliance_voltage_V'", "greater than 0", "-5")),
    ("device-extra-field", CS4, load_device, _set("limits.max_amplitude_ma", 5),
     ("'limits.max_amplitude_ma'", "not a known field")),
    ("device-min-over-max-frequency", CS4, load_device, _set("limits.min_frequency_Hz", 500),
     ("'limits'", "min_frequency_Hz must not exceed max_frequency_Hz")),
    ("device-min-over-max-phase", CS4, load_device, _set("limits.min_phase_us", 1000),
     ("'limits'", "min_phase_us must not exceed max_phase_us")),
    ("device-source-missing", CS4, load_device, _source("limits.max_amplitude_mA"),
     ("sources['limits.max_amplitude_mA']", "missing", "must name its source")),
    ("device-source-blank", CS4, load_device, _source("output.rise_time_us", "  "),
     ("sources['output.rise_time_us']", "missing")),
    ("device-bad-firmware-version", CS4, load_device, _set("identity.firmware_version", "v1"),
     ("'identity.firmware_version'", "should match pattern")),
    ("program-asymmetric-without-phase2", TENS_LF, load_program, _drop("phase2_duration_us"),
     ("phase2_duration_us", "required for an asymmetric waveform")),
    ("program-asymmetric-phase2-too-short", TENS_LF, load_program, _set("phase2_duration_us", 200),
     ("phase2_duration_us", "must be longer than phase_duration_us")),
    ("program-ramps-longer-than-on", EMS, load_program, _set("ramp_up_s", 9.5),
     ("ramp_up_s + ramp_down_s", "cycle.on_s")),
    ("program-bad-category", EMS, load_program, _set("category", "sport"),
     ("'category'", "'tens', 'ems' or 'relaxation'", "'sport'")),
    ("program-negative-ramp", EMS, load_program, _set("ramp_down_s", -1),
     ("'ramp_down_s'", "greater than or equal to 0")),
    ("program-cycle-extra-field", EMS, load_program, _set("cycle.of_s", 3),
     ("'cycle.of_s'", "not a known field")),
    ("bench-hw-auto-resource", HW, load_bench, _set("scope.resource", "auto"),
     ("scope.resource", "not 'auto'")),
    ("bench-hw-auto-port", HW, load_bench, _set("dut.port", "auto"),
     ("dut.port", "not 'auto'")),
    ("bench-fixed-unknown-load", HW, load_bench, _set("load.fixed.load", "R1k"),
     ("'load'", "fixed.load 'R1k'", "not one of loads_ohm")),
    ("bench-nonpositive-load", HW, load_bench, _set("load.loads_ohm.R500", 0),
     ("'load.loads_ohm'", "positive resistance")),
    ("bench-device-not-found", SIM, load_bench, _set("device", "../devices/nope.yaml"),
     ("'device'", "nope.yaml", "not found", "expected a file under fixtures/devices/")),
    ("bench-ceiling-too-high", SIM, load_bench, _set("amplitude_ceiling_mA", 500),
     ("'amplitude_ceiling_mA'", "less than or equal to 200", "500")),
    ("bench-scope-extra-field", SIM, load_bench, _set("scope.resorce", "x"),
     ("'scope.resorce'", "not a known field")),
]
# fmt: on


@pytest.mark.parametrize(
    ("source", "loader", "mutate", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_fixture_fails_with_one_line(
    tmp_path: Path,
    source: Path,
    loader: Callable[[Path], Any],
    mutate: Callable[[dict[str, Any]], None],
    expected: tuple[str, ...],
) -> None:
    data = copy.deepcopy(_bench(source) if loader is load_bench else _read(source))
    loader(_write(tmp_path / "ok.yaml", data))  # the unbroken copy loads: the mutation is what breaks it
    mutate(data)
    path = _write(tmp_path / source.name, data)
    _assert_one_line(_fixture_error(loader, path), path, *expected)


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_pulse_longer_than_period_names_the_fields(tmp_path: Path) -> None:
    data = _read(EMS)
    data["frequency_Hz"] = 2000  # period 500 us < pulse 300 + 100 + 300 us
    path = _write(tmp_path / "ems_strength.yaml", data)
    msg = _fixture_error(load_program, path)
    _assert_one_line(msg, path, "does not fit in one period")
    assert any(f in msg for f in ("frequency_Hz", "phase_duration_us", "interphase_gap_us")), msg


def test_pulse_longer_than_period_is_refused_in_one_line(tmp_path: Path) -> None:
    data = _read(EMS)
    data["frequency_Hz"] = 2000
    path = _write(tmp_path / "ems_strength.yaml", data)
    _assert_one_line(_fixture_error(load_program, path), path, "pulse (700 us) does not fit in one period (500 us)")


def test_several_problems_are_counted_on_the_same_line(tmp_path: Path) -> None:
    data = _read(CS4)
    del data["model"]
    data["channels"] = 0
    data["output"]["rise_time_us"] = -1
    path = _write(tmp_path / "cs4.yaml", data)
    _assert_one_line(_fixture_error(load_device, path), path, "'model' is missing", "[and 2 more problem(s)")


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "cs4.yaml"
    path.write_text("schema: stimrig.device/1\nmodel: [CS-4\nchannels: 4\n", encoding="utf-8")
    _assert_one_line(_fixture_error(load_device, path), path, "not valid YAML", "line 3, column")


def test_yaml_tab_indentation_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "tens_hf.yaml"
    path.write_text("schema: stimrig.program/1\nid: x\n\tname: y\n", encoding="utf-8")
    _assert_one_line(_fixture_error(load_program, path), path, "not valid YAML", "line 3")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    _assert_one_line(_fixture_error(load_device, path), path, "expected a YAML mapping at the top level")


def test_top_level_list(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    _assert_one_line(_fixture_error(load_bench, path), path, "expected a YAML mapping at the top level", "list")


def test_binary_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"schema: \xff\xfe\x00\x81\n")
    msg = _fixture_error(load_device, path)
    assert "\n" not in msg and str(path) in msg


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "cs4.yaml"
    _assert_one_line(_fixture_error(load_device, path), path, "file not found", "expected a YAML fixture file")


def test_duplicate_program_ids_across_files_are_reported(tmp_path: Path) -> None:
    data = _read(FIXTURES / "programs" / "tens_hf.yaml")
    first = _write(tmp_path / "a_tens.yaml", data)
    second = _write(tmp_path / "b_tens.yaml", data)
    msg = _fixture_error(load_programs, tmp_path)
    _assert_one_line(msg, second, "'id'", "duplicate program id 'tens_hf'", str(first))


def test_program_directory_without_programs(tmp_path: Path) -> None:
    msg = _fixture_error(load_programs, tmp_path)
    _assert_one_line(msg, tmp_path, "no program fixtures", "expected at least one")


def test_a_broken_program_stops_the_whole_directory(tmp_path: Path) -> None:
    for f in PROGRAM_FILES:
        (tmp_path / f.name).write_text(f.read_text())
    data = _read(FIXTURES / "programs" / "relax_recovery.yaml")
    data["amplitude_mA"] = 0
    bad = _write(tmp_path / "relax_recovery.yaml", data)
    _assert_one_line(_fixture_error(load_programs, tmp_path), bad, "'amplitude_mA'", "greater than 0")
