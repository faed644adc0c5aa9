"""The suite catches every catalogued firmware defect, and passes clean firmware (slow: full runs).

This is the test tool's own validation record in miniature (ISO 13485 4.1.6 / 7.6): evidence that
the certification suite fails on known-defective firmware, not only that it passes on good firmware.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.faults import FAULTS
from tests.integration.test_certify_cli import certify, outcomes, records

pytestmark = pytest.mark.slow


def test_clean_firmware_passes_everything(tmp_path: Path) -> None:
    run = certify(tmp_path)
    assert run.returncode == 0, run.stdout
    results = outcomes(records(tmp_path))
    assert len(results) >= 100 and set(results.values()) == {"passed"}


EXPECTED_CATCHERS = {
    "frequency_off_5pct": "test_pulse_frequency",
    "phase_duration_off_10pct": "test_phase_durations",
    "charge_imbalance": "test_phase_durations",
    "amplitude_clamp_missing": "test_start_above_maximum_refused",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_is_caught(tmp_path: Path, fault: str) -> None:
    run = certify(tmp_path, "--fault", fault)
    assert run.returncode == 1, run.stdout
    results = outcomes(records(tmp_path))
    failed = sorted(t for t, o in results.items() if o == "failed")
    assert failed, f"fault {fault} went undetected"
    assert "error" not in results.values(), "a defect must show as FAIL on a measurement, not as ERROR"
    assert any(EXPECTED_CATCHERS[fault] in t for t in failed), failed
