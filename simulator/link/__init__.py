"""BLE (2.4 GHz) link model: link budget, shadowing, packet errors, burst loss and the connection layer.

Intended use: the building blocks of a fleet simulator (many devices x many connection events) and of the
virtual bench's radio link. Two engines share one set of rules:

* a simpy per-event engine: per device a ``ShadowingProcess`` and a ``BleConnection`` (or simply
  ``LinkModel.connection(rng)``), stepped at ``conn.next_event_s`` with the path loss of that moment;
* a fast numpy engine: ``correlated_shadowing_dB`` for the tracks, ``LinkBudget.margin_dB`` and
  ``packet_error_rate`` for the Good-state PER, ``sample_bad_states`` + ``sample_event_losses`` for the
  (n_devices, n_events) loss array, then ``link_dropouts`` / ``time_connected_s`` / ``command_latency_s`` on
  ``ok = ~lost``.

Parameters come from fixtures/link/ble.yaml (``rig.config.link.load_link_profiles``); the mean path loss is the
rig's own deterministic ``rig.radio.mean_path_loss_dB``. Every random draw comes from a numpy Generator passed in
(e.g. ``simulator.rng.SeededStreams``): the same seed gives the same outcomes. Model, sources and limits:
docs/link-model.md.
"""

from simulator.link.budget import LinkBudget, rssi_dBm
from simulator.link.burst import GilbertElliott, GilbertElliottChain, sample_bad_states, sample_event_losses
from simulator.link.connection import DEFAULT_COMMAND_PAYLOAD_BYTES, BleConnection, Delivery, EventOutcome
from simulator.link.model import LinkModel
from simulator.link.per import (
    GAMMA_AT_SENSITIVITY,
    LL_OVERHEAD_BYTES,
    SENSITIVITY_BER,
    bit_error_rate,
    packet_bits,
    packet_error_rate,
)
from simulator.link.shadowing import ShadowingProcess, correlated_shadowing_dB
from simulator.link.timeline import Dropouts, command_latency_s, link_dropouts, lost_mask, time_connected_s

__all__ = [
    "DEFAULT_COMMAND_PAYLOAD_BYTES",
    "GAMMA_AT_SENSITIVITY",
    "LL_OVERHEAD_BYTES",
    "SENSITIVITY_BER",
    "BleConnection",
    "Delivery",
    "Dropouts",
    "EventOutcome",
    "GilbertElliott",
    "GilbertElliottChain",
    "LinkBudget",
    "LinkModel",
    "ShadowingProcess",
    "bit_error_rate",
    "command_latency_s",
    "correlated_shadowing_dB",
    "link_dropouts",
    "lost_mask",
    "packet_bits",
    "packet_error_rate",
    "rssi_dBm",
    "sample_bad_states",
    "sample_event_losses",
    "time_connected_s",
]
