"""Deterministic radio figures the rig uses on a real bench (no randomness, no simulator imports).

``mean_path_loss_dB`` gives the log-distance mean path loss of a link environment (fixtures/link/ble.yaml);
``attenuation_for_distance_dB`` turns a distance into the programmable-attenuator setting that reproduces it
once the fixed cabling loss is taken off; ``distance_for_path_loss_m`` is the inverse. Model: docs/link-model.md.
"""

from rig.radio.path_loss import (
    REFERENCE_DISTANCE_M,
    PathLossEnvironment,
    attenuation_for_distance_dB,
    distance_for_path_loss_m,
    mean_path_loss_dB,
)

__all__ = [
    "REFERENCE_DISTANCE_M",
    "PathLossEnvironment",
    "attenuation_for_distance_dB",
    "distance_for_path_loss_m",
    "mean_path_loss_dB",
]
