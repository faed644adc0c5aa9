"""The virtual bench's radio: the rig's frames cross the simulated BLE link, whose path loss the
emulated RF attenuator sets (through the rig's RadioChannel and pyvisa, as on a real bench)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rig.bench.session import RigBench
from rig.config.loader import FIXTURES_DIR
from rig.errors import InstrumentError, LinkDown

SIM_BENCH = FIXTURES_DIR / "benches" / "sim.yaml"


@pytest.fixture
def rig() -> Iterator[RigBench]:
    bench = RigBench.from_files(SIM_BENCH)
    try:
        yield bench
    finally:
        bench.close()


def test_commands_take_connection_events(rig: RigBench) -> None:
    interval_s = rig.device.radio.connection_interval_ms / 1000.0
    rig.dut.identify()
    t0 = rig.clock.now()
    rig.dut.keepalive()
    took = rig.clock.now() - t0
    # to the device at the next event, the reply at the one after: one to two intervals
    assert interval_s - 1e-9 <= took <= 2 * interval_s + 1e-9


def test_the_attenuator_sets_the_path_loss(rig: RigBench) -> None:
    radio = rig.radio
    path_loss = radio.set_distance_m(50.0)
    expected = rig.virtual.environment.pl_1m_dB + 10 * rig.virtual.environment.path_loss_exponent * 1.69897
    assert path_loss == pytest.approx(expected, abs=0.13)  # the attenuator's 0.25 dB steps
    assert rig.virtual.radio.path_loss_dB == pytest.approx(path_loss)
    assert rig.dut.status()  # 50 m in the gym: a clean link


def test_out_of_range_the_bridge_answers_not_connected_and_the_device_cuts_off(rig: RigBench) -> None:
    dut = rig.dut
    dut.start("tens_hf", [1], 20.0)
    rig.wait(3.0)
    radio = rig.radio
    radio.set_distance_m(radio.distance_range_m()[1])  # as far as the bench goes
    with rig.link_may_drop():
        rig.wait(rig.device.safety.supervision_timeout_s + 0.2)
        with pytest.raises(LinkDown, match="radio link to the device is down"):
            dut.status()
        rig.wait(1.0)
    assert rig.virtual.radio.losses
    assert rig.virtual.firmware.link_losses  # the disconnect reached the firmware
    assert rig.virtual.output_amplitudes_mA()[1] == 0.0
    assert rig.link_events and not rig.link_errors
    rig.reset_radio()
    state = {s.channel: s.state for s in dut.status()}[1]
    assert state == "link_lost"  # resume_at_zero: waits for the operator


def test_a_distance_the_bench_cannot_reach_is_refused_and_nothing_set(rig: RigBench) -> None:
    radio = rig.radio
    before = rig.virtual.radio.path_loss_dB
    with pytest.raises(InstrumentError, match=r"distance 100000 m.*nothing was set.*radio.cable_loss_dB"):
        radio.set_distance_m(100_000.0)
    assert rig.virtual.radio.path_loss_dB == before
