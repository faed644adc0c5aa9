"""stimrig: a hardware-in-the-loop test rig for wireless EMS/TENS stimulators."""

__version__ = "0.1.0"
