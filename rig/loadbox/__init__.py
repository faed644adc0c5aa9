"""Switchable load boxes of a real bench. Each implements rig.interfaces.LoadBox (docs/loadbox.md)."""

from rig.loadbox.serial_box import ErrCode, LoadBoxError, LoadBoxRefused, SerialLoadBox

__all__ = ["ErrCode", "LoadBoxError", "LoadBoxRefused", "SerialLoadBox"]
