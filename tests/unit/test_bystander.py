"""Device addressing on the virtual bench: the bystander hears what the controller sends the DUT (and
the other way round) and its address filter drops it; without the filter (a seeded fault) it acts on
it; out of radio reach it hears nothing. Through the rig's real serial links and the pty bridge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rig.bench.session import RigBench
from rig.config.loader import FIXTURES_DIR, load_bench
from rig.errors import FixtureError, StimrigError
from simulator.bystander import next_serial
from tests.certification.conftest import RUNNING_STATES

SIM_BENCH = FIXTURES_DIR / "benches" / "sim.yaml"


def open_rig(fault: str | None = None) -> RigBench:
    return RigBench.from_files(SIM_BENCH, fault=fault)


@pytest.fixture
def rig() -> Iterator[RigBench]:
    bench = open_rig()
    try:
        yield bench
    finally:
        bench.close()


def running(link: object) -> list[int]:
    return [s.channel for s in link.status() if s.state in RUNNING_STATES]  # type: ignore[attr-defined]


def test_each_device_has_its_own_address(rig: RigBench) -> None:
    dut, other = rig.dut.identify(), rig.bystander.identify()
    assert dut.serial == "SIM-CS4-000042" and other.serial == "SIM-CS4-000043"
    assert rig.describe()["virtual_bench"]["bystander"]["serial"] == "SIM-CS4-000043"


def test_requests_reach_the_other_device_and_its_filter_drops_them(rig: RigBench) -> None:
    heard: list[str] = []
    rig.start()
    bystander_fw = rig.virtual.bystander.firmware
    original = bystander_fw.addressed_to_me

    def spy(destination: str) -> bool:
        heard.append(destination)
        return original(destination)

    bystander_fw.addressed_to_me = spy
    rig.dut.start("tens_hf", [1, 2], 20.0)
    rig.dut.set_amplitude(1, 30.0)
    rig.wait(1.0)
    assert "SIM-CS4-000042" in heard  # the bystander's receiver heard the DUT's requests ...
    assert running(rig.bystander) == []  # ... and did nothing with them
    assert running(rig.dut) == [1, 2]
    rig.bystander.start("tens_lf", [3], 10.0)
    rig.wait(0.5)
    assert running(rig.dut) == [1, 2] and running(rig.bystander) == [3]


def test_without_the_address_filter_a_device_obeys_requests_for_another() -> None:
    rig = open_rig("address_filter_missing")
    try:
        rig.dut.start("tens_hf", [2], 20.0)
        rig.wait(1.0)
        assert running(rig.bystander) == [2]  # it started its own patient's channel 2
        rig.dut.emergency_stop()
        rig.wait(0.5)
        assert running(rig.bystander) == []
    finally:
        rig.close()


def test_a_device_out_of_reach_hears_nothing() -> None:
    rig = open_rig("address_filter_missing")
    try:
        rig.dut.identify()
        rig.virtual.bystander.radio.set_path_loss_dB(200.0)  # far beyond any link budget
        with rig.link_may_drop():
            rig.wait(3 * rig.device.safety.supervision_timeout_s)
        rig.dut.start("tens_hf", [2], 20.0)
        rig.wait(1.0)
        assert rig.virtual.bystander.radio.connection.lost
        assert rig.virtual.output_amplitudes_mA()[2] > 0
        assert all(ch.state == "idle" for ch in rig.virtual.bystander.firmware.channels.values())
    finally:
        rig.close()


def test_closing_the_run_stops_the_bystander(rig: RigBench) -> None:
    rig.bystander.start("tens_hf", [1], 20.0)
    rig.wait(1.0)
    virtual = rig.virtual
    assert virtual.bystander.firmware.channels[1].state != "idle"
    rig.close()
    assert virtual.bystander.firmware.channels[1].schedule.envelope_mA(virtual.clock.now()) == 0.0


def test_a_bench_without_a_bystander_says_what_the_test_needs(tmp_path) -> None:
    text = SIM_BENCH.read_text()
    start = text.index("bystander:")
    end = text.index("simulator:")
    bench = tmp_path / "no-bystander.yaml"
    bench.write_text((text[:start] + text[end:]).replace("../", f"{SIM_BENCH.parent.parent}/"))
    rig = RigBench.from_files(bench)
    try:
        with pytest.raises(StimrigError, match=r"no 'bystander' section: .*second stimulator"):
            _ = rig.bystander
    finally:
        rig.close()


@pytest.mark.parametrize(("edit", "message"), [
    ("scope_channel: 3", "bystander.scope_channel 1 is the scope's measure_channel"),
    ("port: auto               # its own", "a hardware bench needs a real bystander.port"),
])
def test_bad_bystander_settings_are_refused_with_the_field(tmp_path, edit: str, message: str) -> None:
    text = SIM_BENCH.read_text().replace("../", f"{SIM_BENCH.parent.parent}/")
    if edit.startswith("scope_channel"):
        text = text.replace(edit, "scope_channel: 1")
    else:  # the hardware form of the sim bench, bystander port left 'auto'
        hw = FIXTURES_DIR / "benches" / "lab-keysight-usbserial.yaml"
        text = hw.read_text().replace("../", f"{SIM_BENCH.parent.parent}/").replace("/dev/ttyUSB1", "auto")
    bench = tmp_path / "bench.yaml"
    bench.write_text(text)
    with pytest.raises(FixtureError, match=message):
        load_bench(bench)


def test_next_serial() -> None:
    assert next_serial("SIM-CS4-000042") == "SIM-CS4-000043"
    assert next_serial("A-0999") == "A-1000"
    assert next_serial("CS4") == "CS5"
    assert next_serial("CS-X") == "CS-X-B"
