"""Walk-away: stimulation carries on while the patient stays within the product's claimed range, and
stops within the link-loss limit once they walk out of range (IEC 60601-1 12.4 and 4.7: a lost radio
link is a single fault the output must survive safely; device fixture radio.claimed_range_m).

Distance is set through the bench's radio channel: an RF attenuator in the conducted path between
controller and device, at the mean path loss of that distance in the bench's environment less the
cabling's fixed loss (docs/attenuator.md, docs/link-model.md). The patient walks from the default
distance to the claimed range; at each step STATUS must get through and the channel keep running.
Then the load box marker is pulsed as the patient steps out of range (the distance at which the mean
link margin is OUT_OF_RANGE_MARGIN_DB), and the latency runs from the marker to the last pulse above
10 % of the output's amplitude.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.config.link import load_link_profiles
from rig.errors import DutError
from rig.measurements import Measurement
from rig.radio.channel import link_budget_dB
from tests.certification.conftest import RUNNING_STATES
from tests.certification.cutoff import timed_cutoff

WALK_STEPS = 5  # distances from the default one to the claimed range, geometrically spaced
OUT_OF_RANGE_MARGIN_DB = -20.0  # the patient is this far below sensitivity: no packet gets through


@pytest.mark.requirement("LINK-WALK-AWAY", "LINK-RANGE")
@pytest.mark.parametrize("level", ["min_amplitude", "max_amplitude"])
def test_walk_away_cutoff(channel, level, bench, dut, scope, radio, device_model, measure):
    safety = device_model.safety
    amplitude = safety.cutoff_test_amplitudes_mA[0 if level == "min_amplitude" else 1]
    claimed_m = device_model.radio.claimed_range_m
    out_m = radio.distance_at_margin_m(link_budget_dB(device_model, load_link_profiles()), OUT_OF_RANGE_MARGIN_DB)
    dwell_s = 2.0 * safety.supervision_timeout_s  # long enough for the link to drop if it were going to
    held = []

    def walk_to_the_claimed_range() -> None:
        for distance_m in np.geomspace(bench.config.radio.default_distance_m, claimed_m, WALK_STEPS):
            radio.set_distance_m(float(distance_m))
            bench.wait(dwell_s)
            try:
                state = {s.channel: s.state for s in dut.status()}[channel]
            except DutError as exc:
                state = f"no reply: {exc}"
            held.append((float(distance_m), state))

    def marker_then_out_of_range() -> None:
        bench.load.mark()
        radio.set_distance_m(out_m)

    with bench.link_may_drop():
        result = timed_cutoff(bench, dut, scope, measure, channel, amplitude, 2.0 * safety.link_loss_cutoff_max_s,
                              marker_then_out_of_range, before=walk_to_the_claimed_range)
    running = sum(state in RUNNING_STATES for _, state in held)
    measure(Measurement("steps_running_within_claimed_range", "steps", low=len(held), high=len(held),
                        source=device_model.source_of("radio.claimed_range_m")),
            float(running), walk=str([(round(d, 1), s) for d, s in held]))
    measure(
        Measurement("walk_away_cutoff_latency", "s", high=safety.link_loss_cutoff_max_s,
                    source=device_model.source_of("safety.link_loss_cutoff_max_s")),
        result.latency_s, amplitude_mA=amplitude, channel=channel, out_of_range_m=out_m,
        output_stopped_within_capture=result.stopped,
    )
