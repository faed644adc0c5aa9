"""Instrument drivers: pyvisa resources, IEEE 488.2 blocks, oscilloscope drivers and their selection."""

from rig.instruments.blocks import read_definite_block
from rig.instruments.keysight import KeysightInfiniiVision
from rig.instruments.select import SCOPE_FAMILIES, open_scope
from rig.instruments.visa import open_resource

__all__ = ["SCOPE_FAMILIES", "KeysightInfiniiVision", "open_resource", "open_scope", "read_definite_block"]
