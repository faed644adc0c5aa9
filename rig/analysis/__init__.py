"""Pulse analysis of captured stimulator output (IEEE Std 181-2011 measurements).

Main entry point::

    train = analyse_pulse_train(capture.samples, capture.x_increment_s,
                                t0_s=capture.x_origin_s, gain=capture.gain, offset=capture.offset)
    train.frequency_Hz, train.phase1_duration_s, train.phase1_integral / load_ohm  # charge, C

Lower-level helpers: :func:`state_levels` (histogram-method levels of a whole record, the
reference method) and :func:`crossing_times` (interpolated crossings of a level, no hysteresis).
:mod:`rig.analysis.synthetic` renders analytic pulse trains with known parameters.
"""

from rig.analysis.edges import crossing_times
from rig.analysis.levels import StateLevels, state_levels
from rig.analysis.pulse_train import analyse_pulse_train
from rig.analysis.result import PulseTrain

__all__ = ["PulseTrain", "StateLevels", "analyse_pulse_train", "crossing_times", "state_levels"]
