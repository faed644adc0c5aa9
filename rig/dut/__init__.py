"""Transports to the device under test. Each implements rig.interfaces.DutLink."""

from rig.dut.serial_link import SerialDutLink

__all__ = ["SerialDutLink"]
